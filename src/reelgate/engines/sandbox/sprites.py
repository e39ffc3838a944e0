"""Things that move by themselves — hot-air balloons drifting across the sky.

They live at their own depth, so the camera moves them like any layer, and they are drawn onto
the finished frame's planes, each into a small window around it (a few thousand pixels per
frame): the Y plane pixel by pixel, each U and V sample by how much of its 2x2 block of pixels
a balloon covers, as the layers are drawn (:mod:`.sampler`).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from reelgate.media.color import to_yuv444

from .camera import Pose
from .sampler import Planes, blend_blocks
from .theme import BALLOON_COLORS, Color, Theme

BALLOON_DEPTH = 3.5
_BASKET: Color = (90, 60, 30)  # a dark brown basket


def draw_balloons(planes: Planes, theme: Theme, pose: Pose, t: float, unit: float) -> None:
    """Draw the balloons at clip time ``t`` (0..1) into a frame's ``planes`` (in place)."""
    height, width = planes[0].shape
    m = pose.magnification(BALLOON_DEPTH)
    for x, y, vx, vy, r, color in theme.balloons:
        cx, cy = (x + vx * t) * unit, (y + vy * t) * unit
        sx, sy = pose.to_screen(cx, cy, BALLOON_DEPTH)
        bx, by = pose.to_screen(cx, cy + 1.5 * r * unit, BALLOON_DEPTH)
        radius = r * unit * m
        _disc(planes, sx + width / 2, sy + height / 2, radius, BALLOON_COLORS[color])
        _disc(planes, bx + width / 2, by + height / 2, radius * 0.3, _BASKET)


@cache
def _yuv(color: Color) -> tuple[int, int, int]:
    texel = np.array(color, dtype=np.float32).reshape(3, 1, 1)
    y, u, v = (int(value) for value in to_yuv444(texel).ravel())
    return y, u, v


def _disc(planes: Planes, cx: float, cy: float, radius: float, color: Color) -> None:
    """A filled circle centred on ``(cx, cy)``, in frame pixels: each Y pixel whose centre is
    inside takes its colour; each U and V sample blends by how many of its four pixels are."""
    y_plane, u_plane, v_plane = planes
    value_y, value_u, value_v = _yuv(color)
    height, width = y_plane.shape
    i0, i1 = max(int(cy - radius), 0), min(int(cy + radius) + 2, height)
    j0, j1 = max(int(cx - radius), 0), min(int(cx + radius) + 2, width)
    if i0 >= i1 or j0 >= j1:
        return
    dy = np.arange(i0, i1)[:, None] + 0.5 - cy  # pixel centres
    dx = np.arange(j0, j1)[None, :] + 0.5 - cx
    inside = dx * dx + dy * dy <= radius * radius
    y_plane[i0:i1, j0:j1][inside] = value_y
    # the chroma samples of the blocks the window touches, and how many of their pixels are in
    i0, j0, i1, j1 = i0 // 2, j0 // 2, (i1 + 1) // 2, (j1 + 1) // 2
    dy = np.arange(i0, i1)[:, None] * 2 + 0.5 - cy
    dx = np.arange(j0, j1)[None, :] * 2 + 0.5 - cx
    count = np.zeros((i1 - i0, j1 - j0), dtype=np.uint16)
    for down in (0, 1):
        for right in (0, 1):
            count += (dx + right) ** 2 + (dy + down) ** 2 <= radius * radius
    for plane, value in ((u_plane, value_u), (v_plane, value_v)):
        blend_blocks(plane[i0:i1, j0:j1], 4 - count, count * np.uint16(value) + 2)
