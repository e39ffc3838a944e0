"""The sandbox engine end to end: real renders through ``generate``, scenarios, cancellation."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.base import EngineError, Job, Output, TaskCancelledError
from reelgate.engines.sandbox import SandboxEngine
from reelgate.media import probe, read_frames

_ids = itertools.count()


class Recorder:
    """The worker's side of the callbacks: progress values seen, and a cancel switch."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.cancel = False
        self.under_way = asyncio.Event()  # set at 10%

    def progress(self, percent: float) -> None:
        self.values.append(percent)
        if percent >= 10:
            self.under_way.set()

    def cancelled(self) -> bool:
        return self.cancel


def make_job(
    engine: SandboxEngine, workdir: Path, prompt: str, model: str = "kling-v3", **params: Any
) -> Job:
    spec = next(s for s in engine.models() if s.id == model)
    request = Text2VideoRequest.model_validate({"prompt": prompt, **params})
    return Job(f"task-{next(_ids)}", spec, request, workdir)


async def run(
    job: Job, engine: SandboxEngine, recorder: Recorder | None = None
) -> tuple[Output, Recorder]:
    recorder = recorder or Recorder()
    output = await engine.generate(job, recorder.progress, recorder.cancelled)
    return output, recorder


def engine_with(entries: Sequence[Mapping[str, Any]] = ()) -> SandboxEngine:
    return SandboxEngine(entries, Path("unused"))


SHORT = {"duration": "3", "aspect_ratio": "1:1"}  # kling-v3's shortest clip: quick to render


async def test_generate_renders_what_was_asked(tmp_path: Path) -> None:
    engine = engine_with()
    job = make_job(
        engine,
        tmp_path / "w",
        "a lighthouse on a cliff",
        sound="on",
        watermark_info={"enabled": True},
        **SHORT,
    )
    output, recorder = await run(job, engine)

    [video] = output.videos
    assert isinstance(output.extra["seed"], int) and 0 <= output.extra["seed"] < 2**32
    assert video.path.parent == job.workdir and video.duration == 3.0
    found = probe(video.path)
    assert (found.width, found.height, found.fps, found.frame_count) == (960, 960, 24.0, 72)
    assert found.has_audio and found.audio_duration == pytest.approx(3.0, abs=1e-3)
    assert video.watermarked_path is not None and video.watermarked_path != video.path
    assert probe(video.watermarked_path).frame_count == 72
    [clean] = read_frames(video.path, [0])
    [marked] = read_frames(video.watermarked_path, [0])
    assert np.abs(clean.astype(int) - marked.astype(int)).sum() > 10_000
    assert video.thumbnail_path is not None
    with Image.open(video.thumbnail_path) as thumb:
        assert (thumb.format, thumb.size) == ("JPEG", (640, 640))
    # Progress: whole steps, monotone, ending at 100.
    assert recorder.values[-1] == 100.0
    assert recorder.values == sorted(recorder.values) and len(set(recorder.values)) == len(
        recorder.values
    )
    assert sorted(p.name for p in job.workdir.iterdir()) == [
        "thumbnail.jpg",
        "video.mp4",
        "video_watermarked.mp4",
    ]


async def test_same_request_gives_identical_bytes(tmp_path: Path) -> None:
    engine = engine_with()
    first, _ = await run(make_job(engine, tmp_path / "a", "two cats on a roof", **SHORT), engine)
    again, _ = await run(make_job(engine, tmp_path / "b", "two cats on a roof", **SHORT), engine)
    assert first.extra == again.extra
    a, b = first.videos[0], again.videos[0]
    assert a.path.read_bytes() == b.path.read_bytes()
    assert a.thumbnail_path and b.thumbnail_path
    assert a.thumbnail_path.read_bytes() == b.thumbnail_path.read_bytes()
    # Without sound and watermark: no audio stream, no watermarked copy.
    assert a.watermarked_path is None and not probe(a.path).has_audio


async def test_rendering_does_not_block_the_event_loop(tmp_path: Path) -> None:
    engine = engine_with()
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.02)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    started = time.monotonic()
    await run(make_job(engine, tmp_path, "a busy harbour", **SHORT), engine)
    rendering = time.monotonic() - started
    ticking.cancel()
    # A blocked loop would show one gap as long as the render; relative, so load cannot break it.
    assert len(gaps) > 10 and max(gaps) < max(0.3, rendering / 3)


@pytest.mark.parametrize(
    ("directive", "message"),
    [
        ("[[sandbox:fail]]", "sandbox: simulated failure"),
        ("[[sandbox:fail=content_policy]]", "Failure to pass the risk control system"),
        ("[[sandbox:nope]]", "unknown directive"),
    ],
)
async def test_failure_directives(tmp_path: Path, directive: str, message: str) -> None:
    engine = engine_with()
    with pytest.raises(EngineError, match=message) as caught:
        await run(make_job(engine, tmp_path / "w", f"a fox {directive}"), engine)
    assert not isinstance(caught.value, TaskCancelledError)
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


async def test_crash_directive_raises_a_plain_exception(tmp_path: Path) -> None:
    engine = engine_with()
    with pytest.raises(RuntimeError, match="sandbox: simulated crash"):
        await run(make_job(engine, tmp_path, "[[sandbox:crash]] a fox"), engine)


