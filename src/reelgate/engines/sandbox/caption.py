"""The prompt as a caption across the top of the frame, so every clip says what it was asked for."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

from reelgate.media.watermark import Yuv420Overlay

_MAX_LINES = 2
_BAND = (0, 0, 0, 110)  # a translucent dark band keeps white text legible on any sky
_TEXT = (255, 255, 255, 235)


def caption_overlay(text: str, width: int, height: int) -> Yuv420Overlay:
    size = max(10, round(min(width, height) * 0.032))
    font = ImageFont.load_default(size=size)
    pad = size // 2
    lines = wrap(text, font, width - 2 * pad)
    line_height = round(size * 1.3)
    band = len(lines) * line_height + 2 * pad
    # an even height: a yuv420p frame blends the band by whole chroma samples (2x2 pixels)
    image = Image.new("RGBA", (width, band + band % 2), _BAND)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((width / 2, pad + i * line_height), line, font=font, fill=_TEXT, anchor="ma")
    return Yuv420Overlay(image, 0, 0, width, height)


def wrap(
    text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: float
) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels; past the last line, an ellipsis."""
    words = text.split() or [""]
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= max_width or not current:
            current = candidate
            continue
        lines.append(current)
        current = word
        if len(lines) == _MAX_LINES:
            break
    else:
        lines.append(current)
        return [_fit(line, font, max_width) for line in lines]
    lines[-1] = _fit(lines[-1] + " …", font, max_width, force_ellipsis=True)
    return [_fit(line, font, max_width) for line in lines]


def _fit(
    line: str,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    max_width: float,
    force_ellipsis: bool = False,
) -> str:
    """Cut a single over-long word (or a line that must end in an ellipsis) to fit."""
    if font.getlength(line) <= max_width:
        return line
    body = line.removesuffix(" …") if force_ellipsis else line
    while body and font.getlength(body + "…") > max_width:
        body = body[:-1]
    return body + "…"
