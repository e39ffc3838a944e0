"""Per-frame sampling of a layer texture through a camera pose (nearest texel).

Without roll, the pose is separable — each output column reads one texture column and each row
one texture row — so a frame is two cheap gathers, or just a slice when nothing is scaled.
Roll needs a full 2D index, computed from a coordinate grid built once per clip.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from .camera import Pose
from .world import OPAQUE, Box, Layer


class LayerSampler:
    def __init__(self, layer: Layer, width: int, height: int) -> None:
        self.layer = layer
        self._texture = layer.texture
        self._flat = layer.texture.ravel()
        # which texels are opaque, found once: a layer drawn over others copies only those
        self._opaque = np.asarray(layer.texture >= OPAQUE)
        self._flat_opaque = self._opaque.ravel()
        self._cols = np.arange(width, dtype=np.float64) + 0.5 - width / 2  # pixel centres
        self._rows = np.arange(height, dtype=np.float64) + 0.5 - height / 2
        self._grid: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
        # texture rows holding any opaque texel: a layer drawn over others covers only those
        self._opaque_rows: NDArray[np.bool_] = np.asarray(self._opaque.any(axis=1))

    def sample(self, pose: Pose) -> NDArray[np.uint32]:
        """The layer as the camera sees it: ``height x width``, possibly a view of the texture."""
        return _take(self._texture, self._flat, self._texels(pose, whole=True)[1])

    def sample_opaque_band(self, pose: Pose) -> tuple[int, NDArray[np.uint32], NDArray[np.bool_]]:
        """``(first, band, opaque)``: the rows ``first..first + len(band)`` of :meth:`sample`
        that may hold opaque texels (all rows when the camera rolls), and which of them do."""
        first, texels = self._texels(pose, whole=False)
        band = _take(self._texture, self._flat, texels)
        return first, band, _take(self._opaque, self._flat_opaque, texels)

    def _texels(self, pose: Pose, *, whole: bool) -> tuple[int, _Texels]:
        """Where the frame's pixels (from row ``first``, all rows when ``whole``) read the
        texture: a slice, a row and column gather, or flat indices when the camera rolls."""
        depth, box = self.layer.depth, self.layer.box
        m = pose.magnification(depth)
        ox, oy = pose.offset(depth)
        th, tw = self._texture.shape
        if pose.roll == 0:
            ix = np.clip(np.floor(self._cols / m + ox - box.x0), 0, tw - 1).astype(np.intp)
            iy = np.clip(np.floor(self._rows / m + oy - box.y0), 0, th - 1).astype(np.intp)
            first = 0
            if not whole:
                rows = np.flatnonzero(self._opaque_rows[iy])
                first, last = (int(rows[0]), int(rows[-1]) + 1) if rows.size else (0, 0)
                iy = iy[first:last]
            if iy.size and _is_run(ix) and _is_run(iy):
                return first, (slice(iy[0], iy[-1] + 1), slice(ix[0], ix[-1] + 1))
            return first, (iy, ix)
        gx, gy = self._coordinate_grid()
        cos, sin = np.float32(math.cos(pose.roll) / m), np.float32(math.sin(pose.roll) / m)
        x = gx * cos
        x += gy * sin
        x += np.float32(ox - box.x0)
        y = gy * cos
        y -= gx * sin
        y += np.float32(oy - box.y0)
        col = np.clip(x, 0, tw - 1, out=x).astype(np.int32)
        row = np.clip(y, 0, th - 1, out=y).astype(np.int32)
        row *= tw
        row += col
        return 0, row

    def _coordinate_grid(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        if self._grid is None:
            gx, gy = np.meshgrid(self._cols.astype(np.float32), self._rows.astype(np.float32))
            self._grid = (gx, gy)
        return self._grid


# a slice of the texture (a view), rows then columns to gather, or flat indices
_Texels = tuple[slice, slice] | tuple[NDArray[np.intp], NDArray[np.intp]] | NDArray[np.int32]
_T = TypeVar("_T", bound=np.generic)


def _take(texture: NDArray[_T], flat: NDArray[_T], texels: _Texels) -> NDArray[_T]:
    if not isinstance(texels, tuple):
        return flat.take(texels)
    rows, cols = texels
    if isinstance(rows, slice):
        return texture[rows, cols]
    return texture[rows][:, cols]  # rows first: the second gather is cache-friendly


def _is_run(index: NDArray[np.intp]) -> bool:
    """Whether ``index`` is consecutive integers (an unscaled, unclipped span)."""
    return bool(np.all(np.diff(index) == 1))


def visible_box(poses: list[Pose], depth: float, width: int, height: int, margin: int = 4) -> Box:
    """The part of the layer at ``depth`` that any of ``poses`` shows, plus a margin."""
    xs: list[float] = []
    ys: list[float] = []
    for pose in poses:
        for cx in (-width / 2, width / 2):
            for cy in (-height / 2, height / 2):
                x, y = pose.to_layer(cx, cy, depth)
                xs.append(x)
                ys.append(y)
    return Box(
        math.floor(min(xs)) - margin,
        math.floor(min(ys)) - margin,
        math.ceil(max(xs)) + margin,
        math.ceil(max(ys)) + margin,
    )
