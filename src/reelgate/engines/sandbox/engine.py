"""The sandbox engine: real, deterministic MP4s on CPU, with scenario controls for testing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reelgate.domain.ids import now_ms
from reelgate.domain.models import ModelSpec
from reelgate.domain.scenarios import ControlState
from reelgate.engines.base import Cancelled, EngineError, Job, Output, Progress, VideoFile

from .catalog import ENGINE_NAME, Behaviour, sandbox_models
from .pacing import Pacer, ReadControl
from .plan import ClipPlan, plan_clip
from .process import RenderPool
from .scenario import SIMULATED_CRASH, SIMULATED_FAILURE, scenario_for

if TYPE_CHECKING:  # the renderer (numpy, PyAV) is imported by the render processes only
    from reelgate.media import ClipInfo


class TaskControl(Protocol):
    """Where ``/_sandbox`` signals for running tasks are read (the store's sandbox tables)."""

    async def control_state(self, task_id: str, since_ms: int) -> ControlState: ...


class SandboxEngine:
    """``SandboxEngine(entries, data_dir, control)``: the ``sandbox`` entry point of
    ``reelgate.engines``. Without ``control`` (set it with :meth:`connect`), a stalled task
    ends only when cancelled. Clips render in the child processes of ``renders``."""

    name = ENGINE_NAME

    def __init__(
        self,
        entries: Sequence[Mapping[str, Any]] = (),
        data_dir: Path | None = None,
        control: TaskControl | None = None,
        renders: RenderPool | None = None,
    ) -> None:
        self._models = sandbox_models(entries)
        self.data_dir = data_dir  # unused: everything a task writes goes to its job.workdir
        self.control = control
        self.renders = renders if renders is not None else RenderPool()

    def connect(self, control: TaskControl) -> None:
        """Read ``/_sandbox`` signals (release, finish, advance) from ``control``."""
        self.control = control

    def _reader(self, task_id: str) -> ReadControl | None:
        control = self.control
        if control is None:
            return None
        since = now_ms()
        return lambda: control.control_state(task_id, since)

    def models(self) -> list[ModelSpec]:
        return list(self._models)

    async def generate(self, job: Job, progress: Progress, cancelled: Cancelled) -> Output:
        scenario = scenario_for(job)
        behaviour = Behaviour.of(job.model)
        plan = plan_clip(job.model, job.request, scenario.prompt)
        pacer = Pacer(
            progress,
            cancelled,
            max(scenario.slow_s, behaviour.delay_s),
            self._reader(job.task_id),
        )
        if scenario.stall:
            await pacer.stall()
        failure = scenario.failure
        if failure is None and behaviour.fails(job.task_id):
            failure = SIMULATED_FAILURE
        if failure is not None or scenario.crash:
            await pacer.follow(None, lambda: 1.0)  # fail after any slow-down, as Kling would
            if scenario.crash:
                raise RuntimeError(SIMULATED_CRASH)
            raise EngineError(failure)
        clip = await _render(self.renders, job, plan, pacer)
        progress(100.0)
        return Output(
            videos=[
                VideoFile(
                    path=clip.path,
                    duration=clip.duration,
                    watermarked_path=clip.watermarked_path,
                    thumbnail_path=clip.thumbnail_path,
                )
            ],
            extra={"seed": plan.seed},
        )

    async def aclose(self) -> None:
        await asyncio.to_thread(self.renders.close)


async def _render(renders: RenderPool, job: Job, plan: ClipPlan, pacer: Pacer) -> ClipInfo:
    """Render in a child process while the loop paces, reports and polls for cancellation."""
    job.workdir.mkdir(parents=True, exist_ok=True)
    call = renders.start(plan, job.workdir, watermark=job.request.watermark)
    work = call.future
    try:
        await pacer.follow(work, call.fraction)
    except BaseException:  # cancelled(), the task itself cancelled, or a failing callback
        call.cancel()  # the child stops at the next frame and removes its partial files
        await asyncio.wait({work})
        if not work.cancelled() and work.exception() is None:
            _remove(work.result())  # finished during a slow-down: nothing may be left behind
        raise
    return work.result()  # re-raises what the child raised


def _remove(clip: ClipInfo) -> None:
    for path in (clip.path, clip.watermarked_path, clip.thumbnail_path):
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()
