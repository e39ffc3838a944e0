"""The processing timeout: global (REELGATE_TASK_TIMEOUT) and per model (catalogue timeout_s),
measured on the store's clock, which the test moves."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reelgate.domain.tasks import CANCELLED_BY_CLIENT, timed_out_message
from reelgate.domain.timing import ModelTiming
from reelgate.engines.registry import CatalogError, build_engines
from reelgate.settings import Settings
from reelgate.worker import Worker

from .control_support import control_app, finished, processing
from .helpers import assert_ok

STALL = "a lighthouse [[sandbox:stall]]"


async def test_a_stalled_task_times_out_on_the_global_limit(tmp_path: Path) -> None:
    async with control_app(tmp_path, task_timeout_s=30) as app:
        task_id = await app.create(STALL)
        await app.until(task_id, processing)
        app.clock.advance(29)
        await asyncio.sleep(1.5)  # a heartbeat or two: not over the limit yet
        assert (await app.get(task_id))["task_status"] == "processing"
        app.clock.advance(2)
        task = await app.until(task_id, finished)
        assert task["task_status"] == "failed"
        assert task["task_status_msg"] == "timed out after 30 s in processing"
        assert task["final_unit_deduction"] == "0"
        assert [s for s, _ in await app.events(task_id)] == ["submitted", "processing", "failed"]
        # the engine was stopped: the slot it held runs the next task, and its work dir goes
        # once the render child saw the stop (after the task already answers failed)
        nxt = await app.create("a quick kite")
        assert (await app.until(nxt, finished))["task_status"] == "succeed"
        await app.until_idle()


async def test_the_model_timeout_wins_and_zero_means_none(tmp_path: Path) -> None:
    entries = [
        {"id": "kling-v3", "engine": "sandbox", "timeout_s": 5},
        {"id": "kling-v1", "engine": "sandbox", "timeout_s": 0},
    ]
    async with control_app(tmp_path, entries, task_timeout_s=3600) as app:
        limited = await app.create(STALL)
        unlimited = await app.create(STALL, model="kling-v1", duration="5")
        await app.until(limited, processing)
        await app.until(unlimited, processing)
        app.clock.advance(7200)  # past both the model's 5 s and the global hour
        task = await app.until(limited, finished)
        assert (
            task["task_status_msg"] == timed_out_message(5) == "timed out after 5 s in processing"
        )
        await asyncio.sleep(1.5)  # heartbeats of the unlimited one pass without ending it
        assert (await app.get(unlimited))["task_status"] == "processing"
        assert_ok(await app.cancel(unlimited))
        task = await app.until(unlimited, finished)
        assert task["task_status_msg"] == CANCELLED_BY_CLIENT


async def test_a_reclaimed_task_over_its_limit_times_out_at_once(tmp_path: Path) -> None:
    """The limit counts from the first claim: a worker that dies does not reset it."""
    async with control_app(tmp_path, task_timeout_s=60) as app:
        app.worker.request_stop()
        await app.worker.stop()
        task_id = await app.create("a kite")
        assert await app.store.claim_task("dead-worker", 30) is not None
        app.clock.advance(90)  # lease lost, and over the limit
        worker = Worker(  # a fresh worker on the same store picks the lost task up
            app.store,
            app.worker.engines,
            app.worker.catalog,
            app.worker.storage,
            app.settings,
            slots=1,
            poll_interval_s=0.05,
        )
        await worker.start()
        try:
            task = await app.until(task_id, finished)
        finally:
            worker.request_stop()
            await worker.stop()
        assert task["task_status_msg"] == "timed out after 60 s in processing"
        record = await app.store.get_task_by_id(task_id)
        assert record is not None and record.attempts == 2


def test_catalogue_timing_keys_are_read_for_every_engine_and_checked(tmp_path: Path) -> None:
    entries = [{"id": "kling-v1", "engine": "sandbox", "timeout_s": 90, "processing_s": 4}]
    spec = build_engines(entries, tmp_path).catalog.get("kling-v1")
    assert spec is not None
    assert spec.timing == ModelTiming(processing_s=4.0, timeout_s=90.0)
    assert spec.timing.timeout(Settings().task_timeout_s) == 90
    assert ModelTiming().timeout(Settings().task_timeout_s) == 3600  # the global default
    bad_values: list[tuple[object, str]] = [
        (-1, "must be within 0..86400"),
        (1e9, "must be within 0..86400"),
        ("5", "must be a number"),
        (True, "must be a number"),
    ]
    for bad, rule in bad_values:
        entry = {"id": "kling-v1", "engine": "sandbox", "timeout_s": bad}
        with pytest.raises(CatalogError, match=rf"model 'kling-v1': 'timeout_s' {rule}"):
            build_engines([entry], tmp_path)


def test_task_timeout_setting_reads_its_variable() -> None:
    assert Settings.from_env({"REELGATE_TASK_TIMEOUT": "120"}).task_timeout_s == 120
    with pytest.raises(ValueError, match="REELGATE_TASK_TIMEOUT"):
        Settings.from_env({"REELGATE_TASK_TIMEOUT": "soon"})
