"""The worker: claims tasks with a lease, runs their engine, stores outputs, ends the task.

Each claimed task runs as its own asyncio task beside a heartbeat that renews the lease and
stores progress. Losing the lease (another worker reclaimed the task) or a forced shutdown sets
the cancellation flag the engine polls between steps. Whatever the engine raises ends the task
as ``failed`` with a readable message: a task is never left stuck by an engine error.

A client's cancel request reaches the worker through the heartbeat's answer, and the model's
timeout (``timeout_s``, else ``REELGATE_TASK_TIMEOUT``) is checked by the heartbeat against the
task's first claim: either ends the task ``failed`` with its reason at once and sets the
engine's cancellation flag; whatever the engine still returns is discarded. A model's
``processing_s`` stretches every task to at least that long, progress advancing smoothly.

A full disk (ENOSPC/EDQUOT while the engine writes or while outputs are stored) is not the
task's fault: the task is given back with a growing delay and retried, and fails with "storage
is full" only once its attempts are spent. Scratch directories of attempts that can no longer
be running (killed workers) are removed at start, when a task is reclaimed, and periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reelgate.domain.hooks import upstream_hook_url
from reelgate.domain.models import Catalog, ModelSpec
from reelgate.domain.requests import Text2VideoRequest
from reelgate.domain.tasks import TaskRecord, timed_out_message, video_id
from reelgate.engines.base import (
    Engine,
    EngineError,
    Job,
    Output,
    RetryLater,
    SlotPool,
    TaskCancelledError,
)
from reelgate.engines.pacing import Pacer
from reelgate.logs import task_id_var
from reelgate.metrics import STORAGE_ERRORS, TASK_RUN
from reelgate.settings import Settings
from reelgate.storage import Storage, storage_full, task_prefix
from reelgate.store import Store

from .maintenance import parse_workdir, remove_stale_workdirs

log = logging.getLogger("reelgate.worker")


@dataclass
class _Running:
    record: TaskRecord
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: float = 0.0
    lease_lost: bool = False
    task: asyncio.Task[None] | None = None
    deadline_ms: int | None = None  # the processing timeout, on the store's clock
    timeout_s: float = 0.0
    stop_reason: str | None = None  # cancelled by the client, or timed out: the task's message
    pool: int = 0  # index of the slot pool the task runs in
    beating: bool = True  # its lease is renewed by the worker's heartbeat
    pokes: int = 0  # upstream callbacks seen for it


class Worker:
    def __init__(
        self,
        store: Store,
        engines: dict[str, Engine],
        catalog: Catalog,
        storage: Storage,
        settings: Settings,
        *,
        slots: int | None = None,
        worker_id: str | None = None,
        poll_interval_s: float = 0.25,
        workdir_sweep_s: float = 300.0,
    ) -> None:
        self.store = store
        self.engines = engines
        self.catalog = catalog
        self.storage = storage
        self.settings = settings
        self.slots = max(1, slots if slots is not None else settings.workers)
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll_interval_s = poll_interval_s
        self.workdir_sweep_s = workdir_sweep_s
        self._last_workdir_sweep: float | None = None
        self._running: dict[str, _Running] = {}
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()  # a running task ended: claim again at once
        self._loop_task: asyncio.Task[None] | None = None
        self._warmups: list[asyncio.Task[Any]] = []
        self._beats: asyncio.Task[None] | None = None
        self._stops: set[asyncio.Task[None]] = set()
        self._models = [spec.id for spec in catalog.specs]
        self.pools = self._slot_pools()
        self._pool_load = [0] * len(self.pools)

    def _slot_pools(self) -> list[SlotPool]:
        """The compute pool (``slots``) for every model no engine pools on its own, then the
        pools engines declare (``slot_pools()``: an upstream account's concurrency)."""
        served = set(self._models)
        declared: list[SlotPool] = []
        for engine in self.engines.values():
            slot_pools = getattr(engine, "slot_pools", None)
            if callable(slot_pools):
                for pool in slot_pools():
                    models = tuple(m for m in pool.models if m in served)
                    if models:
                        declared.append(SlotPool(models, max(1, pool.slots)))
        pooled = {m for pool in declared for m in pool.models}
        compute = tuple(m for m in self._models if m not in pooled)
        return [SlotPool(compute, self.slots), *declared]

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._claim_loop(), name="reelgate-worker")
        self._beats = asyncio.create_task(self._heartbeats(), name="reelgate-heartbeat")
        self._beats.add_done_callback(self._heartbeats_ended)
        for name, engine in self.engines.items():
            warm_up = getattr(engine, "warm_up", None)
            if callable(warm_up):  # load weights now rather than on the first task
                self._warmups.append(asyncio.create_task(warm_up(), name=f"warm-up {name}"))

    async def stop(self) -> None:
        """Stop claiming; give running tasks the grace period, then cancel and release them."""
        self._stopping.set()
        for warmup in self._warmups:
            warmup.cancel()
        await asyncio.gather(*self._warmups, return_exceptions=True)
        if self._loop_task is not None:
            await self._loop_task
        pending = [r.task for r in self._running.values() if r.task is not None]
        if pending:
            log.info(
                "waiting up to %.0fs for %d task(s)", self.settings.shutdown_grace_s, len(pending)
            )
            _, still = await asyncio.wait(pending, timeout=self.settings.shutdown_grace_s)
            for run in list(self._running.values()):
                run.cancel.set()  # engines see cancelled() and stop between steps
            if still:
                await asyncio.wait(still, timeout=10)
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.gather(self._beats, return_exceptions=True)
        await asyncio.gather(*self._stops, return_exceptions=True)

    async def run_until_stopped(self) -> None:
        await self.start()
        assert self._loop_task is not None
        await self._stopping.wait()
        await self.stop()

    def request_stop(self) -> None:
        self._stopping.set()

    # -- claiming -----------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        idle = self.poll_interval_s
        while not self._stopping.is_set():
            self._slot_freed.clear()  # set again by a task ending from here on
            try:
                await self._sweep_workdirs_when_due()
                await self.store.fail_abandoned()
                await self.store.fail_exhausted(self.settings.max_attempts)
                claimed = False
                for index, pool in enumerate(self.pools):
                    claimed = await self._claim_into(index, pool) or claimed
                idle = self.poll_interval_s if claimed else min(idle * 1.5, 1.0)
            except Exception:  # the store may be briefly unreachable; keep the worker alive
                log.exception("claim loop error")
                idle = 2.0
            await self._idle(idle)

    async def _claim_into(self, index: int, pool: SlotPool) -> bool:
        """Fill the free slots of one pool; True when something was claimed."""
        claimed = False
        while pool.models and self._pool_load[index] < pool.slots and not self._stopping.is_set():
            record = await self.store.claim_task(
                self.worker_id,
                self.settings.lease_s,
                pool.models,
                max_attempts=self.settings.max_attempts,
            )
            if record is None:
                break
            claimed = True
            run = self._running_for(record, index)
            self._running[record.task_id] = run
            self._pool_load[index] += 1
            run.task = asyncio.create_task(self._execute(run), name=f"task-{record.task_id}")
        return claimed

    def _running_for(self, record: TaskRecord, pool: int = 0) -> _Running:
        run = _Running(record, pool=pool)
        spec = self.catalog.get(record.model_name)
        if spec is not None:
            run.timeout_s = spec.timing.timeout(self.settings.task_timeout_s)
        if run.timeout_s > 0:
            started = record.started_at if record.started_at is not None else self.store.clock()
            run.deadline_ms = started + int(run.timeout_s * 1000)
        return run

    async def _sweep_workdirs_when_due(self) -> None:
        """At start, then every ``workdir_sweep_s``: remove scratch dirs of dead attempts."""
        now = time.monotonic()
        last = self._last_workdir_sweep
        if last is not None and now - last < self.workdir_sweep_s:
            return
        self._last_workdir_sweep = now
        mine = {self._workdir(run.record).name for run in self._running.values()}
        removed = await remove_stale_workdirs(self.store, self.settings.work_dir, keep=mine)
        if removed:
            log.info("removed %d work dir(s) of finished or killed attempts", len(removed))

    def _workdir(self, record: TaskRecord) -> Path:
        return self.settings.work_dir / f"{record.task_id}-{record.attempts}"

    async def _idle(self, seconds: float) -> None:
        """Sleep until a new task is signalled, the worker stops, or ``seconds`` pass."""
        if all(
            load >= pool.slots or not pool.models
            for load, pool in zip(self._pool_load, self.pools, strict=True)
        ):
            # Busy: a finishing task frees a slot (and wakes us), so poll at the short interval.
            seconds = self.poll_interval_s
        waits = [
            asyncio.create_task(self._stopping.wait()),
            asyncio.create_task(self.store.wait_for_tasks(seconds)),
            asyncio.create_task(self._slot_freed.wait()),
        ]
        _, pending = await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- running one task ---------------------------------------------------------------------

    async def _execute(self, run: _Running) -> None:
        record = run.record
        task_id_var.set(record.task_id)  # this asyncio task's log lines carry it
        started = time.perf_counter()
        workdir = self._workdir(record)
        try:
            await self._generate_and_store(run, workdir)
        except Exception as exc:
            full = storage_full(exc)  # making the work dir, or storing the outputs
            if full is not None:
                await self._retry_later(run, full)
            else:
                log.exception("task %s: unexpected worker error", record.task_id)
                await self._fail(run, "internal error while finishing the task")
        finally:
            run.beating = False
            shutil.rmtree(workdir, ignore_errors=True)
            if self._running.pop(record.task_id, None) is not None:
                self._pool_load[run.pool] -= 1
            self._slot_freed.set()
            TASK_RUN.labels(record.model_name).observe(time.perf_counter() - started)

    async def _generate_and_store(self, run: _Running, workdir: Path) -> None:
        record = run.record
        spec = self.catalog.get(record.model_name)
        if spec is None:
            await self._fail(run, f"model {record.model_name} is no longer served")
            return
        if run.deadline_ms is not None and self.store.clock() >= run.deadline_ms:
            # reclaimed after its limit ran out (the limit counts from the first claim): it
            # ends now instead of rendering until the next heartbeat notices
            await self._fail(run, timed_out_message(run.timeout_s))
            return
        await asyncio.to_thread(_fresh_dir, workdir, record.attempts)

        async def checkpoint(state: Mapping[str, Any]) -> None:
            if not await self.store.save_engine_state(record.task_id, self.worker_id, dict(state)):
                run.lease_lost = True
                run.cancel.set()
                raise TaskCancelledError("the worker lost the task")

        job = Job(
            task_id=record.task_id,
            model=spec,
            request=Text2VideoRequest.model_validate(record.params),
            workdir=workdir,
            attempt=record.attempts,
            params=record.params,
            state=await self.store.engine_state(record.task_id),
            checkpoint=checkpoint,
            hook_url=self._hook_url(record.task_id),
        )

        try:
            output = await self._generate(run, spec, job)
        except TaskCancelledError:
            await self._after_cancel(run)
            return
        except RetryLater as later:
            if not run.lease_lost and run.stop_reason is None:
                log.info("task %s: %s; retrying in %.1fs", record.task_id, later, later.delay_s)
                await self.store.defer_task(record.task_id, self.worker_id, later.delay_s)
            return
        except Exception as exc:
            full = storage_full(exc)
            if full is not None:
                await self._retry_later(run, full)
            elif isinstance(exc, EngineError):
                await self._fail(run, str(exc) or type(exc).__name__)
            else:
                log.exception("task %s: engine %s raised", record.task_id, spec.engine)
                await self._fail(run, f"engine error: {type(exc).__name__}: {exc}")
            return
        if run.lease_lost:
            return  # another worker owns the task now; its result is the one written
        if run.stop_reason is not None:
            log.info("task %s: %s; output discarded", record.task_id, run.stop_reason)
            return
        try:
            result = await asyncio.to_thread(self._store_outputs, record.task_id, output)
        except Exception:
            STORAGE_ERRORS.labels("put").inc()
            raise
        ok = await self.store.finish_task(
            record.task_id, self.worker_id, result, units=output.units
        )
        if not ok:
            log.warning("task %s: lease lost before finishing; result discarded", record.task_id)

    def _hook_url(self, task_id: str) -> str | None:
        """Our URL for a provider's callback about ``task_id``, when the API can check it."""
        secret = self.settings.shared_link_secret()
        return upstream_hook_url(self.settings.base_url, secret, task_id) if secret else None

    async def _generate(self, run: _Running, spec: ModelSpec, job: Job) -> Output:
        """The engine's output, the task stretched to the model's ``processing_s``.

        With ``processing_s``, progress follows the clock (an emulated duration is usually
        longer than the work), held at 99 while the engine is still busy; without it, progress
        is the engine's own.
        """
        _, processing_s = spec.phases(job.request, realistic=self.settings.realistic)

        def to_run(percent: float) -> None:
            run.progress = max(run.progress, min(99.0, float(percent)))

        def ignored(percent: float) -> None:
            return None

        engine_progress = ignored if processing_s > 0 else to_run
        work = asyncio.ensure_future(
            self.engines[spec.engine].generate(job, engine_progress, run.cancel.is_set)
        )
        if processing_s > 0:
            pacer = Pacer(to_run, run.cancel.is_set, processing_s)
            with contextlib.suppress(TaskCancelledError):  # the engine sees the same flag
                await pacer.follow(work, lambda: 1.0)
        return await work  # a stop that came meanwhile is checked by the caller

    def _store_outputs(self, task_id: str, output: Output) -> dict[str, Any]:
        prefix = task_prefix(task_id)
        videos = []
        for index, video in enumerate(output.videos):
            key = f"{prefix}/{index}.mp4"
            self.storage.put(key, video.path, "video/mp4")
            item: dict[str, Any] = {
                "id": video_id(task_id, index),
                "key": key,
                "duration": _seconds(video.duration),
            }
            if video.watermarked_path is not None:
                item["watermark_key"] = f"{prefix}/{index}-watermarked.mp4"
                self.storage.put(item["watermark_key"], video.watermarked_path, "video/mp4")
            if video.thumbnail_path is not None:
                item["thumbnail_key"] = f"{prefix}/{index}.jpg"
                self.storage.put(item["thumbnail_key"], video.thumbnail_path, "image/jpeg")
            videos.append(item)
        return {"videos": videos, **dict(output.extra)}

    async def _after_cancel(self, run: _Running) -> None:
        if run.lease_lost:
            return
        if run.stop_reason is not None:
            await self._fail(run, run.stop_reason)  # usually ended already by the heartbeat
            return
        if self._stopping.is_set():
            # Shutdown outlived the grace period: hand the task to another worker now.
            await self.store.release_task(run.record.task_id, self.worker_id)
            return
        await self._fail(run, "task was cancelled")

    async def _retry_later(self, run: _Running, exc: OSError) -> None:
        """The disk is full: give the task back for a later attempt, or fail it when spent."""
        record = run.record
        if run.lease_lost:
            return
        reason = f"storage is full: {exc.strerror or os.strerror(exc.errno or 0)}"
        if record.attempts >= self.settings.max_attempts:
            log.error("task %s: %s; no attempt left", record.task_id, reason)
            await self._fail(run, f"{reason} (gave up after {record.attempts} attempts)")
            return
        delay = self.settings.storage_retry_s * 2 ** (record.attempts - 1)
        log.warning(
            "task %s: %s; attempt %d of %d, retrying in %.0fs",
            record.task_id,
            reason,
            record.attempts,
            self.settings.max_attempts,
            delay,
        )
        await self.store.release_task(record.task_id, self.worker_id, delay_s=delay)

    async def _fail(self, run: _Running, message: str) -> None:
        if not run.lease_lost:
            await self.store.fail_task(run.record.task_id, self.worker_id, message)

    async def _heartbeats(self) -> None:
        """Renew the leases of every task this worker runs in one store call per interval
        (thousands of upstream tasks in flight would not survive a write per task per second);
        stop a task whose client asked to cancel, whose lease was lost, or that timed out."""
        interval = min(1.0, self.settings.lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            now = self.store.clock()
            beating: dict[str, _Running] = {}
            for task_id, run in list(self._running.items()):
                if not run.beating:
                    continue
                if run.deadline_ms is not None and now >= run.deadline_ms:
                    self._stop_soon(run, timed_out_message(run.timeout_s))
                else:
                    beating[task_id] = run
            if not beating:
                continue
            progress = {task_id: int(run.progress) for task_id, run in beating.items()}
            try:
                beats = await self.store.renew_leases(
                    self.worker_id, self.settings.lease_s, progress
                )
            except Exception:  # the store may be briefly unreachable; leases outlast a beat
                log.exception("heartbeat failed for %d task(s)", len(beating))
                continue
            for task_id, beat in beats.items():
                run = beating[task_id]
                if not run.beating:
                    continue  # ended while the heartbeat was in flight
                if beat is None:
                    log.warning("task %s: lease lost; cancelling", task_id)
                    run.beating = False
                    run.lease_lost = True
                    run.cancel.set()
                elif beat.cancel_reason is not None:
                    self._stop_soon(run, beat.cancel_reason)
                elif beat.pokes != run.pokes:
                    run.pokes = beat.pokes
                    self._poke(run)

    def _poke(self, run: _Running) -> None:
        """The upstream called back about this task: its engine polls it now."""
        spec = self.catalog.get(run.record.model_name)
        engine = self.engines.get(spec.engine) if spec is not None else None
        poke = getattr(engine, "poke", None)
        if callable(poke):
            poke(run.record.task_id)

    def _heartbeats_ended(self, beats: asyncio.Task[None]) -> None:
        """The heartbeat is watched: if it dies, the worker stops instead of losing leases."""
        if beats.cancelled() or beats.exception() is None:
            return
        log.critical("the heartbeat died (%r); stopping the worker", beats.exception())
        self.request_stop()

    def _stop_soon(self, run: _Running, reason: str) -> None:
        run.beating = False
        stop = asyncio.create_task(self._stop(run, reason))
        self._stops.add(stop)
        stop.add_done_callback(self._stops.discard)

    async def _stop(self, run: _Running, reason: str) -> None:
        """End the task ``failed`` with ``reason`` now, and tell the engine to stop."""
        log.info("task %s: %s; stopping the engine", run.record.task_id, reason)
        run.stop_reason = reason
        run.cancel.set()
        for attempt in range(3):
            try:
                await self._fail(run, reason)
                return
            except Exception:  # the store may be briefly unreachable; _after_cancel retries
                log.exception("task %s: could not end it (try %d)", run.record.task_id, attempt)
                await asyncio.sleep(1.0)


def _fresh_dir(path: Path, attempt: int) -> None:
    """An empty ``path``; dirs of this task's earlier attempts are dead (it was reclaimed)."""
    task_id = path.name.rsplit("-", 1)[0]
    for old in path.parent.glob(f"{task_id}-*"):
        parsed = parse_workdir(old.name)
        if parsed is not None and parsed[0] == task_id and parsed[1] <= attempt:
            shutil.rmtree(old, ignore_errors=True)
    path.mkdir(parents=True)


def _seconds(duration: float) -> str:
    return str(round(duration)) if abs(duration - round(duration)) < 0.05 else f"{duration:.2f}"
