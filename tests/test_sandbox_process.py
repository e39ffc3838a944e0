"""Sandbox renders run in child processes: off the caller's GIL, reused, and a dead child fails
its task cleanly while the next render gets a fresh one."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from reelgate.engines.base import TaskCancelledError
from reelgate.engines.sandbox import SandboxEngine
from reelgate.engines.sandbox.plan import ClipPlan
from reelgate.engines.sandbox.process import RENDER_NICENESS, RenderPool, RenderProcessDied
from reelgate.media import ClipInfo

from .test_sandbox_engine import SHORT, Recorder, make_job, run


def render_pid(
    plan: ClipPlan,
    out_dir: Path,
    *,
    watermark: bool,
    before_frame: Callable[[int], None] | None = None,
) -> ClipInfo:
    """A render that writes the id of the process it ran in (and its niceness, beside it),
    instead of a clip."""
    path = out_dir / "pid"
    path.write_text(str(os.getpid()))
    (out_dir / "nice").write_text(str(os.nice(0)))
    return ClipInfo(path, plan.width, plan.height, plan.fps, 1, 1 / plan.fps, False)


def render_children() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "reelgate-render"]


def wait_gone(pid: int) -> None:
    """Until process ``pid`` has exited (a kill is delivered asynchronously)."""
    for _ in range(1000):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.01)


async def under_way(work: asyncio.Future[object], recorder: Recorder) -> None:
    """Until the render reports 10 %; fails if it ended first."""
    waiting = asyncio.ensure_future(recorder.under_way.wait())
    await asyncio.wait({work, waiting}, return_when=asyncio.FIRST_COMPLETED)
    assert waiting.done() and not work.done()


async def test_renders_run_in_a_child_process_that_is_reused(tmp_path: Path) -> None:
    pool = RenderPool(render_pid)
    engine = SandboxEngine(renders=pool)
    try:
        pids = []
        for n in range(2):
            output, _ = await run(make_job(engine, tmp_path / str(n), "a pid", **SHORT), engine)
            pids.append(int(output.videos[0].path.read_text()))
            assert pool.idle == 1
        assert pids[0] == pids[1] != os.getpid()
    finally:
        await engine.aclose()
    assert pool.idle == 0


async def test_renders_run_at_a_lower_priority_than_the_api(tmp_path: Path) -> None:
    engine = SandboxEngine(renders=RenderPool(render_pid))
    try:
        output, _ = await run(make_job(engine, tmp_path, "nice", **SHORT), engine)
    finally:
        await engine.aclose()
    expected = min(19, os.nice(0) + RENDER_NICENESS)
    assert int((output.videos[0].path.parent / "nice").read_text()) == expected > os.nice(0)


async def test_concurrent_renders_get_one_child_each(tmp_path: Path) -> None:
    pool = RenderPool(render_pid)
    engine = SandboxEngine(renders=pool)
    try:
        jobs = [make_job(engine, tmp_path / str(n), "a pid", **SHORT) for n in range(3)]
        outputs = await asyncio.gather(*(run(job, engine) for job in jobs))
        pids = {int(output.videos[0].path.read_text()) for output, _ in outputs}
        assert len(pids) == 3 and pool.idle == 3
    finally:
        await engine.aclose()


async def test_a_killed_render_fails_the_task_and_the_pool_recovers(tmp_path: Path) -> None:
    engine = SandboxEngine()
    try:
        long = make_job(engine, tmp_path / "a", "killed mid-render", duration="5")
        recorder = Recorder()
        others = {p.pid for p in render_children()}  # idle children of other tests' engines
        work = asyncio.ensure_future(run(long, engine, recorder))
        await under_way(work, recorder)
        [child] = [p for p in render_children() if p.pid not in others]
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        with pytest.raises(RenderProcessDied, match="render process died"):
            await work
        assert engine.renders.idle == 0
        output, _ = await run(make_job(engine, tmp_path / "b", "after the crash", **SHORT), engine)
        assert output.videos[0].path.stat().st_size > 0
        assert engine.renders.idle == 1
    finally:
        await engine.aclose()


async def test_a_child_killed_while_idle_is_replaced(tmp_path: Path) -> None:
    pool = RenderPool(render_pid)
    engine = SandboxEngine(renders=pool)
    try:
        first, _ = await run(make_job(engine, tmp_path / "a", "a pid", **SHORT), engine)
        pid = int(first.videos[0].path.read_text())
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        second, _ = await run(make_job(engine, tmp_path / "b", "a pid", **SHORT), engine)
        assert int(second.videos[0].path.read_text()) not in (pid, os.getpid())
    finally:
        await engine.aclose()


async def test_cancelled_render_leaves_the_child_ready_for_the_next(tmp_path: Path) -> None:
    engine = SandboxEngine()
    try:
        job = make_job(engine, tmp_path / "a", "cancel me", duration="5")
        recorder = Recorder()
        work = asyncio.ensure_future(run(job, engine, recorder))
        await under_way(work, recorder)
        recorder.cancel = True
        with pytest.raises(TaskCancelledError):
            await work
        assert list(job.workdir.iterdir()) == []  # partial files removed by the child
        assert engine.renders.idle == 1
        output, _ = await run(make_job(engine, tmp_path / "b", "next", **SHORT), engine)
        assert output.videos[0].path.exists()
    finally:
        await engine.aclose()
