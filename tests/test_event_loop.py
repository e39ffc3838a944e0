"""REELGATE_EVENT_LOOP: the loop `serve` and `worker` run on (cli/serving.py)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from reelgate.cli.runtime import StartupError
from reelgate.cli.serving import run
from reelgate.settings import Settings


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_default_is_pythons_own_loop() -> None:
    assert Settings().event_loop == "asyncio"
    assert run(loop_module(), Settings()).startswith("asyncio")


def test_uvloop_is_used_when_named() -> None:
    pytest.importorskip("uvloop")
    assert run(loop_module(), Settings(event_loop="uvloop")).startswith("uvloop")


def test_uvloop_named_but_missing_is_a_startup_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    with pytest.raises(StartupError, match="REELGATE_EVENT_LOOP=uvloop: uvloop is not installed"):
        run(loop_module(), Settings(event_loop="uvloop"))
