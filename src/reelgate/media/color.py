"""Colour conversion between RGB and the encoder's YUV (BT.709, limited range), all by swscale.

Every clip is encoded as ``yuv420p`` frames in BT.709 with the limited (16-235) range, and the
MP4 says so. A producer may hand :func:`~reelgate.media.encode_clip` RGB(A) frames, converted
here, or ``yuv420p`` frames it made itself (see :func:`yuv420_planes`), which skip the
conversion; :func:`to_yuv444` converts RGB(A) textures with the same coefficients for such a
producer.

A ``yuv420p`` frame as a numpy array has PyAV's ``to_ndarray`` layout: ``(3 * height // 2,
width)`` bytes, the Y plane, then the U and V planes (each ``height/2 x width/2``) one after
the other.
"""

from __future__ import annotations

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from numpy.typing import NDArray

COLORSPACE = Colorspace.ITU709
COLOR_RANGE = ColorRange.MPEG


class Converter:
    """RGB(A) arrays to frames of another format, for one thread: its swscale context is made
    once, and it runs in the caller's thread only (swscale's default starts threads for each
    conversion, which on a busy machine compete with the encoders)."""

    def __init__(self, format: str = "yuv420p") -> None:
        self._format = format
        self._reformatter = VideoReformatter()

    def __call__(self, array: NDArray[np.uint8]) -> av.VideoFrame:
        """``array`` (HxWx3 RGB or HxWx4 RGBA/RGBX, C-contiguous) as a new frame."""
        source = av.VideoFrame.from_numpy_buffer(
            array, format="rgb24" if array.shape[2] == 3 else "rgba"
        )
        return self._reformatter.reformat(
            source,
            format=self._format,
            dst_colorspace=COLORSPACE,
            dst_color_range=COLOR_RANGE,
            threads=1,
        )


def to_yuv444(rgba: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``rgba`` (HxWx3 or HxWx4 uint8) as ``3 x H x W`` bytes: its Y, U and V planes."""
    frame = Converter("yuv444p")(np.ascontiguousarray(rgba))
    return np.asarray(frame.to_ndarray(), dtype=np.uint8)


def yuv420_planes(
    frame: NDArray[np.uint8],
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    """Views of the Y, U and V planes of a ``yuv420p`` array (``(3 * h // 2, w)``)."""
    rows, width = frame.shape if frame.ndim == 2 else (0, 0)
    height = rows * 2 // 3
    if not rows or rows != height * 3 // 2 or height % 2 or width % 2:
        raise ValueError(f"not a yuv420p frame of even size: {frame.shape}")
    flat = frame.reshape(-1)
    size, quarter = width * height, width * height // 4
    return (
        flat[:size].reshape(height, width),
        flat[size : size + quarter].reshape(height // 2, width // 2),
        flat[size + quarter :].reshape(height // 2, width // 2),
    )


def yuv420_frame(array: NDArray[np.uint8]) -> av.VideoFrame:
    """A ``yuv420p`` array as a frame that shares its memory (the array must not change)."""
    frame = av.VideoFrame.from_numpy_buffer(array, format="yuv420p")
    frame.colorspace, frame.color_range = COLORSPACE, COLOR_RANGE
    return frame


def yuv420_to_rgb(array: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """A ``yuv420p`` array (BT.709, limited range) as ``HxWx3`` RGB bytes."""
    rgb = VideoReformatter().reformat(
        yuv420_frame(np.ascontiguousarray(array)),
        format="rgb24",
        src_colorspace=COLORSPACE,
        src_color_range=COLOR_RANGE,
        threads=1,
    )
    return np.asarray(rgb.to_ndarray(), dtype=np.uint8)
