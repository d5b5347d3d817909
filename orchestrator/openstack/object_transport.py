"""The object client's transport with credentials: requests through an openstacksdk connection's object-store
session (keystoneauth), which adds the token and the endpoint and renews the token when it expires.

Every request has a deadline (to connect, and between two pieces of the answer), and a request that got no answer,
or an answer cut off on the way, surfaces as one of the builtin ``TimeoutError`` / ``ConnectionError`` whatever layer
(keystoneauth, requests, urllib3) noticed it: the object client retries those, under its one retry policy.
"""

from __future__ import annotations

import contextlib
import http.client
import re
from collections.abc import Iterator

import keystoneauth1.exceptions
import requests.exceptions
import urllib3.exceptions

from orchestrator.errors import CloudError
from orchestrator.openstack.connection import SDK_ERRORS

CONNECT_TIMEOUT_S = 10.0
# Between two pieces of an answer, not for the whole answer: a large download takes as long as it needs.
READ_TIMEOUT_S = 60.0

_STALLED = (requests.exceptions.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)
_CUT_OFF = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, http.client.HTTPException, OSError)


@contextlib.contextmanager
def _body_errors(read_timeout_s: float) -> Iterator[None]:
    """Turn a body that stalls or breaks off, whichever library noticed, into TimeoutError / ConnectionError."""
    try:
        yield
    except _STALLED as exc:
        raise TimeoutError(f"the answer stalled for more than {read_timeout_s:g}s") from exc
    except _CUT_OFF as exc:
        raise ConnectionError(f"the answer broke off, {_reason(exc)}") from exc


class _SessionReply:
    def __init__(self, response, stream: bool, read_timeout_s: float):
        self._response = response
        self._stream = stream
        self._read_timeout_s = read_timeout_s
        self.status = response.status_code
        self.headers = response.headers  # requests' CaseInsensitiveDict

    def read(self) -> bytes:
        # One read of a streamed body: requests' .content would assemble a large one from 10 KiB pieces.
        with _body_errors(self._read_timeout_s):
            return self._response.raw.read() if self._stream else self._response.content

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        with _body_errors(self._read_timeout_s):
            yield from self._response.iter_content(size)

    def close(self) -> None:
        self._response.close()


class SessionTransport:
    """Requests relative to the cloud's object-store endpoint, authenticated by the connection's session
    (an ``orchestrator.artifacts.object_client.Transport``).

    Args:
        conn: an openstacksdk connection.
        connect_timeout_s: seconds to wait for a connection to the object store.
        read_timeout_s: seconds to wait for each piece of an answer (its status line, then every part of its body).
    """

    # No answer came, or it broke off: the object client tries again. Any other failure of the SDK is a CloudError.
    dropped = (TimeoutError, ConnectionError)

    def __init__(self, conn, *, connect_timeout_s: float = CONNECT_TIMEOUT_S, read_timeout_s: float = READ_TIMEOUT_S):
        self.conn = conn
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s

    @property
    def endpoint(self) -> str:
        return self.conn.object_store.get_endpoint()

    def send(self, method: str, url: str, *, headers: dict, params: dict | None, data, stream: bool) -> _SessionReply:
        try:
            # connect_retries=0: the object client's policy is the only one, so attempts and pauses add up as it says.
            response = self.conn.object_store.request(url, method, raise_exc=False, headers=headers, params=params,
                                                      data=data, stream=stream, connect_retries=0,
                                                      timeout=(self.connect_timeout_s, self.read_timeout_s))
        except keystoneauth1.exceptions.ConnectTimeout as exc:
            raise TimeoutError(f"no answer within {self.read_timeout_s:g}s") from exc
        except keystoneauth1.exceptions.ConnectionError as exc:
            raise ConnectionError(f"no answer, {_reason(exc)}") from exc
        except SDK_ERRORS as exc:
            raise CloudError(f"Swift {method} {url}: {exc}") from exc
        return _SessionReply(response, stream, self.read_timeout_s)


def _reason(exc: BaseException) -> str:
    """The low-level cause of a connection failure, without the URL keystoneauth puts in front of it."""
    return re.sub(r"^.*?https?://\S+?: ", "", str(exc)) or type(exc).__name__
