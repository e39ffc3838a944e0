"""The diffusers engine: open-weight text-to-video models served from a catalogue.

``DiffusersEngine(entries, data_dir)`` parses its entries (no torch needed: ``models()`` works on
a server without the extra). Generation runs in one child process per device (:mod:`.child`),
started on first use or by :meth:`DiffusersEngine.warm_up`, where pipelines stay loaded.

Failure handling:

- the process dies mid-task (segfault, host OOM kill): it is restarted and the task retried once
  with the same seed; a second death fails the task with a message saying so;
- the model fails to load: the task fails with the reason, :meth:`health` reports it, and later
  tasks fail at once until ``reload_after_s`` has passed (no crash loop);
- CUDA out of memory: the task fails with a clear message; the process stays up and warm;
- cancellation: checked between denoising steps; partial output is discarded.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from reelgate.domain.models import ModelSpec
from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.base import (
    Cancelled,
    EngineError,
    Job,
    Output,
    Progress,
    TaskCancelledError,
    VideoFile,
)

from .child import child_main
from .entry import ModelEntry, parse_entry
from .mapping import GenerationPlan, plan_for
from .protocol import (
    Event,
    Failed,
    Finished,
    Generate,
    LoadModel,
    ModelEvicted,
    ModelLoaded,
    ModelLoading,
    Request,
    StepProgress,
)
from .spec import ENGINE_NAME, model_spec
from .supervisor import ChildTarget, DeviceProcess, ProcessCrashedError

log = logging.getLogger("reelgate.engines.diffusers")

HealthState = Literal["not_loaded", "loading", "starting", "ready", "failed"]


@dataclass(frozen=True)
class ModelHealth:
    state: HealthState
    message: str = ""
    since: float = 0.0  # time.time() of the last change

    def __str__(self) -> str:
        return f"{self.state}: {self.message}" if self.message else self.state

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "message": self.message, "since": self.since}


class DiffusersEngine:
    name = ENGINE_NAME
    reload_after_s = 300.0  # a failed model is tried again after this long

    def __init__(
        self,
        entries: Sequence[Mapping[str, Any]],
        data_dir: Path,
        *,
        process_target: ChildTarget = child_main,
        start_method: str = "spawn",
    ) -> None:
        self.data_dir = Path(data_dir)
        self._process_target = process_target
        self._start_method = start_method
        self._entries: dict[str, ModelEntry] = {}
        self._specs: list[ModelSpec] = []
        for raw in entries:
            entry = parse_entry(raw)
            if entry.id in self._entries:
                raise ValueError(f"model {entry.id}: id is used by two entries")
            self._entries[entry.id] = entry
            self._specs.append(model_spec(entry))
        self._devices: dict[str, DeviceProcess] = {}
        self._health = {model_id: ModelHealth("not_loaded") for model_id in self._entries}
        self._warming: set[str] = set()  # models whose warm-up is running

    def models(self) -> list[ModelSpec]:
        return list(self._specs)

    def entry(self, model_id: str) -> ModelEntry:
        return self._entries[model_id]

    def health(self) -> dict[str, ModelHealth]:
        """Per model: not_loaded (or evicted), loading, starting (warming up compiled shapes),
        ready, or failed with the reason."""
        return dict(self._health)

    def _device(self, device: str) -> DeviceProcess:
        if device not in self._devices:
            cache = self.data_dir / "diffusers-cache"
            self._devices[device] = DeviceProcess(
                device, cache, self._process_target, self._start_method
            )
        return self._devices[device]

    def _set_health(self, model_id: str, state: HealthState, message: str = "") -> None:
        self._health[model_id] = ModelHealth(state, message, time.time())

    def _on_event(self, event: Event, progress: Progress | None) -> None:
        if isinstance(event, ModelLoading):
            self._set_health(event.model_id, "loading")
        elif isinstance(event, ModelLoaded):
            warming = (
                event.model_id in self._warming and self._entries[event.model_id].speed.compile
            )
            state: HealthState = "starting" if warming else "ready"
            self._set_health(event.model_id, state, f"loaded in {event.seconds:.1f} s")
        elif isinstance(event, ModelEvicted):
            self._set_health(event.model_id, "not_loaded", f"evicted {event.reason}")
        elif isinstance(event, StepProgress) and progress is not None:
            progress(event.percent)

    def _lost_device(self, device: str) -> None:
        for model_id, entry in self._entries.items():
            if entry.device == device and self._health[model_id].state in (
                "ready",
                "loading",
                "starting",
            ):
                self._set_health(model_id, "not_loaded", "generation process restarted")

    def _unavailable(self, entry: ModelEntry) -> str | None:
        health = self._health[entry.id]
        if health.state == "failed" and time.time() - health.since < self.reload_after_s:
            return f"model {entry.id} is unavailable: {health.message}"
        return None

    async def warm_up(self, model_ids: Sequence[str] | None = None) -> dict[str, ModelHealth]:
        """Load pipelines now (default: all) instead of on their first task. A model with
        ``compile`` also runs one step of every shape its profiles can ask for (mode x aspect
        ratio x duration), so no task pays for compilation; health says ``starting`` until
        then."""
        for model_id in model_ids or list(self._entries):
            entry = self._entries[model_id]
            plans = self._warm_plans(entry) if entry.speed.compile else ()

            def load(
                request_id: int,
                attempt: int,
                entry: ModelEntry = entry,
                plans: tuple[GenerationPlan, ...] = plans,
            ) -> LoadModel:
                return LoadModel(request_id, entry, plans)

            if plans:
                self._warming.add(entry.id)
            try:
                await self._call(entry, load, None, lambda: False)
            except EngineError as exc:
                log.error("%s", exc)
            else:
                if plans:
                    self._set_health(entry.id, "ready", f"warmed up {len(plans)} shape(s)")
            finally:
                self._warming.discard(entry.id)
        return self.health()

    def _warm_plans(self, entry: ModelEntry) -> tuple[GenerationPlan, ...]:
        spec = next(s for s in self._specs if s.id == entry.id)
        workdir = self.data_dir / "diffusers-cache" / "warm-up"
        plans: dict[tuple[str, int, int, int], GenerationPlan] = {}
        for mode in entry.profiles:
            for aspect in entry.aspect_ratios:
                for duration in entry.durations:
                    request = Text2VideoRequest.model_validate(
                        {"prompt": "warm-up", "mode": mode, "aspect_ratio": aspect,
                         "duration": duration}
                    )  # fmt: skip
                    plan = plan_for(entry, Job("warm-up", spec, request, workdir))
                    plans.setdefault((plan.mode, plan.width, plan.height, plan.num_frames), plan)
        return tuple(plans.values())

    async def generate(self, job: Job, progress: Progress, cancelled: Cancelled) -> Output:
        entry = self._entries.get(job.model.id)
        if entry is None:
            raise EngineError(f"model {job.model.id} is not served by the diffusers engine")
        highest = 0.0

        def monotonic_progress(percent: float) -> None:
            nonlocal highest  # a retry starts over; the client's bar should not go back
            if percent > highest:
                highest = percent
                progress(percent)

        reply = await self._call(
            entry,
            lambda rid, attempt: Generate(rid, entry, plan_for(entry, job, attempt)),
            monotonic_progress,
            cancelled,
        )
        result = reply.result
        if result is None:
            raise EngineError(f"model {entry.id}: the generation process returned no video")
        return Output(
            videos=[
                VideoFile(
                    path=Path(result.video_path),
                    duration=result.duration,
                    watermarked_path=Path(result.watermarked_path)
                    if result.watermarked_path
                    else None,
                    thumbnail_path=Path(result.thumbnail_path) if result.thumbnail_path else None,
                )
            ],
            extra={"seed": result.seed},
        )

    async def _call(
        self,
        entry: ModelEntry,
        make_request: Callable[[int, int], Request],
        progress: Progress | None,
        cancelled: Cancelled,
    ) -> Finished:
        """One request with the crash policy: restart the process and retry once."""
        unavailable = self._unavailable(entry)
        if unavailable:
            raise EngineError(unavailable)
        if cancelled():
            raise TaskCancelledError()
        process = self._device(entry.device)
        for attempt in (1, 2):
            try:
                reply = await process.call(
                    functools.partial(_with_attempt, make_request, attempt),
                    functools.partial(self._on_event, progress=progress),
                    cancelled,
                )
            except ProcessCrashedError as exc:
                was_loading = self._health[entry.id].state == "loading"
                self._lost_device(entry.device)
                if attempt == 1:
                    log.warning("model %s: generation process died (%s); retrying", entry.id, exc)
                    continue
                if was_loading:
                    self._set_health(entry.id, "failed", f"the process died while loading ({exc})")
                raise EngineError(
                    f"model {entry.id}: the generation process died twice ({exc});"
                    " the task was retried once"
                ) from exc
            if isinstance(reply, Failed):
                raise self._failure(entry, reply)
            return reply
        raise AssertionError("unreachable")

    def _failure(self, entry: ModelEntry, failed: Failed) -> EngineError:
        if failed.kind == "cancelled":
            return TaskCancelledError()
        if failed.kind == "load":
            self._set_health(entry.id, "failed", f"failed to load: {failed.message}")
            return EngineError(f"model {entry.id} failed to load: {failed.message}")
        if failed.kind == "oom":
            return EngineError(failed.message)
        return EngineError(f"model {entry.id}: generation failed: {failed.message}")

    async def aclose(self) -> None:
        for process in self._devices.values():
            await process.aclose()
        self._devices.clear()


def _with_attempt(make_request: Callable[[int, int], Request], attempt: int, rid: int) -> Request:
    return make_request(rid, attempt)
