"""The contract's routes. Each parses, calls one service method and returns the envelope."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Security
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPBearer

from reelgate.domain import errors as e
from reelgate.domain.account import CostsReport
from reelgate.domain.models import ModelInfo
from reelgate.domain.scenarios import SCENARIO_HEADER
from reelgate.domain.tasks import CreatedTask, TaskData, created_task

from .auth import authenticate_counted
from .body import json_body as _json_body
from .docs import AUTH, CREATE_BODY, error_responses
from .envelope import Answer, Envelope, ok
from .middleware import request_id_of
from .service import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


class KlingBearer(HTTPBearer):
    """The caller's account: the token checked (Kling's 1001/1002 codes rather than FastAPI's
    403) and counted against its rate (1302).

    One dependency, declared as the ``bearer`` scheme in /openapi.json (so "Authorize" in
    /docs works): every sub-dependency is a step of FastAPI's per-request resolution, which
    was a tenth of a GET's CPU.
    """

    async def __call__(self, request: Request) -> int:  # type: ignore[override]
        return await account_of(request)


async def account_of(request: Request) -> int:
    """The caller's account (its token checked and counted)."""
    svc = services(request)
    return await authenticate_counted(
        svc.store,
        request.headers.get("authorization"),
        svc.settings.jwt_leeway_s,
        svc.settings.rate_limit,
    )


Account = Annotated[
    int,
    Security(
        KlingBearer(
            auto_error=False,
            scheme_name="bearer",
            bearerFormat="JWT or API key",
            description="an HS256 JWT minted from an AK/SK pair, or an API key",
        )
    ),
]

router = APIRouter()
PREFIXES = ("", "/kling")  # every route of ``router`` is served under each (contract §1)


@router.post(
    "/v1/videos/text2video",
    summary="Create a text-to-video task",
    response_model=Envelope[CreatedTask],
    responses=error_responses(
        *AUTH,
        e.InvalidRequestError,
        e.InvalidParameterError,
        e.NotFoundError,
        e.QuotaExceededError,
        e.ConcurrencyLimitError,
    ),
    openapi_extra=CREATE_BODY,
    tags=["text2video"],
)
async def create_text2video(request: Request, account: Account) -> JSONResponse:
    return ok(await _create(request, account, {}), request_id_of(request))


async def _create(request: Request, account: int, params: Mapping[str, Any]) -> Answer:
    task = await services(request).create_text2video(
        account,
        await _json_body(request),
        base_url=str(request.base_url),
        scenario=request.headers.get(SCENARIO_HEADER),
    )
    return created_task(task)


@router.get(
    "/v1/videos/text2video/{task_id:path}",
    summary="Query one task by task_id or external_task_id",
    response_model=Envelope[TaskData],
    responses=error_responses(*AUTH, e.NotFoundError),
    tags=["text2video"],
)
async def get_text2video(request: Request, task_id: str, account: Account) -> JSONResponse:
    return ok(await _get(request, account, {"task_id": task_id}), request_id_of(request))


async def _get(request: Request, account: int, params: Mapping[str, Any]) -> Answer:
    return await services(request).task_view(account, params["task_id"], str(request.base_url))


@router.post(
    "/v1/videos/text2video/{task_id:path}/cancel",
    summary="Cancel a task by task_id or external_task_id (extension)",
    description="A `submitted` task ends `failed` at once; a `processing` one ends `failed`"
    " when its worker sees the request (within about a second; until then it answers"
    " `processing` with task_status_msg saying the cancel was requested). A cancelled task"
    " is free and its callback is sent. Cancelling it again answers the task again;"
    " cancelling a task that finished otherwise is 400/1200.",
    response_model=Envelope[TaskData],
    responses=error_responses(*AUTH, e.InvalidRequestError, e.NotFoundError),
    tags=["text2video"],
)
async def cancel_text2video(request: Request, task_id: str, account: Account) -> JSONResponse:
    svc = services(request)
    data = await svc.cancel_text2video(account, task_id, str(request.base_url))
    return ok(data, request_id_of(request))


