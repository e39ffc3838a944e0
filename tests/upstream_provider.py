"""A fake Kling-shaped provider for the upstream engine's failure paths (issue 10).

It speaks Kling's task API (create, query by task id or external id) with scripted misbehaviour:
answers to serve before accepting a submission (1303, 401, 500 ...), a submission it records but
does not answer until released (so a test can kill the caller at that moment), and tasks that
finish ``finish_s`` after their submission. It counts every request it gets.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64  # what the "MP4" holds


@dataclass
class Answer:
    status: int
    code: int
    message: str = "scripted"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class UpstreamTask:
    task_id: str
    body: dict[str, Any]
    created: float
    outcome: str = "succeed"


class FakeProvider:
    def __init__(self, *, finish_s: float = 0.0, outcome: str = "succeed", api_key: str = "pk"):
        self.finish_s = finish_s
        self.outcome = outcome
        self.api_key = api_key
        self.submit_script: list[Answer] = []  # served, in order, before submissions succeed
        self.query_script: list[Answer] = []  # served, in order, before queries succeed
        self.hold_submit = threading.Event()  # set: accept a submission but do not answer
        self.release = threading.Event()
        self.tasks: dict[str, UpstreamTask] = {}
        self.by_external: dict[str, str] = {}
        self.requests: Counter[str] = Counter()
        self.inflight = 0
        self.most_inflight = 0  # queries answered at once, at most
        self.base_url = "http://provider.test"  # where its video links point
        self._ids = itertools.count(800_000_000_000_000_001)
        self.app = Starlette(
            routes=[
                Route("/v1/videos/text2video", self._create, methods=["POST"]),
                Route("/v1/videos/text2video/{ident}", self._query, methods=["GET"]),
                Route("/video/{task_id}.mp4", self._video, methods=["GET"]),
                Route("/video/{task_id}-wm.mp4", self._video, methods=["GET"]),
            ]
        )

    @property
    def submissions(self) -> int:
        return len(self.tasks)

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    async def _create(self, request: Request) -> Response:
        self.requests["create"] += 1
        if self.submit_script:
            return _answer(self.submit_script.pop(0))
        if not self._authorized(request):
            return _answer(Answer(401, 1002, "invalid token"))
        body = await request.json()
        external = body.get("external_task_id")
        if external in self.by_external:
            return _answer(Answer(400, 1201, "external_task_id already exists"))
        task = UpstreamTask(str(next(self._ids)), body, time.monotonic(), self.outcome)
        self.tasks[task.task_id] = task
        if external:
            self.by_external[external] = task.task_id
        if self.hold_submit.is_set():
            await asyncio.to_thread(self.release.wait)
            return Response(status_code=502)  # the caller is gone by now
        return _ok({"task_id": task.task_id, "task_status": "submitted"})

    async def _query(self, request: Request) -> Response:
        self.requests["query"] += 1
        if self.query_script:
            return _answer(self.query_script.pop(0))
        if not self._authorized(request):
            return _answer(Answer(401, 1002, "invalid token"))
        self.inflight += 1
        self.most_inflight = max(self.most_inflight, self.inflight)
        try:
            await asyncio.sleep(0.001)  # an answer takes a moment: overlapping queries show
            ident = request.path_params["ident"]
            task = self.tasks.get(self.by_external.get(ident, ident))
            if task is None:
                return _answer(Answer(404, 1203, "task not found"))
            return _ok(self._view(task))
        finally:
            self.inflight -= 1

    async def _video(self, request: Request) -> Response:
        self.requests["video"] += 1
        return Response(VIDEO, media_type="video/mp4")

    def _view(self, task: UpstreamTask) -> dict[str, Any]:
        age = time.monotonic() - task.created
        status = "processing" if age < self.finish_s else task.outcome
        view: dict[str, Any] = {
            "task_id": task.task_id,
            "task_status": status,
            "task_status_msg": "the provider's own reason" if status == "failed" else "",
            "task_info": {"external_task_id": task.body.get("external_task_id")},
            "task_result": {},
            "final_unit_deduction": "0",
        }
        if status == "succeed":
            base = f"{self.base_url}/video/{task.task_id}"
            view["task_result"] = {
                "videos": [
                    {
                        "id": f"v{task.task_id}",
                        "url": f"{base}.mp4",
                        "watermark_url": f"{base}-wm.mp4",
                        "duration": "5",
                    }
                ]
            }
            view["final_unit_deduction"] = "2.5"
        return view


def _ok(data: dict[str, Any]) -> Response:
    return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": "r", "data": data})


def _answer(answer: Answer) -> Response:
    body = {"code": answer.code, "message": answer.message, "request_id": "r"}
    return JSONResponse(body, status_code=answer.status, headers=answer.headers)
