"""``/_sandbox``: control over the Kling emulator, for tests (mounted only when the sandbox
engine serves a model).

Every route takes ``Authorization: Bearer <admin key>`` (``REELGATE_SANDBOX_ADMIN_KEY``,
generated in the data directory when unset). The admin key, not an account key, because these
routes reach every account's tasks: a reset forgets them all.

- ``POST /_sandbox/reset``: forget every task, callback, firing and signal (accounts stay).
- ``POST /_sandbox/tasks/{task_id}/release``: a stalled task goes on (and ends as its scenario
  says). ``.../finish``: every remaining stall and slow-down is skipped, now.
  ``.../advance?seconds=N``: the task's clock runs N seconds ahead.
- ``POST /_sandbox/clock/advance?seconds=N``: every running task's clock runs N seconds ahead.
- ``GET /_sandbox/scenarios``: the configured rules. ``GET /_sandbox/fired``: scenarios that
  fired, oldest first. ``GET /_sandbox/callbacks[?task_id=]``: callbacks sent (each delivery
  attempt recorded in the outbox), with the body as sent.
"""

from __future__ import annotations

import dataclasses
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field

from reelgate.domain.errors import InvalidCredentialsError, InvalidRequestError, NotFoundError
from reelgate.domain.requests import require_task_ident
from reelgate.domain.tasks import TaskRecord, callback_body
from reelgate.domain.wire import WireModel
from reelgate.store.sandbox import SandboxControl

from .auth import bearer_token
from .emulator import Emulator
from .envelope import ok
from .middleware import request_id_of
from .service import Services

MAX_ADVANCE_S = 86400.0 * 30


class FiredScenario(WireModel):
    id: int
    scenario: str
    task_id: str | None = None  # None: the create was refused
    external_task_id: str | None = None
    outcome: str = Field(description='"applied", "accepted" or "refused <code>"')
    created_at: int


class SentCallback(WireModel):
    event_id: int
    task_id: str
    status: str
    callback_url: str
    delivery: str = Field(description="delivered, pending (to retry) or dead")
    attempts: int
    last_error: str | None = None
    created_at: int
    body: dict[str, Any] = Field(description="the body as sent (links signed now)")


class ScenarioInfo(WireModel):
    """A rule of the scenarios file, as configured."""

    model_config = ConfigDict(extra="allow")
    name: str


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def _emulator(request: Request) -> Emulator:
    emulator = _services(request).emulator
    if emulator is None:  # mounted only with one; kept for a clear answer all the same
        raise NotFoundError("the sandbox engine is not served here")
    token = bearer_token(request.headers.get("authorization"))
    if not hmac.compare_digest(token.encode(), emulator.admin_key.encode()):
        raise InvalidCredentialsError(
            "/_sandbox needs the sandbox admin key (REELGATE_SANDBOX_ADMIN_KEY), not an account key"
        )
    return emulator


Admin = Annotated[Emulator, Depends(_emulator)]
Seconds = Annotated[float, Query(gt=0, le=MAX_ADVANCE_S, description="seconds to advance")]

sandbox_router = APIRouter(prefix="/_sandbox", tags=["sandbox"])


def _control(request: Request) -> SandboxControl:
    return Emulator.control(_services(request).store)


async def _running_task(request: Request, task_id: str) -> TaskRecord:
    require_task_ident(task_id)
    task = await _services(request).store.get_task_by_id(task_id)
    if task is None:
        raise NotFoundError(f"task {task_id!r} not found")
    if task.status.finished:
        raise InvalidRequestError(
            f"task {task_id} has already ended ({task.status.value}); nothing to control"
        )
    return task


def _answer(request: Request, data: Any) -> JSONResponse:
    return ok(data, request_id_of(request))


@sandbox_router.post("/reset", summary="Forget every task, callback, firing and signal")
async def reset(request: Request, _: Admin) -> JSONResponse:
    return _answer(request, {"removed": await _control(request).reset()})


@sandbox_router.post("/tasks/{task_id}/{action}", summary="Release, finish or advance a task")
async def control_task(
    request: Request,
    task_id: str,
    action: str,
    _: Admin,
    seconds: Annotated[float | None, Query(gt=0, le=MAX_ADVANCE_S)] = None,
) -> JSONResponse:
    if action not in ("release", "finish", "advance"):
        raise NotFoundError(f"no sandbox action {action!r} (known: release, finish, advance)")
    if action == "advance" and seconds is None:
        raise InvalidRequestError("seconds: is required to advance a task")
    if action != "advance" and seconds is not None:
        raise InvalidRequestError(f"seconds: only advance takes seconds, not {action}")
    task = await _running_task(request, task_id)
    await _control(request).signal(task.task_id, action, seconds or 0.0)
    return _answer(request, {"task_id": task.task_id, "signal": action, "seconds": seconds})


@sandbox_router.post("/clock/advance", summary="Move every running task's clock ahead")
async def advance_clock(request: Request, _: Admin, seconds: Seconds) -> JSONResponse:
    await _control(request).signal(None, "advance", seconds)
    return _answer(request, {"signal": "advance", "seconds": seconds})


@sandbox_router.get("/scenarios", summary="The configured scenario rules")
async def scenarios(request: Request, emulator: Admin) -> JSONResponse:
    rules = [ScenarioInfo(**r.model_dump(mode="json")) for r in emulator.book.rules]
    return _answer(request, rules)


@sandbox_router.get("/fired", summary="Scenarios that fired, oldest first")
async def fired(request: Request, _: Admin) -> JSONResponse:
    firings = await _control(request).firings()
    return _answer(request, [FiredScenario(**dataclasses.asdict(f)) for f in firings])


@sandbox_router.get("/callbacks", summary="Callbacks sent, with their bodies")
async def callbacks(
    request: Request,
    _: Admin,
    task_id: Annotated[str | None, Query(max_length=256)] = None,
) -> JSONResponse:
    svc = _services(request)
    items = []
    for event in await _control(request).sent_callbacks(task_id):
        record = event.record()
        if record is None:  # an event of old: its payload is the body
            body: dict[str, Any] = event.payload
        else:
            body = callback_body(record, svc.task_signer(record, str(request.base_url)))
        items.append(
            SentCallback(
                event_id=event.id,
                task_id=event.task_id,
                status=event.status,
                callback_url=event.callback_url,
                delivery=event.delivery,
                attempts=event.attempts,
                last_error=event.last_error,
                created_at=event.created_at,
                body=body,
            )
        )
    return _answer(request, items)
