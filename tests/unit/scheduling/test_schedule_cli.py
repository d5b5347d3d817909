"""``dataops schedule``: create, list, show, next, pause, resume, backfill --dry-run, tick and delete, driven as a
user types them (with ``--now`` for a fixed clock)."""

from __future__ import annotations

import json
import textwrap

from typer.testing import CliRunner

from orchestrator.cli.main import app


def invoke(*args):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def schedule_file(tmp_path, cron="0 2 * * *", tz="Europe/Berlin"):
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(f"""
        name: sweep
        job: cluster-sweep
        cron: "{cron}"
        timezone: {tz}
        on_failure: {{webhook: "https://hooks.example.org/services/s3cr3t"}}
    """).lstrip())
    return path


def test_create_list_show_next_pause_resume_delete(tmp_path):
    store = str(tmp_path / "store")
    created = invoke("schedule", "create", "-f", str(schedule_file(tmp_path)), "--store", store,
                     "--now", "2027-10-29T12:00:00Z")
    assert created.exit_code == 0, created.output
    assert created.stdout.strip() == "sweep"
    assert "schedule sweep created" in created.stderr
    again = invoke("schedule", "create", "-f", str(schedule_file(tmp_path)), "--store", store)
    assert "schedule sweep unchanged" in again.stderr

    upcoming = invoke("schedule", "next", "sweep", "-n", "3", "--store", store, "--now", "2027-10-29T12:00:00Z")
    assert upcoming.stdout.splitlines() == [
        "2027-10-30T00:00:00Z  2027-10-30T02:00:00+02:00 CEST",
        "2027-10-31T00:00:00Z  2027-10-31T02:00:00+02:00 CEST",
        "2027-11-01T01:00:00Z  2027-11-01T02:00:00+01:00 CET",
    ]
    listed = json.loads(invoke("schedule", "list", "--store", store, "--json").stdout)
    assert [(r["name"], r["runs"], r["paused"]) for r in listed] == [("sweep", "job cluster-sweep", False)]

    assert invoke("schedule", "pause", "sweep", "--store", store).exit_code == 0
    shown = json.loads(invoke("schedule", "show", "sweep", "--store", store, "--json").stdout)
    assert shown["control"]["paused"] is True
    assert shown["spec"]["on_failure"] == "webhook https://hooks.example.org/..."
    assert "s3cr3t" not in json.dumps(shown)
    ticked = json.loads(invoke("schedule", "tick", "--store", store, "--json", "--now", "2027-10-30T00:00:30Z").stdout)
    assert ticked["paused"] == ["sweep"] and ticked["outcomes"] == []
    assert invoke("schedule", "resume", "sweep", "--store", store).exit_code == 0
    resumed = json.loads(invoke("schedule", "show", "sweep", "--store", store, "--json").stdout)
    assert resumed["control"]["paused"] is False

    deleted = invoke("schedule", "delete", "sweep", "--store", store)
    assert deleted.exit_code == 0 and "schedule sweep deleted" in deleted.stderr
    missing = CliRunner().invoke(app, ["schedule", "show", "swep", "--store", store])
    assert missing.exit_code == 22
    assert "no schedule 'swep'" in missing.stderr


def test_backfill_dry_run_lists_the_slots_it_would_run(tmp_path):
    store = str(tmp_path / "store")
    invoke("schedule", "create", "-f", str(schedule_file(tmp_path, cron="0 */6 * * *", tz="UTC")), "--store", store)
    dry = invoke("schedule", "backfill", "sweep", "--from", "2027-01-01T00:00", "--to", "2027-01-01T12:00",
                 "--dry-run", "--store", store)
    assert dry.exit_code == 0, dry.output
    assert [line.split()[3] for line in dry.stderr.splitlines()] == [
        "2027-01-01T00:00:00Z", "2027-01-01T06:00:00Z", "2027-01-01T12:00:00Z"]
    assert all("would run" in line for line in dry.stderr.splitlines())


def test_a_malformed_schedule_file_is_refused_with_its_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: sweep\njob: cluster-sweep\ncron: '0 2 * *'\n")
    result = CliRunner().invoke(app, ["schedule", "create", "-f", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert f"{path}:3: cron: invalid cron expression '0 2 * *': expected five fields" in result.stderr


def test_an_invalid_now_names_the_option(tmp_path):
    result = CliRunner().invoke(app, ["schedule", "tick", "--store", str(tmp_path / "s"), "--now", "tomorrow"])
    assert result.exit_code == 1
    assert "invalid time 'tomorrow' for --now" in result.stderr
