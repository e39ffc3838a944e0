"""A visible watermark: a semi-transparent logo and text burned into the bottom-right corner.

The overlay is drawn once with Pillow and kept premultiplied, so each frame costs one integer
blend over a small corner region instead of a full-frame composite.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

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
        self._inverse_alpha: NDArray[np.uint16] = 255 - alpha

    def blend_into(self, frame: NDArray[np.uint8]) -> None:
        """Blend into ``frame`` (HxWx3 or HxWx4 uint8) in place; a 4th channel is left alone."""
        h, w = self._inverse_alpha.shape[:2]
        region = frame[self.y0 : self.y0 + h, self.x0 : self.x0 + w, :3]
        blended = (region * self._inverse_alpha + self._premultiplied + 127) // 255
        region[...] = blended.astype(np.uint8)


class Watermark:
    """The watermark for one frame size; :meth:`apply` returns a marked copy of a frame."""

    def __init__(self, width: int, height: int, text: str = "reelgate") -> None:
        image = _draw_overlay(text, text_px=max(10, round(min(width, height) * 0.045)))
        margin = round(min(width, height) * 0.03)
        x = max(0, width - image.width - margin)
        y = max(0, height - image.height - margin)
        self._overlay = Overlay(image, x, y, width, height)

    def apply(self, frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """A copy of ``frame`` (HxWx3 or HxWx4 uint8) with the mark blended in."""
        out = frame.copy()
        self._overlay.blend_into(out)
        return out


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
