"""Per-mode profiles (``[models.profiles.std]`` / ``[models.profiles.pro]``) and their LoRA.

A profile is what a Kling ``mode`` means for an open model: resolution, fps, steps, guidance,
scheduler shift, and optionally a LoRA (for example a step-distilled one, which brings its own
steps and guidance). Keys left out take the family's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reelgate.domain.models import ALL_ASPECTS, ALL_MODES

from .families import Family
from .reader import KeyReader


@dataclass(frozen=True)
class LoraSpec:
    path: str  # local file or directory, or a hub id
    weight_name: str | None
    scale: float
    transformer_2: bool  # Wan 2.2 A14B: also load it into the low-noise expert


@dataclass(frozen=True)
class Profile:
    mode: str
    short_side: int
    fps: int
    steps: int
    guidance_scale: float
    guidance_range: tuple[float, float]
    guidance_scale_2: float | None
    flow_shift: float | None
    max_sequence_length: int | None
    sizes: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # aspect -> (w, h)
    lora: LoraSpec | None = None


def parse_profiles(r: KeyReader, family: Family) -> dict[str, Profile]:
    """The entry's profiles; without any, one profile of the family's defaults serves all."""
    table = r.child("profiles")
    if table is None:
        return {"std": _profile(KeyReader({}, r.model_id, "profiles.std."), "std", family)}
    profiles = {}
    for mode in ALL_MODES:
        sub = table.child(mode)
        if sub is not None:
            profiles[mode] = _profile(sub, mode, family)
    table.reject_unknown()
    if not profiles:
        raise r.error("profiles", f"needs at least one of {', '.join(ALL_MODES)}")
    return profiles


def _profile(r: KeyReader, mode: str, family: Family) -> Profile:
    grid = family.size_multiple
    short = r.integer("short_side", grid, 4096) or family.short_side
    if short % grid:
        raise r.error("short_side", f"{short} is not a multiple of {grid} ({family.name} grid)")
    fps = r.integer("fps", 1, 120) or family.fps
    steps = r.integer("steps", 1, 500) or family.steps
    guidance = _number(r, "guidance_scale", family.guidance_scale)
    guidance_2 = r.number("guidance_scale_2", 0.0, 50.0)
    if guidance_2 is not None and family.guidance_scale_2 is None:
        raise r.error("guidance_scale_2", f"only two-expert models use it, not {family.name}")
    if guidance_2 is None:
        guidance_2 = family.guidance_scale_2
    flow_shift = r.number("flow_shift", 0.01, 100.0)
    if flow_shift is not None and family.flow_shift is None:
        raise r.error("flow_shift", f"{family.name}'s scheduler has no fixed shift to set")
    if flow_shift is None:
        flow_shift = family.default_flow_shift(short)
    max_seq = r.integer("max_sequence_length", 1, 4096) or family.max_sequence_length
    sizes = _sizes(r, grid)
    explicit_range = r.float_pair("guidance_range")
    lora = None
    lora_guidance = None
    lora_table = r.child("lora")
    if lora_table is not None:
        lora = LoraSpec(
            path=lora_table.string("path", required=True) or "",
            weight_name=lora_table.string("weight_name"),
            scale=_number(lora_table, "scale", 1.0),
            transformer_2=lora_table.boolean("transformer_2", False),
        )
        if lora.transformer_2 and family.guidance_scale_2 is None:
            raise lora_table.error("transformer_2", f"{family.name} has a single transformer")
        # A distilled LoRA brings its own schedule, typically 4 steps at guidance 1.
        steps = lora_table.integer("steps", 1, 500) or steps
        lora_guidance = lora_table.number("guidance_scale", 0.0, 50.0)
        if lora_guidance is not None:
            guidance = lora_guidance
            guidance_2 = lora_guidance if guidance_2 is not None else None
        lora_table.reject_unknown()
    if explicit_range is not None:
        low, high = explicit_range
        if not 0 <= low <= guidance <= high:
            raise r.error(
                "guidance_range", f"needs 0 <= low <= guidance_scale ({guidance:g}) <= high"
            )
        guidance_range = explicit_range
    elif lora_guidance is not None:
        guidance_range = (guidance, guidance)  # cfg_scale must not move a distilled model
    else:
        low, high = family.guidance_range
        guidance_range = (min(low, guidance), max(high, guidance))
    r.reject_unknown()
    return Profile(
        mode=mode,
        short_side=short,
        fps=fps,
        steps=steps,
        guidance_scale=guidance,
        guidance_range=guidance_range,
        guidance_scale_2=guidance_2,
        flow_shift=flow_shift,
        max_sequence_length=max_seq,
        sizes=sizes,
        lora=lora,
    )


def _number(r: KeyReader, key: str, default: float) -> float:
    value = r.number(key, -50.0 if key == "scale" else 0.0, 50.0)
    return default if value is None else value


def _sizes(r: KeyReader, grid: int) -> dict[str, tuple[int, int]]:
    table = r.table("sizes")
    sizes: dict[str, tuple[int, int]] = {}
    for aspect, value in table.items():
        key = f"sizes.{aspect}"
        if aspect not in ALL_ASPECTS:
            raise r.error(key, f"aspect ratio must be one of {', '.join(ALL_ASPECTS)}")
        ok = isinstance(value, list) and len(value) == 2
        if not ok or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
            raise r.error(key, "must be [width, height]")
        width, height = value
        if width <= 0 or height <= 0 or width % grid or height % grid:
            raise r.error(key, f"width and height must be positive multiples of {grid}")
        sizes[aspect] = (width, height)
    return sizes
