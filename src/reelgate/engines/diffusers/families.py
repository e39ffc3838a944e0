"""Model families: what each checkpoint was trained for, in one table, and how it is detected.

A family fixes the size grid (VAE stride x patch size) and, where the model card lists them, the
official sizes per resolution; the frame grid (frames = k * frame_step + 1); the native fps; the
recommended steps, guidance and scheduler shift; the dtypes of its components; and which speed
options its pipeline can take. Every default below cites its source; ``docs/reference/
video-models-and-engines.md`` §1 collects them.

Nothing here imports torch: detection reads ``model_index.json`` and the transformer's
``config.json`` when the weights are a local directory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Size = tuple[int, int]  # (width, height)

# Wan's standard negative prompt (Wan2.1 ``wan/configs/shared_config.py``, ``sample_neg_prompt``;
# the diffusers Wan docs use it too). The models were trained with it as the unconditional text.
WAN_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"  # noqa: RUF001
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"  # noqa: RUF001
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"  # noqa: RUF001
)

# Wan's official sizes (Wan2.1/Wan2.2 ``wan/configs/__init__.py`` SUPPORTED_SIZES). Square is not
# one: 1:1 renders at the square on the 16 grid nearest in area to the 16:9 size, and the model's
# description says so.
_WAN_480 = {"16:9": (832, 480), "9:16": (480, 832), "1:1": (624, 624)}
_WAN_720 = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}


@dataclass(frozen=True)
class Family:
    name: str
    pipelines: tuple[str, ...]  # diffusers pipeline classes that run it; the first is the default
    size_multiple: int  # width and height are multiples of this
    frame_step: int  # frame counts are k * frame_step + 1
    max_frames: int  # longest clip the checkpoint was trained for; bounds default durations
    fps: int
    short_side: int  # default profile short side, pixels
    steps: int
    guidance_scale: float
    guidance_range: tuple[float, float]  # what cfg_scale 0 and 1 map to
    # Official sizes: short side -> aspect -> (w, h). Empty: any short side on the grid, the long
    # side computed from the aspect ratio (LTX-Video takes any multiple of 32).
    sizes: Mapping[int, Mapping[str, Size]] = field(default_factory=dict)
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16", "1:1")
    durations: tuple[int, ...] | None = None  # the only durations it renders (None: computed)
    guidance_scale_2: float | None = None  # Wan 2.2 A14B: the low-noise expert's guidance
    flow_shift: float | None = None  # None: the scheduler shifts by itself (or has no shift)
    flow_shift_hd: float | None = None  # used instead when short_side >= 720
    dtype: str = "bfloat16"  # on a GPU; float32 on the CPU
    component_dtypes: Mapping[str, str] = field(default_factory=dict)  # e.g. the VAE's
    negative_prompt: bool = True  # False: the pipeline ignores it at its default settings
    default_negative_prompt: str = ""
    max_sequence_length: int | None = None
    frame_rate_argument: bool = False  # LTX conditions its RoPE on the frame rate
    call_defaults: Mapping[str, Any] = field(default_factory=dict)  # extra call arguments
    scheduler: str | None = None  # a diffusers scheduler class replacing the checkpoint's
    experts: int = 1  # Wan 2.2 A14B: a high-noise and a low-noise transformer
    repeated_blocks: bool = True  # the transformer declares _repeated_blocks (regional compile)
    # FasterCache works: cond and uncond run as one batch of 5-D latents (CogVideoX), or there
    # is no unconditional pass (HunyuanVideo's embedded guidance: is_guidance_distilled)
    faster_cache: bool = False
    guidance_distilled: bool = False
    note: str = ""  # said in the model's description

    def default_flow_shift(self, short_side: int) -> float | None:
        if short_side >= 720 and self.flow_shift_hd is not None:
            return self.flow_shift_hd
        return self.flow_shift


def _wan(name: str, **keys: Any) -> Family:
    """Wan: 16 px grid (VAE 8 x patch 2), 4k+1 frames at 16 fps, 81 frames, float32 VAE."""
    base: dict[str, Any] = {
        "pipelines": ("WanPipeline",),
        "size_multiple": 16,
        "frame_step": 4,
        "max_frames": 81,
        "fps": 16,
        "short_side": 480,
        "steps": 50,
        "guidance_range": (1.0, 10.0),
        "component_dtypes": {"vae": "float32"},
        "default_negative_prompt": WAN_NEGATIVE_PROMPT,
        "max_sequence_length": 512,
        "note": "1:1 is not an official Wan size: it renders at the square nearest in area",
    }
    return Family(name, **(base | keys))


def _cogvideox(name: str, **keys: Any) -> Family:
    base: dict[str, Any] = {
        "pipelines": ("CogVideoXPipeline",),
        "size_multiple": 16,
        "steps": 50,
        "guidance_scale": 6.0,
        "guidance_range": (1.0, 12.0),
        "aspect_ratios": ("16:9",),
        "max_sequence_length": 226,
        "repeated_blocks": False,  # CogVideoXTransformer3DModel declares none
        "faster_cache": True,
    }
    return Family(name, **(base | keys))


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        # Wan2.1 README: 1.3B "supports 480P" only ("720P ... less stable"); it recommends
        # --sample_guide_scale 6 and --sample_shift 8 to 12 for the 1.3B model.
        _wan(
            "wan2.1-1.3b",
            sizes={480: _WAN_480},
            guidance_scale=6.0,
            flow_shift=8.0,
        ),
        # Wan 2.1 T2V 14B: 480p and 720p; guidance 5. Shift 5.0 at every size, as Wan's own
        # generate.py sets for T2V (sample_shift 3.0 at 480p is its I2V setting; the diffusers
        # docs' 3.0 example follows that).
        _wan(
            "wan2.1-14b",
            sizes={480: _WAN_480, 720: _WAN_720},
            guidance_scale=5.0,
            flow_shift=5.0,
        ),
        # Wan 2.2 T2V A14B: two experts split at boundary_ratio 0.875; 40 steps, guidance 4.0
        # (high noise) / 3.0 (low noise), shift 12 (wan/configs/wan_t2v_A14B.py).
        _wan(
            "wan2.2-a14b",
            sizes={480: _WAN_480, 720: _WAN_720},
            steps=40,
            guidance_scale=4.0,
            guidance_range=(1.0, 8.0),
            guidance_scale_2=3.0,
            flow_shift=12.0,
            experts=2,
        ),
        # Wan 2.2 TI2V 5B: 48-channel VAE at 16x16x4 x patch 2, so a 32 grid; SUPPORTED_SIZES
        # 1280*704 and 704*1280 only; 24 fps, 121 frames, 50 steps, guidance 5, shift 5.
        _wan(
            "wan2.2-ti2v-5b",
            size_multiple=32,
            max_frames=121,
            fps=24,
            short_side=704,
            sizes={704: {"16:9": (1280, 704), "9:16": (704, 1280)}},
            aspect_ratios=("16:9", "9:16"),
            guidance_scale=5.0,
            flow_shift=5.0,
            note="",
        ),
        # LTX-Video 0.9.x: 32x spatial / 8x temporal VAE, any multiple of 32; 768x512 @24 fps,
        # up to 257 frames. Its FlowMatch scheduler shifts by sequence length (no flow_shift).
        # 0.9.1+ (timestep-aware VAE): decode_timestep 0.05, decode_noise_scale 0.025, applied
        # at load when the VAE's config says timestep_conditioning (diffusers LTX docs).
        Family(
            "ltx",
            ("LTXPipeline", "LTXConditionPipeline"),
            32,
            8,
            257,
            24,
            512,
            50,
            3.0,
            (1.0, 6.0),
            max_sequence_length=128,
            frame_rate_argument=True,
        ),
        # LTX-Video distilled (0.9.6+ "distilled" checkpoints): about 8 steps at guidance 1,
        # so cfg_scale is ignored; an explicit schedule goes in call_kwargs.timesteps.
        Family(
            "ltx-distilled",
            ("LTXPipeline", "LTXConditionPipeline"),
            32,
            8,
            257,
            24,
            512,
            8,
            1.0,
            (1.0, 1.0),
            max_sequence_length=128,
            frame_rate_argument=True,
        ),
        # CogVideoX 2B / 5B: 720x480 only, 8 fps, 8N+1 frames with N <= 6 (49 = 6 s); the 2B
        # model card runs it in float16, the 5B in bfloat16.
        _cogvideox(
            "cogvideox-2b",
            frame_step=8,
            max_frames=49,
            fps=8,
            short_side=480,
            sizes={480: {"16:9": (720, 480)}},
            durations=(1, 2, 3, 4, 5, 6),
            dtype="float16",
            note="16:9 renders at the trained 720x480",
        ),
        _cogvideox(
            "cogvideox-5b",
            frame_step=8,
            max_frames=49,
            fps=8,
            short_side=480,
            sizes={480: {"16:9": (720, 480)}},
            durations=(1, 2, 3, 4, 5, 6),
            note="16:9 renders at the trained 720x480",
        ),
        # CogVideoX 1.5 5B: 1360x768 @16 fps, 16N+1 frames (81 or 161: 5 or 10 s); the
        # reference demo (cli_demo.py) samples with CogVideoXDPMScheduler and dynamic CFG.
        _cogvideox(
            "cogvideox1.5",
            frame_step=16,
            max_frames=161,
            fps=16,
            short_side=768,
            sizes={768: {"16:9": (1360, 768)}},
            durations=(5, 10),
            scheduler="CogVideoXDPMScheduler",
            call_defaults={"use_dynamic_cfg": True},
        ),
        # HunyuanVideo 13B: the repo's size buckets (540p: 960x544, 544x960, 720x720; 720p:
        # 1280x720, 720x1280, 960x960) @24 fps, 129 frames; guidance is embedded (distilled),
        # shift 7. The transformer runs in bfloat16, the VAE and both text encoders in float16
        # (diffusers HunyuanVideo docs). The negative prompt acts only with true_cfg_scale > 1.
        Family(
            "hunyuan",
            ("HunyuanVideoPipeline",),
            16,
            4,
            129,
            24,
            544,
            50,
            6.0,
            (1.0, 12.0),
            sizes={
                544: {"16:9": (960, 544), "9:16": (544, 960), "1:1": (720, 720)},
                720: {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)},
            },
            flow_shift=7.0,
            negative_prompt=False,
            max_sequence_length=256,
            component_dtypes={
                "vae": "float16",
                "text_encoder": "float16",
                "text_encoder_2": "float16",
            },
            faster_cache=True,
            guidance_distilled=True,
        ),
    )
}

PIPELINES = tuple(dict.fromkeys(p for f in FAMILIES.values() for p in f.pipelines))
WAN_14B_WIDTH = 3072  # transformer width (heads x head dim): 1.3B is 1536, 14B is 5120


class FamilyError(ValueError):
    """The entry's family cannot be determined; the message names the key to set."""


