"""The scene as flat layers at increasing distance: sky, mountains, hills, near ground.

Each layer is painted once per clip into a texture covering the part of the layer the camera
will see (the box), one texel per screen pixel at the start of the clip: planar float RGB while
painting, then the encoder's Y, U and V bytes and which texels are opaque. Painting is
vectorised numpy over whole rows and columns, a plane at a time; only small features (trees,
flowers, clouds) are drawn one by one, each into its own little window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from reelgate.media.color import to_yuv444

from .theme import FLOWER_COLORS, Color, Ridge, Theme

SKY, MOUNTAINS, HILLS, GROUND = math.inf, 6.0, 2.5, 1.2  # depths; the camera starts at 0


@dataclass(frozen=True)
class Box:
    """A rectangle of layer coordinates in pixels: ``[x0, x1) x [y0, y1)``."""

    x0: int
    y0: int
    x1: int
    y1: int

    def union(self, other: Box) -> Box:
        return Box(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
        )


@dataclass(frozen=True)
class Layer:
    depth: float
    yuv: NDArray[np.uint8]  # 3 x rows x columns: Y, U, V (BT.709, limited range)
    opaque: NDArray[np.bool_]  # rows x columns: where the layer hides what lies behind it
    box: Box


def paint_layer(depth: float, theme: Theme, unit: float, box: Box) -> Layer:
    canvas = _Canvas(box, unit)
    if depth == SKY:
        _paint_sky(canvas, theme)
        return canvas.layer(depth, None)
    if depth == MOUNTAINS:
        mask = _paint_mountains(canvas, theme)
    elif depth == HILLS:
        mask = _paint_hills(canvas, theme)
    elif depth == GROUND:
        mask = _paint_ground(canvas, theme)
    else:
        raise ValueError(f"no layer at depth {depth}")
    return canvas.layer(depth, mask)


def ridge_at(ridge: Ridge, x: NDArray[np.float64]) -> NDArray[np.float64]:
    y = np.full_like(x, ridge.base)
    for amp, wavelength, phase in zip(
        ridge.amplitudes, ridge.wavelengths, ridge.phases, strict=True
    ):
        y += amp * np.sin(x / wavelength + phase)
    return y


def _slope(ridge: Ridge, x: NDArray[np.float64]) -> NDArray[np.float64]:
    dy = np.zeros_like(x)
    for amp, wavelength, phase in zip(
        ridge.amplitudes, ridge.wavelengths, ridge.phases, strict=True
    ):
        dy += amp / wavelength * np.cos(x / wavelength + phase)
    return dy


class _Canvas:
    """A planar float RGB image (``3 x rows x columns``) over a box, addressed in short-side
    units (x right, y down)."""

    def __init__(self, box: Box, unit: float) -> None:
        self.unit = unit
        self.box = box
        # texel centres
        self.x: NDArray[np.float64] = (np.arange(box.x0, box.x1, dtype=np.float64) + 0.5) / unit
        self.y: NDArray[np.float64] = (np.arange(box.y0, box.y1, dtype=np.float64) + 0.5) / unit
        self.rgb = np.zeros((3, len(self.y), len(self.x)), dtype=np.float32)

    def disc(
        self,
        cx: float,
        cy: float,
        radius: float,
        color: Color,
        mask: NDArray[np.bool_] | None = None,
    ) -> None:
        """A filled circle; with ``mask``, also mark it opaque there."""
        u, b = self.unit, self.box
        i0 = max(int((cy - radius) * u) - b.y0, 0)
        i1 = min(int((cy + radius) * u) - b.y0 + 2, self.rgb.shape[1])
        j0 = max(int((cx - radius) * u) - b.x0, 0)
        j1 = min(int((cx + radius) * u) - b.x0 + 2, self.rgb.shape[2])
        if i0 >= i1 or j0 >= j1:
            return
        dy = self.y[i0:i1, None] - cy
        dx = self.x[None, j0:j1] - cx
        inside = dx * dx + dy * dy <= radius * radius
        self.rgb[:, i0:i1, j0:j1][:, inside] = _column(color)
        if mask is not None:
            mask[i0:i1, j0:j1] |= inside

    def first_row_below(self, ridge: NDArray[np.float64]) -> int:
        """The first row with a texel below ``ridge`` (a layer's edge): the rows above it
        are transparent, and what colour a transparent texel holds is never seen."""
        return int(np.searchsorted(self.y, ridge.min(), side="right"))

    def mask_from(self, top: int, below: NDArray[np.bool_]) -> NDArray[np.bool_]:
        """The layer's opaque texels: ``below`` for the rows from ``top``, none above."""
        mask = np.zeros(self.rgb.shape[1:], dtype=np.bool_)
        mask[top:] = below
        return mask

    def visible(self, x: float, margin: float) -> bool:
        return bool(self.x[0] - margin <= x <= self.x[-1] + margin)

    def layer(self, depth: float, mask: NDArray[np.bool_] | None) -> Layer:
        """The canvas as a layer, opaque where ``mask`` is (everywhere without one)."""
        opaque = np.ones(self.rgb.shape[1:], np.bool_) if mask is None else mask
        return Layer(depth, to_yuv444(self.rgb), opaque, self.box)


def _column(color: Color | NDArray[np.float32]) -> NDArray[np.float32]:
    """A colour as a ``3 x 1`` column, to fill a plane-first selection of texels."""
    return np.asarray(color, dtype=np.float32).reshape(3, 1)


def _fill(rgb: NDArray[np.float32], a: Color, b: Color, pick_b: NDArray[np.bool_]) -> None:
    """Each texel of ``rgb`` (``3 x rows x columns``) becomes ``b`` where ``pick_b`` is, else
    ``a``: two colours by a mask, plane by plane."""
    for plane, value_a, value_b in zip(rgb, a, b, strict=True):
        np.copyto(plane, np.where(pick_b, np.float32(value_b), np.float32(value_a)))


def _rgb(values: NDArray[np.float32]) -> Color:
    r, g, b = (int(v) for v in values)
    return (r, g, b)


def _mix(a: Color, b: Color, t: NDArray[np.float32] | float) -> NDArray[np.float32]:
    """The blend of two colours by ``t``, plane first: ``t`` of shape S gives ``3 x S``."""
    ta = np.asarray(t, dtype=np.float32)
    shape = (3,) + (1,) * ta.ndim
    return (
        np.reshape(np.asarray(a, np.float32), shape) * (1 - ta)
        + np.reshape(np.asarray(b, np.float32), shape) * ta
    )


def _paint_sky(c: _Canvas, theme: Theme) -> None:
    col = theme.colors
    t = np.clip((c.y - -0.7) / 0.85, 0, 1).astype(np.float32)
    gradient = _mix(col["sky_top"], col["sky_horizon"], t)  # 3 x rows: a colour per row
    # The sun's glow, 0.55 * exp(-d^2 / 0.09), is a row factor times a column factor: each
    # texel is its row's colour moved toward the sun's by that much.
    sx, sy, sr = theme.sun
    glow_x = np.exp(-((c.x - sx) ** 2) / 0.09).astype(np.float32)
    glow_y = (0.55 * np.exp(-((c.y - sy) ** 2) / 0.09)).astype(np.float32)
    toward = (_column(col["sun"]) - gradient) * glow_y
    np.multiply(toward[:, :, None], glow_x, out=c.rgb)
    c.rgb += gradient[:, :, None]
    c.disc(sx, sy, sr, col["sun"])
    for x, y in theme.stars:
        if c.visible(x, 0.01):
            c.disc(x, y, 1.2 / c.unit, (235, 235, 250))
    # Clouds catch the light of their sky: white by day, dim blue at night.
    lit = _rgb(_mix(col["sky_horizon"], (250, 250, 252), 0.3 if theme.palette == "night" else 1.0))
    shade = _rgb(_mix(col["sky_horizon"], lit, 0.45))
    for x, y, r in theme.clouds:  # a darker puff under each light one gives the clouds body
        if c.visible(x, r):
            c.disc(x, y + r * 0.25, r, shade)
    for x, y, r in theme.clouds:
        if c.visible(x, r):
            c.disc(x, y, r * 0.92, lit)


def _paint_mountains(c: _Canvas, theme: Theme) -> NDArray[np.bool_]:
    col = theme.colors
    ridge = ridge_at(theme.mountains, c.x)
    top = c.first_row_below(ridge)  # rows above are transparent: left unpainted
    below = (c.y[top:, None] - ridge[None, :]).astype(np.float32)
    mask = c.mask_from(top, below > 0)
    lit = 1 + 0.22 * np.tanh(_slope(theme.mountains, c.x) * 1.5)  # faces toward the sun
    haze = 1 - 0.3 * np.clip(below / 0.5, 0, 1)
    shade = haze * lit[None, :].astype(np.float32)
    for plane, value in zip(c.rgb, col["mountain"], strict=True):
        np.multiply(shade, np.float32(value), out=plane[top:])
    # Only the high peaks carry snow, tapering to nothing lower down (no vertical cut-offs).
    height = np.clip((theme.mountains.base - 0.03 - ridge) / 0.06, 0, 1)
    snow_depth = theme.snow_line * height * (1 + 0.4 * np.sin(c.x * 37))
    snow = mask[top:] & (below < snow_depth[None, :])
    c.rgb[:, top:][:, snow] = _column(col["snow"])
    return mask


def _paint_hills(c: _Canvas, theme: Theme) -> NDArray[np.bool_]:
    col = theme.colors
    ridge = ridge_at(theme.hills, c.x)
    top = c.first_row_below(ridge)
    below = c.y[top:, None] - ridge[None, :]
    mask = c.mask_from(top, below > 0)
    fields = np.floor(below * 16 + 0.8 * np.sin(c.x * 5.0)[None, :]) % 2 == 1
    _fill(c.rgb[:, top:], col["hill"], col["hill_alt"], fields)
    for x, depth, r in theme.trees:
        if c.visible(x, r):
            y = float(ridge_at(theme.hills, np.array([x]))[0]) + depth
            c.disc(x, y - r, r, col["tree"], mask)
            c.disc(x - r * 0.3, y - r * 1.3, r * 0.45, col["hill_alt"])  # a lit crown
    return mask


def _paint_ground(c: _Canvas, theme: Theme) -> NDArray[np.bool_]:
    col = theme.colors
    ridge = ridge_at(theme.ground, c.x)
    top = c.first_row_below(ridge)
    mask = c.mask_from(top, c.y[top:, None] - ridge[None, :] > 0)
    grass = np.sin(c.x[None, :] * 90 + 3 * np.sin(c.y[top:, None] * 14)) > 0.2
    _fill(c.rgb[:, top:], col["ground"], col["ground_alt"], grass)
    for x, depth, color in theme.flowers:
        if c.visible(x, 0.01):
            y = float(ridge_at(theme.ground, np.array([x]))[0]) + depth
            c.disc(x, y, 0.0045 + 0.002 * (depth > 0.3), FLOWER_COLORS[color])
    return mask