async def test_slow_directive_takes_its_time_with_smooth_progress(tmp_path: Path) -> None:
    engine = engine_with()
    started = time.monotonic()
    output, recorder = await run(
        make_job(engine, tmp_path, "[[sandbox:slow=1.5]] a fox", **SHORT), engine
    )
    assert time.monotonic() - started >= 1.5
    assert len(recorder.values) >= 8 and recorder.values[-1] == 100.0
    assert recorder.values == sorted(recorder.values)
    # no jump from 0 to done, nor across half the way: steps are 1-2 % every 0.1 s, but a
    # loaded machine starves the (lower-priority) render child for a moment, then it catches up
    assert max(np.diff(recorder.values)) <= 50
    plain, _ = await run(make_job(engine, tmp_path / "plain", "a fox", **SHORT), engine)
    assert output.videos[0].path.read_bytes() == plain.videos[0].path.read_bytes()


async def test_slow_failure_fails_after_the_delay(tmp_path: Path) -> None:
    engine = engine_with()
    recorder = Recorder()
    started = time.monotonic()
    with pytest.raises(EngineError, match="simulated failure"):
        await run(
            make_job(engine, tmp_path, "[[sandbox:slow=0.6]][[sandbox:fail]] x"), engine, recorder
        )
    assert time.monotonic() - started >= 0.6
    assert recorder.values and max(recorder.values) >= 50


async def test_stall_ends_only_when_cancelled(tmp_path: Path) -> None:
    engine = engine_with()
    recorder = Recorder()
    task = asyncio.create_task(
        run(make_job(engine, tmp_path, "[[sandbox:stall]] x"), engine, recorder)
    )
    await asyncio.sleep(0.5)
    assert not task.done()
    recorder.cancel = True
    with pytest.raises(TaskCancelledError):
        await asyncio.wait_for(task, 60)  # a stall that ignored the flag would never end


async def test_cancelling_a_render_removes_partial_files(tmp_path: Path) -> None:
    engine = engine_with()
    recorder = Recorder()
    # 240 frames of 1080p: seconds of work, so the cancel lands mid-render.
    job = make_job(
        engine, tmp_path / "w", "a fox", mode="pro", duration="10", watermark_info={"enabled": True}
    )
    started = time.monotonic()
    task = asyncio.create_task(run(job, engine, recorder))
    await recorder.under_way.wait()
    first_tenth = time.monotonic() - started
    assert {p.suffix for p in job.workdir.iterdir()} == {".part"}  # mid-render
    recorder.cancel = True
    cancelled_at = time.monotonic()
    with pytest.raises(TaskCancelledError):
        await task
    # Relative to the render's own pace: the other 90% would take about 9 x first_tenth.
    assert time.monotonic() - cancelled_at < 3 * first_tenth
    assert list(job.workdir.iterdir()) == []


async def test_cancelling_a_slowed_down_task_removes_finished_files(tmp_path: Path) -> None:
    engine = engine_with()
    recorder = Recorder()
    # slowed to a minute: however long rendering takes on a busy machine, the task then waits
    job = make_job(engine, tmp_path / "w", "[[sandbox:slow=60]] a fox", **SHORT)
    task = asyncio.create_task(run(job, engine, recorder))
    for _ in range(1000):  # the thumbnail is written last: then the task is only waiting
        if (job.workdir / "thumbnail.jpg").exists():
            break
        await asyncio.sleep(0.05)
    assert (job.workdir / "video.mp4").exists() and not task.done()
    assert recorder.values[-1] < 90
    recorder.cancel = True
    with pytest.raises(TaskCancelledError):
        await task
    assert list(job.workdir.iterdir()) == []


async def test_cancelling_the_coroutine_stops_the_render_thread(tmp_path: Path) -> None:
    engine = engine_with()
    recorder = Recorder()
    # 240 frames of 1080p: cancelled at 10%, the thread must stop mid-render.
    job = make_job(engine, tmp_path, "x", mode="pro", duration="10")
    started = time.monotonic()
    task = asyncio.create_task(run(job, engine, recorder))
    await recorder.under_way.wait()
    first_tenth = time.monotonic() - started
    task.cancel()
    cancelled_at = time.monotonic()
    with pytest.raises(asyncio.CancelledError):
        await task
    # It waited for the thread, which stopped at once, not after the other 90% of the frames.
    assert time.monotonic() - cancelled_at < 3 * first_tenth
    assert list(job.workdir.iterdir()) == []


async def test_entry_fail_rate_and_delay(tmp_path: Path) -> None:
    engine = engine_with(
        [{"id": "flaky", "engine": "sandbox", "like": "kling-v3", "fail_rate": 1.0, "delay_s": 0.4}]
    )
    started = time.monotonic()
    with pytest.raises(EngineError, match="sandbox: simulated failure"):
        await run(make_job(engine, tmp_path, "a fox", model="flaky"), engine)
    assert time.monotonic() - started >= 0.4


async def test_aliased_model_renders_like_its_kling_model(tmp_path: Path) -> None:
    engine = engine_with([{"id": "preview", "engine": "sandbox", "like": "kling-v2-6"}])
    output, _ = await run(
        make_job(engine, tmp_path, "a fox", model="preview", mode="pro", aspect_ratio="9:16"),
        engine,
    )
    found = probe(output.videos[0].path)
    assert (found.width, found.height, found.frame_count) == (1080, 1920, 120)
