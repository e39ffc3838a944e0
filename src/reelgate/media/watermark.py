"""A visible watermark: a semi-transparent logo and text burned into the bottom-right corner.

The overlay is drawn once with Pillow and kept premultiplied, so each frame costs one integer
blend over a small corner region instead of a full-frame composite. The encoder blends it into
frames already converted to YUV 4:2:0 (:meth:`Watermark.apply_yuv420`), so the watermarked copy
costs no second colour conversion; :meth:`Watermark.apply` marks an RGB frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from .color import rgb_to_yuv, yuv420_planes

_FILL = (255, 255, 255, 170)  # white at ~2/3 opacity: readable, still shows the picture
_OUTLINE = (0, 0, 0, 120)  # a dark edge keeps it legible on bright skies


class Overlay:
    """An RGBA image blended onto frames at a fixed position; the part off the frame is dropped."""

    def __init__(self, image: Image.Image, x: int, y: int, width: int, height: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"frame size must be positive, got {width}x{height}")
        rgba = np.asarray(image.convert("RGBA"), dtype=np.uint16)
        # Clip the overlay to the frame, so a small frame gets a cropped overlay, not an error.
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + image.width, width), min(y + image.height, height)
        rgba = rgba[y0 - y : max(y1 - y, y0 - y), x0 - x : max(x1 - x, x0 - x)]
        alpha = rgba[..., 3:4]
        self.x0, self.y0 = x0, y0
        self._premultiplied: NDArray[np.uint16] = rgba[..., :3] * alpha
        self._inverse_alpha: NDArray[np.uint16] = np.repeat(255 - alpha, 3, axis=2)
        # The same for 4-channel frames: weights 0 and 255 leave the 4th channel as it is, and
        # blending whole pixels avoids a strided view (3x faster on a full-width band).
        self._premultiplied4 = np.concatenate([self._premultiplied, 0 * alpha], axis=2)
        self._inverse_alpha4 = np.concatenate([self._inverse_alpha, 0 * alpha + 255], axis=2)

    def blend_into(self, frame: NDArray[np.uint8]) -> None:
        """Blend into ``frame`` (HxWx3 or HxWx4 uint8) in place; a 4th channel is left alone."""
        h, w = self._inverse_alpha.shape[:2]
        if frame.shape[2] == 4:
            region = frame[self.y0 : self.y0 + h, self.x0 : self.x0 + w]
            region[...] = _div255(region * self._inverse_alpha4 + self._premultiplied4 + 127)
            return
        region = frame[self.y0 : self.y0 + h, self.x0 : self.x0 + w, :3]
        region[...] = _div255(region * self._inverse_alpha + self._premultiplied + 127)


class Yuv420Overlay:
    """An RGBA image blended into a ``yuv420p`` frame's planes (BT.709, limited range).

    The image's top-left corner sits on even coordinates, so each chroma sample covers four of
    its pixels: the chroma planes blend the 2x2 means of alpha and of premultiplied colour.
    """

    def __init__(self, image: Image.Image, x: int, y: int, width: int, height: int) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2 or x % 2 or y % 2:
            raise ValueError(f"need an even frame size and position, got {width}x{height}+{x}+{y}")
        self.width, self.height = width, height
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float64)
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + image.width, width), min(y + image.height, height)
        x1, y1 = x1 - (x1 - x0) % 2, y1 - (y1 - y0) % 2  # whole chroma samples only
        rgba = rgba[y0 - y : max(y1 - y, y0 - y), x0 - x : max(x1 - x, x0 - x)]
        self.x0, self.y0 = x0, y0
        alpha = rgba[..., 3]
        luma, cb, cr = rgb_to_yuv(np.moveaxis(rgba[..., :3], -1, 0)).astype(np.float64)
        self._y = _Blend(luma * alpha, alpha)
        self._u = _Blend(_pool2(cb * alpha), _pool2(alpha))
        self._v = _Blend(_pool2(cr * alpha), _pool2(alpha))

    def blend_into(self, planes: NDArray[np.uint8]) -> None:
        """Blend into ``planes``, a ``yuv420p`` frame as PyAV's ``to_ndarray`` lays it out
        (``(3 * height // 2, width)``: the Y plane, then U and V each ``height/2 x width/2``)."""
        y_plane, u_plane, v_plane = yuv420_planes(planes)
        if y_plane.shape != (self.height, self.width):
            raise ValueError(f"the overlay is for {self.width}x{self.height} frames")
        self._y.into(y_plane, self.x0, self.y0)
        self._u.into(u_plane, self.x0 // 2, self.y0 // 2)
        self._v.into(v_plane, self.x0 // 2, self.y0 // 2)


class _Blend:
    """``out = (src * (255 - alpha) + premultiplied + 127) // 255`` over one plane's region."""

    def __init__(self, premultiplied: NDArray[np.float64], alpha: NDArray[np.float64]) -> None:
        # uint32: with rounded chroma weights a sum may pass uint16's range by a little
        self._premultiplied = np.rint(premultiplied).astype(np.uint32)
        self._inverse_alpha = np.rint(255 - alpha).astype(np.uint32)

    def into(self, plane: NDArray[np.uint8], x: int, y: int) -> None:
        h, w = self._inverse_alpha.shape
        region = plane[y : y + h, x : x + w]
        region[...] = _div255(region * self._inverse_alpha + self._premultiplied + 127)


def _div255(values: NDArray[Any]) -> NDArray[np.uint8]:
    """``values // 255`` as bytes (numpy divides by a constant without a division)."""
    quotient: NDArray[np.uint8] = (values // 255).astype(np.uint8)
    return quotient


def _pool2(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """The mean of each 2x2 block."""
    h, w = values.shape
    means: NDArray[np.float64] = values.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    return means


class Watermark:
    """The watermark for one frame size; :meth:`apply` returns a marked copy of an RGB frame,
    :meth:`apply_yuv420` marks a ``yuv420p`` frame's planes in place."""

    def __init__(self, width: int, height: int, text: str = "reelgate") -> None:
        image = _draw_overlay(text, text_px=max(10, round(min(width, height) * 0.045)))
        margin = round(min(width, height) * 0.03)
        # Even coordinates: the overlay then starts on a chroma sample of a yuv420p frame.
        x = max(0, width - image.width - margin) & ~1
        y = max(0, height - image.height - margin) & ~1
        self._overlay = Overlay(image, x, y, width, height)
        self._yuv: Yuv420Overlay | None = None
        if width % 2 == 0 and height % 2 == 0:
            self._yuv = Yuv420Overlay(image, x, y, width, height)

    def apply(self, frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """A copy of ``frame`` (HxWx3 or HxWx4 uint8) with the mark blended in."""
        out = frame.copy()
        self._overlay.blend_into(out)
        return out

    def apply_yuv420(self, planes: NDArray[np.uint8]) -> None:
        """Blend the mark into a ``yuv420p`` frame's planes (see :class:`Yuv420Overlay`)."""
        if self._yuv is None:
            raise ValueError("a yuv420p frame has an even width and height")
        self._yuv.blend_into(planes)


def _draw_overlay(text: str, text_px: int) -> Image.Image:
    font = ImageFont.load_default(size=text_px)
    stroke = max(1, text_px // 12)
    left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
    logo = round(text_px * 1.2)  # a play-button roundel, sized to the text
    gap = text_px // 3
    size = (logo + gap + int(right - left) + 2, max(logo, int(bottom - top)) + 2)
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((1, 1, logo - 1, logo - 1), fill=_FILL, outline=_OUTLINE, width=stroke)
    third = logo / 3
    draw.polygon(
        [(third * 1.15, third * 0.8), (third * 1.15, third * 2.2), (third * 2.3, logo / 2)],
        fill=_OUTLINE,
    )
    text_y = (size[1] - (bottom - top)) / 2 - top
    draw.text(
        (logo + gap - left, text_y),
        text,
        font=font,
        fill=_FILL,
        stroke_width=stroke,
        stroke_fill=_OUTLINE,
    )
    return image
