"""A generation process that dies is restarted and the task retried once, then failed."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.base import EngineError, Job
from reelgate.engines.diffusers import DiffusersEngine

from .faulty_child import faulty_child
from .tiny_models import build_tiny_wan

pytestmark = [pytest.mark.diffusers, pytest.mark.slow]

PROFILE = {"fps": 8, "steps": 2, "max_sequence_length": 16}
PROFILE |= {"sizes": {"16:9": [64, 32], "9:16": [32, 64], "1:1": [32, 32]}}


async def test_crash_is_retried_once_then_fails_with_a_clear_message(tmp_path: Path):
    weights = build_tiny_wan(tmp_path / "wan")
    entries = [
        {
            "id": model_id,
            "engine": "diffusers",
            "weights": str(weights),
            "device": "cpu",
            "durations": [1],
            "profiles": {"std": PROFILE},
        }
        for model_id in ("m-crash-once", "m-crash-always", "healthy")
    ]
    # faulty_child runs the real generation process; *-crash-* models kill it mid-step
    engine = DiffusersEngine(entries, tmp_path / "data", process_target=faulty_child)
    specs = {spec.id: spec for spec in engine.models()}
    request = Text2VideoRequest(prompt="a fox", duration=1)
    try:
        out = await engine.generate(
            Job("t1", specs["m-crash-once"], request, tmp_path / "a"), lambda p: None, lambda: False
        )
        assert out.videos[0].path.stat().st_size > 0
        process = engine._devices["cpu"]
        assert process.starts == 2  # the first process died at step 1; the retry succeeded

        with pytest.raises(EngineError) as info:
            await engine.generate(
                Job("t2", specs["m-crash-always"], request, tmp_path / "b"),
                lambda p: None,
                lambda: False,
            )
        assert str(info.value) == (
            "model m-crash-always: the generation process died twice (exit code 17);"
            " the task was retried once"
        )
        assert process.starts == 3  # the second death is not followed by a start of its own
        # The worker is unharmed: the next task gets a fresh process and succeeds.
        await engine.generate(
            Job("t3", specs["healthy"], request, tmp_path / "c"), lambda p: None, lambda: False
        )
        assert process.starts == 4
        assert engine.health()["healthy"].state == "ready"
    finally:
        await engine.aclose()
    assert not engine._devices