def is_local_path(weights: str) -> bool:
    """A path, not a hub id: absolute, relative with ./ or ../, ~, or existing on disk."""
    return weights.startswith(("/", "./", "../", "~")) or Path(weights).expanduser().exists()


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def detect_family(weights: str, pipeline: str | None) -> Family:
    """The family of a local diffusers directory, from its ``model_index.json``.

    ``pipeline`` (the entry's key) overrides ``_class_name``; variants are read from the pipeline
    config (Wan 2.2: ``boundary_ratio`` / ``expand_timesteps``) or the transformer config (Wan
    2.1 size from its width; CogVideoX 1.5: ``patch_size_t``; 5B: rotary embeddings). LTX's
    distilled checkpoints look like the base ones: set ``family = "ltx-distilled"``.
    """
    root = Path(weights).expanduser()
    index = _read_json(root / "model_index.json") if is_local_path(weights) else None
    if index is None:
        where = (
            f"{root} has no readable model_index.json"
            if is_local_path(weights)
            else f"{weights!r} is not a local directory"
        )
        raise FamilyError(f"{where}; set family (one of {', '.join(FAMILIES)})")
    class_name = pipeline or str(index.get("_class_name", ""))
    transformer = _read_json(root / "transformer" / "config.json") or {}
    if class_name == "WanPipeline":
        second = index.get("transformer_2")
        if index.get("boundary_ratio") is not None or (isinstance(second, list) and second[0]):
            return FAMILIES["wan2.2-a14b"]
        if index.get("expand_timesteps"):
            return FAMILIES["wan2.2-ti2v-5b"]
        width = int(transformer.get("num_attention_heads", 0)) * int(
            transformer.get("attention_head_dim", 0)
        )
        return FAMILIES["wan2.1-14b" if width >= WAN_14B_WIDTH else "wan2.1-1.3b"]
    if class_name == "CogVideoXPipeline":
        if transformer.get("patch_size_t") is not None:
            return FAMILIES["cogvideox1.5"]
        if transformer.get("use_rotary_positional_embeddings"):
            return FAMILIES["cogvideox-5b"]
        return FAMILIES["cogvideox-2b"]
    if class_name in ("LTXPipeline", "LTXConditionPipeline"):
        return FAMILIES["ltx"]
    if class_name == "HunyuanVideoPipeline":
        return FAMILIES["hunyuan"]
    raise FamilyError(
        f"pipeline {class_name!r} is not supported (supported: {', '.join(PIPELINES)})"
    )
