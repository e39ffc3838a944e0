"""Phase timing of one pipeline call: text encoding, denoising, decoding (and, after it, encode).

The pipeline is a black box with two seams: ``encode_prompt`` (every supported pipeline calls
``self.encode_prompt``) and ``callback_on_step_end``. Wrapping the first and timing the second
splits a call into phases without re-implementing any pipeline. On a GPU each mark synchronises
the device first, or the clock would count kernel launches instead of work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


class PhaseTimer:
    """``peak_memory``, when given, returns the device's peak allocation since its last call
    (and resets it): each phase then also gets its peak memory in :attr:`peaks`."""

    def __init__(
        self,
        synchronize: Callable[[], None] = lambda: None,
        peak_memory: Callable[[], int] | None = None,
    ) -> None:
        self._sync = synchronize
        self._peak = peak_memory
        self.peaks: dict[str, int] = {}
        self.started = time.perf_counter()
        self.text_encoded: float | None = None
        self.last_step: float | None = None
        self.decoded: float | None = None
        self.encoded: float | None = None

    def _now(self, phase: str | None = None) -> float:
        self._sync()
        if phase is not None and self._peak is not None:
            self.peaks[phase] = max(self.peaks.get(phase, 0), self._peak())
        return time.perf_counter()

    @contextmanager
    def around_call(self, pipe: Any) -> Iterator[None]:
        """Time ``pipe(...)`` run inside this block; restores ``encode_prompt`` afterwards."""
        original = pipe.encode_prompt

        def timed_encode_prompt(*args: Any, **kwargs: Any) -> Any:
            result = original(*args, **kwargs)
            if self.text_encoded is None:  # a two-stage render encodes again: that is denoising
                self.text_encoded = self._now("text_encode")
            return result

        self.started = self._now("before")
        pipe.encode_prompt = timed_encode_prompt
        try:
            yield
        finally:
            del pipe.encode_prompt  # the instance attribute shadowed the class's method
        self.decoded = self._now("decode")

    def step_done(self) -> None:
        self.last_step = self._now("denoise")

    def encode_done(self) -> None:
        self.encoded = time.perf_counter()

    def phases(self) -> dict[str, float]:
        """Seconds per phase: text_encode, denoise, decode, encode (those that happened)."""
        out: dict[str, float] = {}
        text = self.text_encoded or self.started
        out["text_encode"] = text - self.started
        if self.last_step is not None:
            out["denoise"] = self.last_step - text
            if self.decoded is not None:
                out["decode"] = self.decoded - self.last_step
        if self.encoded is not None and self.decoded is not None:
            out["encode"] = self.encoded - self.decoded
        return {k: round(v, 4) for k, v in out.items()}
