"""Frames (and optionally audio) to an H.264 MP4, a watermarked copy and a thumbnail, in one pass.

One pass matters: ``frames`` may be a generator that renders 1080p frames on demand, and only a
few frames are held at a time, so memory stays flat whatever the clip's length. Each RGB frame
is converted to YUV once (a producer that makes ``yuv420p`` frames itself skips that, see
:mod:`.color`); the watermarked copy is that YUV frame with the mark blended into its
corner. Each MP4 is encoded in its own thread (x264 and swscale release the GIL), fed through a
short queue, so the encoders run beside the caller producing the next frame. A frame is
converted by the caller while the clean encoder is busy, and by that encoder when it would
otherwise wait for it; the clean encoder hands each frame on to the watermarking one. Each
encoder is single-threaded and sees its frames in order, and a conversion gives the same frame
in any thread, so the bytes do not depend on the threads. Outputs are
written under ``<name>.part`` and renamed only once every output is complete, so a reader never
sees half a file and a failure (or an exception raised by the frame generator, such as a
cancellation) leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import ColorPrimaries, ColorTrc
from numpy.typing import NDArray
from PIL import Image

from .audio import AudioFeed, as_planar, layout_for
from .color import COLOR_RANGE, COLORSPACE, Converter, yuv420_frame, yuv420_to_rgb
from .errors import MediaError
from .thumbnail import make_thumbnail, save_jpeg
from .watermark import Watermark


@dataclass(frozen=True)
class EncodeSettings:
    # ultrafast: the sandbox's flat procedural frames compress well anyway, and encode time is
    # paid twice per clip (clean + watermarked); see bench/README.md for the measurements.
    preset: str = "ultrafast"
    crf: int = 23
    # x264's output depends on its thread count; a fixed count keeps bytes reproducible across
    # machines with different core counts.
    threads: int = 1
    audio_bit_rate: int = 128_000
    thumbnail_max_side: int = 640
    thumbnail_quality: int = 85


@dataclass(frozen=True)
class ClipInfo:
    path: Path
    width: int
    height: int
    fps: int
    frame_count: int
    duration: float  # frame_count / fps; the audio track, when present, has exactly this length
    has_audio: bool
    watermarked_path: Path | None = None
    thumbnail_path: Path | None = None


def encode_clip(
    frames: Iterable[NDArray[np.uint8]],
    *,
    fps: int,
    width: int,
    height: int,
    out_path: Path,
    audio: NDArray[np.floating] | None = None,
    sample_rate: int = 48000,
    watermarked_path: Path | None = None,
    thumbnail_path: Path | None = None,
    watermark_text: str = "reelgate",
    settings: EncodeSettings | None = None,
) -> ClipInfo:
    """Encode ``frames`` to ``out_path``: HxWx3 RGB or HxWx4 RGBA/RGBX uint8 (alpha is
    ignored), converted to BT.709 YUV here, or ``yuv420p`` arrays in BT.709 limited range
    (``(3 * height // 2, width)`` uint8, see :mod:`.color`), encoded as they are.

    A frame may be read after the next one is asked for: the producer must not change an
    array it has yielded (a generator that reuses one buffer must yield copies).

    ``audio`` is float mono ``(samples,)`` or ``(samples, channels)`` in [-1, 1]; it is cut or
    padded with silence to the clip's length. With ``watermarked_path`` a copy with a visible
    watermark is written too; with ``thumbnail_path`` a JPEG of the first frame.
    Raises ``ValueError`` for bad arguments or frames, :class:`MediaError` when PyAV fails.
    """
    settings = settings or EncodeSettings()
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError(f"width and height must be positive and even (yuv420p): {width}x{height}")
    planar = None if audio is None else as_planar(audio, sample_rate)
    targets = [out_path] if watermarked_path is None else [out_path, watermarked_path]
    writers: list[_Mp4Writer] = []
    feeds: list[_EncoderThread] = []
    try:
        for path in targets:
            writers.append(_Mp4Writer(path, fps, width, height, settings, planar, sample_rate))
        watermark = Watermark(width, height, watermark_text) if watermarked_path else None
        # the watermarked copy is made from the clean encoder's frames, in its own thread
        marking = _EncoderThread(writers[1], watermark) if watermark is not None else None
        feeds = [_EncoderThread(writers[0], then=marking)]
        if marking is not None:
            feeds.append(marking)
        thumbnail: Image.Image | None = None
        count = 0
        convert = Converter()
        thumb_side = settings.thumbnail_max_side
        for array in frames:
            frame = _checked(array, width, height, count)
            yuv = frame.ndim == 2
            if yuv:
                feeds[0].put(yuv420_frame(frame), count)
            else:  # converted here while the encoder is busy; else by the encoder (it would wait)
                feeds[0].put(frame if feeds[0].waiting() else convert(frame), count)
            if thumbnail_path is not None and thumbnail is None:  # while the encoder starts
                thumbnail = make_thumbnail(yuv420_to_rgb(frame) if yuv else frame, thumb_side)
            count += 1
        if count == 0:
            raise ValueError("frames is empty: a clip needs at least one frame")
        for feed in feeds:
            feed.finish()
        for writer in writers:
            writer.publish()
        if thumbnail is not None and thumbnail_path is not None:
            save_jpeg(thumbnail, thumbnail_path, settings.thumbnail_quality)
    except av.FFmpegError as exc:
        _abort(feeds, writers)
        raise MediaError(f"cannot encode {out_path}: {exc}") from exc
    except BaseException:
        _abort(feeds, writers)
        raise
    return ClipInfo(
        path=out_path,
        width=width,
        height=height,
        fps=fps,
        frame_count=count,
        duration=count / fps,
        has_audio=planar is not None,
        watermarked_path=watermarked_path,
        thumbnail_path=thumbnail_path,
    )


def _checked(array: NDArray[np.uint8], width: int, height: int, index: int) -> NDArray[np.uint8]:
    if array.dtype != np.uint8 or array.shape[2:] not in ((), (3,), (4,)) or array.ndim < 2:
        raise ValueError(
            f"frame {index}: expected an HxWx3 or HxWx4 uint8 array or a yuv420p one,"
            f" got {array.dtype} {array.shape}"
        )
    if array.ndim == 2 and array.shape != (height * 3 // 2, width):
        raise ValueError(
            f"frame {index}: expected a yuv420p array of {width}x{height}, shaped"
            f" {(height * 3 // 2, width)}, got {array.shape}"
        )
    if array.ndim == 3 and array.shape[:2] != (height, width):
        raise ValueError(
            f"frame {index}: expected {width}x{height}, got {array.shape[1]}x{array.shape[0]}"
        )
    return np.ascontiguousarray(array)


def _watermarked(frame: av.VideoFrame, watermark: Watermark) -> av.VideoFrame:
    # a copy: the clean frame goes to its own encoder unchanged
    planes = np.asarray(frame.to_ndarray(), dtype=np.uint8)
    watermark.apply_yuv420(planes)
    return yuv420_frame(planes)  # the copy's memory, in BT.709 limited range as every frame


def _abort(feeds: list[_EncoderThread], writers: list[_Mp4Writer]) -> None:
    for feed in feeds:
        feed.stop()
    for writer in writers:
        writer.abort()


class _EncoderThread:
    """Feeds one writer from a short queue in its own thread; its errors surface in the caller
    at the next :meth:`put` or at :meth:`finish`. A frame may come as an array, converted here
    (see :meth:`waiting`); with ``then``, each converted frame goes on to that encoder too; with
    ``watermark``, it is marked before it is encoded."""

    _DEPTH = 3  # frames waiting per encoder: enough to ride out jitter, memory stays flat

    def __init__(
        self,
        writer: _Mp4Writer,
        watermark: Watermark | None = None,
        *,
        then: _EncoderThread | None = None,
    ) -> None:
        self._writer = writer
        self._watermark = watermark
        self._then = then
        self._queue: queue.Queue[tuple[av.VideoFrame | NDArray[np.uint8], int] | None] = (
            queue.Queue(self._DEPTH)
        )
        self._error: BaseException | None = None
        self._convert = Converter()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name=f"encode {writer.path.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        item = self._queue.get()
        while item is not None:
            if self._error is None:
                try:
                    frame, index = item
                    if isinstance(frame, np.ndarray):
                        frame = self._convert(frame)
                    if self._then is not None:
                        self._then.put(frame, index)
                    if self._watermark is not None:
                        frame = _watermarked(frame, self._watermark)
                    self._writer.add_frame(frame, index)
                except BaseException as exc:  # re-raised in the caller; keep draining
                    self._error = exc
            item = self._queue.get()

    def waiting(self) -> bool:
        """Whether nothing is queued: this thread is about to wait for a frame, so a frame given
        now is best given unconverted (the conversion then runs here rather than hold up the
        caller). The result only moves work between threads; the bytes stay the same."""
        return self._queue.empty()

    def put(self, frame: av.VideoFrame | NDArray[np.uint8], index: int) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((frame, index))

    def stop(self) -> None:
        """End the thread once it has taken every queued frame (idempotent)."""
        if not self._stopped:
            self._stopped = True
            self._queue.put(None)
            self._thread.join()

    def finish(self) -> None:
        """Encode the queued frames, flush the encoder and close the file."""
        self.stop()
        if self._error is not None:
            raise self._error
        self._writer.close()


class _Mp4Writer:
    """One MP4 being written to ``<path>.part``: an H.264 stream and, with audio, an AAC stream."""

    def __init__(
        self,
        path: Path,
        fps: int,
        width: int,
        height: int,
        settings: EncodeSettings,
        planar: NDArray[np.float32] | None,
        sample_rate: int,
    ) -> None:
        self.path = path
        self.partial = path.with_name(path.name + ".part")
        self._open = True
        self._container = av.open(
            str(self.partial), mode="w", format="mp4", container_options={"movflags": "+faststart"}
        )
        try:
            self._add_streams(fps, width, height, settings, planar, sample_rate)
        except BaseException:
            self.abort()
            raise

    def _add_streams(
        self,
        fps: int,
        width: int,
        height: int,
        settings: EncodeSettings,
        planar: NDArray[np.float32] | None,
        sample_rate: int,
    ) -> None:
        video = self._container.add_stream(
            "libx264", rate=fps, options={"preset": settings.preset, "crf": str(settings.crf)}
        )
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.thread_count = settings.threads
        # Tag the colours we convert to (BT.709, limited range) so players do not guess BT.601.
        context = video.codec_context
        context.colorspace = COLORSPACE
        context.color_primaries = ColorPrimaries.BT709
        context.color_trc = ColorTrc.BT709
        context.color_range = COLOR_RANGE
        self._video = video
        self._audio: av.AudioStream | None = None
        self._feed: AudioFeed | None = None
        if planar is not None:
            self._audio = self._container.add_stream(
                "aac", rate=sample_rate, layout=layout_for(planar)
            )
            self._audio.bit_rate = settings.audio_bit_rate
            self._feed = AudioFeed(planar, sample_rate, fps)

    def add_frame(self, frame: av.VideoFrame, index: int) -> None:
        """Encode ``frame`` (``yuv420p``, BT.709 limited range) as frame number ``index``."""
        frame.pts = index
        self._container.mux(self._video.encode(frame))
        # Audio goes in step with the video so the muxer can interleave without buffering.
        self._add_audio_until(index + 1)

    def _add_audio_until(self, video_frames: int) -> None:
        if self._audio is None or self._feed is None:
            return
        chunk = self._feed.frame_until(video_frames)
        if chunk is not None:
            self._container.mux(self._audio.encode(chunk))

    def close(self) -> None:
        """Flush the encoders and write the trailer (the faststart pass moves the index up)."""
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            self._container.mux(self._audio.encode(None))
        self._open = False
        self._container.close()

    def publish(self) -> None:
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        if self._open:
            self._open = False
            # The file is deleted next, so a trailer that fails to write does not matter.
            with contextlib.suppress(av.FFmpegError):
                self._container.close()
        self.partial.unlink(missing_ok=True)
