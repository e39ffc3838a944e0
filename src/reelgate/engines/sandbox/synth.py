"""A soundtrack for ``sound=on``: a soft arpeggio over a chord, picked by the seed.

Deterministic (no randomness past the seed) and cheap: a 15 s stereo track is a few vectorised
sine sums. Notes come from a pentatonic scale, so any pick sounds pleasant enough.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

_PENTATONIC = (0, 2, 4, 7, 9)  # semitones above the root
_NOTE_SECONDS = 0.5


def synth_soundtrack(seed: int, seconds: float, sample_rate: int = 48000) -> NDArray[np.float32]:
    """``(samples, 2)`` float32 in [-1, 1], exactly ``seconds`` long."""
    rng = np.random.default_rng(seed)
    samples = round(seconds * sample_rate)
    t = np.arange(samples, dtype=np.float64) / sample_rate
    root = 220.0 * 2 ** (int(rng.integers(0, 12)) / 12)  # A3 up to G#4
    chord = [root * 2 ** (_PENTATONIC[i] / 12) for i in sorted(rng.choice(5, 3, replace=False))]
    pad = sum(np.sin(2 * np.pi * f * t) for f in chord) / len(chord)
    # The arpeggio: one chord tone (an octave up) per note slot, each with a plucked decay.
    slots = max(1, int(np.ceil(seconds / _NOTE_SECONDS)))
    pattern = rng.integers(0, len(chord), size=slots)
    slot = np.minimum((t / _NOTE_SECONDS).astype(np.int64), slots - 1)
    since = t - slot * _NOTE_SECONDS
    pitch = np.asarray(chord)[pattern][slot] * 2
    pluck = np.sin(2 * np.pi * pitch * since) * np.exp(-since * 6)
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.25).clip(0, 1)  # no clicks at the ends
    left = (0.22 * pad + 0.18 * pluck) * fade
    right = (0.22 * pad * (1 + 0.1 * np.sin(2 * np.pi * 0.5 * t)) + 0.16 * pluck) * fade
    return np.stack([left, right], axis=1).astype(np.float32)
