"""Read back what a media file holds: size, frame rate, frame count, duration, codecs, audio."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from .errors import MediaError


@dataclass(frozen=True)
class ProbeInfo:
    width: int
    height: int
    fps: float
    frame_count: int
    duration: float  # of the video stream, in seconds
    has_audio: bool
    codec: str  # video codec, e.g. "h264"
    pix_fmt: str  # e.g. "yuv420p"
    audio_codec: str | None = None  # e.g. "aac"
    audio_duration: float | None = None  # seconds, after the encoder's priming is trimmed
    sample_rate: int | None = None
    channels: int | None = None


def probe(path: Path | str) -> ProbeInfo:
    """Describe the first video stream (and first audio stream) of ``path``.

    The frame count comes from the container's index; where a format has none it is counted by
    demuxing the packets, which is exact and needs no decoding. Raises :class:`MediaError` when
    the file is missing, unreadable or has no video stream.
    """
    try:
        with av.open(str(path), mode="r") as container:
            if not container.streams.video:
                raise MediaError(f"{path}: no video stream")
            video = container.streams.video[0]
            rate = video.average_rate or video.guessed_rate or video.base_rate
            fps = float(rate) if rate else 0.0
            frame_count = video.frames or _count_packets(path)
            duration = _seconds(video.duration, video.time_base)
            if duration is None and container.duration is not None:
                duration = container.duration / av.time_base
            if duration is None:
                duration = frame_count / fps if fps else 0.0
            audio = container.streams.audio[0] if container.streams.audio else None
            context = video.codec_context
            return ProbeInfo(
                width=context.width,
                height=context.height,
                fps=fps,
                frame_count=frame_count,
                duration=duration,
                has_audio=audio is not None,
                codec=context.name,
                pix_fmt=context.pix_fmt or "",
                audio_codec=audio.codec_context.name if audio else None,
                audio_duration=_seconds(audio.duration, audio.time_base) if audio else None,
                sample_rate=audio.codec_context.sample_rate if audio else None,
                channels=audio.codec_context.channels if audio else None,
            )
    except av.FFmpegError as exc:
        raise MediaError(f"cannot read {path}: {exc}") from exc


def _seconds(duration: int | None, time_base: Fraction | None) -> float | None:
    if duration is None or time_base is None:
        return None
    return float(duration * time_base)


def _count_packets(path: Path | str) -> int:
    with av.open(str(path), mode="r") as container:
        stream = container.streams.video[0]
        # The demuxer's flush packets carry no data and are not frames.
        return sum(1 for packet in container.demux(stream) if packet.size > 0)
