"""How long a task stays in each state: per-model catalogue keys and the ``--realistic`` preset.

A model's catalogue entry may set ``submitted_s`` (time a task waits in ``submitted`` before a
worker may claim it), ``processing_s`` (the least time it spends in ``processing``, progress
advancing smoothly) and ``timeout_s`` (the most time it may spend in ``processing``; 0: no
limit). Keys left out take the preset: near zero by default, Kling's real minutes with
``REELGATE_REALISTIC``; the timeout then is ``REELGATE_TASK_TIMEOUT``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TIMING_KEYS = ("submitted_s", "processing_s", "timeout_s")
MAX_TIMING_S = 86400.0

# Kling does not publish its latencies; these are the waits clients observe in practice:
# a queue of tens of seconds, then one to five minutes of generation, longer in pro mode,
# for 10 s clips and on the big models, shorter on the turbo ones.
_REALISTIC_SUBMITTED_S = {"std": 15.0, "pro": 30.0}
_REALISTIC_PROCESSING_S = {"std": 100.0, "pro": 180.0}
_REALISTIC_MIN_S, _REALISTIC_MAX_S = 60.0, 300.0


def realistic_seconds(model_id: str, mode: str, duration: int) -> tuple[float, float]:
    """(time in ``submitted``, time in ``processing``) close to Kling's, in seconds."""
    speed = 1.0
    if "turbo" in model_id:
        speed = 0.6
    elif "master" in model_id:
        speed = 1.5
    submitted = _REALISTIC_SUBMITTED_S.get(mode, _REALISTIC_SUBMITTED_S["std"])
    base = _REALISTIC_PROCESSING_S.get(mode, _REALISTIC_PROCESSING_S["std"])
    processing = base * speed * (1 + 0.6 * (max(duration, 5) / 5 - 1))
    return submitted, min(max(processing, _REALISTIC_MIN_S), _REALISTIC_MAX_S)


@dataclass(frozen=True)
class ModelTiming:
    """A model's catalogue timing keys; None: the preset (or the global timeout)."""

    submitted_s: float | None = None
    processing_s: float | None = None
    timeout_s: float | None = None  # 0: no limit

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> ModelTiming:
        """The timing keys of a catalogue entry; ValueError naming the model and the key."""
        where = f"model {entry.get('id')!r}"
        values: dict[str, float] = {}
        for key in TIMING_KEYS:
            if key not in entry:
                continue
            value = entry[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ValueError(f"{where}: {key!r} must be a number of seconds, got {value!r}")
            if not 0 <= value <= MAX_TIMING_S:
                raise ValueError(
                    f"{where}: {key!r} must be within 0..{MAX_TIMING_S:g} seconds, got {value!r}"
                )
            values[key] = float(value)
        return cls(**values)

    def phases(
        self, model_id: str, mode: str, duration: int, *, realistic: bool
    ) -> tuple[float, float]:
        """(seconds in ``submitted``, least seconds in ``processing``) for one task."""
        preset = realistic_seconds(model_id, mode, duration) if realistic else (0.0, 0.0)
        submitted = self.submitted_s if self.submitted_s is not None else preset[0]
        processing = self.processing_s if self.processing_s is not None else preset[1]
        return submitted, processing

    def timeout(self, default_s: float) -> float:
        """Most seconds in ``processing`` (0: no limit): this model's, else ``default_s``."""
        return self.timeout_s if self.timeout_s is not None else max(default_s, 0.0)
