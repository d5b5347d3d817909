"""What the CLI prints about a failure holds no credential: signed-URL signatures, tokens, auth headers and
passwords quoted by a library's error are replaced, in the one-line error and in a traceback alike."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.cli.redact import redacted
from orchestrator.errors import ArtifactError

SIGNED = ("https://127.0.0.42:8080/v1/AUTH_x/dataops/runs/a/part.0.parquet"
          "?temp_url_sig=0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4&temp_url_expires=1796140187")


@pytest.mark.parametrize("text, secret", [
    (f"ClientResponseError: 404, message='Not Found', url='{SIGNED}'", "0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4"),
    ("headers: {'X-Auth-Token': 'gAAAAABnE7x', 'Accept': '*/*'}", "gAAAAABnE7x"),
    ("Authorization: Bearer s3cr3t-t0ken", "s3cr3t-t0ken"),
    ("auth: {'password': 'hunter2', 'username': 'dataops'}", "hunter2"),
    ("GET https://api.example.org/v1/items?page=2&access_token=abc123", "abc123"),
])
def test_credentials_in_a_message_are_replaced_and_the_rest_kept(text, secret):
    shown = redacted(text)
    assert secret not in shown and "<redacted>" in shown
    assert shown.split("<redacted>")[0] == text.split(secret)[0], "what comes before the secret is kept"


def test_a_message_without_credentials_is_left_as_it_is():
    text = "source 'flights' (data/flights): no file at /data/flights; temp_url_expires=10 keeps"
    assert redacted(text) == text


def fail_with(exc: Exception):
    def command() -> None:
        raise exc

    probe = typer.Typer()
    probe.command("probe")(command)
    app.add_typer(probe, name="probe-failure")
    try:
        return CliRunner().invoke(app, ["probe-failure", "probe"])
    finally:
        app.registered_groups.pop()


def test_an_unexpected_error_prints_its_traceback_without_the_signature_and_exits_1():
    result = fail_with(OSError(f"Cannot connect to {SIGNED}"))
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "Error: unexpected OSError: Cannot connect to https://127.0.0.42" in result.stderr
    assert "temp_url_sig=<redacted>&temp_url_expires=1796140187" in result.stderr
    assert "0f1e2d3c4b5a" not in result.output


def test_a_dataops_error_quoting_a_signed_url_is_printed_without_its_signature():
    result = fail_with(ArtifactError(f"download of {SIGNED} failed"))
    assert result.exit_code == ArtifactError.exit_code
    assert "0f1e2d3c4b5a" not in result.output and "temp_url_sig=<redacted>" in result.stderr
