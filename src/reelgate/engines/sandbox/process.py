"""Sandbox renders in child processes, so a render never holds the GIL of the process that serves
the API (a 1080p clip beside a busy event loop took six times as long, and slowed every GET).

:class:`RenderPool` keeps one child process per render running at once (as many as the worker
has slots), started on the first render that finds none idle and kept for the next. Children
come from a ``forkserver`` that has imported the renderer once, so a new child costs a fork, not
a fresh interpreter; nothing starts before the first render, so ``reelgate serve`` starts as
fast as before.

A render is a message on a pipe (the plan, the output directory, the watermark flag) and its
answer is the :class:`~reelgate.media.ClipInfo` or the exception the render raised. Progress
and cancellation go through two shared integers, which the child reads and writes between
frames: the frame being rendered, and a flag that makes the child raise
:class:`~reelgate.engines.base.TaskCancelledError` at the next frame (the encoder then removes
its partial files). The parent waits for the answer with the event loop's reader on the pipe,
so no thread is held. A child that dies mid-render (killed, out of memory) closes its pipe:
the render fails with :class:`RenderProcessDied` at once and the next render starts a new child.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import os
import threading
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reelgate.engines.base import EngineError, TaskCancelledError

from .plan import ClipPlan

if TYPE_CHECKING:  # imported by the render processes (PRELOAD), not by the engine's process
    from reelgate.media import ClipInfo

PRELOAD = ["reelgate.engines.sandbox.render"]  # what the forkserver imports once for all children
# Renders yield the CPU to the API: where cores are short, a busy render child at the same
# priority took 38-43 % of the GETs of the process serving beside it (bench/api.py, +worker).
RENDER_NICENESS = 10
_STOP_TIMEOUT_S = 5.0


class RenderFunction(Protocol):
    """:func:`~.render.render_clip`'s shape; a test may pass another (a module-level function)."""

    def __call__(
        self,
        plan: ClipPlan,
        out_dir: Path,
        *,
        watermark: bool,
        before_frame: Callable[[int], None] | None = None,
    ) -> ClipInfo: ...


class RenderProcessDied(EngineError):
    """The render's child process ended without answering (killed, out of memory, crashed)."""


def _child_main(conn: Connection, frame: Any, cancel: Any, render: RenderFunction) -> None:
    """A child's loop: render each job received, answer with the clip or the exception."""
    os.nice(RENDER_NICENESS)  # before the encoder's threads start: they inherit it

    def before_frame(index: int) -> None:
        # The pool sends nothing while a render runs, so a readable pipe means its end closed:
        # the worker died (SIGKILL). Stop, and leave no files behind, as for a cancel.
        if cancel.value or conn.poll():
            raise TaskCancelledError()
        frame.value = index

    while True:
        try:
            plan, out_dir, watermark = conn.recv()
        except (EOFError, OSError, KeyboardInterrupt):  # the pool closed the pipe or went away
            return
        answer: tuple[bool, Any]
        shown: object = None
        try:
            answer = (True, render(plan, out_dir, watermark=watermark, before_frame=before_frame))
        except Exception as exc:  # sent back and raised in the parent, with its causes
            answer, shown = (False, _chain(exc)), exc
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as exc:  # an exception that cannot be pickled: send its text
            conn.send((False, [RuntimeError(f"{type(shown).__name__}: {shown}: {exc}")]))


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes: pickling keeps neither ``__cause__`` nor ``__context__``, and
    the worker reads them (a full disk behind an encoder error is retried, not failed)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _rebuilt(chain: list[BaseException]) -> BaseException:
    for error, cause in itertools.pairwise(chain):
        error.__cause__ = cause
    return chain[0]


