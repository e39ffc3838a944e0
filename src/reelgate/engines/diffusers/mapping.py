"""From a Kling request to the pipeline's arguments: pure functions, no torch.

Rules (documented in ``bench/README.md`` and the engine's docstring):

- size: the family's official size at the profile's ``short_side`` (Wan 832x480, CogVideoX
  720x480, HunyuanVideo's buckets...); for families without a size list (LTX-Video) the short
  edge is ``short_side`` and the long edge ``short * 16/9`` on the family's grid (ties go down).
  A profile's ``sizes`` table overrides either per aspect ratio.
- frames: ``fps * duration`` rounded to the nearest multiple of the frame step, plus one
  (Wan, Hunyuan: 4k+1; LTX, CogVideoX: 8k+1; CogVideoX 1.5: 16k+1). Wan at 16 fps: 5 s -> 81.
- guidance: ``cfg_scale`` is piecewise linear onto the profile's ``guidance_range``:
  0 -> low, 0.5 (Kling's default) -> the profile's ``guidance_scale``, 1 -> high. Absent: the
  profile's ``guidance_scale``. Guidance <= 1 turns classifier-free guidance off.
- seed: the entry's ``seed`` if set, else the first 4 bytes of sha256(task id), so a retried
  task renders the same clip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelgate.domain.requests import CameraControl
from reelgate.engines.base import Job

from .entry import ModelEntry
from .profiles import Profile, snap


@dataclass(frozen=True)
class GenerationPlan:
    """Everything the generation process needs for one attempt of one task."""

    task_id: str
    model_id: str
    mode: str  # the profile used
    prompt: str
    negative_prompt: str
    width: int
    height: int
    num_frames: int
    fps: int
    steps: int
    guidance_scale: float
    guidance_scale_2: float | None
    seed: int
    workdir: Path
    watermark: bool
    try_number: int = 1  # 1, or 2 when retried after the generation process crashed
    call_kwargs: dict[str, Any] = field(default_factory=dict)


def frame_size(aspect_ratio: str, profile: Profile) -> tuple[int, int]:
    """(width, height) for an aspect ratio: resolved per profile when the catalogue was read."""
    return profile.sizes[aspect_ratio]


def frame_count(duration: int, fps: int, frame_step: int) -> int:
    """Frames for ``duration`` seconds: k * frame_step + 1 with k * frame_step nearest fps * s."""
    return snap(fps * duration, frame_step) + 1


def guidance_for(cfg_scale: float | None, default: float, low: float, high: float) -> float:
    """Map Kling's cfg_scale (0..1, default 0.5) onto [low, high] through ``default`` at 0.5."""
    if cfg_scale is None:
        return default
    c = min(max(cfg_scale, 0.0), 1.0)
    if c <= 0.5:
        return round(low + (default - low) * (c / 0.5), 4)
    return round(default + (high - default) * ((c - 0.5) / 0.5), 4)


def seed_for(task_id: str) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:4], "big")


_PRESETS = {
    "down_back": "the camera moves down and pulls back",
    "forward_up": "the camera moves forward and tilts up",
    "right_turn_forward": "the camera turns right while moving forward",
    "left_turn_forward": "the camera turns left while moving forward",
}
_AXES = {
    "horizontal": ("the camera trucks right", "the camera trucks left"),
    "vertical": ("the camera pedestals up", "the camera pedestals down"),
    "pan": ("the camera pans right", "the camera pans left"),
    "tilt": ("the camera tilts up", "the camera tilts down"),
    "roll": ("the camera rolls clockwise", "the camera rolls counter-clockwise"),
    "zoom": ("the camera zooms out", "the camera zooms in"),
}


def camera_phrase(camera: CameraControl) -> str:
    """A prompt phrase for a camera movement (open T2V models take motion from the text)."""
    if camera.type != "simple" or camera.config is None:
        return _PRESETS[camera.type]
    axis, value = camera.config.axis()
    positive, negative = _AXES[axis]
    speed = "slowly " if abs(value) < 4 else ("quickly " if abs(value) > 7 else "")
    phrase = positive if value > 0 else negative
    return phrase.replace("the camera ", f"the camera {speed}")


def plan_for(entry: ModelEntry, job: Job, try_number: int = 1) -> GenerationPlan:
    """The pipeline arguments for ``job`` (already validated against the model's capabilities)."""
    req = job.request
    profile = entry.profile_for(job.model.effective_mode(req.mode))
    width, height = frame_size(req.aspect_ratio, profile)
    prompt = req.prompt
    if req.camera_control is not None and entry.camera_control:
        prompt = f"{prompt.rstrip().rstrip('.')}. {camera_phrase(req.camera_control)}."
    low, high = profile.guidance_range
    guidance = guidance_for(req.cfg_scale, profile.guidance_scale, low, high)
    guidance_2 = None
    if profile.guidance_scale_2 is not None:
        guidance_2 = guidance_for(req.cfg_scale, profile.guidance_scale_2, low, high)
    requested_seed = getattr(req, "seed", None)  # honoured if the request model ever carries one
    seed = requested_seed if isinstance(requested_seed, int) else entry.seed
    timesteps = entry.call_kwargs.get("timesteps")  # an explicit schedule sets the step count
    return GenerationPlan(
        task_id=job.task_id,
        model_id=entry.id,
        mode=profile.mode,
        prompt=prompt,
        negative_prompt=req.negative_prompt or entry.default_negative_prompt,
        width=width,
        height=height,
        num_frames=frame_count(req.duration, profile.fps, entry.family.frame_step),
        fps=profile.fps,
        steps=len(timesteps) if isinstance(timesteps, list) else profile.steps,
        guidance_scale=guidance,
        guidance_scale_2=guidance_2,
        seed=seed_for(job.task_id) if seed is None else seed,
        workdir=job.workdir,
        watermark=req.watermark,
        try_number=try_number,
        call_kwargs=dict(entry.call_kwargs),
    )
