"""The ``upstream`` engine: Kling's own API (AK/SK) or a CometAPI-style gateway (API key).

A task is never submitted upstream twice. Before the POST the engine checkpoints "submitting"
with an idempotency id, sent upstream as ``external_task_id``; after it, "submitted" with the
upstream's task id. An attempt that finds "submitting" (the worker died between the two) asks
the upstream for that external id before submitting. Tracking and result mirroring follow:
the videos are streamed into the job's workdir and stored by the worker, so clients get
reelgate's links, never the upstream's. The client's ``callback_url`` and ``external_task_id``
stay here.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from reelgate.domain.models import ModelSpec
from reelgate.engines.base import (
    Cancelled,
    EngineError,
    Job,
    Output,
    Progress,
    RetryLater,
    SlotPool,
    TaskCancelledError,
    VideoFile,
)

from .client import Rejected, Throttled, Unreachable, UpstreamClient
from .config import ENGINE_NAME, Upstream, parse_entries
from .tracker import Tracker

T = TypeVar("T")

RETRY_MAX_S = 15.0  # the longest wait between two tries of an unreachable upstream
THROTTLE_MAX_S = 120.0  # the longest wait after a 429/1302/1303 without Retry-After
_NOT_FORWARDED = {"callback_url", "external_task_id", "model_name", "model"}
# progress shown while the upstream works (Kling reports no percentage of its own)
_PROGRESS = {"submitted": 5.0, "processing": 10.0}


def idempotency_id(task_id: str) -> str:
    """The upstream ``external_task_id`` of one of our tasks, the same on every attempt."""
    return f"reelgate-{task_id}"


class UpstreamEngine:
    """``UpstreamEngine(entries, data_dir)``: the ``upstream`` entry point of
    ``reelgate.engines``. ``transport`` replaces the network (tests, an in-process provider);
    ``environ`` is where ``*_env`` secrets are read from."""

    name = ENGINE_NAME

    def __init__(
        self,
        entries: Sequence[Mapping[str, Any]] = (),
        data_dir: Path | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        environ: Mapping[str, str] | None = None,
        max_inflight: int = 32,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        parsed = parse_entries(entries, os.environ if environ is None else environ)
        self._specs = [spec for spec, _ in parsed]
        self._upstreams = {up.model_id: up for _, up in parsed}
        self._transport = transport
        self._max_inflight = max_inflight
        self._sleep = sleep
        self._client: UpstreamClient | None = None
        self._tracker: Tracker | None = None
        self._tracking: dict[str, str] = {}  # our task id -> its upstream task id

    def models(self) -> list[ModelSpec]:
        return list(self._specs)

    def slot_pools(self) -> list[SlotPool]:
        """One pool per upstream account, of the smallest ``concurrency`` its entries give."""
        pools: dict[str, tuple[list[str], int]] = {}
        for up in self._upstreams.values():
            models, slots = pools.get(up.account, ([], up.concurrency))
            pools[up.account] = ([*models, up.model_id], min(slots, up.concurrency))
        return [SlotPool(tuple(models), slots) for models, slots in pools.values()]

    @property
    def tracker(self) -> Tracker:
        if self._tracker is None:
            self._tracker = Tracker(self._query, max_inflight=self._max_inflight)
        return self._tracker

    @property
    def client(self) -> UpstreamClient:
        if self._client is None:
            limits = httpx.Limits(max_connections=self._max_inflight * 2)
            http = httpx.AsyncClient(transport=self._transport, limits=limits)
            self._client = UpstreamClient(http)
        return self._client

    def poke(self, task_id: str) -> None:
        """The upstream called back about ``task_id``: poll it now (its body is only a hint;
        what counts is what the upstream answers to our own query)."""
        upstream_id = self._tracking.get(task_id)
        if upstream_id is not None:
            self.tracker.poke(upstream_id)

    async def _query(self, up: Upstream, upstream_id: str) -> dict[str, Any] | None:
        return await self.client.query(up, upstream_id)

    async def generate(self, job: Job, progress: Progress, cancelled: Cancelled) -> Output:
        up = self._upstreams.get(job.model.id)
        if up is None:
            raise EngineError(f"model {job.model.id} has no upstream")
        upstream_id = job.state.get("upstream_task_id")
        if not isinstance(upstream_id, str):
            upstream_id = await self._submit(up, job, cancelled)
        progress(_PROGRESS["submitted"])
        self._tracking[job.task_id] = upstream_id
        try:
            data = await self._track(up, upstream_id, progress, cancelled)
        finally:
            self._tracking.pop(job.task_id, None)
        if data.get("task_status") == "failed":
            why = str(data.get("task_status_msg") or "the task failed")
            raise EngineError(f"upstream {up.label}: {why}")
        return await self._mirror(up, job, data, cancelled)

    async def aclose(self) -> None:
        if self._tracker is not None:
            await self._tracker.aclose()
        if self._client is not None:
            await self._client.http.aclose()

    # -- submission -------------------------------------------------------------------------

    async def _submit(self, up: Upstream, job: Job, cancelled: Cancelled) -> str:
        external = idempotency_id(job.task_id)
        maybe_sent = job.state.get("phase") == "submitting"
        throttles = int(job.state.get("throttles", 0))
        body = {
            **job.request.model_dump(mode="json", exclude_none=True, exclude=_NOT_FORWARDED),
            "model_name": up.model_name,
            "external_task_id": external,
        }
        if up.callback and job.hook_url:
            body["callback_url"] = job.hook_url

        unsure = maybe_sent  # whether an upstream task may exist that we have not found

        async def submit_once() -> str:
            nonlocal maybe_sent, unsure
            if maybe_sent:  # an earlier try may have reached it: never submit twice
                found = await self.client.query(up, external)
                if found is not None:
                    return str(found["task_id"])
                unsure = False
            await job.checkpoint({"phase": "submitting", "external_id": external})
            maybe_sent = unsure = True
            try:
                return await self.client.submit(up, body)
            except Throttled:
                unsure = False  # refused: nothing was created
                raise
            except Rejected:
                # A duplicate idempotency id means an earlier try did create it after all.
                found = await self.client.query(up, external)
                if found is not None:
                    return str(found["task_id"])
                raise

        try:
            upstream_id = await self._retrying(up, cancelled, submit_once)
        except Throttled as busy:
            # Refused, so not submitted (unless a try before it may have been: then the next
            # attempt looks for it first, as after a crash).
            state: dict[str, Any] = {"throttles": throttles + 1}
            if unsure:
                state.update(phase="submitting", external_id=external)
            await job.checkpoint(state)
            delay = busy.retry_after_s
            if delay is None:
                delay = min(THROTTLE_MAX_S, 2.0 ** min(throttles + 1, 10))
            raise RetryLater(str(busy), delay) from busy
        await job.checkpoint(
            {"phase": "submitted", "external_id": external, "upstream_task_id": upstream_id}
        )
        return upstream_id

    async def _retrying(
        self, up: Upstream, cancelled: Cancelled, call: Callable[[], Awaitable[T]]
    ) -> T:
        """``call()``, tried again while the upstream is unreachable, up to ``unreachable_s``.

        ``Rejected`` ends the task with its message; ``Throttled`` goes to the caller."""
        first_failure: float | None = None
        tries = 0
        while True:
            if cancelled():
                raise TaskCancelledError()
            try:
                return await call()
            except Rejected as exc:
                raise EngineError(str(exc)) from exc
            except Unreachable as exc:
                now = time.monotonic()
                first_failure = now if first_failure is None else first_failure
                if now - first_failure >= up.unreachable_s:
                    raise EngineError(
                        f"{exc} (gave up after {up.unreachable_s:g} s unreachable)"
                    ) from exc
                tries += 1
                await self._pause(min(RETRY_MAX_S, 0.5 * 2**tries), cancelled)

    async def _pause(self, seconds: float, cancelled: Cancelled) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if cancelled():
                raise TaskCancelledError()
            await self._sleep(min(left, 0.25))

    # -- tracking ---------------------------------------------------------------------------

    async def _track(
        self, up: Upstream, upstream_id: str, progress: Progress, cancelled: Cancelled
    ) -> dict[str, Any]:
        def seen(data: dict[str, Any]) -> None:
            status = str(data.get("task_status", ""))
            shown = _PROGRESS.get(status)
            if shown is not None:
                reported = data.get("task_progress")
                if isinstance(reported, int | float) and status == "processing":
                    shown = max(shown, min(99.0, float(reported)))
                progress(shown)

        entry = self.tracker.track(up, upstream_id, seen)
        try:
            while True:
                # The wait is cheap (no request); the tracker's loop does the polling.
                done, _ = await asyncio.wait({entry.done}, timeout=0.5)
                if done:
                    break
                if cancelled():
                    raise TaskCancelledError()
        finally:
            self.tracker.forget(entry)
        try:
            return entry.done.result()
        except Rejected as exc:
            raise EngineError(str(exc)) from exc
        except Unreachable as exc:
            raise EngineError(f"{exc} (gave up after {up.unreachable_s:g} s unreachable)") from exc

    # -- mirroring --------------------------------------------------------------------------

    async def _mirror(
        self, up: Upstream, job: Job, data: Mapping[str, Any], cancelled: Cancelled
    ) -> Output:
        result = data.get("task_result")
        videos = result.get("videos") if isinstance(result, Mapping) else None
        if not isinstance(videos, list) or not videos:
            raise EngineError(f"upstream {up.label}: the task succeeded without videos")
        job.workdir.mkdir(parents=True, exist_ok=True)
        files = []
        for index, video in enumerate(videos):
            url = video.get("url") if isinstance(video, Mapping) else None
            if not isinstance(url, str) or not url:
                raise EngineError(f"upstream {up.label}: video {index} has no url")
            path = job.workdir / f"{index}.mp4"
            await self._retrying(up, cancelled, partial(self.client.download, up, url, path))
            marked = video.get("watermark_url")
            marked_path = None
            if job.request.watermark and isinstance(marked, str) and marked:
                marked_path = job.workdir / f"{index}-watermarked.mp4"
                fetch = partial(self.client.download, up, marked, marked_path)
                await self._retrying(up, cancelled, fetch)
            files.append(
                VideoFile(
                    path=path, duration=_float(video.get("duration")), watermarked_path=marked_path
                )
            )
        return Output(videos=files, units=_units(data.get("final_unit_deduction")))


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _units(value: Any) -> str | None:
    """The upstream's ``final_unit_deduction`` as a decimal string, when it gave one."""
    try:
        units = Decimal(str(value))
    except InvalidOperation:
        return None
    return str(units) if value is not None and units.is_finite() and units >= 0 else None
