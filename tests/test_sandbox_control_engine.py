"""The sandbox engine under /_sandbox signals read from a real store: a stall released, an
hour-long task finished or advanced, and a stored scenario preferred to the prompt."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reelgate.domain.kling import kling_models
from reelgate.domain.requests import Text2VideoRequest
from reelgate.domain.scenarios import SCENARIO_PARAM, Effects
from reelgate.engines.base import EngineError, Job, Output
from reelgate.engines.sandbox import SandboxEngine
from reelgate.store import Store
from reelgate.store.sandbox import SandboxControl

SHORT = {"duration": "3", "aspect_ratio": "1:1"}  # kling-v3's shortest clip: quick to render
WAIT_S = 120.0


def job(workdir: Path, task_id: str, prompt: str, effects: Effects | None) -> Job:
    spec = next(s for s in kling_models() if s.id == "kling-v3")
    params: dict[str, Any] = {"prompt": prompt, **SHORT}
    if effects is not None:
        params[SCENARIO_PARAM] = effects.model_dump()
    request = Text2VideoRequest.model_validate(params)
    return Job(task_id, spec, request, workdir, params=params)


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


async def started(engine: SandboxEngine, j: Job, progress: list[float]) -> asyncio.Task[Output]:
    task = asyncio.create_task(engine.generate(j, progress.append, lambda: False))
    await until(lambda: bool(progress))
    return task


async def test_stall_released_and_slow_finished_through_the_store(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'r.db'}")
    control = SandboxControl(store.engine, store.clock)
    engine = SandboxEngine(control=control)
    try:
        stalled: list[float] = []
        task = await started(
            engine, job(tmp_path / "a", "a", "a fox", Effects(name="s", stall=True)), stalled
        )
        await asyncio.sleep(1.0)  # the clip renders in well under that: only the stall holds it
        assert not task.done() and stalled == [0.0]
        await control.signal("a", "release")
        async with asyncio.timeout(WAIT_S):
            output = await task
        assert output.videos[0].path.exists()

        slow: list[float] = []
        hour = Effects(name="h", slow_s=3600)
        task = await started(engine, job(tmp_path / "b", "b", "a fox", hour), slow)
        await control.signal("b", "advance", 1800)  # half the hour: progress about half
        await until(lambda: max(slow) >= 45)
        assert not task.done() and max(slow) < 99
        await control.signal("b", "finish")
        async with asyncio.timeout(WAIT_S):
            await task
    finally:
        await store.close()


async def test_the_stored_scenario_is_applied_and_directives_only_shape_the_caption(
    tmp_path: Path,
) -> None:
    engine = SandboxEngine()
    stored = Effects(name="moderated", failure="Failure to pass the risk control system")
    j = job(tmp_path / "c", "c", "[[sandbox:slow=0]] a fox", stored)
    with pytest.raises(EngineError) as info:
        await engine.generate(j, [].append, lambda: False)
    assert str(info.value) == stored.failure
