"""Cancel and timeout of tasks running on a tiny random-weight diffusers model, through the
HTTP API and a real worker: the engine's child stops between denoising steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from reelgate.domain.tasks import CANCELLED_BY_CLIENT

from ..control_support import control_app, finished
from ..helpers import assert_ok
from .tiny_models import build_tiny_wan

pytestmark = [pytest.mark.diffusers, pytest.mark.slow]

STD = {"short_side": 32, "fps": 8, "steps": 2, "max_sequence_length": 16}


def entries(weights: Path) -> list[dict[str, Any]]:
    base = {
        "engine": "diffusers",
        "weights": str(weights),
        "device": "cpu",
        "durations": [1, 2],
    }
    # 500 steps of at least 1 s: run to the end, a task would take over 8 minutes
    slow = STD | {"steps": 500}
    return [
        base | {"id": "tiny-wan-endless", "test_step_delay_s": 1.0, "profiles": {"std": slow}},
        base | {"id": "tiny-wan", "profiles": {"std": STD}},
        base
        | {
            "id": "tiny-wan-limited",
            "test_step_delay_s": 1.0,
            "timeout_s": 30,
            "profiles": {"std": slow},
        },
    ]


def denoising(task: dict[str, Any]) -> bool:
    return task["task_status"] == "processing" and task["task_progress"] > 0


async def test_cancel_a_task_running_on_a_tiny_diffusers_model(tmp_path: Path) -> None:
    weights = build_tiny_wan(tmp_path / "wan")
    async with control_app(tmp_path, entries(weights), slots=1) as app:
        body = {"mode": "std", "duration": "1"}
        task_id = await app.create("a fox in the snow", model="tiny-wan-endless", **body)
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
        limited = await app.create("a cat at night", model="tiny-wan-limited", **body)
        await app.until(limited, denoising, within_s=300)
        app.clock.advance(31)
        task = await app.until(limited, finished, within_s=60)
        assert task["task_status_msg"] == "timed out after 30 s in processing"
        await app.until_idle()  # the engine stopped at its next step
