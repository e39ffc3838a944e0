"""The engine's side of one generation process: start, talk to, and restart it.

One :class:`DeviceProcess` per device runs one request at a time. The pipe is polled on the
event loop without blocking (``Connection.poll(0)``), so nothing here needs a thread and a
cancelled ``await`` never swallows a message. If the process dies mid-request the call raises
:class:`ProcessCrashedError`; the next call starts a fresh process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from reelgate.engines.base import TaskCancelledError

from .child import child_main
from .protocol import Event, Failed, Finished, Reply, Request, Shutdown

log = logging.getLogger("reelgate.engines.diffusers")

POLL_S = 0.05


class ProcessCrashedError(Exception):
    """The generation process died while serving a request."""


def describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (killed: out of host memory?)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {exitcode}"


ChildTarget = Callable[[Connection, EventType, str, str], None]


class DeviceProcess:
    """The process for one device. ``target`` is what it runs (:func:`.child.child_main`; tests
    pass a wrapper that misbehaves), ``start_method`` how it starts (``spawn``: CUDA cannot
    survive a fork)."""

    def __init__(
        self,
        device: str,
        cache_dir: Path,
        target: ChildTarget = child_main,
        start_method: str = "spawn",
    ) -> None:
        self.device = device
        self.cache_dir = cache_dir
        self._target = target
        self._ctx: Any = multiprocessing.get_context(start_method)
        self._cancel = self._ctx.Event()
        self._process: Any = None
        self._conn: Connection | None = None
        self._lock: asyncio.Lock | None = None
        self._ids = itertools.count(1)
        self._draining: set[asyncio.Task[None]] = set()
        self.starts = 0  # how many processes were started (1 + restarts)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _start(self) -> Connection:
        pipe: tuple[Connection, Connection] = self._ctx.Pipe(duplex=True)
        parent, child = pipe
        process = self._ctx.Process(
            target=self._target,
            args=(child, self._cancel, self.device, str(self.cache_dir)),
            name=f"reelgate-diffusers-{self.device}",
            daemon=True,
        )
        process.start()
        child.close()  # keep only the process's copy, so its death reads as EOF here
        self._process, self._conn = process, parent
        self.starts += 1
        log.info("generation process for %s started (pid %s)", self.device, process.pid)
        return parent

    async def call(
        self,
        make_request: Callable[[int], Request],
        on_event: Callable[[Event], None],
        cancelled: Callable[[], bool],
    ) -> Reply:
        """Send one request and wait for its reply, relaying events and cancellation."""
        lock = self._lock = self._lock or asyncio.Lock()
        await _acquire(lock, cancelled)
        handed_off = False
        try:
            conn = self._conn if self.alive and self._conn is not None else self._start()
            self._cancel.clear()
            request = make_request(next(self._ids))
            try:
                conn.send(request)
            except OSError:
                raise self._crashed() from None
            try:
                return await self._wait(conn, request.request_id, on_event, cancelled)
            except asyncio.CancelledError:
                # The caller gave up: stop the request and keep the process to ourselves until
                # it has answered, or the next request would read this one's reply.
                self._cancel.set()
                handed_off = True
                drain = self._wait(conn, request.request_id, lambda e: None, lambda: True)
                task = asyncio.get_running_loop().create_task(_release_after(drain, lock))
                self._draining.add(task)
                task.add_done_callback(self._draining.discard)
                raise
        finally:
            if not handed_off:
                lock.release()

    async def _wait(
        self,
        conn: Connection,
        request_id: int,
        on_event: Callable[[Event], None],
        cancelled: Callable[[], bool],
    ) -> Reply:
        while True:
            if conn.poll():
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    raise self._crashed() from None
                if getattr(message, "request_id", None) != request_id:
                    continue  # left over from an abandoned request
                if isinstance(message, Finished | Failed):
                    return message
                on_event(message)
                continue
            if not self._process.is_alive() and not conn.poll():
                raise self._crashed()
            if not self._cancel.is_set() and cancelled():
                self._cancel.set()
            await asyncio.sleep(POLL_S)

    def _crashed(self) -> ProcessCrashedError:
        process = self._process
        process.join(timeout=5)
        message = describe_exit(process.exitcode)
        log.error("generation process for %s died: %s", self.device, message)
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
        return ProcessCrashedError(message)

    async def aclose(self, grace_s: float = 10.0) -> None:
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        if process is None:
            return
        self._cancel.set()
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                conn.send(Shutdown())
        await asyncio.to_thread(process.join, grace_s)
        if process.is_alive():
            process.terminate()
            await asyncio.to_thread(process.join, 5)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, 5)
        if conn is not None:
            conn.close()


async def _acquire(lock: asyncio.Lock, cancelled: Callable[[], bool]) -> None:
    """Wait for the process, giving up as soon as the task is cancelled."""
    if not lock.locked():
        await lock.acquire()
        return
    waiter = asyncio.ensure_future(lock.acquire())
    try:
        while True:
            done, _ = await asyncio.wait({waiter}, timeout=POLL_S * 4)
            if done:
                return
            if cancelled():
                raise TaskCancelledError()
    except BaseException:
        if waiter.done() and not waiter.cancelled():
            lock.release()  # acquired in the very moment we gave up
        else:
            waiter.cancel()  # asyncio.Lock hands the lock on to the next waiter
        raise


async def _release_after(drain: Any, lock: asyncio.Lock) -> None:
    try:
        await drain
    except Exception as exc:
        log.warning("abandoned request ended with %s", exc)
    finally:
        lock.release()
