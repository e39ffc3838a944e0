"""A catalogue entry for the diffusers engine, parsed strictly into a :class:`ModelEntry`.

Every key is checked when the catalogue is read; a bad one raises :class:`EntryError` (a
``ValueError``) naming the model id and the key, so the server refuses to start instead of
failing tasks later. The parsed entry is plain data: it is pickled to the generation process.

Keys (all but ``weights`` optional; defaults come from the family, see :mod:`.families`)::

    weights = "/models/Wan2.1-T2V-1.3B-Diffusers"  # local diffusers dir, or a hub id
    pipeline = "WanPipeline"     # default: model_index.json's _class_name
    family = "wan2.1"            # default: detected; required for a hub id
    dtype = "bfloat16"           # float32 on cpu; vae_dtype: Wan's VAE runs in float32
    device = "cuda:0"            # one generation process per device
    durations = [1, 2, 3, 4, 5]  # default: whole seconds within the trained length, up to 10
    aspect_ratios = ["16:9", "9:16", "1:1"]
    cfg_scale = true             # accept cfg_scale (mapped onto the guidance range)
    negative_prompt = true
    default_negative_prompt = ""
    camera_control = false       # true: camera moves become a phrase appended to the prompt
    seed = 42                    # default: derived from the task id
    units = { per_second = { std = 0.1, pro = 0.2 } }  # or per_clip (a 5 s clip); default 0
    cpu_offload = false          # "model" | "sequential" | "group"
    vae_tiling = false
    attention_backend = "flash"  # any diffusers attention backend name
    compile = false              # "regional" (repeated blocks) | "full"
    fp8 = false                  # "storage" (layerwise casting) | "torchao" (SM 8.9+)
    cache = { type = "first_block", threshold = 0.05 }  # | mag | taylorseer | faster | pab
    call_kwargs = { decode_timestep = 0.05 }  # extra scalar arguments of the pipeline call
    [models.profiles.std]        # and/or .pro; one profile serves both modes
    short_side = 480             # multiple of the family grid; long side follows the aspect
    fps = 16
    steps = 30
    guidance_scale = 5.0
    guidance_range = [1.0, 10.0] # what cfg_scale 0 and 1 map to
    guidance_scale_2 = 3.0       # Wan 2.2 A14B low-noise expert
    flow_shift = 3.0
    max_sequence_length = 512
    sizes = { "16:9" = [832, 480] }  # explicit size per aspect ratio
    lora = { path = "/loras/distill.safetensors", scale = 1.0, steps = 4, guidance_scale = 1.0 }

``test_fault`` ("crash_once" | "crash_always" | "oom") and ``test_step_delay_s`` exist for the
test suite: they make the generation process misbehave on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from reelgate.domain.models import ALL_ASPECTS, ALL_MODES

from .families import FAMILIES, PIPELINES, Family, FamilyError, detect_family
from .options import MemoryOptions, SpeedOptions, parse_memory_options, parse_speed_options
from .profiles import Profile, parse_profiles
from .reader import EntryError, KeyReader

__all__ = ["EntryError", "ModelEntry", "parse_entry"]

COMMON_KEYS = {"id", "engine", "aliases", "description"}
DTYPES = {"bfloat16": "bfloat16", "bf16": "bfloat16", "float16": "float16", "fp16": "float16"}
DTYPES |= {"float32": "float32", "fp32": "float32"}
DEVICE = re.compile(r"^(cpu|mps|(cuda|xpu)(:\d+)?)$")
TEST_FAULTS = ("crash_once", "crash_always", "oom")
MAX_DURATION = 10  # seconds; default durations stop here or at the family's trained length


@dataclass(frozen=True)
class ModelEntry:
    id: str
    weights: str
    family: Family
    pipeline: str
    dtype: str
    vae_dtype: str | None
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
    call_kwargs: Mapping[str, Any] = field(default_factory=dict)
    test_fault: str | None = None  # test suite only: make the generation process misbehave
    test_step_delay_s: float = 0.0  # test suite only: sleep after each denoising step

    def profile_for(self, mode: str) -> Profile:
        return self.profiles.get(mode) or next(iter(self.profiles.values()))


def parse_entry(raw: Mapping[str, Any]) -> ModelEntry:
    """Validate one ``[[models]]`` entry; raises :class:`EntryError` naming the model and key."""
    r = KeyReader(raw, str(raw.get("id", "?")))
    weights = r.string("weights", required=True) or ""
    pipeline = r.choice("pipeline", PIPELINES)
    family_name = r.choice("family", tuple(FAMILIES))
    if family_name is not None:
        family = FAMILIES[family_name]
        if pipeline is not None and pipeline != family.pipeline:
            raise r.error("pipeline", f"{pipeline} does not run family {family.name}")
    else:
        try:
            family = detect_family(weights, pipeline)
        except FamilyError as exc:
            raise r.error("weights", str(exc)) from None
    device = r.string("device") or "cuda"
    if not DEVICE.match(device):
        raise r.error("device", f"{device!r} is not a torch device such as cuda, cuda:1 or cpu")
    if device in ("cuda", "xpu"):
        device += ":0"
    dtype = DTYPES[r.choice("dtype", tuple(DTYPES)) or ("float32" if device == "cpu" else "bf16")]
    vae_dtype_key = r.choice("vae_dtype", tuple(DTYPES))
    vae_dtype = DTYPES[vae_dtype_key] if vae_dtype_key else family.vae_dtype

    profiles = parse_profiles(r, family)
    durations = tuple(r.int_list("durations", 1, 60) or _default_durations(family, profiles))
    aspects = tuple(r.str_list("aspect_ratios", ALL_ASPECTS) or ALL_ASPECTS)
    call_kwargs = r.scalar_table("call_kwargs")
    negative = r.boolean("negative_prompt", family.negative_prompt)
    if negative and family.name == "hunyuan" and float(call_kwargs.get("true_cfg_scale", 1)) <= 1:
        raise r.error("negative_prompt", "hunyuan uses it only with call_kwargs.true_cfg_scale > 1")
    if r.boolean("sound", False):
        raise r.error("sound", f"family {family.name} generates no audio")
    per_clip, per_second = _units(r)
    memory = parse_memory_options(r)
    if memory.cpu_offload and not device.startswith(("cuda", "xpu")):
        raise r.error("cpu_offload", f"offloading needs a GPU device, not {device}")
    entry = ModelEntry(
        id=r.model_id,
        weights=weights,
        family=family,
        pipeline=pipeline or family.pipeline,
        dtype=dtype,
        vae_dtype=vae_dtype,
        device=device,
        profiles=profiles,
        durations=durations,
        aspect_ratios=aspects,
        cfg_scale=r.boolean("cfg_scale", True),
        negative_prompt=negative,
        default_negative_prompt=r.string("default_negative_prompt") or "",
        camera_control=r.boolean("camera_control", False),
        seed=r.integer("seed", 0, 2**63 - 1),
        units_per_clip=per_clip,
        units_per_second=per_second,
        memory=memory,
        speed=parse_speed_options(r),
        call_kwargs=call_kwargs,
        test_fault=r.choice("test_fault", TEST_FAULTS),
        test_step_delay_s=r.number("test_step_delay_s", 0.0, 60.0) or 0.0,
    )
    r.reject_unknown(COMMON_KEYS)
    return entry


def _default_durations(family: Family, profiles: Mapping[str, Profile]) -> list[int]:
    """Whole seconds up to 10 whose frame count stays within the family's trained length."""
    fps = max(p.fps for p in profiles.values())
    fitting = [d for d in range(1, MAX_DURATION + 1) if d * fps + 1 <= family.max_frames]
    return fitting or [1]


def _units(r: KeyReader) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    table = r.table("units")
    unknown = set(table) - {"per_clip", "per_second"}
    if unknown:
        raise r.error(f"units.{sorted(unknown)[0]}", "unknown key (use per_clip or per_second)")
    out: list[dict[str, Decimal]] = []
    for kind in ("per_clip", "per_second"):
        prices = table.get(kind, {})
        if not isinstance(prices, Mapping):
            raise r.error(f"units.{kind}", "must be a table of mode = price")
        parsed: dict[str, Decimal] = {}
        for mode, price in prices.items():
            base = mode.removesuffix("+sound")
            if base not in ALL_MODES:
                raise r.error(f"units.{kind}.{mode}", f"mode must be one of {', '.join(ALL_MODES)}")
            try:
                value = Decimal(str(price))
            except InvalidOperation:
                raise r.error(f"units.{kind}.{mode}", f"{price!r} is not a number") from None
            if isinstance(price, bool) or not value.is_finite() or value < 0:
                raise r.error(f"units.{kind}.{mode}", f"{price!r} is not a price >= 0")
            parsed[mode] = value
        out.append(parsed)
    if out[0] and out[1]:
        raise r.error("units", "set per_clip or per_second, not both")
    return out[0], out[1]
