"""The shape of a diffusers catalogue entry, as pydantic models (types, ranges, unknown keys).

These models check each key on its own; the rules that tie keys to each other and to the family
live in :mod:`.entry`, :mod:`.profiles` and :mod:`.options`. A TOML entry looks like::

    [[models]]
    id = "wan-1.3b"
    engine = "diffusers"
    weights = "/models/Wan2.1-T2V-1.3B-Diffusers"  # local diffusers dir, or a hub id
    pipeline = "WanPipeline"     # default: model_index.json's _class_name
    family = "wan2.1-1.3b"       # default: detected; required for a hub id
    dtype = "bfloat16"           # default: the family's on a GPU, float32 on the CPU
    vae_dtype = "float32"        # default: the family's
    device = "cuda:0"            # one generation process per device
    durations = [1, 2, 3, 4, 5]  # default: whole seconds within the trained length, up to 10
    aspect_ratios = ["16:9", "9:16", "1:1"]
    cfg_scale = true             # accept cfg_scale (mapped onto the guidance range)
    negative_prompt = true
    default_negative_prompt = "" # default: the family's (Wan's standard one)
    camera_control = false       # true: camera moves become a phrase appended to the prompt
    seed = 42                    # default: derived from the task id
    units = { per_second = { std = 0.1, pro = 0.2 } }  # or per_clip (a 5 s clip); default 0
    cpu_offload = false          # "model" | "sequential" | "group"
    vae_tiling = false
    attention_backend = "flash"  # a diffusers attention backend, set around this model's calls
    compile = false              # "regional" (repeated blocks) | "full"
    fp8 = false                  # "storage" (memory: layerwise casting) | "torchao" (SM 8.9+)
    cache = { type = "first_block", threshold = 0.05 }  # | mag | taylorseer | faster | pab
    call_kwargs = { decode_timestep = 0.05 }  # extra arguments of the pipeline call (lists too)
    upsampler = "/models/ltxv-spatial-upscaler-0.9.7"  # LTX 0.9.7+: two-stage render, or:
    [models.upsampler]
    weights = "/models/ltxv-spatial-upscaler-0.9.7"  # an LTXLatentUpsamplePipeline
    downscale = 0.6667           # stage 1 renders at this fraction of the size (model card: 2/3)
    adain_factor = 0.0           # the upsampler call's own arguments
    tone_map_compression_ratio = 0.0
    refine = { steps = 10, denoise_strength = 0.4, call_kwargs = { decode_timestep = 0.05 } }
                                 # or false: decode the upsampled latents as they are
    [models.profiles.std]        # and/or .pro; one profile serves both modes
    short_side = 480             # one of the family's official sizes, or any on its grid
    fps = 16
    steps = 30
    guidance_scale = 5.0
    guidance_range = [1.0, 10.0] # what cfg_scale 0 and 1 map to
    guidance_scale_2 = 3.0       # Wan 2.2 A14B low-noise expert
    flow_shift = 3.0
    max_sequence_length = 512
    sizes = { "16:9" = [832, 480] }  # explicit size per aspect ratio
    lora = { path = "/loras/high_noise.safetensors", path_2 = "/loras/low_noise.safetensors",
             scale = 1.0, steps = 4, guidance_scale = 1.0 }
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reelgate.domain.models import ALL_MODES

from .families import FAMILIES, PIPELINES

Aspect = Literal["16:9", "9:16", "1:1"]
Mode = Literal["std", "pro"]
Dtype = Literal["bfloat16", "bf16", "float16", "fp16", "float32", "fp32"]
Guidance = Annotated[float, Field(ge=0, le=50)]
Pixels = Annotated[int, Field(ge=16, le=8192)]
Seconds = Annotated[int, Field(ge=1, le=60)]
CallValue = str | int | float | bool | list[int | float]
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class _Strict(BaseModel):
    # strict: a TOML string is never taken for a number, nor a boolean for an integer
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LoraConfig(_Strict):
    path: Annotated[str, Field(min_length=1)]  # the (high-noise) transformer's LoRA
    weight_name: str | None = None
    path_2: Annotated[str, Field(min_length=1)] | None = None  # Wan 2.2 A14B low-noise expert
    weight_name_2: str | None = None
    scale: Annotated[float, Field(ge=-50, le=50)] = 1.0
    # a step-distilled LoRA brings its own schedule, typically 4 steps at guidance 1
    steps: Annotated[int, Field(ge=1, le=500)] | None = None
    guidance_scale: Guidance | None = None


class ProfileConfig(_Strict):
    short_side: Annotated[int, Field(ge=16, le=4096)] | None = None
    fps: Annotated[int, Field(ge=1, le=120)] | None = None
    steps: Annotated[int, Field(ge=1, le=500)] | None = None
    guidance_scale: Guidance | None = None
    guidance_range: Annotated[list[Guidance], Field(min_length=2, max_length=2)] | None = None
    guidance_scale_2: Guidance | None = None
    flow_shift: Annotated[float, Field(ge=0.01, le=100)] | None = None
    max_sequence_length: Annotated[int, Field(ge=1, le=4096)] | None = None
    sizes: dict[Aspect, Annotated[list[Pixels], Field(min_length=2, max_length=2)]] = {}
    lora: LoraConfig | None = None


class RefineConfig(_Strict):
    """The short denoise at full size after the upsampler (LTXConditionPipeline's
    ``denoise_strength``: about steps x strength steps run)."""

    steps: Annotated[int, Field(ge=1, le=500)] = 10
    denoise_strength: Annotated[float, Field(gt=0, le=1)] = 0.4
    call_kwargs: dict[str, CallValue] = {}  # over the entry's (e.g. its own timesteps)


class UpsamplerConfig(_Strict):
    """LTX-Video 0.9.7+'s two-stage render (model card): stage 1 at ``downscale`` of the size,
    the latents upsampled x2 by ``LTXLatentUpsamplePipeline``, an optional refine pass at that
    size, the decoded frames resized to the requested size."""

    weights: Annotated[str, Field(min_length=1)]  # local diffusers dir, or a hub id
    downscale: Annotated[float, Field(ge=0.25, le=1)] = 2 / 3
    adain_factor: Annotated[float, Field(ge=0, le=10)] = 0.0
    tone_map_compression_ratio: Annotated[float, Field(ge=0, le=1)] = 0.0
    refine: Literal[False] | RefineConfig = RefineConfig()

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, value: Any) -> Any:
        return {"weights": value} if isinstance(value, str) else value


class CacheConfig(BaseModel):
    """``type`` plus the diffusers config class's own arguments (checked when it is built)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)
    type: Literal["first_block", "mag", "taylorseer", "faster", "pab"]

    @model_validator(mode="after")
    def _scalar_params(self) -> CacheConfig:
        for name, value in (self.model_extra or {}).items():
            numbers = isinstance(value, list) and all(_is_number(v) for v in value)
            if not (isinstance(value, str | int | float | bool) or numbers):
                raise ValueError(f"{name} must be a string, number, boolean or list of numbers")
        return self