@router.get(
    "/v1/videos/text2video",
    summary="List the caller's tasks, newest first",
    response_model=Envelope[list[TaskData]],
    responses=error_responses(*AUTH, e.InvalidParameterError),
    tags=["text2video"],
)
async def list_text2video(
    request: Request,
    account: Account,
    page_num: Annotated[int, Query(alias="pageNum", ge=1, le=1000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=500)] = 30,
) -> JSONResponse:
    page = {"page_num": page_num, "page_size": page_size}
    return ok(await _list(request, account, page), request_id_of(request))


async def _list(request: Request, account: int, params: Mapping[str, Any]) -> Answer:
    svc = services(request)
    page_num, page_size = params["page_num"], params["page_size"]
    return await svc.list_view(account, page_num, page_size, str(request.base_url))


# What each of the busiest routes does, given its account and parameters (by their names in
# the route's signature): the route calls it, and so does api/hot.py in FastAPI's place.
Operation = Callable[[Request, int, Mapping[str, Any]], Awaitable[Answer]]
HOT_OPERATIONS: dict[Callable[..., Awaitable[JSONResponse]], Operation] = {
    create_text2video: _create,
    get_text2video: _get,
    list_text2video: _list,
}


@router.get(
    "/account/costs",
    summary="Resource packs and remaining units",
    description="The window is `start_time <= end_time` (Unix ms); otherwise 400/1201.",
    response_model=Envelope[CostsReport],
    responses=error_responses(*AUTH, e.InvalidParameterError),
    tags=["account"],
)
async def account_costs(
    request: Request,
    account: Account,
    start_time: Annotated[
        int, Query(ge=0, description="window start, Unix ms; must be <= end_time")
    ],
    end_time: Annotated[int, Query(ge=0, description="window end, Unix ms; >= start_time")],
    resource_pack_name: str | None = None,
) -> JSONResponse:
    svc = services(request)
    data = await svc.costs_view(account, start_time, end_time)
    return ok(data, request_id_of(request))


@router.get(
    "/v1/models",
    summary="Served models with capabilities and units (extension)",
    response_model=Envelope[list[ModelInfo]],
    responses=error_responses(*AUTH),
    tags=["models"],
)
async def list_models(request: Request, account: Account) -> JSONResponse:
    svc = services(request)
    health = svc.model_health()
    data = [
        spec.info(default=spec.id == svc.catalog.default.id, health=health.get(spec.id, "ok"))
        for spec in svc.catalog.specs
    ]
    return ok(data, request_id_of(request))


files_router = APIRouter()


@files_router.get(
    "/files/{key:path}",
    summary="Download a blob through a signed, expiring link (Range supported)",
    responses={
        200: {"content": {"video/mp4": {}, "image/jpeg": {}}, "description": "the file"},
        **error_responses(e.ForbiddenLinkError, e.NotFoundError),
    },
    response_class=FileResponse,
    tags=["files"],
)
async def get_file(
    request: Request, key: str, expires: str | None = None, signature: str | None = None
) -> FileResponse:
    svc = services(request)
    path = svc.storage.verify(key, expires, signature)
    media_type = "video/mp4" if path.suffix == ".mp4" else "image/jpeg"
    return FileResponse(path, media_type=media_type)


health_router = APIRouter()


@health_router.get(
    "/healthz",
    summary="200 when the store is reachable and the storage takes writes; else 503 (5001)",
    tags=["health"],
)
async def healthz(request: Request) -> JSONResponse:
    svc = services(request)
    try:
        await svc.store.ping()
    except Exception as exc:
        raise e.ServiceUnavailableError(f"store unreachable: {type(exc).__name__}") from None
    problem = await asyncio.to_thread(svc.storage.write_problem)
    if problem is not None:
        raise e.ServiceUnavailableError(f"storage not writable: {problem}")
    health = svc.model_health()
    models = {spec.id: health.get(spec.id, "ok") for spec in svc.catalog.specs}
    data: dict[str, Any] = {"status": "ok", "store": "ok", "storage": "ok", "models": models}
    return ok(data, request_id_of(request))
