"""The engine protocol: what the worker hands an engine and what it gets back.

Engines never touch the store. The worker builds a :class:`Job`, calls ``generate`` in a worker
thread's event loop, and persists the :class:`Output`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from reelgate.domain.models import ModelSpec
from reelgate.domain.requests import Text2VideoRequest


async def _nowhere(state: Mapping[str, Any]) -> None:
    """The checkpoint of a job run outside a worker: nothing to keep it in."""


@dataclass(frozen=True)
class Job:
    task_id: str
    model: ModelSpec
    request: Text2VideoRequest
    workdir: Path  # an empty directory the engine writes its files into
    attempt: int = 1
    # the task's stored params: the request plus what the API stored for the engine (the
    # sandbox reads its scenario under domain.scenarios.SCENARIO_PARAM)
    params: Mapping[str, Any] = field(default_factory=dict)
    # what an earlier attempt of this task saved with ``checkpoint`` ({}: a first attempt)
    state: Mapping[str, Any] = field(default_factory=dict)
    # saves ``state`` (JSON) durably for later attempts before returning; raises
    # TaskCancelledError when the worker no longer holds the task
    checkpoint: Callable[[Mapping[str, Any]], Awaitable[None]] = _nowhere
    # reelgate's own URL for a provider's callback about this task (an upstream engine may
    # hand it upstream; it never sees the client's callback_url)
    hook_url: str | None = None


@dataclass(frozen=True)
class VideoFile:
    path: Path  # clean MP4
    duration: float  # seconds
    watermarked_path: Path | None = None
    thumbnail_path: Path | None = None


@dataclass(frozen=True)
class Output:
    videos: list[VideoFile]
    extra: Mapping[str, Any] = field(default_factory=dict)  # e.g. {"seed": 42}
    units: str | None = None  # what the task cost, when the engine knows (an upstream's figure)


class Progress(Protocol):
    def __call__(self, percent: float) -> None: ...


class Cancelled(Protocol):
    def __call__(self) -> bool: ...


class EngineError(Exception):
    """A failure to report to the client as ``task_status_msg`` (the task fails, free)."""


class TaskCancelledError(EngineError):
    """Raised by an engine that saw ``cancelled()`` turn true; partial output is discarded."""

    def __init__(self, message: str = "task was cancelled") -> None:
        super().__init__(message)


class RetryLater(EngineError):
    """The engine's provider is busy (throttled, at its concurrency limit): the task goes back
    to ``submitted`` and is claimed again after ``delay_s``, the attempt not counted."""

    def __init__(self, message: str, delay_s: float) -> None:
        super().__init__(message)
        self.delay_s = delay_s


@dataclass(frozen=True)
class SlotPool:
    """Models whose tasks run in their own pool of ``slots`` (an engine declares these through
    an optional ``slot_pools()`` method): I/O-bound tasks, such as an upstream account's, do not
    take the compute slots of ``REELGATE_WORKERS``."""

    models: tuple[str, ...]
    slots: int


@runtime_checkable
class Engine(Protocol):
    name: str

    def models(self) -> list[ModelSpec]: ...

    async def generate(self, job: Job, progress: Progress, cancelled: Cancelled) -> Output: ...

    async def aclose(self) -> None: ...


class EngineFactory(Protocol):
    """What the ``reelgate.engines`` entry point names: usually the engine class itself.

    ``entries`` are the catalogue entries for this engine (empty: the engine's defaults).
    """

    def __call__(self, entries: Sequence[Mapping[str, Any]], data_dir: Path) -> Engine: ...
