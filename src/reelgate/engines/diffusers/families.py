"""Model families: each one's grids and recommended defaults, and how an entry's family is found.

A family fixes what the checkpoint was trained for: the size grid (VAE stride x patch size),
the frame grid (frames = k * frame_step + 1, the VAE's temporal stride), the native fps, and the
recommended steps, guidance and scheduler shift. Sources: the diffusers pipelines' ``__call__``
defaults and docs, and the Wan / LTX / CogVideoX / HunyuanVideo reference configs (see
``docs/reference/video-models-and-engines.md`` §1).

Nothing here imports torch: detection reads ``model_index.json`` (and for CogVideoX the
transformer's ``config.json``) when the weights are a local directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Family:
    name: str
    pipeline: str  # diffusers pipeline class
    size_multiple: int  # width and height are multiples of this
    frame_step: int  # frame counts are k * frame_step + 1
    max_frames: int  # longest clip the checkpoint was trained for; bounds default durations
    fps: int
    short_side: int  # default profile short side, pixels
    steps: int
    guidance_scale: float
    guidance_range: tuple[float, float]  # what cfg_scale 0 and 1 map to
    guidance_scale_2: float | None = None  # Wan 2.2 A14B: the low-noise expert's guidance
    flow_shift: float | None = None  # None: the scheduler shifts by itself (or has no shift)
    flow_shift_hd: float | None = None  # used instead when short_side >= 720
    vae_dtype: str | None = None  # None: the pipeline's dtype
    negative_prompt: bool = True  # False: the pipeline ignores it at its default settings
    max_sequence_length: int | None = None
    frame_rate_argument: bool = False  # LTX conditions its RoPE on the frame rate

    def default_flow_shift(self, short_side: int) -> float | None:
        if short_side >= 720 and self.flow_shift_hd is not None:
            return self.flow_shift_hd
        return self.flow_shift


# fmt: off
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        # Wan 2.1 T2V 1.3B / 14B: 832x480 or 1280x720 @16 fps, 81 frames; shift 3 (480p), 5 (720p).
        Family(
            "wan2.1", "WanPipeline", 16, 4, 81, 16, 480, 50, 5.0, (1.0, 10.0),
            flow_shift=3.0, flow_shift_hd=5.0, vae_dtype="float32", max_sequence_length=512,
        ),
        # Wan 2.2 T2V A14B: two experts split at boundary_ratio 0.875; 40 steps, guidance
        # 4.0 (high noise) / 3.0 (low noise), shift 12 (wan/configs/wan_t2v_A14B.py).
        Family(
            "wan2.2-a14b", "WanPipeline", 16, 4, 81, 16, 480, 40, 4.0, (1.0, 8.0),
            guidance_scale_2=3.0, flow_shift=12.0, vae_dtype="float32", max_sequence_length=512,
        ),
        # Wan 2.2 TI2V 5B: 48-channel VAE at 16x16x4, so sizes are multiples of 32;
        # 1280x704 @24 fps, 121 frames, 50 steps, guidance 5, shift 5.
        Family(
            "wan2.2-ti2v-5b", "WanPipeline", 32, 4, 121, 24, 704, 50, 5.0, (1.0, 10.0),
            flow_shift=5.0, vae_dtype="float32", max_sequence_length=512,
        ),
        # LTX-Video 0.9.x: 32x spatial / 8x temporal VAE; 768x512 @24 fps, up to 257 frames.
        # Its FlowMatch scheduler shifts by sequence length, so there is no fixed flow_shift.
        Family(
            "ltx", "LTXPipeline", 32, 8, 257, 24, 512, 50, 3.0, (1.0, 6.0),
            max_sequence_length=128, frame_rate_argument=True,
        ),
        # CogVideoX 2B / 5B: 720x480 @8 fps, 49 frames (6 s); DDIM/DPM scheduler, no shift.
        Family(
            "cogvideox", "CogVideoXPipeline", 16, 4, 49, 8, 480, 50, 6.0, (1.0, 12.0),
            max_sequence_length=226,
        ),
        # CogVideoX 1.5 5B: 1360x768 @16 fps, 81 or 161 frames.
        Family(
            "cogvideox1.5", "CogVideoXPipeline", 16, 4, 161, 16, 768, 50, 6.0, (1.0, 12.0),
            max_sequence_length=226,
        ),
        # HunyuanVideo 13B: 960x544 (540p) or 1280x720 @24 fps, 129 frames; guidance is
        # embedded (distilled), shift 7. The negative prompt only acts with true_cfg_scale > 1.
        Family(
            "hunyuan", "HunyuanVideoPipeline", 16, 4, 129, 24, 544, 50, 6.0, (1.0, 12.0),
            flow_shift=7.0, negative_prompt=False, max_sequence_length=256,
        ),
    )
}
# fmt: on

BASE_FAMILY = {
    "WanPipeline": "wan2.1",
    "LTXPipeline": "ltx",
    "CogVideoXPipeline": "cogvideox",
    "HunyuanVideoPipeline": "hunyuan",
}
PIPELINES = tuple(BASE_FAMILY)


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
    config (Wan 2.2: ``boundary_ratio`` / ``expand_timesteps``) or the transformer config
    (CogVideoX 1.5: ``patch_size_t``).
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
    if class_name not in BASE_FAMILY:
        raise FamilyError(
            f"pipeline {class_name!r} is not supported (supported: {', '.join(PIPELINES)})"
        )
    if class_name == "WanPipeline":
        second = index.get("transformer_2")
        if index.get("boundary_ratio") is not None or (isinstance(second, list) and second[0]):
            return FAMILIES["wan2.2-a14b"]
        if index.get("expand_timesteps"):
            return FAMILIES["wan2.2-ti2v-5b"]
    if class_name == "CogVideoXPipeline":
        transformer = _read_json(root / "transformer" / "config.json") or {}
        if transformer.get("patch_size_t") is not None:
            return FAMILIES["cogvideox1.5"]
    return FAMILIES[BASE_FAMILY[class_name]]
