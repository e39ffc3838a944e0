"""A catalogue entry for the diffusers engine, read into a :class:`ModelEntry`.

:mod:`.schema` checks each key's type and range (unknown keys are refused); this module applies
the family's defaults and the rules that tie keys together. Every failure is an
:class:`EntryError` (a ``ValueError``) whose message names the model and the key, for example
``model wan: profiles.std.short_side: wan2.1-1.3b was trained at 480p only, not 720p``, so the
server refuses to start instead of failing tasks later. The entry is plain data, pickled to the
generation process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from .families import FAMILIES, Family, FamilyError, Size, detect_family
from .options import CacheSpec, MemoryOptions, SpeedOptions, option_conflicts
from .profiles import Profile, ProfileError, resolve_profile
from .schema import EntryConfig, UpsamplerConfig, dtype_name

__all__ = ["EntryError", "ModelEntry", "UpsamplerSpec", "parse_entry"]

UPSAMPLED_PIPELINE = "LTXConditionPipeline"  # the one whose latents the upsampler reads
MAX_DURATION = 10  # seconds; default durations stop here or at the family's trained length


class EntryError(ValueError):
    """A catalogue entry for the diffusers engine is invalid; the message names model and key."""


@dataclass(frozen=True)
class UpsamplerSpec:
    """LTX-Video 0.9.7+'s two-stage render (see :class:`.schema.UpsamplerConfig`)."""

    weights: str  # an LTXLatentUpsamplePipeline
    downscale: float
    grid: int  # stage 1 sizes are multiples of this (the VAE's spatial compression)
    adain_factor: float
    tone_map_compression_ratio: float
    refine_steps: int  # 0: the upsampled latents are decoded without a refine pass
    denoise_strength: float
    refine_call_kwargs: Mapping[str, Any] = field(default_factory=dict)  # entry's + refine's

    def stage_size(self, width: int, height: int) -> Size:
        """Stage 1's (width, height): ``downscale`` of the size, rounded down to the grid as the
        model card's ``round_to_nearest_resolution_acceptable_by_vae`` does."""
        return (
            max(self.grid, int(width * self.downscale) // self.grid * self.grid),
            max(self.grid, int(height * self.downscale) // self.grid * self.grid),
        )

    def refine_steps_run(self) -> int:
        """The steps the refine pass runs: LTXConditionPipeline keeps the last
        ``int(steps x denoise_strength)`` of its schedule."""
        timesteps = self.refine_call_kwargs.get("timesteps")
        steps = len(timesteps) if isinstance(timesteps, list) else self.refine_steps
        return min(int(steps * self.denoise_strength), steps)


@dataclass(frozen=True)
class ModelEntry:
    id: str
    weights: str
    family: Family
    pipeline: str
    dtype: str
    component_dtypes: Mapping[str, str]  # component -> dtype where it differs (the VAE...)
    device: str  # normalised: "cuda:0", "cpu", ...
    profiles: Mapping[str, Profile]  # mode -> profile; one profile serves both modes
    durations: tuple[int, ...]
    aspect_ratios: tuple[str, ...]
    cfg_scale: bool
    negative_prompt: bool
    default_negative_prompt: str
    camera_control: bool  # camera_control requests become a camera phrase in the prompt
    seed: int | None
    units_per_clip: Mapping[str, Decimal]
    units_per_second: Mapping[str, Decimal]
    memory: MemoryOptions
    speed: SpeedOptions
    call_kwargs: Mapping[str, Any] = field(default_factory=dict)  # family defaults + entry's
    upsampler: UpsamplerSpec | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""

    def profile_for(self, mode: str) -> Profile:
        return self.profiles.get(mode) or next(iter(self.profiles.values()))


def parse_entry(raw: Mapping[str, Any]) -> ModelEntry:
    """Validate one ``[[models]]`` entry; raises :class:`EntryError` naming the model and key."""
    model_id = str(raw.get("id", "?"))
    try:
        config = EntryConfig.model_validate(dict(raw))
    except ValidationError as exc:
        raise EntryError(f"model {model_id}: {_problems(exc)}") from None
    try:
        return _resolve(config)
    except _KeyError as exc:
        raise EntryError(f"model {model_id}: {exc.key}: {exc}") from None


def _problems(exc: ValidationError) -> str:
    """pydantic's errors as ``key.path: rule``, without its union and dict-key markers."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        parts = [str(p) for p in error["loc"]]
        union_arm = any(p.startswith("literal[") for p in parts)
        key = ".".join(p for p in parts if "[" not in p and not p[:1].isupper()) or "entry"
        if union_arm and (key in problems or len(exc.errors()) > 1):
            continue  # "cache: Input should be False" says less than the table's own error
        message = error["msg"].removeprefix("Value error, ")
        problems.setdefault(key, "unknown key" if error["type"] == "extra_forbidden" else message)
    return "; ".join(f"{key}: {message}" for key, message in problems.items())


class _KeyError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _resolve(c: EntryConfig) -> ModelEntry:
    family = _family(c)
    device = c.device + (":0" if c.device in ("cuda", "xpu") else "")
    cpu = device == "cpu"
    dtype = dtype_name(c.dtype) or ("float32" if cpu else family.dtype)
    components = {} if cpu else dict(family.component_dtypes)
    if c.vae_dtype is not None:
        components["vae"] = dtype_name(c.vae_dtype) or ""
    aspects = tuple(c.aspect_ratios or family.aspect_ratios)
    profiles: dict[str, Profile] = {}
    for mode, profile_config in c.profiles.items():
        try:
            profiles[mode] = resolve_profile(mode, profile_config, family, aspects)
        except ProfileError as exc:
            raise _KeyError(f"profiles.{mode}.{exc.key}", str(exc)) from None
    durations = tuple(sorted(c.durations or _default_durations(family, profiles)))
    if family.durations is not None and not set(durations) <= set(family.durations):
        allowed = " or ".join(map(str, family.durations))
        raise _KeyError("durations", f"{family.name} renders {allowed} s clips only")
    negative = family.negative_prompt if c.negative_prompt is None else c.negative_prompt
    call_kwargs: dict[str, Any] = dict(family.call_defaults) | dict(c.call_kwargs)
    true_cfg = float(call_kwargs.get("true_cfg_scale", 1)) > 1
    if negative and family.name == "hunyuan" and not true_cfg:
        raise _KeyError(
            "negative_prompt", "hunyuan uses it only with call_kwargs.true_cfg_scale > 1"
        )
    memory = MemoryOptions(
        cpu_offload=c.cpu_offload or None,
        vae_tiling=c.vae_tiling,
        attention_backend=c.attention_backend,
    )
    if memory.cpu_offload and not device.startswith(("cuda", "xpu")):
        raise _KeyError("cpu_offload", f"offloading needs a GPU device, not {device}")
    cache = None
    if c.cache is not False:
        cache = CacheSpec(c.cache.type, dict(c.cache.model_extra or {}))
    speed = SpeedOptions(compile=c.compile or None, cache=cache, fp8=c.fp8 or None)
    for key, message in option_conflicts(family, speed, true_cfg):
        raise _KeyError(key, message)
    upsampler = None
    if c.upsampler is not None:
        upsampler = _upsampler(c.upsampler, family, call_kwargs)
        if c.pipeline is not None and c.pipeline != UPSAMPLED_PIPELINE:
            raise _KeyError(
                "pipeline",
                f"upsampler needs {UPSAMPLED_PIPELINE} (LTXPipeline returns packed latents"
                " the upsampler cannot read, and has no denoise_strength)",
            )
        if cache is not None and cache.type == "mag" and upsampler.refine_steps:
            raise _KeyError(
                "cache.type", "mag counts the steps of one call; the refine pass is a second one"
            )
    pipeline = c.pipeline or (UPSAMPLED_PIPELINE if upsampler else family.pipelines[0])
    default_negative = family.default_negative_prompt
    return ModelEntry(
        id=c.id,
        weights=c.weights,
        family=family,
        pipeline=pipeline,
        dtype=dtype,
        component_dtypes=components,
        device=device,
        profiles=profiles,
        durations=durations,
        aspect_ratios=aspects,
        cfg_scale=c.cfg_scale,
        negative_prompt=negative,
        default_negative_prompt=(
            default_negative if c.default_negative_prompt is None else c.default_negative_prompt
        ),
        camera_control=c.camera_control,
        seed=c.seed,
        units_per_clip=c.units.per_clip,
        units_per_second=c.units.per_second,
        memory=memory,
        speed=speed,
        call_kwargs=call_kwargs,
        upsampler=upsampler,
        aliases=tuple(c.aliases),
        description=c.description or _description(c, family, pipeline, profiles),
    )


def _upsampler(u: UpsamplerConfig, family: Family, call_kwargs: Mapping[str, Any]) -> UpsamplerSpec:
    if not family.name.startswith("ltx"):
        raise _KeyError("upsampler", f"only LTX-Video has a latent upsampler, not {family.name}")
    refine = u.refine
    # the refine pass takes the entry's arguments but stage 1's schedule, then its own
    shared = {k: v for k, v in call_kwargs.items() if k != "timesteps"}
    spec = UpsamplerSpec(
        weights=u.weights,
        downscale=u.downscale,
        grid=family.size_multiple,
        adain_factor=u.adain_factor,
        tone_map_compression_ratio=u.tone_map_compression_ratio,
        refine_steps=refine.steps if refine else 0,
        denoise_strength=refine.denoise_strength if refine else 1.0,
        refine_call_kwargs=(shared | dict(refine.call_kwargs)) if refine else shared,
    )
    if refine and spec.refine_steps_run() < 1:
        raise _KeyError(
            "upsampler.refine.denoise_strength",
            f"{spec.denoise_strength:g} runs no step of the refine schedule"
            " (int(steps x denoise_strength) is 0); raise it or the steps",
        )
    return spec


def _family(c: EntryConfig) -> Family:
    if c.family is not None:
        family = FAMILIES[c.family]
        if c.pipeline is not None and c.pipeline not in family.pipelines:
            raise _KeyError("pipeline", f"{c.pipeline} does not run family {family.name}")
        return family
    try:
        family = detect_family(c.weights, c.pipeline)
    except FamilyError as exc:
        raise _KeyError("weights", str(exc)) from None
    if c.pipeline is not None and c.pipeline not in family.pipelines:
        raise _KeyError("pipeline", f"{c.pipeline} does not run family {family.name}")
    return family


def _default_durations(family: Family, profiles: Mapping[str, Profile]) -> list[int]:
    """Whole seconds up to 10 whose frame count stays within the family's trained length."""
    if family.durations is not None:
        return list(family.durations)
    fps = max(p.fps for p in profiles.values())
    fitting = [d for d in range(1, MAX_DURATION + 1) if d * fps + 1 <= family.max_frames]
    return fitting or [1]


def _description(
    c: EntryConfig, family: Family, pipeline: str, profiles: Mapping[str, Profile]
) -> str:
    profile = next(iter(profiles.values()))
    text = f"{family.name} ({pipeline}) from {c.weights}, {profile.short_side}p @{profile.fps} fps"
    if family.note and ("1:1" in profile.sizes or "1:1" not in family.note):
        sizes = ", ".join(f"{a} {w}x{h}" for a, (w, h) in profile.sizes.items())
        text += f"; {family.note} ({sizes})"
    return text
