"""The generation process: one per device, started with ``spawn``, pipelines kept warm.

It serves requests one at a time from its end of the Pipe and answers each with events and one
terminal message (:mod:`.protocol`). A failure inside a request (load error, CUDA OOM, a bug in
a pipeline) is answered, not raised, so the process stays up; only a hard death (segfault, host
OOM kill) ends it, and the engine notices the closed pipe and starts a new one.

Residency: loaded pipelines stay on the device, most recently used last. When a load would not
fit (the weights on disk exceed the free device memory, or the load itself runs out of memory),
the least recently used pipeline is dropped (its weights reload from disk when next needed) and
a :class:`ModelEvicted` event says so, until the new one fits or nothing is left to drop.

The engine starts :func:`child_main`; tests start a function of the same signature that wraps
it, passing their own ``load`` (a model that misbehaves on purpose).
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import sys
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from .entry import ModelEntry
from .families import is_local_path
from .loader import DeviceOutOfMemoryError, LoadedModel, LoadError, load_model
from .protocol import (
    Failed,
    Finished,
    Generate,
    LoadModel,
    ModelEvicted,
    ModelLoaded,
    ModelLoading,
    Reply,
    Shutdown,
    StepProgress,
)

log = logging.getLogger("reelgate.engines.diffusers")

Loader = Callable[[ModelEntry], LoadedModel]
HEADROOM = 1.2  # weights on disk x this: what a load needs free (activations come on top)


def child_main(
    conn: Connection,
    cancel: EventType,
    device: str,
    cache_dir: str,
    load: Loader = load_model,
) -> None:
    """Entry point of the process (must stay importable for ``spawn``)."""
    _configure(device, cache_dir)
    models = Resident(load)
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


class Resident:
    """The pipelines loaded on this device, least recently used first."""

    def __init__(self, load: Loader) -> None:
        self._load = load
        self.models: OrderedDict[str, LoadedModel] = OrderedDict()

    def get(self, model_id: str) -> LoadedModel | None:
        loaded = self.models.get(model_id)
        if loaded is not None:
            self.models.move_to_end(model_id)
        return loaded

    def load(self, entry: ModelEntry, on_evict: Callable[[str, str], None]) -> LoadedModel:
        """Load ``entry``, dropping least recently used pipelines while it does not fit."""
        needed = weights_bytes(entry.weights) * HEADROOM
        if entry.upsampler is not None:
            needed += weights_bytes(entry.upsampler.weights) * HEADROOM
        while self.models and needed > free_device_bytes(entry.device):
            self._evict(f"to make room for {entry.id}", on_evict)
        while True:
            try:
                loaded = self._load(entry)
            except DeviceOutOfMemoryError as exc:
                if not self.models:
                    raise LoadError(f"out of memory on {entry.device} loading it: {exc}") from exc
                _free_memory()
                self._evict(f"to make room for {entry.id}", on_evict)
                continue
            self.models[entry.id] = loaded
            return loaded

    def _evict(self, why: str, on_evict: Callable[[str, str], None]) -> None:
        model_id, loaded = self.models.popitem(last=False)
        loaded.release()
        del loaded
        _free_memory()
        log.info("model %s evicted %s", model_id, why)
        on_evict(model_id, why)


def weights_bytes(weights: str) -> int:
    """Bytes of the weight files of a local pipeline directory (0 for a hub id)."""
    if not is_local_path(weights):
        return 0
    root = Path(weights).expanduser()
    suffixes = (".safetensors", ".bin", ".pt", ".gguf")
    return sum(p.stat().st_size for p in root.rglob("*") if p.suffix in suffixes and p.is_file())


def free_device_bytes(device: str) -> float:
    """Free memory on a CUDA device; unbounded elsewhere (the host's memory is not managed)."""
    if not device.startswith("cuda"):
        return float("inf")
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return float(free)


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


def _serve(conn: Connection, request: Any, models: Resident, cancel: EventType) -> Reply:
    rid = request.request_id
    if not isinstance(request, LoadModel | Generate):
        return Failed(rid, "error", f"unknown request {type(request).__name__}")
    entry = request.entry
    loaded = models.get(entry.id)
    if loaded is None:
        conn.send(ModelLoading(rid, entry.id))
        started = time.perf_counter()
        try:
            loaded = models.load(
                entry, lambda model_id, why: conn.send(ModelEvicted(rid, model_id, why))
            )
        except LoadError as exc:
            log.error("model %s failed to load: %s", entry.id, exc)
            _free_memory()
            return Failed(rid, "load", str(exc), entry.id)
        seconds = round(time.perf_counter() - started, 3)
        log.info("model %s loaded in %.1f s", entry.id, seconds)
        conn.send(ModelLoaded(rid, entry.id, seconds))
    if isinstance(request, LoadModel):
        from .runner import warm

        for plan in request.warm_plans:
            if cancel.is_set():
                return Failed(rid, "cancelled", "warm-up was cancelled")
            started = time.perf_counter()
            warm(loaded, plan)
            log.info(
                "model %s warmed up %dx%d, %d frames in %.1f s", entry.id, plan.width,
                plan.height, plan.num_frames, time.perf_counter() - started,
            )  # fmt: skip
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
