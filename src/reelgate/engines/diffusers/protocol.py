"""Messages between the engine and its generation process (one per device), over a Pipe.

Engine -> process: :class:`LoadModel`, :class:`Generate`, :class:`Shutdown`. The process answers
each request with events (:class:`ModelLoading`, :class:`ModelLoaded`, :class:`ModelEvicted`,
:class:`StepProgress`) and exactly one terminal message, :class:`Finished` or :class:`Failed`,
all carrying the request's id so that a reply to an abandoned request is never taken for the
current one. Cancellation travels out of band, as a shared event the process checks between steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .entry import ModelEntry
from .mapping import GenerationPlan

FailureKind = Literal["load", "oom", "cancelled", "error"]


@dataclass(frozen=True)
class LoadModel:
    """Load the model, then run one denoising step per plan in ``warm_plans`` (with
    ``compile``: each shape compiles now, not on the first task that has it)."""

    request_id: int
    entry: ModelEntry
    warm_plans: tuple[GenerationPlan, ...] = ()


@dataclass(frozen=True)
class Generate:
    request_id: int
    entry: ModelEntry
    plan: GenerationPlan


@dataclass(frozen=True)
class Shutdown:
    request_id: int = 0


Request = LoadModel | Generate | Shutdown


@dataclass(frozen=True)
class ModelLoading:
    request_id: int
    model_id: str


@dataclass(frozen=True)
class ModelLoaded:
    request_id: int
    model_id: str
    seconds: float


@dataclass(frozen=True)
class ModelEvicted:
    """A resident model was dropped (its weights reload from disk) to make room for another."""

    request_id: int
    model_id: str
    reason: str


@dataclass(frozen=True)
class StepProgress:
    request_id: int
    percent: float


@dataclass(frozen=True)
class GenerationResult:
    video_path: str
    watermarked_path: str | None
    thumbnail_path: str | None
    duration: float  # seconds
    frames: int
    width: int
    height: int
    seed: int
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds
    peak_memory_bytes: int | None = None  # GPU; None on CPU
    phase_peaks: dict[str, int] = field(default_factory=dict)  # phase -> peak GPU bytes


@dataclass(frozen=True)
class Finished:
    request_id: int
    result: GenerationResult | None = None  # None for LoadModel


@dataclass(frozen=True)
class Failed:
    request_id: int
    kind: FailureKind
    message: str
    model_id: str = ""


Event = ModelLoading | ModelLoaded | ModelEvicted | StepProgress
Reply = Finished | Failed
