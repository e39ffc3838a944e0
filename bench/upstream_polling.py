"""Polling traffic of the upstream engine's tracker: requests per task, many tasks at once.

    python bench/upstream_polling.py [--tasks 500] [--task-s 6] [--poll-min 0.1] [--poll-max 1.5]

Runs the real engine (submission, tracker, mirroring) against an in-memory provider behind
``httpx.MockTransport``: each task finishes ``--task-s`` after its submission. Prints the
queries per task beside the schedule's own count (polls at 0, then every ``min * 1.6^k`` up to
``max``) for a task of that length, and the most queries in flight at once. Time is scaled:
``--poll-min 0.1 --poll-max 1.5 --task-s 30`` is the default schedule (1 s to 15 s) over a
five-minute task, ten times faster.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.base import Job
from reelgate.engines.upstream import UpstreamEngine
from reelgate.engines.upstream.tracker import BACKOFF


def scheduled_polls(task_s: float, low: float, high: float) -> int:
    t, polls = 0.0, 1
    while t < task_s:
        t += min(high, low * BACKOFF**polls)
        polls += 1
    return polls


class Provider:
    def __init__(self, task_s: float) -> None:
        self.task_s = task_s
        self.born: dict[str, float] = {}
        self.queries = 0
        self.inflight = 0
        self.most = 0
        self.ids = itertools.count(1)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            task_id = str(next(self.ids))
            self.born[task_id] = time.monotonic()
            return _ok({"task_id": task_id, "task_status": "submitted"})
        if request.url.path.endswith(".mp4"):
            return httpx.Response(200, content=b"mp4")
        self.queries += 1
        self.inflight += 1
        self.most = max(self.most, self.inflight)
        await asyncio.sleep(0.002)  # a provider's answer takes a moment
        self.inflight -= 1
        task_id = request.url.path.rsplit("/", 1)[1]
        done = time.monotonic() - self.born[task_id] >= self.task_s
        data: dict[str, Any] = {"task_id": task_id, "task_status": "processing"}
        if done:
            video = {"url": "http://p.test/v.mp4", "duration": "5"}
            data.update(task_status="succeed", task_result={"videos": [video]})
        return _ok(data)


def _ok(data: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "data": data})


async def main(args: argparse.Namespace) -> None:
    provider = Provider(args.task_s)
    entry = {
        "id": "kling-v1",
        "base_url": "http://p.test",
        "api_key": "k",
        "poll_min_s": args.poll_min,
        "poll_max_s": args.poll_max,
    }
    engine = UpstreamEngine([entry], transport=httpx.MockTransport(provider.handle))
    request = Text2VideoRequest.model_validate({"prompt": "p"})
    with tempfile.TemporaryDirectory() as tmp:
        jobs = [
            Job(str(i), engine.models()[0], request, Path(tmp) / str(i)) for i in range(args.tasks)
        ]
        started = time.monotonic()
        await asyncio.gather(*(engine.generate(j, lambda p: None, lambda: False) for j in jobs))
        took = time.monotonic() - started
    await engine.aclose()
    print(
        json.dumps(
            {
                "tasks": args.tasks,
                "task_s": args.task_s,
                "queries_per_task": round(provider.queries / args.tasks, 2),
                "schedule_per_task": scheduled_polls(args.task_s, args.poll_min, args.poll_max),
                "most_in_flight": provider.most,
                "wall_s": round(took, 1),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--task-s", type=float, default=6.0)
    parser.add_argument("--poll-min", type=float, default=0.1)
    parser.add_argument("--poll-max", type=float, default=1.5)
    asyncio.run(main(parser.parse_args()))
