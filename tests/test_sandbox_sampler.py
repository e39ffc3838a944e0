"""Layers sampled into the planes of a yuv420p frame: the Y plane takes the nearest texel, and
each chroma sample is the mean of the 2x2 block of pixels it stands for, so edges get no
colour fringes."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from reelgate.engines.sandbox.camera import Pose
from reelgate.engines.sandbox.sampler import LayerSampler
from reelgate.engines.sandbox.sprites import _disc
from reelgate.engines.sandbox.world import SKY, Box, Layer
from reelgate.media.color import to_yuv444, yuv420_planes

W, H = 16, 8
RED, BLUE = (220, 30, 40), (20, 40, 230)


Color = tuple[int, int, int]


def yuv(color: Color) -> NDArray[np.int64]:
    return to_yuv444(np.array(color, np.float32).reshape(3, 1, 1)).ravel().astype(np.int64)


def layer(depth: float, colors: dict[Color, NDArray[np.bool_]]) -> Layer:
    """A layer of these colours where their masks are (transparent elsewhere); texel (i, j) is
    pixel (i, j) of a W x H frame when the camera has not moved."""
    rgb = np.zeros((3, H, W), np.float32)
    opaque = np.zeros((H, W), np.bool_)
    for color, where in colors.items():
        rgb[:, where] = np.array(color, np.float32)[:, None]
        opaque |= where
    return Layer(depth, to_yuv444(rgb), opaque, Box(-W // 2, -H // 2, W // 2, H // 2))


def everywhere() -> NDArray[np.bool_]:
    return np.ones((H, W), np.bool_)


def blank_frame() -> NDArray[np.uint8]:
    return np.zeros((H * 3 // 2, W), dtype=np.uint8)


def test_a_layer_edge_blends_the_chroma_of_the_block_it_splits() -> None:
    near = np.zeros((H, W), np.bool_)
    near[:, :5] = True  # the edge splits the chroma blocks of columns 4 and 5
    near[:3, 8:12] = True  # and the blocks of rows 2 and 3
    frame = blank_frame()
    planes = yuv420_planes(frame)
    LayerSampler(layer(SKY, {BLUE: everywhere()}), W, H).copy_into(Pose(), planes)
    LayerSampler(layer(2.0, {RED: near}), W, H).draw_over(Pose(), planes)
    y, u, v = (plane.astype(np.int64) for plane in planes)
    red, blue = yuv(RED), yuv(BLUE)
    assert (y[:, :5] == red[0]).all() and (y[:, 5:8] == blue[0]).all()
    assert (y[:3, 8:12] == red[0]).all() and (y[3:, 8:12] == blue[0]).all()
    for plane, channel in ((u, 1), (v, 2)):
        assert (plane[:, :2] == red[channel]).all()  # blocks wholly red
        assert (plane[:, 3] == blue[channel]).all()  # wholly blue
        half = (red[channel] + blue[channel] + 1) // 2
        assert np.abs(plane[:, 2] - half).max() <= 1  # columns 4 and 5: one of each
        assert (plane[0, 4:6] == red[channel]).all()
        assert np.abs(plane[1, 4:6] - half).max() <= 1  # rows 2 and 3: one of each
        assert (plane[2:, 4:6] == blue[channel]).all()


@pytest.mark.parametrize("pose", [Pose(focal=1.5), Pose(roll=0.3)])
def test_scaled_and_turned_layers_are_gathered(pose: Pose) -> None:
    left = np.zeros((H, W), np.bool_)
    left[:, : W // 2] = True  # red on the left, blue on the right
    frame = blank_frame()
    planes = yuv420_planes(frame)
    LayerSampler(layer(SKY, {RED: left, BLUE: ~left}), W, H).copy_into(pose, planes)
    y, u, _ = (plane.astype(np.int64) for plane in planes)
    red, blue = yuv(RED), yuv(BLUE)
    assert y[H // 2, 0] == red[0] and y[H // 2, -1] == blue[0]
    assert u[H // 4, 0] == red[1] and u[H // 4, -1] == blue[1]


def test_only_an_opaque_layer_fills_a_frame() -> None:
    with pytest.raises(ValueError, match="opaque everywhere"):
        LayerSampler(layer(2.0, {}), W, H).copy_into(Pose(), yuv420_planes(blank_frame()))


def test_a_disc_blends_the_chroma_samples_on_its_rim() -> None:
    frame = blank_frame()
    planes = yuv420_planes(frame)
    for plane, value in zip(planes, yuv(BLUE), strict=True):
        plane[...] = value
    _disc(planes, 8.0, 4.0, 2.6, RED)
    y, u, v = (plane.astype(np.int64) for plane in planes)
    red, blue = yuv(RED), yuv(BLUE)
    inside = y == red[0]
    assert inside.sum() == 24 and not inside[0].any()  # the pixel centres within 2.6 px
    assert set(np.unique(y)) == {red[0], blue[0]}
    # each chroma sample is the mean of its four pixels: some wholly inside, some on the rim
    count = inside.reshape(H // 2, 2, W // 2, 2).sum(axis=(1, 3))
    assert {0, 4} < set(np.unique(count))
    for plane, channel in ((u, 1), (v, 2)):
        expected = (blue[channel] * (4 - count) + red[channel] * count) / 4
        assert np.abs(plane - expected).max() <= 0.5