class _Child:
    """One render process with its pipe and its two shared integers."""

    def __init__(self, context: Any, render: RenderFunction) -> None:
        self.frame = context.RawValue("i", 0)
        self.cancel = context.RawValue("b", 0)
        self.conn, child_end = context.Pipe()
        self.process = context.Process(
            target=_child_main,
            args=(child_end, self.frame, self.cancel, render),
            name="reelgate-render",
            daemon=True,  # never outlives the process that started it
        )
        self.process.start()
        child_end.close()

    def stop(self) -> None:
        """Close the pipe (an idle child exits at once) and reap the process."""
        with contextlib.suppress(OSError):
            self.conn.close()
        self.process.join(_STOP_TIMEOUT_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process.close()


class RenderCall:
    """One render under way: ``future`` resolves to its clip; :meth:`fraction` and
    :meth:`cancel` work from the event loop while it runs."""

    def __init__(self, future: asyncio.Future[ClipInfo], child: _Child, frames: int) -> None:
        self.future = future
        self._child = child
        self._frames = max(frames, 1)

    def fraction(self) -> float:
        return int(self._child.frame.value) / self._frames

    def cancel(self) -> None:
        """The child stops at its next frame and removes its partial files."""
        self._child.cancel.value = 1


class RenderPool:
    """Child processes that run ``render`` (default :func:`~.render.render_clip`)."""

    def __init__(self, render: RenderFunction | None = None, start_method: str = "forkserver"):
        self._render = render
        self._context: Any = multiprocessing.get_context(start_method)
        if start_method == "forkserver":
            self._context.set_forkserver_preload(PRELOAD)
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False
        # Children of a pool nobody closed end when it is collected (and, as daemons, at exit).
        self._finalizer = weakref.finalize(self, _stop_all, self._idle)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def start(self, plan: ClipPlan, out_dir: Path, *, watermark: bool) -> RenderCall:
        """Send ``plan`` to an idle child (a new one when none is idle)."""
        if self._closed:
            raise RuntimeError("the render pool is closed")
        child = self._idle_child()
        if child is None:
            child = _Child(self._context, self._render or _render_clip())
        child.cancel.value, child.frame.value = 0, 0
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ClipInfo] = loop.create_future()
        try:
            child.conn.send((plan, out_dir, watermark))
        except OSError as exc:  # died while idle
            child.stop()
            raise RenderProcessDied(f"sandbox: the render process died: {exc}") from exc
        loop.add_reader(child.conn.fileno(), self._answered, loop, child, future)
        return RenderCall(future, child, plan.frame_count)

    def _idle_child(self) -> _Child | None:
        """An idle child that is still alive (one killed while idle is reaped here)."""
        while True:
            with self._lock:
                child = self._idle.pop() if self._idle else None
            # An idle child has nothing to say: a readable pipe is the end of a dead one.
            if child is None or (child.process.is_alive() and not child.conn.poll()):
                return child
            child.stop()

    def _answered(
        self, loop: asyncio.AbstractEventLoop, child: _Child, future: asyncio.Future[ClipInfo]
    ) -> None:
        loop.remove_reader(child.conn.fileno())
        try:
            ok, value = child.conn.recv()
        except (EOFError, OSError):
            child.process.join(_STOP_TIMEOUT_S)
            code = child.process.exitcode
            child.stop()
            if not future.done():
                future.set_exception(
                    RenderProcessDied(f"sandbox: the render process died (exit code {code})")
                )
            return
        with self._lock:
            keep = not self._closed
            if keep:
                self._idle.append(child)
        if not keep:
            child.stop()
        if future.done():  # the awaiting task was cancelled
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(_rebuilt(value))

    def close(self) -> None:
        """Stop the idle children; a busy one is stopped when its render answers."""
        with self._lock:
            self._closed = True
        self._finalizer()


def _stop_all(children: list[_Child]) -> None:
    while children:
        children.pop().stop()


def _render_clip() -> RenderFunction:
    """The sandbox's renderer, imported at the first render: numpy and PyAV stay out of the
    server's start-up (``reelgate sandbox`` is ready sooner)."""
    from .render import render_clip

    return render_clip
