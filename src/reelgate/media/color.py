"""Colour conversion between RGB and the encoder's YUV (BT.709, limited range).

Every clip is encoded as ``yuv420p`` frames in BT.709 with the limited (16-235) range, and the
MP4 says so. A producer may hand :func:`~reelgate.media.encode_clip` RGB(A) frames, converted
here by swscale (:class:`Converter`), or ``yuv420p`` frames it made itself (see
:func:`yuv420_planes`), which skip that: :func:`to_yuv444` converts its textures by swscale
too, and :func:`rgb_to_yuv` is the same conversion as a formula, for overlays.

A ``yuv420p`` frame as a numpy array has PyAV's ``to_ndarray`` layout: ``(3 * height // 2,
width)`` bytes, the Y plane, then the U and V planes (each ``height/2 x width/2``) one after
the other.
"""

from __future__ import annotations

from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from numpy.typing import NDArray

COLORSPACE = Colorspace.ITU709
COLOR_RANGE = ColorRange.MPEG


class Converter:
    """RGB(A) arrays to ``yuv420p`` frames, for one thread: its swscale context is made once,
    and it runs in the caller's thread only (swscale's default starts threads for each
    conversion, which on a busy machine compete with the encoders)."""

    def __init__(self) -> None:
        self._reformatter = VideoReformatter()

    def __call__(self, array: NDArray[np.uint8]) -> av.VideoFrame:
        """``array`` (HxWx3 RGB or HxWx4 RGBA/RGBX, C-contiguous) as a new frame."""
        source = av.VideoFrame.from_numpy_buffer(
            array, format="rgb24" if array.shape[2] == 3 else "rgba"
        )
        return self._reformatter.reformat(
            source,
            format="yuv420p",
            dst_colorspace=COLORSPACE,
            dst_color_range=COLOR_RANGE,
            threads=1,
        )


# BT.709 RGB -> limited-range Y'CbCr: Y = 16 + 219 * (Kr R + Kg G + Kb B) / 255, and each
# colour difference 128 + 224 * (B - Y') / (2 (1 - Kb)) / 255 (R for Cr); rows Y, U (Cb), V (Cr).
_KR, _KB = 0.2126, 0.0722
_KG = 1 - _KR - _KB
_RGB_TO_YUV = (
    np.array(
        [
            [219 * _KR, 219 * _KG, 219 * _KB],
            [-224 * _KR / (2 - 2 * _KB), -224 * _KG / (2 - 2 * _KB), 224 / 2],
            [224 / 2, -224 * _KG / (2 - 2 * _KR), -224 * _KB / (2 - 2 * _KR)],
        ]
    )
    / 255
)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0])


def rgb_to_yuv(rgb: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    """RGB values (``3 x ...``, 0-255, planar) as BT.709 limited-range Y, U and V (``3 x ...``,
    unrounded): the formula swscale approximates (within 1 of it once rounded), for overlays
    blended into frames already converted."""
    r, g, b = np.asarray(rgb, dtype=np.float32).reshape(3, -1)
    yuv = np.empty((3, r.size), dtype=np.float32)
    scratch = np.empty_like(r)
    # plane by plane rather than a matrix product: BLAS would start threads for it
    for out, (kr, kg, kb), offset in zip(yuv, _RGB_TO_YUV, _YUV_OFFSET, strict=True):
        np.multiply(r, np.float32(kr), out=out)
        out += np.multiply(g, np.float32(kg), out=scratch)
        out += np.multiply(b, np.float32(kb), out=scratch)
        out += np.float32(offset)
    return yuv.reshape(np.shape(rgb))


def to_yuv444(rgb: NDArray[np.floating[Any]]) -> NDArray[np.uint8]:
    """Planar RGB values (``3 x rows x columns``, 0-255; beyond that clipped) as BT.709
    limited-range Y, U and V bytes (``3 x rows x columns``), converted by swscale as frames are
    (floats in, so nothing is rounded twice)."""
    _, height, width = rgb.shape
    frame = av.VideoFrame(width, height, "gbrpf32le")
    for plane, values in zip(frame.planes, (rgb[1], rgb[2], rgb[0]), strict=True):  # G, B, R
        rows = np.frombuffer(memoryview(plane), np.float32).reshape(height, -1)
        np.multiply(values, np.float32(1 / 255), out=rows[:, :width])  # swscale's floats: 0-1
    yuv = VideoReformatter().reformat(
        frame,
        format="yuv444p",
        dst_colorspace=COLORSPACE,
        dst_color_range=COLOR_RANGE,
        threads=1,
    )
    return np.asarray(yuv.to_ndarray(), dtype=np.uint8)


def yuv420_planes(
    frame: NDArray[np.uint8],
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint8]]:
    """Views of the Y, U and V planes of a ``yuv420p`` array (``(3 * h // 2, w)``)."""
    rows, width = frame.shape if frame.ndim == 2 and frame.flags.c_contiguous else (0, 0)
    height = rows * 2 // 3
    if not rows or rows != height * 3 // 2 or height % 2 or width % 2:
        raise ValueError(f"not a contiguous yuv420p frame of even size: {frame.shape}")
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
