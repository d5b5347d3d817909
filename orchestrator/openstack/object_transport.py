"""The object client's transport with credentials: requests through an openstacksdk connection's object-store
session (keystoneauth), which adds the token and the endpoint and renews the token when it expires."""

from __future__ import annotations

from collections.abc import Iterator

import keystoneauth1.exceptions

from orchestrator.errors import CloudError
from orchestrator.openstack.connection import SDK_ERRORS


class _SessionReply:
    def __init__(self, response, stream: bool):
        self._response = response
        self._stream = stream
        self.status = response.status_code
        self.headers = response.headers  # requests' CaseInsensitiveDict

    def read(self) -> bytes:
        # One read of a streamed body: requests' .content would assemble a large one from 10 KiB pieces.
        return self._response.raw.read() if self._stream else self._response.content

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        return self._response.iter_content(size)

    def close(self) -> None:
        self._response.close()


class SessionTransport:
    """Requests relative to the cloud's object-store endpoint, authenticated by the connection's session
    (an ``orchestrator.artifacts.object_client.Transport``).

    Args:
        conn: an openstacksdk connection.
    """

    # No answer came: the object client tries again. Any other failure of the SDK is a CloudError.
    dropped = (keystoneauth1.exceptions.ConnectFailure, keystoneauth1.exceptions.ConnectionError)

    def __init__(self, conn):
        self.conn = conn

    @property
    def endpoint(self) -> str:
        return self.conn.object_store.get_endpoint()

    def send(self, method: str, url: str, *, headers: dict, params: dict | None, data, stream: bool) -> _SessionReply:
        try:
            response = self.conn.object_store.request(url, method, raise_exc=False, headers=headers, params=params,
                                                      data=data, stream=stream)
        except self.dropped:
            raise  # no answer came: the object client tries again
        except SDK_ERRORS as exc:
            raise CloudError(f"Swift {method} {url}: {exc}") from exc
        return _SessionReply(response, stream)
