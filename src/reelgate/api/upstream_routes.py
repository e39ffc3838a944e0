"""``POST /v1/_upstream/callback/{task_id}``: an upstream's own callback about a task.

The URL is reelgate's (domain/hooks.py), handed to the upstream by the upstream engine instead
of the client's. Its token is checked; the body is only a hint: the route counts a "poke" in
the store, and the worker holding the task (on this machine or another) polls the upstream at
its next heartbeat. What the task becomes is what the upstream answers to that query.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from reelgate.domain.errors import InvalidCredentialsError
from reelgate.domain.hooks import UPSTREAM_HOOK_PREFIX, upstream_hook_valid
from reelgate.domain.requests import require_task_ident

from .envelope import ok
from .middleware import request_id_of
from .service import Services

upstream_router = APIRouter(prefix=UPSTREAM_HOOK_PREFIX, tags=["upstream"])


@upstream_router.post("/{task_id}", summary="An upstream's callback about a task (a hint)")
async def upstream_callback(
    request: Request, task_id: str, token: Annotated[str, Query(max_length=100)] = ""
) -> JSONResponse:
    require_task_ident(task_id)
    svc: Services = request.app.state.services
    if not token or not upstream_hook_valid(svc.settings.link_secret(), task_id, token):
        raise InvalidCredentialsError("token: not a callback URL reelgate gave for this task")
    poked = await svc.store.poke_task(task_id)
    return ok({"task_id": task_id, "polling": poked}, request_id_of(request))
