"""Per-frame sampling of a layer through a camera pose (nearest texel), straight into the
planes of a ``yuv420p`` frame, which the encoder takes as it is.

Each layer is painted in the encoder's Y, U and V (:mod:`.world`). A frame's Y pixel reads its
nearest texel; each U and V sample reads the 2x2 block of texels that starts at the nearest
texel of its top-left pixel (when unscaled, the four pixels it stands for).

Without roll, the pose is separable — each output column reads one texture column and each row
one texture row — so a frame is two cheap gathers, or just a slice when nothing is scaled. Roll
needs a full 2D index, computed from a coordinate grid built once per clip.

A layer drawn over others covers the frame where its texels are opaque, and only over the rows
it reaches. In the Y plane its transparent texels are zero and it keeps the frame's bytes only
there (``frame & keep | texel``: two passes of byte arithmetic, far cheaper than a masked copy);
in the U and V planes each sample blends by how much of its 2x2 block the layer covers.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from .camera import Pose
from .world import Box, Layer

Planes = tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]  # Y, U, V of a frame


class LayerSampler:
    def __init__(self, layer: Layer, width: int, height: int) -> None:
        self.depth, self.box = layer.depth, layer.box
        opaque = layer.opaque
        self._shape = opaque.shape
        self.opaque = bool(opaque.all())
        yuv = layer.yuv
        # the bits of the frame a texel keeps: none where it is opaque, all where it is not
        keep = np.logical_not(opaque).view(np.uint8) * np.uint8(255)
        # What a Y pixel reads: its value (0 where transparent, as it is OR-ed over the frame)
        # and what it keeps.
        self._luma = np.empty((2, *opaque.shape), dtype=np.uint8)
        np.bitwise_and(yuv[0], ~keep, out=self._luma[0])
        self._luma[1] = keep
        # A chroma sample stands for a 2x2 block of pixels: it reads the block of texels from
        # its top-left one, which covers ``n`` of them, and becomes the mean of the block as
        # composited, ``(below * (4 - n) + sum + 2) >> 2`` (exact where the layers beneath
        # have one colour across the block), so a layer's edges get no colour fringes.
        # A layer that is opaque everywhere (the one drawn first) keeps just the means.
        sums = np.empty(yuv.shape, dtype=np.uint16)
        sums[0] = opaque
        np.multiply(yuv[1:], opaque, out=sums[1:])  # the opaque texels' colour only
        _add_block_neighbours(sums)
        sums[1:] += 2
        if self.opaque:
            self._chroma: NDArray[np.unsignedinteger[Any]] = (sums[1:] >> 2).astype(np.uint8)
        else:
            np.subtract(4, sums[0], out=sums[0])
            self._chroma = sums  # weight, U and V sums
        self._flat_luma = self._luma.reshape(2, -1)
        self._flat_chroma = self._chroma.reshape(len(self._chroma), -1)
        # An unscaled frame reads the blocks of every other texel of every other row: four
        # ways to pick them, each made contiguous when first needed (strided reads are slow).
        self._phases: dict[tuple[int, int], NDArray[np.unsignedinteger[Any]]] = {}
        self._cols = np.arange(width, dtype=np.float64) + 0.5 - width / 2  # pixel centres
        self._rows = np.arange(height, dtype=np.float64) + 0.5 - height / 2
        self._grid: tuple[NDArray[np.float32], NDArray[np.float32]] | None = None
        # texture rows holding any opaque texel: a layer drawn over others covers only those
        self._opaque_rows: NDArray[np.bool_] = np.asarray(opaque.any(axis=1))

    def copy_into(self, pose: Pose, planes: Planes) -> None:
        """Fill the frame with the layer as the camera sees it (an opaque layer: the sky)."""
        if not self.opaque:
            raise ValueError("only a layer opaque everywhere can fill a frame")
        texels = self._texels(pose, whole=True)[1]
        y_plane, u_plane, v_plane = planes
        y_plane[...] = _take(self._luma[0], self._flat_luma[0], texels)
        u_plane[...], v_plane[...] = self._take_chroma(texels)

    def draw_over(self, pose: Pose, planes: Planes) -> None:
        """Draw the layer's opaque texels over the frame."""
        first, texels = self._texels(pose, whole=False)
        y, keep = _take(self._luma, self._flat_luma, texels)
        if not y.size:
            return
        y_plane, u_plane, v_plane = planes
        rows = y_plane[first : first + y.shape[0]]
        np.bitwise_and(rows, keep, out=rows)
        np.bitwise_or(rows, y, out=rows)
        weight, u_sum, v_sum = self._take_chroma(texels)
        band = slice(first // 2, first // 2 + weight.shape[0])
        blend_blocks(u_plane[band], weight, u_sum)
        blend_blocks(v_plane[band], weight, v_sum)

    def _take_chroma(self, texels: _Texels) -> NDArray[np.unsignedinteger[Any]]:
        """What the chroma samples' blocks hold (weight, U and V sums; or U and V means):
        the blocks of every other pixel of every other row."""
        if isinstance(texels, tuple) and isinstance(texels[0], slice):
            rows, cols = texels
            key = (rows.start & 1, cols.start & 1)
            phase = self._phases.get(key)
            if phase is None:
                phase = np.ascontiguousarray(self._chroma[:, key[0] :: 2, key[1] :: 2])
                self._phases[key] = phase
            first_row, first_col = rows.start >> 1, cols.start >> 1
            return phase[
                :,
                first_row : first_row + (rows.stop - rows.start) // 2,
                first_col : first_col + (cols.stop - cols.start) // 2,
            ]
        return _take(self._chroma, self._flat_chroma, _half(texels))

    def _texels(self, pose: Pose, *, whole: bool) -> tuple[int, _Texels]:
        """Where the frame's pixels (from row ``first``, all rows when ``whole``) read the
        texture: a slice, a row and column gather, or flat indices when the camera rolls.
        ``first`` and the number of rows are even, so the rows cover whole chroma samples."""
        depth, box = self.depth, self.box
        m = pose.magnification(depth)
        ox, oy = pose.offset(depth)
        th, tw = self._shape
        if pose.roll == 0:
            ix = np.clip(np.floor(self._cols / m + ox - box.x0), 0, tw - 1).astype(np.intp)
            iy = np.clip(np.floor(self._rows / m + oy - box.y0), 0, th - 1).astype(np.intp)
            first = 0
            if not whole:
                rows = np.flatnonzero(self._opaque_rows[iy])
                first, last = (int(rows[0]) & ~1, int(rows[-1]) + 1) if rows.size else (0, 0)
                iy = iy[first : last + (last & 1)]
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
_Gather = tuple[NDArray[np.intp], NDArray[np.intp]] | NDArray[np.int32]
_Texels = tuple[slice, slice] | _Gather
_T = TypeVar("_T", bound=np.generic)


def _half(texels: _Gather) -> _Gather:
    """Every other texel of every other row (for a gather)."""
    if not isinstance(texels, tuple):
        return texels[::2, ::2]
    rows, cols = texels
    return rows[::2], cols[::2]


def _take(texture: NDArray[_T], flat: NDArray[_T], texels: _Texels) -> NDArray[_T]:
    """The texels of ``texture`` (``... x rows x cols``; ``flat``: the same, each plane in
    one axis) that the frame's pixels read."""
    if not isinstance(texels, tuple):
        return flat.take(texels, axis=-1)
    rows, cols = texels
    if isinstance(rows, slice):
        return texture[..., rows, cols]
    return texture[..., rows, :][..., cols]  # rows first: the second gather is cache-friendly


def blend_blocks(
    plane: NDArray[np.uint8], weight: NDArray[np.integer[Any]], total: NDArray[np.integer[Any]]
) -> None:
    """``plane = (plane * weight + total) >> 2``, in place: each chroma sample becomes the mean
    of its 2x2 block once something covers ``4 - weight`` of its pixels with colours summing
    to ``total`` (which includes the 2 that rounds)."""
    blended = plane * weight
    blended += total
    np.right_shift(blended, 2, out=plane, casting="unsafe")


def _add_block_neighbours(values: NDArray[np.uint16]) -> None:
    """Add to each texel (of the last two axes) its right, lower and lower-right neighbours,
    in place; past the edge the edge texel counts again."""
    values[..., :-1] += values[..., 1:]
    values[..., -1] *= 2
    values[..., :-1, :] += values[..., 1:, :]
    values[..., -1, :] *= 2


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
