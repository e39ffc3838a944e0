"""Per-mode profiles (``[models.profiles.std]`` / ``[models.profiles.pro]``) and their LoRA.

A profile is what a Kling ``mode`` means for an open model: resolution, fps, steps, guidance,
scheduler shift, and optionally a LoRA (for example a step-distilled one, which brings its own
steps and guidance). Keys left out take the family's defaults (:mod:`.families`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .families import Family, Size
from .schema import ProfileConfig


class ProfileError(ValueError):
    """A profile key breaks a rule; ``key`` is its path inside the profile."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class LoraSpec:
    path: str  # local file or directory, or a hub id: the (high-noise) transformer's LoRA
    weight_name: str | None
    scale: float
    path_2: str | None = None  # Wan 2.2 A14B: the low-noise expert's own LoRA
    weight_name_2: str | None = None


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
    sizes: Mapping[str, Size] = field(default_factory=dict)  # aspect -> (w, h), all resolved
    lora: LoraSpec | None = None


def resolve_profile(
    mode: str, config: ProfileConfig, family: Family, aspects: Sequence[str]
) -> Profile:
    """The profile with the family's defaults filled in and a size for every served aspect."""
    short = config.short_side or family.short_side
    steps = config.steps or family.steps
    guidance = family.guidance_scale if config.guidance_scale is None else config.guidance_scale
    guidance_2 = config.guidance_scale_2
    if guidance_2 is not None and family.experts < 2:
        raise ProfileError("guidance_scale_2", f"only two-expert models use it, not {family.name}")
    if guidance_2 is None:
        guidance_2 = family.guidance_scale_2
    if config.flow_shift is not None and family.flow_shift is None:
        raise ProfileError("flow_shift", f"{family.name}'s scheduler has no fixed shift to set")
    flow_shift = config.flow_shift or family.default_flow_shift(short)
    sizes = _sizes(config, family, short, aspects)
    lora = None
    lora_guidance = None
    if config.lora is not None:
        c = config.lora
        if c.path_2 is not None and family.experts < 2:
            raise ProfileError("lora.path_2", f"{family.name} has a single transformer")
        lora = LoraSpec(c.path, c.weight_name, c.scale, c.path_2, c.weight_name_2)
        steps = c.steps or steps
        lora_guidance = c.guidance_scale
        if lora_guidance is not None:
            guidance = lora_guidance
            guidance_2 = lora_guidance if guidance_2 is not None else None
    if config.guidance_range is not None:
        low, high = config.guidance_range
        if not low <= guidance <= high:
            raise ProfileError(
                "guidance_range", f"needs low <= guidance_scale ({guidance:g}) <= high"
            )
        guidance_range = (low, high)
    elif lora_guidance is not None:
        guidance_range = (guidance, guidance)  # cfg_scale must not move a distilled model
    else:
        low, high = family.guidance_range
        guidance_range = (min(low, guidance), max(high, guidance))
    return Profile(
        mode=mode,
        short_side=short,
        fps=config.fps or family.fps,
        steps=steps,
        guidance_scale=guidance,
        guidance_range=guidance_range,
        guidance_scale_2=guidance_2,
        flow_shift=flow_shift,
        max_sequence_length=config.max_sequence_length or family.max_sequence_length,
        sizes=sizes,
        lora=lora,
    )


def _sizes(
    config: ProfileConfig, family: Family, short: int, aspects: Sequence[str]
) -> dict[str, Size]:
    """(w, h) per served aspect: the profile's ``sizes``, else the family's official size at
    ``short``, else (families without a size list) the long side computed on the grid."""
    grid = family.size_multiple
    explicit: dict[str, Size] = {a: (wh[0], wh[1]) for a, wh in config.sizes.items()}
    for name, (width, height) in explicit.items():
        if width % grid or height % grid:
            raise ProfileError(f"sizes.{name}", f"width and height must be multiples of {grid}")
    sizes: dict[str, Size] = {}
    for aspect in aspects:
        if aspect in explicit:
            sizes[aspect] = explicit[aspect]
        elif not family.sizes:
            if short % grid:
                raise ProfileError(
                    "short_side", f"{short} is not a multiple of {grid} ({family.name} grid)"
                )
            sizes[aspect] = computed_size(aspect, short, grid)
        elif short not in family.sizes:
            official = ", ".join(f"{s}p" for s in family.sizes)
            raise ProfileError(
                "short_side",
                f"{family.name} was trained at {official} only, not {short}p"
                f" (or give every aspect ratio in sizes)",
            )
        elif aspect in family.sizes[short]:
            sizes[aspect] = family.sizes[short][aspect]
        else:
            trained = ", ".join(f"{w}x{h}" for w, h in family.sizes[short].values())
            raise ProfileError(
                f"sizes.{aspect}",
                f"{family.name} has no {aspect} size at {short}p (trained: {trained});"
                f" set one or leave {aspect} out of aspect_ratios",
            )
    return sizes


ASPECT = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}


def snap(value: float, multiple: int) -> int:
    """Nearest positive multiple of ``multiple``; ties go down."""
    k = max(1, -int(-(value / multiple - 0.5) // 1))  # ceil(value / multiple - 0.5)
    return k * multiple


def computed_size(aspect_ratio: str, short: int, multiple: int) -> Size:
    """(width, height): ``short`` is the short edge, the long edge on the grid nearest the ratio."""
    w, h = ASPECT[aspect_ratio]
    long_side = snap(short * max(w, h) / min(w, h), multiple)
    return (long_side, short) if w >= h else (short, long_side)
