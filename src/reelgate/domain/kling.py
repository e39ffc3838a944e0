"""Kling's own text-to-video models: capability map, render sizes and units (contract §8)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from .models import Capabilities, ModelSpec, Units

D = Decimal

# 720p and 1080p frame sizes per aspect ratio (contract §8); the last four only for the
# ``cometapi`` fidelity profile (domain/profiles.py), at the tier's short side.
FRAME_SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "720p": {
        "16:9": (1280, 720),
        "9:16": (720, 1280),
        "1:1": (960, 960),
        "4:3": (960, 720),
        "3:4": (720, 960),
        "3:2": (1080, 720),
        "2:3": (720, 1080),
    },
    "1080p": {
        "16:9": (1920, 1080),
        "9:16": (1080, 1920),
        "1:1": (1440, 1440),
        "4:3": (1440, 1080),
        "3:4": (1080, 1440),
        "3:2": (1620, 1080),
        "2:3": (1080, 1620),
    },
}

_FIVE_TEN = (5, 10)


def _spec(
    model_id: str,
    caps: Capabilities,
    units: Units,
    tiers: dict[str, str],
    fps: int,
    description: str,
) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        engine="sandbox",
        capabilities=caps,
        units=units,
        description=description,
        options={"tiers": tiers, "fps": fps},
    )


def kling_models() -> list[ModelSpec]:
    """The seven text-to-video models of Kling's map, kling-v1 first (the default)."""
    hd_pro = {"std": "720p", "pro": "1080p"}
    return [
        _spec(
            "kling-v1",
            Capabilities(camera_modes=("std",), camera_durations=(5,)),
            Units(per_clip={"std": D(1), "pro": D("3.5")}),
            {"std": "720p", "pro": "720p"},
            30,
            "Kling 1.0",
        ),
        _spec(
            "kling-v1-6",
            Capabilities(),
            Units(per_clip={"std": D(2), "pro": D("3.5")}),
            hd_pro,
            24,
            "Kling 1.6",
        ),
        _spec(
            "kling-v2-master",
            Capabilities(modes=("std",), mode_choice=False, cfg_scale=False),
            Units(per_clip={"std": D(10)}),
            {"std": "720p"},
            24,
            "Kling 2.0 Master (no mode choice)",
        ),
        _spec(
            "kling-v2-1-master",
            Capabilities(modes=("std",), mode_choice=False, cfg_scale=False),
            Units(per_clip={"std": D(10)}),
            {"std": "1080p"},
            24,
            "Kling 2.1 Master (no mode choice)",
        ),
        _spec(
            "kling-v2-5-turbo",
            Capabilities(cfg_scale=False),
            Units(per_clip={"std": D("1.5"), "pro": D("2.5")}),
            hd_pro,
            24,
            "Kling 2.5 Turbo",
        ),
        _spec(
            "kling-v2-6",
            Capabilities(cfg_scale=False, sound_modes=("pro",)),
            Units(per_second={"std": D("0.3"), "pro": D("0.5"), "pro+sound": D("1.0")}),
            hd_pro,
            24,
            "Kling 2.6 (audio in pro mode)",
        ),
        _spec(
            "kling-v3",
            Capabilities(
                durations=tuple(range(3, 16)), cfg_scale=False, sound_modes=("std", "pro")
            ),
            Units(
                per_second={
                    "std": D("0.6"),
                    "pro": D("0.8"),
                    "std+sound": D("0.9"),
                    "pro+sound": D("1.2"),
                }
            ),
            hd_pro,
            24,
            "Kling 3.0 (3..15 s, native audio)",
        ),
    ]


# Names Kling clients may send that exist only for other endpoints (404/1203, not 1201).
KLING_UNAVAILABLE: dict[str, str] = {
    "kling-v1-5": "kling-v1-5 serves image2video only",
    "kling-v2-1": "kling-v2-1 serves image2video only",
}


def frame_size(spec: ModelSpec, mode: str, aspect_ratio: str) -> tuple[int, int]:
    tiers: dict[str, str] = dict(spec.options.get("tiers", {}))
    tier = tiers.get(spec.effective_mode(mode), "720p")
    return FRAME_SIZES[tier][aspect_ratio]


def kling_like(where: str, like: object, kling: Mapping[str, ModelSpec]) -> ModelSpec:
    """The Kling model a catalogue entry's ``like`` names (its capabilities and units)."""
    base = kling.get(like) if isinstance(like, str) else None
    if base is None:
        raise ValueError(
            f"{where}: 'like' must name a Kling model ({', '.join(kling)}), got {like!r}"
        )
    return base


def entry_aliases(entry: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """A catalogue entry's ``aliases``: other names the model answers to."""
    aliases = entry.get("aliases", [])
    if not isinstance(aliases, list | tuple) or not all(isinstance(a, str) and a for a in aliases):
        raise ValueError(f"{where}: 'aliases' must be a list of names")
    return tuple(aliases)
