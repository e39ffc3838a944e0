"""Cancel and timeout of tasks running on a tiny random-weight diffusers model, through the
HTTP API and a real worker: the engine's child stops between denoising steps."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from reelgate.domain.tasks import CANCELLED_BY_CLIENT
from reelgate.engines.diffusers import DiffusersEngine

from ..control_support import control_app, finished
from ..helpers import assert_ok
from .faulty_child import faulty_child
from .tiny_models import build_tiny_wan

pytestmark = [pytest.mark.diffusers, pytest.mark.slow]

STD = {"fps": 8, "steps": 2, "max_sequence_length": 16}
STD |= {"sizes": {"16:9": [64, 32], "9:16": [32, 64], "1:1": [32, 32]}}
# faulty_child slows every transformer call of a model whose id ends in -stuck
SLOW_CHILD = {"diffusers": partial(DiffusersEngine, process_target=faulty_child)}


def entries(weights: Path) -> list[dict[str, Any]]:
    base = {
        "engine": "diffusers",
        "weights": str(weights),
        "device": "cpu",
        "durations": [1, 2],
    }
    # 500 steps of at least 2 s: run to the end, a task would take over 16 minutes
    slow = STD | {"steps": 500}
    return [
        base | {"id": "tiny-wan-endless-stuck", "profiles": {"std": slow}},
        base | {"id": "tiny-wan", "profiles": {"std": STD}},
        base | {"id": "tiny-wan-limited-stuck", "timeout_s": 30, "profiles": {"std": slow}},
    ]


def denoising(task: dict[str, Any]) -> bool:
    return task["task_status"] == "processing" and task["task_progress"] > 0


async def test_cancel_a_task_running_on_a_tiny_diffusers_model(tmp_path: Path) -> None:
    weights = build_tiny_wan(tmp_path / "wan")
    async with control_app(tmp_path, entries(weights), slots=1, factories=SLOW_CHILD) as app:
        body = {"mode": "std", "duration": "1"}
        task_id = await app.create("a fox in the snow", model="tiny-wan-endless-stuck", **body)
        await app.until(task_id, denoising, within_s=300)

        assert_ok(await app.cancel(task_id))
        task = await app.until(task_id, finished, within_s=60)
        assert task["task_status"] == "failed", task
        assert task["task_status_msg"] == CANCELLED_BY_CLIENT
        assert task["final_unit_deduction"] == "0" and task["task_progress"] < 100
        assert [s for s, _ in await app.events(task_id)] == ["submitted", "processing", "failed"]
        assert app.stored_files(task_id) == []
        await app.until_idle()  # the child stopped between steps, minutes before its end

        # the only slot is free again long before the cancelled run could have ended
        nxt = await app.create("a dog on the beach", model="tiny-wan", **body)
        done = await app.until(nxt, finished, within_s=240)
        assert done["task_status"] == "succeed", done

        # the timeout ends a diffusers task the same way (the store's clock moves)
        limited = await app.create("a cat at night", model="tiny-wan-limited-stuck", **body)
        await app.until(limited, denoising, within_s=300)
        app.clock.advance(31)
        task = await app.until(limited, finished, within_s=60)
        assert task["task_status_msg"] == "timed out after 30 s in processing"
        await app.until_idle()  # the engine stopped at its next step
