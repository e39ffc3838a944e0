"""The engine protocol: what the worker hands an engine and what it gets back.

Engines never touch the store. The worker builds a :class:`Job`, calls ``generate`` in a worker
thread's event loop, and persists the :class:`Output`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from reelgate.domain.models import ModelSpec
from reelgate.domain.requests import Text2VideoRequest


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
