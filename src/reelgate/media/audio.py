"""Audio samples fed to an encoder in step with the video, cut or padded to the clip's length."""

from __future__ import annotations

import av
import numpy as np
from numpy.typing import NDArray

_LAYOUTS = {1: "mono", 2: "stereo"}


def as_planar(audio: NDArray[np.floating], sample_rate: int) -> NDArray[np.float32]:
    """``(samples,)`` or ``(samples, channels)`` float audio as contiguous ``(channels, samples)``.

    Values are clipped to [-1, 1]: AAC would wrap louder samples into loud clicks.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if audio.ndim == 1:
        planar = audio[np.newaxis, :]
    elif audio.ndim == 2 and audio.shape[1] in _LAYOUTS:
        planar = audio.T
    else:
        raise ValueError(f"audio must be (samples,) or (samples, 1|2), got shape {audio.shape}")
    return np.ascontiguousarray(np.clip(planar, -1.0, 1.0), dtype=np.float32)


def layout_for(planar: NDArray[np.float32]) -> str:
    return _LAYOUTS[planar.shape[0]]


class AudioFeed:
    """Hands out the samples for each span of video time; silence past the end of the input."""

    def __init__(self, planar: NDArray[np.float32], sample_rate: int, fps: int) -> None:
        self._planar = planar
        self._rate = sample_rate
        self._fps = fps
        self._sent = 0
        self._layout = layout_for(planar)

    def frame_until(self, video_frames: int) -> av.AudioFrame | None:
        """The samples from the last call up to the end of ``video_frames`` frames of video."""
        end = video_frames * self._rate // self._fps
        if end <= self._sent:
            return None
        chunk = self._planar[:, self._sent : end]
        if chunk.shape[1] < end - self._sent:
            chunk = np.pad(chunk, ((0, 0), (0, end - self._sent - chunk.shape[1])))
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk), format="fltp", layout=self._layout
        )
        frame.sample_rate = self._rate
        frame.pts = self._sent
        self._sent = end
        return frame
