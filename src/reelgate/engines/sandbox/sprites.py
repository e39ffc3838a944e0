"""Things that move by themselves — hot-air balloons drifting across the sky.

They live at their own depth, so the camera moves them like any layer, and they are drawn onto
the finished frame, each into a small window around it (a few thousand pixels per frame).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .camera import Pose
from .theme import BALLOON_COLORS, Theme
from .world import OPAQUE

BALLOON_DEPTH = 3.5
_BASKET = np.uint32(0x1E3C5A) | OPAQUE  # packed RGBA: a dark brown basket


def draw_balloons(
    frame: NDArray[np.uint32], theme: Theme, pose: Pose, t: float, unit: float
) -> None:
    """Draw the balloons at clip time ``t`` (0..1) into ``frame`` (packed RGBA, in place)."""
    height, width = frame.shape
    m = pose.magnification(BALLOON_DEPTH)
    for x, y, vx, vy, r, color in theme.balloons:
        cx, cy = (x + vx * t) * unit, (y + vy * t) * unit
        sx, sy = pose.to_screen(cx, cy, BALLOON_DEPTH)
        bx, by = pose.to_screen(cx, cy + 1.5 * r * unit, BALLOON_DEPTH)
        radius = r * unit * m
        _disc(frame, sx + width / 2, sy + height / 2, radius, _pack(BALLOON_COLORS[color]))
        _disc(frame, bx + width / 2, by + height / 2, radius * 0.3, _BASKET)


def _pack(color: tuple[int, int, int]) -> np.uint32:
    r, g, b = color
    return np.uint32(r | (g << 8) | (b << 16)) | OPAQUE


def _disc(frame: NDArray[np.uint32], cx: float, cy: float, radius: float, value: np.uint32) -> None:
    height, width = frame.shape
    i0, i1 = max(int(cy - radius), 0), min(int(cy + radius) + 2, height)
    j0, j1 = max(int(cx - radius), 0), min(int(cx + radius) + 2, width)
    if i0 >= i1 or j0 >= j1:
        return
    dy = np.arange(i0, i1)[:, None] + 0.5 - cy
    dx = np.arange(j0, j1)[None, :] + 0.5 - cx
    frame[i0:i1, j0:j1][dx * dx + dy * dy <= radius * radius] = value
