"""Time in ``submitted`` and ``processing``: catalogue keys and the ``--realistic`` preset."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from reelgate.domain.timing import ModelTiming, realistic_seconds
from reelgate.settings import Settings

from .control_support import control_app, finished, processing
from .helpers import assert_ok


async def test_a_task_stays_submitted_for_its_models_time(tmp_path: Path) -> None:
    entries = [{"id": "kling-v3", "engine": "sandbox", "submitted_s": 20}]
    async with control_app(tmp_path, entries) as app:
        task_id = await app.create("a patient kite")
        record = await app.store.get_task_by_id(task_id)
        assert record is not None and record.run_after == record.created_at + 20_000
        assert await app.store.claim_task("eager-worker", 30) is None  # not before its time
        await asyncio.sleep(1.5)  # the worker's claim loop runs a few times meanwhile
        task = await app.get(task_id)
        assert task["task_status"] == "submitted" and task["task_progress"] == 0
        app.clock.advance(19)
        await asyncio.sleep(1.5)
        assert (await app.get(task_id))["task_status"] == "submitted"
        app.clock.advance(2)
        done = await app.until(task_id, finished)
        assert done["task_status"] == "succeed", done


async def test_processing_time_is_stretched_with_smooth_progress(tmp_path: Path) -> None:
    entries = [{"id": "kling-v3", "engine": "sandbox", "processing_s": 6}]
    async with control_app(tmp_path, entries) as app:
        task_id = await app.create("a slow kite")
        await app.until(task_id, processing)
        started = time.monotonic()
        seen: list[int] = []
        while True:
            task = await app.get(task_id)
            if finished(task):
                break
            seen.append(task["task_progress"])
            await asyncio.sleep(0.1)
        assert task["task_status"] == "succeed", task
        assert time.monotonic() - started >= 5  # at least its processing time (less a poll)
        assert seen == sorted(seen)  # never goes back
        between = {p for p in seen if 0 < p < 100}
        assert len(between) >= 3, seen  # advances in steps, not one jump at the end


def test_realistic_preset_is_close_to_klings_minutes() -> None:
    for model in ("kling-v1", "kling-v2-5-turbo", "kling-v2-master", "kling-v3"):
        for mode in ("std", "pro"):
            for duration in (5, 10):
                submitted, processing_s = realistic_seconds(model, mode, duration)
                assert 10 <= submitted <= 60
                assert 60 <= processing_s <= 300
    assert realistic_seconds("kling-v1", "pro", 5)[1] > realistic_seconds("kling-v1", "std", 5)[1]
    assert realistic_seconds("kling-v1", "std", 10)[1] > realistic_seconds("kling-v1", "std", 5)[1]
    turbo = realistic_seconds("kling-v2-5-turbo", "std", 5)[1]
    assert turbo < realistic_seconds("kling-v1", "std", 5)[1]
    # without the preset everything is near zero; catalogue keys win over the preset
    assert ModelTiming().phases("kling-v1", "std", 5, realistic=False) == (0.0, 0.0)
    keyed = ModelTiming(submitted_s=0.0, processing_s=2.0)
    assert keyed.phases("kling-v1", "pro", 10, realistic=True) == (0.0, 2.0)
    assert Settings.from_env({"REELGATE_REALISTIC": "true"}).realistic is True


@pytest.mark.parametrize(("mode", "low", "high"), [("std", 10, 20), ("pro", 25, 60)])
async def test_realistic_tasks_wait_in_submitted_then_run_for_minutes(
    tmp_path: Path, mode: str, low: float, high: float
) -> None:
    async with control_app(tmp_path, realistic=True) as app:
        task_id = await app.create("a realistic kite", model="kling-v1", mode=mode, duration="5")
        record = await app.store.get_task_by_id(task_id)
        assert record is not None
        waited_s = (record.run_after - record.created_at) / 1000
        assert low <= waited_s <= high
        assert (await app.get(task_id))["task_status"] == "submitted"
        app.clock.advance(waited_s)
        task: dict[str, Any] = await app.until(task_id, processing)
        await asyncio.sleep(1.5)  # a minute-long task is far from done after a second
        task = await app.get(task_id)
        assert task["task_status"] == "processing" and task["task_progress"] < 10
        assert_ok(await app.cancel(task_id))
        assert (await app.until(task_id, finished))["task_status"] == "failed"
