"""The generation process: one per device, started with ``spawn``, pipelines kept warm.

It serves requests one at a time from its end of the Pipe and answers each with events and one
terminal message (:mod:`.protocol`). A failure inside a request (load error, CUDA OOM, a bug in
a pipeline) is answered, not raised, so the process stays up; only a hard death (segfault, host
OOM kill) ends it, and the engine notices the closed pipe and starts a new one.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from .loader import LoadedModel, LoadError, load_model
from .protocol import (
    Failed,
    Finished,
    Generate,
    LoadModel,
    ModelLoaded,
    ModelLoading,
    Reply,
    Shutdown,
    StepProgress,
)

log = logging.getLogger("reelgate.engines.diffusers")


def child_main(conn: Connection, cancel: EventType, device: str, cache_dir: str) -> None:
    """Entry point of the process (must stay importable for ``spawn``)."""
    _configure(device, cache_dir)
    models: dict[str, LoadedModel] = {}
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return  # the engine is gone
        if isinstance(request, Shutdown):
            return
        try:
            reply = _serve(conn, request, models, cancel)
        except Exception as exc:  # a bug here must not leave the engine waiting forever
            traceback.print_exc()
            reply = Failed(request.request_id, "error", f"{type(exc).__name__}: {exc}")
        conn.send(reply)


def _configure(device: str, cache_dir: str) -> None:
    # Compiled kernels persist across restarts of this process (a warm start after a crash).
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(cache_dir) / "inductor"))
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format=f"%(asctime)s reelgate-diffusers[{device}] %(levelname)s %(message)s",
    )
    for name in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:
            library_logging: Any = importlib.import_module(name)
        except ImportError:
            continue
        library_logging.set_verbosity_error()
        library_logging.disable_progress_bar()


def _serve(
    conn: Connection, request: Any, models: dict[str, LoadedModel], cancel: EventType
) -> Reply:
    rid = request.request_id
    if not isinstance(request, LoadModel | Generate):
        return Failed(rid, "error", f"unknown request {type(request).__name__}")
    entry = request.entry
    loaded = models.get(entry.id)
    if loaded is None:
        conn.send(ModelLoading(rid, entry.id))
        started = time.perf_counter()
        try:
            loaded = load_model(entry)
        except LoadError as exc:
            log.error("model %s failed to load: %s", entry.id, exc)
            _free_memory()
            return Failed(rid, "load", str(exc), entry.id)
        models[entry.id] = loaded
        seconds = round(time.perf_counter() - started, 3)
        log.info("model %s loaded in %.1f s", entry.id, seconds)
        conn.send(ModelLoaded(rid, entry.id, seconds))
    if isinstance(request, LoadModel):
        return Finished(rid)
    return _generate(conn, request, loaded, cancel)


def _generate(conn: Connection, request: Generate, loaded: LoadedModel, cancel: EventType) -> Reply:
    from .runner import GenerationCancelledError, OutOfMemoryError, generate

    rid, plan = request.request_id, request.plan
    if cancel.is_set():
        return Failed(rid, "cancelled", "task was cancelled")
    try:
        result = generate(
            loaded,
            plan,
            on_progress=lambda percent: conn.send(StepProgress(rid, round(percent, 2))),
            should_cancel=cancel.is_set,
        )
    except GenerationCancelledError:
        return Failed(rid, "cancelled", "task was cancelled")
    except OutOfMemoryError as exc:
        log.error("%s (task %s)", exc, plan.task_id)
        _free_memory()
        return Failed(rid, "oom", str(exc), plan.model_id)
    except Exception as exc:
        traceback.print_exc()
        _free_memory()
        return Failed(rid, "error", f"{type(exc).__name__}: {exc}"[:500], plan.model_id)
    conn.send(StepProgress(rid, 100.0))
    return Finished(rid, result)


def _free_memory() -> None:
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
