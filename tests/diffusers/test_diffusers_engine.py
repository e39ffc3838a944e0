"""The diffusers engine on tiny random-weight Wan and LTX pipelines, through its child process.

The pipelines are built in code and saved with ``save_pretrained``; the engine loads them with
``from_pretrained`` exactly as it would load real weights, and writes real MP4s.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
av = pytest.importorskip("av")
import numpy as np  # noqa: E402
import pytest_asyncio  # noqa: E402

from reelgate.domain.models import ModelSpec  # noqa: E402
from reelgate.domain.requests import Text2VideoRequest  # noqa: E402
from reelgate.engines.base import EngineError, Job, Output, TaskCancelledError  # noqa: E402
from reelgate.engines.diffusers import DiffusersEngine  # noqa: E402
from reelgate.engines.diffusers.mapping import seed_for  # noqa: E402

from .faulty_child import faulty_child  # noqa: E402
from .tiny_models import build_tiny_ltx, build_tiny_wan  # noqa: E402

pytestmark = [pytest.mark.diffusers, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

# Tiny sizes, given per aspect ratio (the families' official sizes are hundreds of pixels).
STD = {"fps": 8, "steps": 2, "max_sequence_length": 16}
STD |= {"sizes": {"16:9": [64, 32], "9:16": [32, 64], "1:1": [32, 32]}}
PRO = {"fps": 8, "steps": 3, "max_sequence_length": 16}
PRO |= {"sizes": {"16:9": [80, 48], "9:16": [48, 80], "1:1": [48, 48]}}


def tiny_entry(model_id: str, weights: Path, **keys: Any) -> dict[str, Any]:
    base = {
        "id": model_id,
        "engine": "diffusers",
        "weights": str(weights),
        "device": "cpu",
        "durations": [1, 2],
        "profiles": {"std": STD, "pro": PRO},
    }
    return base | keys


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("weights")
    corrupt = shutil.copytree(build_tiny_wan(root / "wan"), root / "corrupt")
    for shard in (corrupt / "transformer").glob("*.safetensors"):
        shard.write_bytes(b"not a safetensors file")
    return {"wan": root / "wan", "ltx": build_tiny_ltx(root / "ltx"), "corrupt": corrupt}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(
    weights: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DiffusersEngine]:
    entries = [
        tiny_entry("tiny-wan", weights["wan"], aliases=["kling-v2-5-turbo"]),
        tiny_entry("tiny-ltx", weights["ltx"], profiles={"std": STD}),
        tiny_entry("tiny-wan-slow", weights["wan"], profiles={"std": STD | {"steps": 40}}),
        tiny_entry("tiny-wan-oom", weights["wan"]),
        tiny_entry("missing", Path("/nonexistent/weights"), family="wan2.1-1.3b"),
        tiny_entry("corrupt", weights["corrupt"]),
    ]
    # faulty_child runs the real generation process; models named *-slow and *-oom misbehave
    eng = DiffusersEngine(entries, tmp_path_factory.mktemp("data"), process_target=faulty_child)
    yield eng
    await eng.aclose()


def spec_of(engine: DiffusersEngine, model_id: str) -> ModelSpec:
    return next(s for s in engine.models() if s.id == model_id)


class Recorder:
    def __init__(self, cancel_after: float | None = None) -> None:
        self.percents: list[float] = []
        self.cancel_after = cancel_after

    def progress(self, percent: float) -> None:
        self.percents.append(percent)

    def cancelled(self) -> bool:
        return self.cancel_after is not None and any(p >= self.cancel_after for p in self.percents)


async def run(
    engine: DiffusersEngine,
    model_id: str,
    workdir: Path,
    recorder: Recorder | None = None,
    task_id: str = "task-1",
    **fields: Any,
) -> Output:
    spec = spec_of(engine, model_id)
    request = Text2VideoRequest.model_validate(
        {"prompt": "a fox in the snow", "duration": 1} | fields
    )
    spec.check(request)
    rec = recorder or Recorder()
    return await engine.generate(Job(task_id, spec, request, workdir), rec.progress, rec.cancelled)


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.mark.parametrize(
    ("model_id", "mode", "aspect", "duration", "shape"),
    [
        ("tiny-wan", "std", "16:9", 1, (9, 32, 64)),  # 8 fps x 1 s + 1 = 9 frames (4k+1)
        ("tiny-wan", "pro", "9:16", 2, (17, 80, 48)),
        ("tiny-ltx", "pro", "1:1", 1, (9, 32, 32)),  # one profile serves both modes; 8k+1
        ("tiny-ltx", "std", "16:9", 2, (17, 32, 64)),
    ],
)
async def test_generates_an_mp4_of_the_profile_size_and_snapped_frames(
    engine, tmp_path, model_id, mode, aspect, duration, shape
):
    rec = Recorder()
    out = await run(
        engine, model_id, tmp_path, rec, mode=mode, aspect_ratio=aspect, duration=duration
    )
    (video,) = out.videos
    frames = decode(video.path)
    assert frames.shape == (*shape, 3)
    assert video.duration == pytest.approx(shape[0] / 8)
    assert video.thumbnail_path is not None and video.thumbnail_path.stat().st_size > 0
    assert video.watermarked_path is None
    assert out.extra == {"seed": seed_for("task-1")}
    assert rec.percents == sorted(rec.percents) and rec.percents[-1] == 100
    assert engine.health()[model_id].state == "ready"


async def test_same_task_renders_the_same_clip_and_watermark_is_optional(engine, tmp_path):
    first = await run(engine, "tiny-wan", tmp_path / "a", task_id="task-7")
    second = await run(
        engine, "tiny-wan", tmp_path / "b", task_id="task-7", watermark_info={"enabled": True}
    )
    other = await run(engine, "tiny-wan", tmp_path / "c", task_id="task-8")
    clip = decode(first.videos[0].path)
    assert np.array_equal(clip, decode(second.videos[0].path))
    assert not np.array_equal(clip, decode(other.videos[0].path))
    watermarked = second.videos[0].watermarked_path
    assert watermarked is not None and decode(watermarked).shape == clip.shape


async def test_cfg_scale_and_negative_prompt_change_the_clip(engine, tmp_path):
    base = decode((await run(engine, "tiny-wan", tmp_path / "a")).videos[0].path)
    cfg = decode((await run(engine, "tiny-wan", tmp_path / "b", cfg_scale=1)).videos[0].path)
    neg = await run(engine, "tiny-wan", tmp_path / "c", negative_prompt="blurry dog")
    assert not np.array_equal(base, cfg)
    assert not np.array_equal(base, decode(neg.videos[0].path))


async def test_cancellation_stops_between_steps_and_discards_output(engine, tmp_path):
    rec = Recorder(cancel_after=2.0)
    with pytest.raises(TaskCancelledError):
        await run(engine, "tiny-wan-slow", tmp_path, rec)
    assert 0 < max(rec.percents) < 50  # stopped between steps, long before the 40th
    assert not (tmp_path / "video.mp4").exists()
    await run(engine, "tiny-wan", tmp_path / "after")  # the process is still serving


async def test_cancel_before_start_runs_nothing(engine, tmp_path):
    spec = spec_of(engine, "tiny-wan")
    job = Job("t", spec, Text2VideoRequest(prompt="p", duration=1), tmp_path)
    with pytest.raises(TaskCancelledError):
        await engine.generate(job, lambda p: None, lambda: True)


async def test_abandoned_call_does_not_leak_into_the_next(engine, tmp_path):
    task = asyncio.ensure_future(run(engine, "tiny-wan-slow", tmp_path / "a"))
    await asyncio.sleep(2.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    out = await run(engine, "tiny-wan", tmp_path / "b")
    assert decode(out.videos[0].path).shape == (9, 32, 64, 3)


async def test_out_of_memory_fails_the_task_and_keeps_the_process(engine, tmp_path):
    process = engine._devices["cpu"]
    starts = process.starts
    with pytest.raises(EngineError, match="out of GPU memory on cpu generating 64x32, 9 frames"):
        await run(engine, "tiny-wan-oom", tmp_path)
    assert process.alive and process.starts == starts
    await run(engine, "tiny-wan", tmp_path / "after")


@pytest.mark.parametrize(
    ("model_id", "reason"),
    [
        ("missing", "weights directory /nonexistent/weights does not exist"),
        ("corrupt", "OSError: Unable to load weights from checkpoint file"),
    ],
)
async def test_load_failure_fails_tasks_and_is_reported(engine, tmp_path, model_id, reason):
    with pytest.raises(EngineError) as info:
        await run(engine, model_id, tmp_path)
    message = str(info.value)
    assert message.startswith(f"model {model_id} failed to load: ") and reason in message
    health = engine.health()[model_id]
    assert health.state == "failed" and reason in health.message
    # answered from the recorded failure, without asking the process again
    with pytest.raises(EngineError, match=f"model {model_id} is unavailable: failed to load"):
        await run(engine, model_id, tmp_path)
    assert engine.health()["tiny-wan"].state != "failed"  # other models are unaffected


async def test_warm_up_reports_health(engine):
    health = await engine.warm_up(["tiny-ltx"])
    assert health["tiny-ltx"].state == "ready"
    assert health["tiny-ltx"].as_dict()["message"].startswith("loaded in")
