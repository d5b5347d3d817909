"""The schedule file: validated like pipeline files, every mistake named by file, line and field."""

from __future__ import annotations

import textwrap

import pytest

from orchestrator.errors import SpecError
from orchestrator.scheduling.spec import load_schedule_spec


def write(tmp_path, text: str):
    path = tmp_path / "schedules" / "nightly.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_a_complete_file_loads_with_its_pipeline_relative_to_the_file(tmp_path):
    path = write(tmp_path, """
        name: nightly-shop
        pipeline: ../pipelines/shop.yaml
        cron: "30  2 * * *"
        timezone: Europe/Berlin
        catchup: all
        max_catchup: 3
        starting_deadline: 6h
        run_deadline: 1h30m
        retries: {max: 2, backoff: [5m, 20m]}
        concurrency: allow
        on_failure: {webhook: "https://hooks.example.org/T0/secret"}
        pause_after_failures: 3
        store: swift://runs/shop
    """)
    spec = load_schedule_spec(path)
    assert spec.pipeline == str((tmp_path / "pipelines" / "shop.yaml").resolve())
    assert spec.cron == "30 2 * * *" and spec.timezone == "Europe/Berlin"
    assert spec.starting_deadline_s == 6 * 3600 and spec.run_deadline_s == 5400
    assert [spec.retries.delay_s(n) for n in (1, 2, 3)] == [300, 1200, 1200]
    assert spec.summary()["on_failure"] == "webhook https://hooks.example.org/..."


def test_defaults_are_conservative(tmp_path):
    spec = load_schedule_spec(write(tmp_path, """
        name: sweep
        job: cluster-sweep
        cron: "0 * * * *"
    """))
    assert (spec.timezone, spec.catchup.value, spec.concurrency.value, spec.retries.max) == ("UTC", "latest",
                                                                                           "forbid", 0)
    assert spec.starting_deadline_s is None and spec.run_deadline == "4h"
    assert [spec.retries.delay_s(n) for n in (1, 2, 3)] == [300, 600, 1200], "one duration doubles at each retry"


def test_every_mistake_is_named_by_line_and_field_with_did_you_mean(tmp_path):
    path = write(tmp_path, """
        name: nightly
        pipeline: p.yaml
        cron: "61 2 * * *"
        timezone: Europe/Berln
        catchup: lastest
        retrys: 2
        run_deadline: soon
        on_failure: {webhook: "ftp://user:pa55@host/token"}
    """)
    with pytest.raises(SpecError) as caught:
        load_schedule_spec(path)
    message = str(caught.value)
    assert f"{path}:3: cron: invalid cron expression '61 2 * * *': Bad minute" in message
    assert f"{path}:4: timezone: unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)" in message
    assert f"{path}:5: field 'catchup': got 'lastest', expected 'skip', 'latest' or 'all' (did you mean " \
           "'latest'?)" in message
    assert f"{path}:6: unknown field 'retrys' (did you mean 'retries'?)" in message
    assert f"{path}:7: run_deadline: invalid duration 'soon'" in message
    assert f"{path}:8: on_failure.webhook: expected an http:// or https:// URL with a host" in message
    assert "pa55" not in message and "token" not in message, "a webhook URL may carry a secret: never repeat it"


def test_exactly_one_thing_to_run(tmp_path):
    with pytest.raises(SpecError, match="expected exactly one of 'pipeline'"):
        load_schedule_spec(write(tmp_path, """
            name: both
            pipeline: p.yaml
            job: cluster-sweep
            cron: "0 * * * *"
        """))


def test_an_unknown_job_suggests_a_registered_one(tmp_path):
    with pytest.raises(SpecError, match=r":2: job: unknown job 'cluster-swep' \(did you mean 'cluster-sweep'\?\)"):
        load_schedule_spec(write(tmp_path, """
            name: sweep
            job: cluster-swep
            cron: "0 * * * *"
        """))


def test_a_failure_hook_is_a_webhook_or_a_command(tmp_path):
    with pytest.raises(SpecError, match="on_failure: expected exactly one of 'webhook'"):
        load_schedule_spec(write(tmp_path, """
            name: sweep
            job: cluster-sweep
            cron: "0 * * * *"
            on_failure: {}
        """))
