"""``python -m netns_driver.relay NAMESPACE ADDRESS PORT [PORT ...]``: the cloud's API endpoints inside a host.

Listens inside the network namespace NAMESPACE on ADDRESS:PORT (the namespace has its own loopback, so a 127.x
address is free there) and relays every connection to the same ADDRESS:PORT of the machine. A clouds.yaml or a
TempURL naming the control plane's address then works unchanged on the host, as a cloud's public endpoints do
for its servers, without any route, forwarding or NAT. Only loopback addresses are relayed.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import os
import socket
import sys

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _enter(namespace_fd: int) -> None:
    if _libc.setns(namespace_fd, CLONE_NEWNET) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"setns: {os.strerror(error)}")


def listen_inside(namespace: str, address: str, ports: list[int]) -> list[socket.socket]:
    """Open listening sockets in ``namespace``; the calling thread is back in its own namespace afterwards.

    A socket stays in the namespace it was created in, whatever the thread does next.
    """
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        _enter(target)
        try:
            return [socket.create_server((address, port), backlog=128) for port in ports]
        finally:
            _enter(home)
    finally:
        os.close(target)
        os.close(home)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def serve(sockets: list[socket.socket], address: str) -> None:
    async def relay(reader, writer, port):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(address, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    servers = []
    for sock in sockets:
        port = sock.getsockname()[1]
        servers.append(await asyncio.start_server(lambda r, w, p=port: relay(r, w, p), sock=sock))
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: list[str]) -> int:
    namespace, address, *ports = argv
    if not ipaddress.ip_address(address).is_loopback:
        print(f"refusing to relay {address}: only loopback addresses are relayed", file=sys.stderr)
        return 2
    sockets = listen_inside(namespace, address, [int(p) for p in ports])
    asyncio.run(serve(sockets, address))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
