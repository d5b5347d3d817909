"""Run inside Airflow's own virtualenv (never imports dataops): load a DAGs folder with Airflow's DagBag and say,
as one JSON line on stdout, what Airflow made of each DAG: import errors, timetable, catch-up, concurrency, the
task's settings, its bash command rendered for given logical dates, and the runs the timetable fires in
some windows.

Standard input: {"dags": FOLDER, "render": {DAG_ID: [ISO, ...]}, "windows": [[ISO, ISO], ...]}.
"""

from __future__ import annotations

import json
import sys

import pendulum
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.timetables.base import TimeRestriction


def runs_in(timetable, start, end) -> list[str]:
    """The logical dates the timetable fires from ``start`` to ``end``, as the scheduler asks it (catch-up on)."""
    restriction = TimeRestriction(earliest=start, latest=end, catchup=True)
    found, last = [], None
    while (info := timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        found.append(pendulum.instance(info.logical_date).in_timezone("UTC").isoformat())
        last = info.data_interval
    return found


def main() -> None:
    request = json.load(sys.stdin)
    bag = DagBag(dag_folder=request["dags"], safe_mode=False)
    windows = [(pendulum.parse(start), pendulum.parse(end)) for start, end in request["windows"]]
    dags = {}
    for dag_id, dag in bag.dags.items():
        task = dag.get_task("run_slot")
        env = dag.get_template_env()
        rendered = {when: task.render_template(task.bash_command, {"logical_date": pendulum.parse(when)},
                                               jinja_env=env)
                    for when in request["render"].get(dag_id, [])}
        dags[dag_id] = {
            "timetable": type(dag.timetable).__name__,
            "cron": dag.timetable.summary,
            "timezone": dag.timetable.serialize()["timezone"],
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "retries": task.retries,
            "skip_on_exit_code": list(task.skip_on_exit_code),
            "rendered": rendered,
            "runs": [run for start, end in windows for run in runs_in(dag.timetable, start, end)],
            "serialized": bool(DagSerialization.to_dict(dag)),
        }
    print(json.dumps({"import_errors": bag.import_errors, "dags": dags}))


if __name__ == "__main__":
    main()
