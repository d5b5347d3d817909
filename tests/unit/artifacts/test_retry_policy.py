"""The object client's one retry policy: how long it pauses, what it retries, and what its errors say.

The clock is faked (the client module's ``time``), so the pauses are read instead of waited; the transport is a
script of answers and failures.
"""

from __future__ import annotations

import types

import keystoneauth1.exceptions
import pytest
import requests.exceptions

from orchestrator.artifacts import object_client
from orchestrator.artifacts.object_client import (
    MAX_PAUSE_S,
    ObjectClient,
    describe_failure,
)
from orchestrator.errors import CloudError
from orchestrator.openstack.object_transport import SessionTransport


class Answer:
    def __init__(self, status: int, headers: dict | None = None, body: bytes = b""):
        self.status, self.headers, self.body = status, headers or {}, body

    def read(self) -> bytes:
        return self.body

    def close(self) -> None:
        pass


class ScriptedTransport:
    """Answers (or raises) from a script, one entry per request."""

    dropped = (TimeoutError, ConnectionError)

    def __init__(self, *script):
        self.script = list(script)
        self.sent = 0

    def send(self, method, url, *, headers, params, data, stream):
        self.sent += 1
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr(object_client, "time", types.SimpleNamespace(sleep=pauses.append))
    return pauses


def test_pauses_double_with_jitter_between_half_and_all_of_the_backoff():
    client = ObjectClient(ScriptedTransport(), backoff_s=1.0)
    for attempt, full in ((1, 1.0), (2, 2.0), (3, 4.0)):
        pauses = {client.pause_s(attempt) for _ in range(200)}
        assert all(full / 2 <= p <= full for p in pauses)
        assert len(pauses) > 100, "clients failing together must not come back together"


def test_a_retry_after_is_waited_for_but_never_longer_than_the_cap(slept):
    client = ObjectClient(ScriptedTransport(Answer(503, {"Retry-After": "7"}), Answer(503, {"Retry-After": "3600"}),
                                            Answer(503, {"Retry-After": "soon"}), Answer(200)), backoff_s=0.01)
    assert client.request("GET", "c/o", ok=(200,)).status == 200
    assert slept[0] == 7 and slept[1] == MAX_PAUSE_S and slept[2] < 1
    assert client.retried == 3


def test_timeouts_and_dropped_connections_are_retried_then_named_in_the_error(slept):
    transport = ScriptedTransport(TimeoutError("no answer within 1s"), ConnectionError("the answer broke off"),
                                  *[TimeoutError("no answer within 1s")] * 3)
    with pytest.raises(CloudError, match=r"^Swift GET c/models/m1 failed 5 times, last: timed out: no answer"):
        ObjectClient(transport).request("GET", "c/models/m1?multipart-manifest=get", ok=(200,))
    assert transport.sent == 5 and len(slept) == 4


def test_failures_are_described_by_their_kind():
    assert describe_failure(TimeoutError("no answer within 2s")) == "timed out: no answer within 2s"
    assert describe_failure(ConnectionResetError(104, "reset")).startswith("connection dropped")


class FakeResponse:
    status_code = 200
    headers: dict = {}

    def __init__(self, failure: BaseException):
        self.failure = failure

    def iter_content(self, size):
        yield b"first bytes"
        raise self.failure

    def close(self):
        pass


class FakeConnection:
    def __init__(self, outcome):
        self.outcome = outcome
        self.calls: list[dict] = []
        self.object_store = self

    def request(self, url, method, **kwargs):
        self.calls.append(kwargs)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def test_the_session_transport_gives_every_request_a_deadline_and_no_retries_of_its_own():
    conn = FakeConnection(FakeResponse(RuntimeError()))
    SessionTransport(conn, connect_timeout_s=3, read_timeout_s=7).send("GET", "c/o", headers={}, params=None,
                                                                       data=None, stream=True)
    assert conn.calls[0]["timeout"] == (3, 7) and conn.calls[0]["connect_retries"] == 0


@pytest.mark.parametrize("raised, kind", [
    (keystoneauth1.exceptions.ConnectTimeout("Request to http://127.0.0.1:1/v1/AUTH_x/c/o timed out"), TimeoutError),
    (keystoneauth1.exceptions.ConnectFailure("Unable to establish connection to http://127.0.0.1:1/v1/AUTH_x/c/o: "
                                             "reset by peer"), ConnectionError),
    (keystoneauth1.exceptions.UnknownConnectionError("Unexpected exception for http://x/c/o: body cut", None),
     ConnectionError),
])
def test_a_request_without_an_answer_surfaces_as_a_builtin_timeout_or_connection_error(raised, kind):
    with pytest.raises(kind) as failure:
        SessionTransport(FakeConnection(raised)).send("GET", "c/o", headers={}, params=None, data=None, stream=False)
    assert "http://" not in str(failure.value)


@pytest.mark.parametrize("raised, kind", [
    (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead(11 bytes read)"), ConnectionError),
    (requests.exceptions.ConnectionError("Read timed out."), ConnectionError),
    (requests.exceptions.ReadTimeout("Read timed out."), TimeoutError),
])
def test_a_body_that_breaks_off_or_stalls_surfaces_as_a_builtin_error_the_client_retries(raised, kind):
    reply = SessionTransport(FakeConnection(FakeResponse(raised))).send("GET", "c/o", headers={}, params=None,
                                                                        data=None, stream=True)
    with pytest.raises(kind):
        list(reply.iter_chunks(1024))
