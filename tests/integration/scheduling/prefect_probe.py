"""Run inside Prefect's own virtualenv (never imports dataops): load exported deployments with Prefect's own
loaders and say, as one JSON line on stdout, what Prefect made of them: the flow, the deployment that `prefect
deploy` reads from prefect.yaml, the one `python flow.py` serves, the runs its schedule creates in some windows,
and the final state of the flow's body run here for a given scheduled start time.

Standard input: {"folders": [FOLDER, ...], "windows": [[ISO, ISO], ...],
                 "run": {"folder": FOLDER, "scheduled": ISO} or null}.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import runpy
import sys
from pathlib import Path

import yaml
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.runtime import flow_run as flow_run_runtime
from prefect.server.schemas.schedules import CronSchedule
from prefect.types._datetime import DateTime


def dates_in(schedule, start: datetime.datetime, end: datetime.datetime) -> list[str]:
    """The scheduled start times Prefect's scheduler creates from ``start`` to ``end`` (its own date logic)."""
    server = CronSchedule(**schedule.model_dump(exclude_none=True))
    dates = asyncio.run(server.get_dates(n=1000, start=start, end=end))
    return [d.astimezone(datetime.timezone.utc).isoformat() for d in dates]


def served(folder: Path) -> dict:
    """What ``python flow.py`` hands to ``Flow.serve``, turned into the deployment Prefect would create."""
    seen: dict = {}

    def capture(self, **kwargs):
        seen.update(kwargs)

    original, Flow.serve = Flow.serve, capture
    try:
        namespace = runpy.run_path(str(folder / "flow.py"), run_name="__main__")
    finally:
        Flow.serve = original
    deployment = namespace["run_slot"].to_deployment(name=seen["name"], schedules=seen["schedules"],
                                                     concurrency_limit=seen["global_limit"])
    limit = deployment.concurrency_options
    return {"name": deployment.name,
            "schedules": [s.schedule.model_dump(exclude_none=True, mode="json") for s in deployment.schedules],
            "concurrency_limit": deployment.concurrency_limit,
            "collision_strategy": str(limit.collision_strategy.value) if limit else None}


def main() -> None:
    request = json.load(sys.stdin)
    windows = [tuple(map(datetime.datetime.fromisoformat, window)) for window in request["windows"]]
    answer: dict = {"folders": {}}
    for folder in map(Path, request["folders"]):
        flow = load_flow_from_entrypoint(f"{folder / 'flow.py'}:run_slot")
        model = PrefectYamlModel.model_validate(yaml.safe_load((folder / "prefect.yaml").read_text()))
        (deployment,) = [d.model_dump(exclude_unset=True, mode="json") for d in model.deployments]
        schedules = [_schedule_config_to_deployment_schedule(s)["schedule"] for s in deployment["schedules"]]
        answer["folders"][str(folder)] = {
            "flow": flow.name, "retries": flow.retries, "deployment": deployment,
            "schedules": [s.model_dump(exclude_none=True, mode="json") for s in schedules],
            "dates": [d for start, end in windows for d in dates_in(schedules[0], start, end)],
            "served": served(folder),
        }
    if request.get("run"):
        flow = load_flow_from_entrypoint(f"{Path(request['run']['folder']) / 'flow.py'}:run_slot")
        # Outside a run the server created, prefect.runtime has no scheduled start time: give it the slot's, as
        # Prefect's own message on mocking it advises (its environment-variable override does not take dates).
        scheduled = DateTime.fromisoformat(request["run"]["scheduled"])
        flow_run_runtime.FIELDS["scheduled_start_time"] = lambda: scheduled
        state = flow.fn()
        answer["run"] = {"type": state.type.value, "name": state.name, "message": state.message}
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
