"""A recording callback receiver for tests and local development; not a production server.

It speaks just enough HTTP/1.1 (requests with ``Content-Length``, one per connection) to stand
in for a client's webhook endpoint on a free loopback port. Every request is recorded. Each
path answers 200 unless scripted: an HTTP status such as ``"500"``, ``"hang"`` (never answer)
or ``"close"`` (drop the connection without an answer)::

    async with Receiver() as rx:
        rx.script("/hook", "500", "500")      # the next two requests fail, then 200 again
        rx.always("/slow", "hang")
        ...  # create tasks with callback_url=rx.url("/hook")
        async with asyncio.timeout(5):
            await rx.wait_for_count(3, "/hook")
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    answer: str  # what the receiver did: a status code, "hang" or "close"
    at: float  # time.monotonic() on arrival
    wall: float = 0.0  # time.time() on arrival, to compare with a body's ``updated_at`` (ms)

    @property
    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.body)
        return body


class Receiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.requests: list[Received] = []
        self._scripts: dict[str, list[str]] = {}
        self._always: dict[str, str] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._arrived = asyncio.Condition()
        self._server: asyncio.Server | None = None
        self._closing = asyncio.Event()

    def script(self, path: str, *answers: str) -> None:
        """The next requests to ``path`` get these answers, in order."""
        self._scripts.setdefault(path, []).extend(answers)

    def always(self, path: str, answer: str) -> None:
        """The answer to ``path`` once its script is used up (default "200")."""
        self._always[path] = answer

    def url(self, path: str = "/hook", host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}{path}"

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def wait_for_count(self, count: int, path: str | None = None) -> list[Received]:
        """Wait until ``count`` requests (to ``path``, or any) have arrived; bound it yourself."""

        def seen() -> list[Received]:
            return self.requests if path is None else self.to(path)

        async with self._arrived:
            await self._arrived.wait_for(lambda: len(seen()) >= count)
        return seen()

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        # Hanging handlers would otherwise outlive the test (and its event loop); they end
        # on their own (a cancelled handler is reported by asyncio as an error).
        self._closing.set()
        handlers = list(self._handlers)
        if handlers:
            _, stuck = await asyncio.wait(handlers, timeout=1.0)
            for handler in stuck:  # mid-read on a silent connection
                handler.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        me = asyncio.current_task()
        assert me is not None
        self._handlers.add(me)
        try:
            request_line = (await reader.readline()).decode("latin-1").split(" ")
            if len(request_line) != 3:
                return  # not HTTP (or the client went away): drop it
            path = request_line[1]
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            script = self._scripts.get(path)
            answer = script.pop(0) if script else self._always.get(path, "200")
            async with self._arrived:
                self.requests.append(
                    Received(path, headers, body, answer, time.monotonic(), time.time())
                )
                self._arrived.notify_all()
            if answer == "hang":
                await self._closing.wait()  # until the client gives up or the receiver closes
            elif answer != "close":
                writer.write(
                    f"HTTP/1.1 {answer} {HTTPStatus(int(answer)).phrase}\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n".encode("latin-1")
                )
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client hung up first (its timeout): nothing to answer
        finally:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()
            self._handlers.discard(me)
