"""The sockets `serve --api-workers N` and `reelgate sandbox` bind themselves: connections on
them send small writes at once (TCP_NODELAY), as on a socket uvicorn binds. Without it, the
body a response writes after its headers waited for the client's delayed ACK (40 ms)."""

from __future__ import annotations

import asyncio
import socket

from reelgate.cli.serving import bound_socket


async def test_connections_on_a_bound_socket_send_without_delay() -> None:
    sock = bound_socket("127.0.0.1", 0)
    accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            raw = transport.get_extra_info("socket")
            accepted.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        host, port = sock.getsockname()[:2]
        _, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(accepted, 10) != 0
        writer.close()
    finally:
        server.close()
        await server.wait_closed()


def test_a_bound_socket_is_tcp() -> None:
    sock = bound_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
    finally:
        sock.close()
