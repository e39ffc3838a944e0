"""A JPEG thumbnail of one frame, scaled down to fit a square box (never scaled up)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def make_thumbnail(frame: NDArray[np.uint8], max_side: int) -> Image.Image:
    """The frame (HxWx3 or HxWx4 uint8) as an RGB image fitting ``max_side`` x ``max_side``."""
    image = Image.fromarray(np.ascontiguousarray(frame[..., :3]))
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def save_jpeg(image: Image.Image, path: Path, quality: int = 85) -> None:
    """Write ``path`` atomically, so a reader never sees half a JPEG."""
    partial = path.with_name(path.name + ".part")
    try:
        image.save(partial, format="JPEG", quality=quality)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
