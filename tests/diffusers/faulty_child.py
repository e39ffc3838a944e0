"""Generation processes that misbehave on purpose, injected as the engine's ``process_target``.

Each runs the real :func:`child_main` with a loader that loads the real pipeline and then adds a
fault in the transformer's forward pass, chosen by the model id, as the outside world would
cause it: a segfault or host OOM kill (``os._exit``), a CUDA out-of-memory error, a slow GPU.
``one_model_device`` fakes a device with room for one resident model.
"""

from __future__ import annotations

import functools
import os
import time
import weakref
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from reelgate.engines.diffusers.child import child_main
from reelgate.engines.diffusers.entry import ModelEntry
from reelgate.engines.diffusers.loader import DeviceOutOfMemoryError, LoadedModel, load_model

STEP_DELAY_S = 0.1  # per transformer call: two per step with classifier-free guidance
STUCK_DELAY_S = 2.0  # per transformer call of a -stuck model: 500 steps take over 16 minutes


def faulty_child(conn: Connection, cancel: EventType, device: str, cache_dir: str) -> None:
    """Models whose id ends in -crash-once, -crash-always, -oom, -slow or -stuck misbehave so."""
    child_main(conn, cancel, device, cache_dir, load=functools.partial(_faulty, cache_dir))


def _faulty(cache_dir: str, entry: ModelEntry) -> LoadedModel:
    import torch

    loaded = load_model(entry)
    marker = Path(cache_dir) / f"{entry.id}.crashed"

    def fault(module: Any, args: Any) -> None:
        if entry.id.endswith("-crash-always"):
            os._exit(17)
        if entry.id.endswith("-crash-once") and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()  # the retry, in a new process, finds it and runs normally
            os._exit(17)
        if entry.id.endswith("-oom"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB (fake)")
        if entry.id.endswith("-slow"):
            time.sleep(STEP_DELAY_S)
        if entry.id.endswith("-stuck"):
            time.sleep(STUCK_DELAY_S)

    loaded.pipe.transformer.register_forward_pre_hook(fault)
    return loaded


_resident: weakref.WeakSet[Any] = weakref.WeakSet()


def one_model_device(conn: Connection, cancel: EventType, device: str, cache_dir: str) -> None:
    """A device with room for one pipeline: a second load runs out of memory."""
    child_main(conn, cancel, device, cache_dir, load=_load_one)


def _load_one(entry: ModelEntry) -> LoadedModel:
    if len(_resident):
        raise DeviceOutOfMemoryError("CUDA out of memory (fake device with room for one model)")
    loaded = load_model(entry)
    _resident.add(loaded.pipe)
    return loaded
