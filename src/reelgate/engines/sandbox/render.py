"""Frames of a planned clip, and the clip itself written with :func:`reelgate.media.encode_clip`.

The world is painted once (:mod:`.world`); each frame then samples it through the camera pose
(:mod:`.sampler`), draws the balloons and blends the caption. When the camera only turns or
zooms, every layer moves alike and the layers are flattened into one texture up front, so a
frame is a single gather.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from reelgate.media import ClipInfo, EncodeSettings, encode_clip

from .camera import CameraPath, camera_path
from .caption import caption_overlay
from .plan import ClipPlan
from .sampler import LayerSampler, visible_box
from .sprites import draw_balloons
from .synth import synth_soundtrack
from .theme import make_theme
from .world import GROUND, HILLS, MOUNTAINS, OPAQUE, SKY, Layer, paint_layer

VIDEO_NAME = "video.mp4"
WATERMARKED_NAME = "video_watermarked.mp4"
THUMBNAIL_NAME = "thumbnail.jpg"
SAMPLE_RATE = 48000
_PATH_SAMPLES = 16  # poses checked to size the textures; motion is smooth between them
PAINTERS = 2  # threads painting a clip's layers


class Scene:
    """A clip's world, camera and caption, ready to produce frame after frame."""

    def __init__(self, plan: ClipPlan) -> None:
        self.plan = plan
        width, height = plan.width, plan.height
        self.unit = float(min(width, height))
        self.theme = make_theme(plan.seed, plan.caption)
        drift = 1.0 if plan.seed & 1 else -1.0  # which way the default drift goes
        self.path: CameraPath = camera_path(plan.camera, self.unit, drift)
        poses = [self.path.at(k / _PATH_SAMPLES) for k in range(_PATH_SAMPLES + 1)]
        depths = (SKY, MOUNTAINS, HILLS, GROUND)
        if self.path.parallax:
            boxes = [visible_box(poses, d, width, height) for d in depths]
        else:
            boxes = [visible_box(poses, SKY, width, height)] * len(depths)
        # The layers are painted side by side: numpy releases the GIL for most of the work,
        # and the encoders have no frame to work on yet.
        with ThreadPoolExecutor(PAINTERS, thread_name_prefix="paint") as painters:
            layers = list(
                painters.map(lambda d, b: paint_layer(d, self.theme, self.unit, b), depths, boxes)
            )
        if not self.path.parallax:
            layers = [_flatten(layers)]
        self._samplers = [LayerSampler(layer, width, height) for layer in layers]
        self._caption = caption_overlay(plan.caption, width, height)

    def frame(self, index: int) -> NDArray[np.uint8]:
        """Frame ``index`` as ``height x width x 4`` RGBX bytes."""
        n = self.plan.frame_count
        t = index / (n - 1) if n > 1 else 0.0
        pose = self.path.at(t)
        # A copy: the base sample may be a view of the texture, and we draw on the frame.
        frame = np.array(self._samplers[0].sample(pose), dtype="<u4", order="C", copy=True)
        for sampler in self._samplers[1:]:
            first, band, opaque = sampler.sample_opaque_band(pose)
            rows = frame[first : first + band.shape[0]]
            np.copyto(rows, band, where=opaque)
        draw_balloons(frame, self.theme, pose, t, self.unit)
        # little-endian uint32 r | g << 8 | b << 16 | a << 24 is the byte order R, G, B, A
        rgba = frame.view(np.uint8).reshape(self.plan.height, self.plan.width, 4)
        self._caption.blend_into(rgba)
        return rgba

    def frames(
        self, before_frame: Callable[[int], None] | None = None
    ) -> Iterator[NDArray[np.uint8]]:
        """All frames in order; ``before_frame(i)`` runs first each time (pacing, cancellation)."""
        for index in range(self.plan.frame_count):
            if before_frame is not None:
                before_frame(index)
            yield self.frame(index)


def render_clip(
    plan: ClipPlan,
    out_dir: Path,
    *,
    watermark: bool,
    before_frame: Callable[[int], None] | None = None,
    settings: EncodeSettings | None = None,
) -> ClipInfo:
    """Render and encode ``plan`` into ``out_dir``: the MP4, its watermarked copy, a thumbnail."""
    scene = Scene(plan)
    audio = synth_soundtrack(plan.seed, plan.duration, SAMPLE_RATE) if plan.sound else None
    return encode_clip(
        scene.frames(before_frame),
        fps=plan.fps,
        width=plan.width,
        height=plan.height,
        out_path=out_dir / VIDEO_NAME,
        audio=audio,
        sample_rate=SAMPLE_RATE,
        watermarked_path=out_dir / WATERMARKED_NAME if watermark else None,
        thumbnail_path=out_dir / THUMBNAIL_NAME,
        settings=settings,
    )


def _flatten(layers: list[Layer]) -> Layer:
    """Composite layers that share a box into one opaque layer (valid when nothing moves apart)."""
    texture = layers[0].texture.copy()
    for layer in layers[1:]:
        np.copyto(texture, layer.texture, where=layer.texture >= OPAQUE)
    return Layer(SKY, texture, layers[0].box)
