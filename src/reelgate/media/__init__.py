"""Media: frames and audio to H.264/AAC MP4 with PyAV, a burned-in watermark, a JPEG thumbnail,
and ``probe`` to read a file back.

Everything here is synchronous CPU work (callers run it in a worker thread) and free of global
state. This package imports nothing of reelgate, so any engine or tool can use it.

- :func:`encode_clip` writes the clean MP4, an optional watermarked copy and an optional
  thumbnail in one pass over the frames, so ``frames`` may be a generator and memory stays flat.
  Frames are RGB(A), converted to BT.709 YUV, or ``yuv420p`` arrays a producer made itself
  (:mod:`.color` holds the conversions and the layout).
- :func:`probe` reports size, frame rate, frame count, duration, codecs and audio presence.
- :func:`read_frames` decodes chosen frames back to RGB arrays.
"""

from .decode import read_frames
from .encode import ClipInfo, EncodeSettings, encode_clip
from .errors import MediaError
from .probe import ProbeInfo, probe
from .watermark import Overlay, Watermark

__all__ = [
    "ClipInfo",
    "EncodeSettings",
    "MediaError",
    "Overlay",
    "ProbeInfo",
    "Watermark",
    "encode_clip",
    "probe",
    "read_frames",
]
