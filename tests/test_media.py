"""reelgate.media: encode real clips with PyAV and read them back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from reelgate.media import (
    EncodeSettings,
    MediaError,
    Watermark,
    encode_clip,
    probe,
    read_frames,
)
from reelgate.media.color import (
    Converter,
    rgb_to_yuv,
    to_yuv444,
    yuv420_planes,
    yuv420_to_rgb,
)

W, H, FPS = 320, 180, 24


def moving_bars(
    count: int, width: int = W, height: int = H, channels: int = 3
) -> Iterator[NDArray[np.uint8]]:
    """Frames with a coloured bar moving right: content that changes, as a real clip does."""
    for i in range(count):
        frame = np.zeros((height, width, channels), dtype=np.uint8)
        frame[..., 2] = 90
        frame[:, (i * 4) % width : (i * 4) % width + 24, 0] = 230
        frame[height // 2 :, :, 1] = 140
        yield frame


def tone(seconds: float, rate: int = 48000, channels: int = 2) -> NDArray[np.float32]:
    t = np.arange(round(seconds * rate)) / rate
    mono = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


def test_round_trip_without_audio(tmp_path: Path) -> None:
    out = tmp_path / "clip.mp4"
    info = encode_clip(moving_bars(48), fps=FPS, width=W, height=H, out_path=out)

    assert (info.frame_count, info.duration, info.has_audio) == (48, 2.0, False)
    found = probe(out)
    assert (found.width, found.height, found.fps, found.frame_count) == (W, H, 24.0, 48)
    assert found.duration == pytest.approx(2.0, abs=1e-3)
    assert (found.codec, found.pix_fmt, found.has_audio) == ("h264", "yuv420p", False)
    assert found.audio_codec is None
    assert out.read_bytes()[4:8] == b"ftyp"
    assert b"moov" in out.read_bytes()[:4096]  # faststart: the index precedes the media data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


@pytest.mark.parametrize(("channels", "seconds"), [(2, 3.0), (1, 1.0)])
def test_audio_track_has_the_clip_length(tmp_path: Path, channels: int, seconds: float) -> None:
    # 3 s of audio for a 2 s clip is cut; 1 s is padded with silence.
    out = tmp_path / "clip.mp4"
    info = encode_clip(
        moving_bars(48),
        fps=FPS,
        width=W,
        height=H,
        out_path=out,
        audio=tone(seconds, channels=channels),
    )

    found = probe(out)
    assert info.has_audio and found.has_audio
    assert (found.audio_codec, found.sample_rate, found.channels) == ("aac", 48000, channels)
    assert found.audio_duration == pytest.approx(2.0, abs=1e-3)
    assert found.duration == pytest.approx(2.0, abs=1e-3)


def test_watermarked_copy_and_thumbnail(tmp_path: Path) -> None:
    clean, marked, thumb = tmp_path / "c.mp4", tmp_path / "w.mp4", tmp_path / "t.jpg"
    info = encode_clip(
        moving_bars(12, width=1280, height=720),
        fps=FPS,
        width=1280,
        height=720,
        out_path=clean,
        watermarked_path=marked,
        thumbnail_path=thumb,
    )

    assert (info.watermarked_path, info.thumbnail_path) == (marked, thumb)
    assert probe(marked).frame_count == 12
    [a] = read_frames(clean, [0])
    [b] = read_frames(marked, [0])
    diff = np.abs(a.astype(int) - b.astype(int)).sum(axis=2)
    # The mark sits in the bottom-right corner and nowhere else.
    assert diff[600:, 900:].mean() > 5
    assert diff[:500, :].max() <= 12  # the rest differs only by encoder noise
    with Image.open(thumb) as image:
        assert (image.format, image.size) == ("JPEG", (640, 360))


def test_small_frames_keep_their_thumbnail_size(tmp_path: Path) -> None:
    thumb = tmp_path / "t.jpg"
    encode_clip(
        moving_bars(2),
        fps=FPS,
        width=W,
        height=H,
        out_path=tmp_path / "c.mp4",
        thumbnail_path=thumb,
    )
    with Image.open(thumb) as image:
        assert image.size == (W, H)


def test_frames_are_consumed_once_from_a_generator_of_rgba(tmp_path: Path) -> None:
    pulled: list[int] = []

    def frames() -> Iterator[NDArray[np.uint8]]:
        for i, frame in enumerate(moving_bars(10, channels=4)):
            pulled.append(i)
            yield frame

    encode_clip(frames(), fps=FPS, width=W, height=H, out_path=tmp_path / "c.mp4")
    assert pulled == list(range(10))
    assert probe(tmp_path / "c.mp4").frame_count == 10


def test_colours_survive_the_round_trip(tmp_path: Path) -> None:
    frame = np.zeros((H, W, 3), dtype=np.uint8)
    frame[:] = (200, 100, 40)
    encode_clip([frame] * 3, fps=FPS, width=W, height=H, out_path=tmp_path / "c.mp4")
    [decoded] = read_frames(tmp_path / "c.mp4", [1])
    assert np.abs(decoded[H // 2, W // 2].astype(int) - (200, 100, 40)).max() <= 4


def test_yuv420p_frames_are_encoded_as_they_are(tmp_path: Path) -> None:
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[:] = (200, 100, 40)
    rgb[:, W // 2 :] = (30, 60, 220)
    yuv = yuv420_array(rgb)
    thumb = tmp_path / "t.jpg"
    info = encode_clip(
        [yuv] * 3,
        fps=FPS,
        width=W,
        height=H,
        out_path=tmp_path / "c.mp4",
        watermarked_path=tmp_path / "w.mp4",
        thumbnail_path=thumb,
    )
    assert info.frame_count == 3 and probe(tmp_path / "w.mp4").frame_count == 3
    [decoded] = read_frames(tmp_path / "c.mp4", [1])
    assert np.abs(decoded[H // 2, W // 4].astype(int) - (200, 100, 40)).max() <= 4
    assert np.abs(decoded[H // 2, 3 * W // 4].astype(int) - (30, 60, 220)).max() <= 4
    with Image.open(thumb) as image:  # made from the frame converted back to RGB
        pixel = np.asarray(image.convert("RGB"))[H // 2, W // 4].astype(int)
    assert np.abs(pixel - (200, 100, 40)).max() <= 6


def yuv420_array(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """``rgb`` as a ``yuv420p`` array, converted as encode_clip converts RGB frames."""
    return np.asarray(Converter()(rgb).to_ndarray(), dtype=np.uint8)


def test_colour_helpers_agree_with_the_conversion_of_rgb_frames() -> None:
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (H // 20, W // 20, 3), dtype=np.uint8)
    rgb = np.repeat(np.repeat(rgb, 20, axis=0), 20, axis=1)  # flat 20x20 blocks of colour
    yuv = yuv420_array(rgb)
    y, u, v = yuv420_planes(yuv)
    planar = np.moveaxis(rgb, -1, 0).astype(np.float32)
    full = to_yuv444(planar)
    formula = rgb_to_yuv(planar)
    assert full.shape == formula.shape == (3, H, W)
    assert np.abs(full.astype(int) - np.rint(formula)).max() <= 1
    # the same coefficients: alike inside each block (swscale's 4:2:0 filter blurs the edges)
    rows, cols = np.arange(H // 2) % 10, np.arange(W // 2) % 10  # chroma samples in a block
    inner = np.ix_((rows >= 2) & (rows < 8), (cols >= 2) & (cols < 8))
    assert np.abs(full[0].astype(int) - y).max() <= 1
    assert np.abs(full[1, ::2, ::2][inner].astype(int) - u[inner]).max() <= 1
    assert np.abs(full[2, ::2, ::2][inner].astype(int) - v[inner]).max() <= 1
    back = yuv420_to_rgb(yuv)[::2, ::2][inner].astype(int)
    assert np.abs(back - rgb[::2, ::2][inner]).max() <= 3
    assert np.shares_memory(y, yuv) and np.shares_memory(v, yuv)  # views, not copies
    for bad in (np.zeros((H + 1, W)), np.zeros((H * 3 // 2, W + 1)), np.zeros((H, W, 3))):
        with pytest.raises(ValueError, match="not a contiguous yuv420p frame"):
            yuv420_planes(bad.astype(np.uint8))
    with pytest.raises(ValueError, match="not a contiguous yuv420p frame"):  # writes would be lost
        yuv420_planes(np.zeros((H * 3 // 2, W * 2), np.uint8)[:, ::2])


def test_textures_beyond_the_range_are_clipped() -> None:
    planar = np.array([[[300.0, -20.0]], [[128.0, -5.0]], [[-1.0, 400.0]]], dtype=np.float32)
    clipped = np.clip(planar, 0, 255)
    assert np.abs(to_yuv444(planar).astype(int) - np.rint(rgb_to_yuv(clipped))).max() <= 1


def test_same_input_gives_the_same_bytes(tmp_path: Path) -> None:
    for name in ("a.mp4", "b.mp4"):
        encode_clip(
            moving_bars(24), fps=FPS, width=W, height=H, out_path=tmp_path / name, audio=tone(1)
        )
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_the_bytes_do_not_depend_on_which_thread_converts_the_frames(tmp_path: Path) -> None:
    frames = list(moving_bars(16, width=640, height=360, channels=4))

    def slow() -> Iterator[NDArray[np.uint8]]:  # the encoder always waits: it converts them
        for frame in frames:
            time.sleep(0.01)
            yield frame

    for name, source in (("fast", iter(frames)), ("slow", slow())):  # fast: mostly the caller
        encode_clip(
            source,
            fps=FPS,
            width=640,
            height=360,
            out_path=tmp_path / f"{name}.mp4",
            watermarked_path=tmp_path / f"{name}-wm.mp4",
        )
    for suffix in (".mp4", "-wm.mp4"):
        fast, slow_file = tmp_path / f"fast{suffix}", tmp_path / f"slow{suffix}"
        assert fast.read_bytes() == slow_file.read_bytes()
    assert (tmp_path / "fast.mp4").read_bytes() != (tmp_path / "fast-wm.mp4").read_bytes()


def test_settings_change_the_encoding(tmp_path: Path) -> None:
    fast = encode_clip(moving_bars(24), fps=FPS, width=W, height=H, out_path=tmp_path / "u.mp4")
    small = encode_clip(
        moving_bars(24),
        fps=FPS,
        width=W,
        height=H,
        out_path=tmp_path / "v.mp4",
        settings=EncodeSettings(preset="veryfast", crf=35),
    )
    assert small.path.stat().st_size < fast.path.stat().st_size


def test_read_frames_picks_frames_by_index(tmp_path: Path) -> None:
    encode_clip(moving_bars(8), fps=FPS, width=W, height=H, out_path=tmp_path / "c.mp4")
    first, last = read_frames(tmp_path / "c.mp4", [0, -1])
    # The red bar starts at x=0 and has moved 28 px by frame 7.
    assert first[:, :24, 0].mean() > 200 and last[:, 28:52, 0].mean() > 200
    with pytest.raises(MediaError, match="no frame 8"):
        read_frames(tmp_path / "c.mp4", [8])


class Boom(Exception):
    pass


def test_an_error_in_the_frame_source_leaves_no_files(tmp_path: Path) -> None:
    def frames() -> Iterator[NDArray[np.uint8]]:
        yield from moving_bars(5)
        raise Boom

    with pytest.raises(Boom):
        encode_clip(
            frames(),
            fps=FPS,
            width=W,
            height=H,
            out_path=tmp_path / "c.mp4",
            watermarked_path=tmp_path / "w.mp4",
            thumbnail_path=tmp_path / "t.jpg",
            audio=tone(1),
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("frames", "width", "height", "message"),
    [
        (moving_bars(2, width=100), W, H, "frame 0: expected 320x180, got 100x180"),
        ([np.zeros((H, W), np.uint8)], W, H, r"yuv420p array of 320x180, shaped \(270, 320\)"),
        ([np.zeros((H, W, 2), np.uint8)], W, H, "HxWx3 or HxWx4 uint8"),
        ([np.zeros((H, W, 3), np.float32)], W, H, "HxWx3 or HxWx4 uint8"),
        ([], W, H, "frames is empty"),
        (moving_bars(1, width=321), 321, H, "positive and even"),
    ],
)
def test_bad_frames_are_rejected(
    tmp_path: Path, frames: object, width: int, height: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_clip(frames, fps=FPS, width=width, height=height, out_path=tmp_path / "c.mp4")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_bad_audio_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="audio must be"):
        encode_clip(
            moving_bars(2),
            fps=FPS,
            width=W,
            height=H,
            out_path=tmp_path / "c.mp4",
            audio=np.zeros((10, 3), np.float32),
        )


def test_probe_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot read"):
        probe(tmp_path / "missing.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError, match="cannot read"):
        probe(garbage)


def test_watermark_only_touches_its_corner() -> None:
    frame = np.full((H, W, 3), 30, dtype=np.uint8)
    marked = Watermark(W, H).apply(frame)
    assert np.array_equal(frame, np.full((H, W, 3), 30, dtype=np.uint8))  # input untouched
    changed = np.argwhere((marked != frame).any(axis=2))
    assert changed[:, 0].min() > H // 2 and changed[:, 1].min() > W // 2
