"""A fake external Kling-compatible server for SDK tests (no tests here; imported by others).

``FakeKling`` is an ``httpx.MockTransport`` handler: it stores tasks, advances each one along a
script on every query, serves signed video links on another host, and answers queued
``interrupt`` responses (429, 500, ...) before the real ones so retry behaviour can be pinned.
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from reelgate.client import AsyncClient, Client, Retry

VIDEO_BYTES = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
FILES_HOST = "files.example"

SUCCESS_SCRIPT = [("processing", 10), ("processing", 60), ("succeed", 100)]
FAIL_SCRIPT = [("processing", 20), ("failed", 20)]


def envelope(data: Any = None, code: int = 0, message: str = "SUCCEED") -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    if data is not None:
        body["data"] = data
    return body


def error(status: int, code: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=envelope(code=code, message=message), headers=headers)


@dataclass
class FakeTask:
    task_id: str
    body: dict[str, Any]
    script: list[tuple[str, int]]
    status: str = "submitted"
    progress: int = 0
    created_at: int = field(default_factory=lambda: int(time.time() * 1000))

    def advance(self) -> None:
        if self.script:
            self.status, self.progress = self.script.pop(0)

    def wire(self) -> dict[str, Any]:
        ext = self.body.get("external_task_id")
        watermark = bool(self.body.get("watermark_info", {}).get("enabled"))
        result: dict[str, Any] = {}
        if self.status == "succeed":
            base = f"https://{FILES_HOST}/v/{self.task_id}"
            result = {
                "videos": [
                    {
                        "id": f"v-{self.task_id}",
                        "url": f"{base}.mp4?sig=ok",
                        "watermark_url": f"{base}-wm.mp4?sig=ok" if watermark else "",
                        "duration": str(self.body.get("duration", "5")),
                    }
                ]
            }
        return {
            "task_id": self.task_id,
            "task_status": self.status,
            "task_status_msg": "content policy: blocked" if self.status == "failed" else "",
            "task_info": {"external_task_id": ext} if ext else {},
            "task_result": result,
            "watermark_info": {"enabled": watermark},
            "final_unit_deduction": "1" if self.status == "succeed" else "0",
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "task_progress": self.progress,
        }


class FakeKling:
    """Serves ``{prefix}/v1/videos/text2video`` routes and ``https://files.example`` links."""

    def __init__(self, prefix: str = "", script: list[tuple[str, int]] | None = None) -> None:
        self.prefix = prefix
        self.script = script if script is not None else SUCCESS_SCRIPT
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[httpx.Request] = []
        self.interrupts: list[httpx.Response | BaseException | None] = []
        self.expired_links = 0  # how many file requests answer 403/1103 first
        self.lost_answers = 0  # how many requests are processed but answered by a read timeout
        self._ids = itertools.count(100_000_000_000_000_001)

    # --- test controls -------------------------------------------------------------------
    def interrupt(self, *outcomes: httpx.Response | BaseException | None) -> None:
        """Answer the next requests with these: a response, an exception to raise, or None to
        answer normally."""
        self.interrupts.extend(outcomes)

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.host != FILES_HOST]

    # --- the handler -----------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.interrupts:
            outcome = self.interrupts.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is not None:
                return outcome
        if request.url.host == FILES_HOST:
            return self._file(request)
        if self.lost_answers:
            self.lost_answers -= 1
            self._route(request)
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return self._route(request)

    def _route(self, request: httpx.Request) -> httpx.Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return error(401, 1001, "Authorization header is missing or empty")
        path = request.url.path
        if not path.startswith(self.prefix + "/v1/videos/text2video"):
            return httpx.Response(404, text="<html>Not Found</html>")
        rest = path[len(self.prefix + "/v1/videos/text2video") :]
        if request.method == "POST" and rest == "":
            return self._create(json.loads(request.content))
        if request.method == "GET" and rest == "":
            return self._list(request)
        match = re.fullmatch(r"/([^/]+)", rest)
        if request.method == "GET" and match:
            return self._get(match.group(1))
        return error(404, 1202, "invalid method")

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        ext = body.get("external_task_id")
        if ext and any(t.body.get("external_task_id") == ext for t in self.tasks.values()):
            return error(400, 1201, f"external_task_id: {ext} already exists")
        task = FakeTask(str(next(self._ids)), body, list(self.script))
        self.tasks[task.task_id] = task
        data = task.wire()
        keys = ("task_id", "task_status", "task_info", "created_at", "updated_at")
        return httpx.Response(200, json=envelope({k: data[k] for k in keys}))

    def _find(self, key: str) -> FakeTask | None:
        if key in self.tasks:
            return self.tasks[key]
        return next((t for t in self.tasks.values() if t.body.get("external_task_id") == key), None)

    def _get(self, key: str) -> httpx.Response:
        task = self._find(key)
        if task is None:
            return error(404, 1203, f"task {key} not found")
        task.advance()
        return httpx.Response(200, json=envelope(task.wire()))

    def _list(self, request: httpx.Request) -> httpx.Response:
        page = int(request.url.params.get("pageNum", "1"))
        size = int(request.url.params.get("pageSize", "30"))
        newest = sorted(self.tasks.values(), key=lambda t: t.task_id, reverse=True)
        chunk = newest[(page - 1) * size : page * size]
        return httpx.Response(200, json=envelope([t.wire() for t in chunk]))

    def _file(self, request: httpx.Request) -> httpx.Response:
        if "authorization" in request.headers:
            return error(400, 1200, "credentials must not be sent to file links")
        if self.expired_links:
            self.expired_links -= 1
            return error(403, 1103, "link is invalid or has expired")
        return httpx.Response(200, content=VIDEO_BYTES, headers={"content-type": "video/mp4"})


FAST_RETRY_BACKOFF = 0.001
TEST_API_KEY = "test-key"
TEST_SECRET_KEY = "s" * 32  # pyjwt warns about HMAC keys shorter than 32 bytes


def sync_client(fake: FakeKling, base_url: str | None = None, **kwargs: Any) -> Client:
    """A client of ``fake``; the base URL defaults to ``https://kling.example{fake.prefix}``."""
    url = base_url or f"https://kling.example{fake.prefix}"
    kwargs.setdefault("api_key", TEST_API_KEY)
    kwargs.setdefault("retry", Retry(backoff=FAST_RETRY_BACKOFF))
    return Client(url, transport=httpx.MockTransport(fake), **kwargs)


def async_client(fake: FakeKling, base_url: str | None = None, **kwargs: Any) -> AsyncClient:
    url = base_url or f"https://kling.example{fake.prefix}"
    kwargs.setdefault("api_key", TEST_API_KEY)
    kwargs.setdefault("retry", Retry(backoff=FAST_RETRY_BACKOFF))
    return AsyncClient(url, transport=httpx.MockTransport(fake), **kwargs)
