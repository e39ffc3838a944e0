"""The look of a scene — palette, terrain, sun, clouds, trees — drawn from a seed and a prompt.

Every random choice comes from ``numpy.random.default_rng(seed)`` in a fixed order, so the same
seed always gives the same scene. A few words in the prompt pick the palette ("sunset",
"night", "snow", "desert", ...), so prompts look different in a way a person can predict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

Color = tuple[int, int, int]

# name: sky top, sky at the horizon, sun, far mountains, snow caps, hills, hills (alternate
# fields), near ground, near ground (alternate), trees
_PALETTES: dict[str, tuple[Color, ...]] = {
    "day": (
        (58, 120, 212),
        (170, 210, 240),
        (255, 244, 200),
        (96, 110, 140),
        (240, 244, 250),
        (92, 160, 72),
        (120, 180, 84),
        (70, 128, 52),
        (86, 146, 62),
        (30, 84, 40),
    ),
    "sunset": (
        (60, 52, 130),
        (250, 150, 90),
        (255, 210, 120),
        (92, 66, 110),
        (250, 200, 190),
        (120, 96, 70),
        (150, 116, 80),
        (80, 62, 56),
        (100, 76, 62),
        (46, 34, 40),
    ),
    "night": (
        (8, 12, 40),
        (40, 56, 110),
        (236, 236, 250),
        (30, 36, 66),
        (170, 180, 210),
        (24, 52, 48),
        (30, 64, 56),
        (16, 36, 34),
        (22, 46, 42),
        (8, 22, 22),
    ),
    "snow": (
        (120, 160, 210),
        (214, 226, 240),
        (255, 250, 235),
        (130, 140, 160),
        (250, 252, 255),
        (226, 232, 240),
        (204, 214, 226),
        (240, 244, 250),
        (216, 224, 236),
        (40, 70, 60),
    ),
    "desert": (
        (70, 140, 220),
        (240, 214, 170),
        (255, 240, 190),
        (170, 100, 70),
        (230, 190, 150),
        (214, 170, 110),
        (226, 186, 124),
        (196, 150, 92),
        (210, 166, 104),
        (90, 120, 60),
    ),
    "autumn": (
        (90, 140, 200),
        (220, 220, 210),
        (255, 236, 190),
        (110, 100, 120),
        (236, 236, 240),
        (200, 120, 50),
        (220, 150, 60),
        (150, 80, 40),
        (176, 100, 46),
        (150, 50, 30),
    ),
}
_KEYWORDS = {
    "sunset": ("sunset", "sunrise", "dusk", "dawn", "evening", "golden"),
    "night": ("night", "moon", "star", "stars", "midnight", "dark"),
    "snow": ("snow", "snowy", "winter", "ice", "frozen", "arctic"),
    "desert": ("desert", "sand", "dune", "dunes", "canyon", "sahara"),
    "autumn": ("autumn", "fall", "maple", "harvest", "october"),
}
WORLD_HALF_WIDTH = 4.0  # clouds, trees and flowers are scattered over +-4 short sides


@dataclass(frozen=True)
class Ridge:
    """A skyline ``y = base + sum(amp * sin(x / wavelength + phase))``, in short-side units."""

    base: float
    amplitudes: tuple[float, ...]
    wavelengths: tuple[float, ...]
    phases: tuple[float, ...]


@dataclass(frozen=True)
class Theme:
    palette: str
    colors: dict[str, Color]
    sun: tuple[float, float, float]  # x, y, radius in short-side units
    mountains: Ridge
    snow_line: float  # how far below a peak the snow reaches, short-side units
    hills: Ridge
    ground: Ridge
    clouds: tuple[tuple[float, float, float], ...]  # x, y, radius of each puff
    trees: tuple[tuple[float, float, float], ...]  # x, depth below the hill line, radius
    flowers: tuple[tuple[float, float, int], ...]  # x, depth below the ground line, color index
    stars: tuple[tuple[float, float], ...]
    balloons: tuple[tuple[float, float, float, float, float, int], ...]  # x, y, vx, vy, r, color


def make_theme(seed: int, prompt: str) -> Theme:
    rng = np.random.default_rng(seed)
    palette = _palette_for(prompt) or str(rng.choice(["day", "day", "sunset", "autumn"]))
    names = (
        "sky_top",
        "sky_horizon",
        "sun",
        "mountain",
        "snow",
        "hill",
        "hill_alt",
        "ground",
        "ground_alt",
        "tree",
    )
    shift = rng.integers(-14, 15, size=3)  # the same palette still differs per prompt
    colors = {
        name: _clamp_color(base, shift)
        for name, base in zip(names, _PALETTES[palette], strict=True)
    }
    sun = (float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.42, -0.18)), 0.055)
    mountains = _ridge(rng, base=-0.02, amp=0.16, octaves=4)
    hills = _ridge(rng, base=0.16, amp=0.06, octaves=3)
    ground = _ridge(rng, base=0.36, amp=0.035, octaves=3)
    clouds: list[tuple[float, float, float]] = []
    for _ in range(int(rng.integers(24, 40))):
        cx, cy = rng.uniform(-WORLD_HALF_WIDTH, WORLD_HALF_WIDTH), rng.uniform(-0.7, -0.16)
        for _ in range(int(rng.integers(3, 7))):
            clouds.append(
                (
                    float(cx + rng.uniform(-0.09, 0.09)),
                    float(cy + rng.uniform(-0.02, 0.02)),
                    float(rng.uniform(0.025, 0.05)),
                )
            )
    trees = tuple(
        (
            float(rng.uniform(-WORLD_HALF_WIDTH, WORLD_HALF_WIDTH)),
            float(rng.uniform(0.01, 0.2)),
            float(rng.uniform(0.008, 0.016)),
        )
        for _ in range(220)
    )
    flowers = tuple(
        (
            float(rng.uniform(-WORLD_HALF_WIDTH, WORLD_HALF_WIDTH)),
            float(rng.uniform(0.01, 0.6)),
            int(rng.integers(0, 4)),
        )
        for _ in range(900)
    )
    stars = tuple(
        (float(rng.uniform(-WORLD_HALF_WIDTH, WORLD_HALF_WIDTH)), float(rng.uniform(-1.4, 0.1)))
        for _ in range(500 if palette == "night" else 0)
    )
    balloons = tuple(
        (
            float(rng.uniform(-0.7, 0.7)),
            float(rng.uniform(-0.42, -0.22)),
            float(rng.uniform(-0.25, 0.25)),
            float(rng.uniform(-0.06, 0.02)),
            float(rng.uniform(0.02, 0.032)),
            int(rng.integers(0, 4)),
        )
        for _ in range(int(rng.integers(2, 5)))
    )
    return Theme(
        palette,
        colors,
        sun,
        mountains,
        0.06,
        hills,
        ground,
        tuple(clouds),
        trees,
        flowers,
        stars,
        balloons,
    )


def _palette_for(prompt: str) -> str | None:
    words = set(re.findall(r"[a-z]+", prompt.lower()))
    for palette, keywords in _KEYWORDS.items():
        if words.intersection(keywords):
            return palette
    return None


def _ridge(rng: np.random.Generator, base: float, amp: float, octaves: int) -> Ridge:
    # Each octave halves the amplitude and roughly halves the wavelength: natural-looking
    # skylines without a noise library.
    amplitudes = tuple(float(amp * rng.uniform(0.6, 1.0) / 2**k) for k in range(octaves))
    wavelengths = tuple(float(rng.uniform(0.16, 0.24) / 2**k) for k in range(octaves))
    phases = tuple(float(rng.uniform(0, 2 * np.pi)) for _ in range(octaves))
    return Ridge(base, amplitudes, wavelengths, phases)


def _clamp_color(base: Color, shift: np.ndarray) -> Color:
    r, g, b = (int(np.clip(c + s, 0, 255)) for c, s in zip(base, shift, strict=True))
    return (r, g, b)


BALLOON_COLORS: tuple[Color, ...] = ((230, 60, 60), (250, 200, 40), (60, 140, 230), (240, 120, 200))
FLOWER_COLORS: tuple[Color, ...] = (
    (250, 250, 250),
    (250, 210, 60),
    (230, 80, 120),
    (170, 120, 240),
)
