"""The watermark blended into YUV 4:2:0 planes looks like the one blended into RGB."""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from reelgate.media import Watermark

W, H = 640, 360


def to_rgb(planes: np.ndarray) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
    frame.colorspace, frame.color_range = Colorspace.ITU709, ColorRange.MPEG
    rgb = frame.reformat(
        format="rgb24", src_colorspace=Colorspace.ITU709, src_color_range=ColorRange.MPEG
    )
    return np.asarray(rgb.to_ndarray(), dtype=np.int32)


def to_yuv(rgb: np.ndarray) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
    return np.asarray(frame.to_ndarray(), dtype=np.uint8)


def test_yuv_watermark_matches_the_rgb_one_in_its_corner_only() -> None:
    rng = np.random.default_rng(7)
    # a smooth picture: 4:2:0 cannot hold pixel-sharp colour edges in either path
    gradient = np.linspace(20, 230, W, dtype=np.float64)[np.newaxis, :, np.newaxis]
    rgb = np.broadcast_to(gradient * np.array([1.0, 0.8, 0.5]), (H, W, 3)).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb + rng.integers(0, 3, rgb.shape, dtype=np.uint8))
    mark = Watermark(W, H)
    via_rgb = to_rgb(to_yuv(mark.apply(rgb)))
    planes = to_yuv(rgb)
    clean = to_rgb(planes)
    mark.apply_yuv420(planes)
    via_yuv = to_rgb(planes)
    changed = np.abs(via_yuv - clean).sum(axis=2) > 0
    rows, cols = np.nonzero(changed)
    assert rows.min() > H // 2 and cols.min() > W // 2  # only the bottom-right corner
    assert np.abs(via_yuv - clean).max() > 60  # the mark is visible
    # the same mark as blending in RGB, up to 4:2:0 rounding at its edges
    assert np.abs(via_yuv - via_rgb).mean() < 0.2
    assert np.abs(via_yuv - via_rgb).max() <= 16