class UnitsConfig(_Strict):
    per_clip: dict[str, Any] = {}
    per_second: dict[str, Any] = {}

    @field_validator("per_clip", "per_second")
    @classmethod
    def _prices(cls, prices: dict[str, Any]) -> dict[str, Decimal]:
        parsed = {}
        for mode, price in prices.items():
            if mode.removesuffix("+sound") not in ALL_MODES:
                raise ValueError(f"{mode}: mode must be one of {', '.join(ALL_MODES)}")
            try:
                value = Decimal(str(price))
            except InvalidOperation:
                value = Decimal("NaN")
            if isinstance(price, bool) or not value.is_finite() or value < 0:
                raise ValueError(f"{mode}: {price!r} is not a price >= 0")
            parsed[mode] = value
        return parsed

    @model_validator(mode="after")
    def _one_kind(self) -> UnitsConfig:
        if self.per_clip and self.per_second:
            raise ValueError("set per_clip or per_second, not both")
        return self


class EntryConfig(_Strict):
    id: Annotated[str, Field(min_length=1)]
    engine: Literal["diffusers"]
    aliases: list[Annotated[str, Field(min_length=1)]] = []
    description: str | None = None
    weights: Annotated[str, Field(min_length=1)]
    pipeline: str | None = None
    family: str | None = None
    dtype: Dtype | None = None
    vae_dtype: Dtype | None = None
    device: Annotated[str, Field(pattern=r"^(cpu|mps|(cuda|xpu)(:\d+)?)$")] = "cuda"
    durations: Annotated[list[Seconds], Field(min_length=1)] | None = None
    aspect_ratios: Annotated[list[Aspect], Field(min_length=1)] | None = None
    cfg_scale: bool = True
    negative_prompt: bool | None = None
    default_negative_prompt: str | None = None
    camera_control: bool = False
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    units: UnitsConfig = UnitsConfig()
    cpu_offload: Literal[False, "model", "sequential", "group"] = False
    vae_tiling: bool = False
    attention_backend: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")] | None = None
    compile: Literal[False, "regional", "full"] = False
    fp8: Literal[False, "storage", "torchao"] = False
    cache: Literal[False] | CacheConfig = False
    call_kwargs: dict[str, CallValue] = {}
    upsampler: UpsamplerConfig | None = None
    profiles: Annotated[dict[Mode, ProfileConfig], Field(min_length=1)] = {"std": ProfileConfig()}

    @field_validator("pipeline")
    @classmethod
    def _known_pipeline(cls, value: str | None) -> str | None:
        if value is not None and value not in PIPELINES:
            raise ValueError(f"{value!r} is not one of {', '.join(PIPELINES)}")
        return value

    @field_validator("family")
    @classmethod
    def _known_family(cls, value: str | None) -> str | None:
        if value is not None and value not in FAMILIES:
            raise ValueError(f"{value!r} is not one of {', '.join(FAMILIES)}")
        return value

    @field_validator("durations", "aspect_ratios")
    @classmethod
    def _distinct(cls, values: list[Any] | None) -> list[Any] | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError("values must be distinct")
        return values


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def dtype_name(value: str | None) -> str | None:
    return None if value is None else DTYPES.get(value, value)
