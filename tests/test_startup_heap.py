"""Server and worker processes freeze the heap start-up built (cli/runtime.py): full garbage
collections then walk only what came after, instead of stopping the event loop for 60-70 ms
each (bench/api.py measures the effect on latency; this pins the mechanism)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from reelgate.cli import runtime


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()  # hand this test process's heap back to the collector


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


def test_start_up_garbage_is_collected_and_the_rest_frozen(unfrozen: None) -> None:
    cycle = _Node()
    cycle.peer = _Node()
    cycle.peer.peer = cycle
    gone = weakref.ref(cycle)
    del cycle
    before = gc.get_freeze_count()
    runtime.freeze_startup_heap()
    assert gone() is None  # garbage of start-up is not kept alive by the freeze
    assert gc.get_freeze_count() > before  # what is alive is left out of collections
