"""Frames of a planned clip, and the clip itself written with :func:`reelgate.media.encode_clip`.

The world is painted once, in the encoder's YUV (:mod:`.world`); each frame then
samples it through the camera pose straight into the planes of a ``yuv420p`` frame
(:mod:`.sampler`), draws the balloons and blends the caption, so the encoder converts nothing.
When the camera only turns or zooms, every layer moves alike and the layers are flattened into
one texture up front, so a frame is a single gather.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from reelgate.media import ClipInfo, EncodeSettings, encode_clip
from reelgate.media.color import yuv420_planes

from .camera import CameraPath, camera_path
from .caption import caption_overlay
from .plan import ClipPlan
from .sampler import LayerSampler, visible_box
from .sprites import draw_balloons
from .synth import synth_soundtrack
from .theme import make_theme
from .world import GROUND, HILLS, MOUNTAINS, SKY, Box, Layer, paint_layer

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

        def paint(depth: float, box: Box) -> Layer:
            return paint_layer(depth, self.theme, self.unit, box)

        def sample(layer: Layer) -> LayerSampler:
            return LayerSampler(layer, width, height)

        # The layers are painted and converted side by side: numpy and swscale release the
        # GIL for most of the work, and the encoders have no frame to work on yet.
        with ThreadPoolExecutor(PAINTERS, thread_name_prefix="paint") as painters:
            caption = painters.submit(caption_overlay, plan.caption, width, height)
            if self.path.parallax:  # each layer painted and converted in one go
                self._samplers = list(painters.map(lambda d, b: sample(paint(d, b)), depths, boxes))
            else:  # flattened into one first
                self._samplers = [sample(_flatten(list(painters.map(paint, depths, boxes))))]
            self._caption = caption.result()

    def frame(self, index: int) -> NDArray[np.uint8]:
        """Frame ``index`` as a ``yuv420p`` array (see :mod:`reelgate.media.color`)."""
        n = self.plan.frame_count
        t = index / (n - 1) if n > 1 else 0.0
        pose = self.path.at(t)
        frame = np.empty((self.plan.height * 3 // 2, self.plan.width), dtype=np.uint8)
        planes = yuv420_planes(frame)
        self._samplers[0].copy_into(pose, planes)
        for sampler in self._samplers[1:]:
            sampler.draw_over(pose, planes)
        draw_balloons(planes, self.theme, pose, t, self.unit)
        self._caption.blend_into(frame)
        return frame

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
    yuv = layers[0].yuv.copy()
    for layer in layers[1:]:
        for plane, above in zip(yuv, layer.yuv, strict=True):
            np.copyto(plane, above, where=layer.opaque)
    return Layer(SKY, yuv, layers[0].opaque, layers[0].box)
