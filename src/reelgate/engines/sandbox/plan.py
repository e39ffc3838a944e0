"""What to render for a request: frame size, rate and count, seed, caption, camera, sound."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from reelgate.domain.kling import frame_size
from reelgate.domain.models import ModelSpec
from reelgate.domain.requests import CameraControl, Text2VideoRequest


@dataclass(frozen=True)
class ClipPlan:
    width: int
    height: int
    fps: int
    frame_count: int
    seed: int
    caption: str
    camera: CameraControl | None = None
    sound: bool = False

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps


def plan_clip(spec: ModelSpec, request: Text2VideoRequest, prompt: str) -> ClipPlan:
    """The clip for ``request`` on ``spec``; ``prompt`` is the prompt without directives."""
    width, height = frame_size(spec, request.mode, request.aspect_ratio)
    fps = int(spec.options.get("fps", 24))
    return ClipPlan(
        width=width,
        height=height,
        fps=fps,
        frame_count=fps * request.duration,
        seed=request_seed(spec.id, prompt, request.negative_prompt, request.cfg_scale),
        caption=prompt,
        camera=request.camera_control,
        sound=request.sound == "on",
    )


def request_seed(model_id: str, prompt: str, negative_prompt: str, cfg_scale: float | None) -> int:
    """A 32-bit seed from what the clip shows (not how it is filmed: size, length, camera).

    SHA-256 of a canonical JSON, never ``hash()``, which Python randomises per process. 32 bits
    so the seed survives JSON clients that read numbers as doubles.
    """
    material = json.dumps(
        {"model": model_id, "prompt": prompt, "negative": negative_prompt, "cfg": cfg_scale},
        sort_keys=True,
        ensure_ascii=False,
    )
    return int.from_bytes(hashlib.sha256(material.encode()).digest()[:4], "big")
