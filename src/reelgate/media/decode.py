"""Decode chosen frames of a video back to RGB arrays (for checks, previews and tests)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from .errors import MediaError


def read_frames(path: Path | str, indices: Iterable[int]) -> list[NDArray[np.uint8]]:
    """Frames ``indices`` (0-based, presentation order) of the first video stream, as HxWx3 RGB.

    Negative indices count from the end, as in Python. Decoding stops after the last wanted
    frame, so reading the first frames of a long clip is cheap. Raises :class:`MediaError` for an
    unreadable file or an index past the end.
    """
    wanted = list(indices)
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            stream = container.streams.video[0]
            total = stream.frames
            if any(i < 0 for i in wanted):
                if not total:
                    raise MediaError(f"{path}: frame count unknown; use non-negative indices")
                wanted = [i + total if i < 0 else i for i in wanted]
            found: dict[int, NDArray[np.uint8]] = {}
            last = max(wanted, default=-1)
            decoded = 0
            for index, frame in enumerate(container.decode(stream)):
                decoded = index + 1
                if index in wanted:
                    found[index] = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                if index >= last:
                    break
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read {path}: {exc}") from exc
    missing = [i for i in wanted if i not in found]
    if missing:
        raise MediaError(f"{path}: no frame {missing[0]} (it has {decoded} frames)")
    return [found[i] for i in wanted]
