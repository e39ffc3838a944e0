"""The contract's routes. Each parses, calls one service method and returns the envelope."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from reelgate.domain import errors as e
from reelgate.domain.tasks import CreatedTask, TaskData

from .auth import authenticate
from .docs import AUTH, CREATE_BODY, error_responses
from .envelope import Envelope, ok
from .middleware import request_id_of
from .service import Services


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def current_account(request: Request) -> int:
    svc = services(request)
    return await authenticate(
        svc.store, request.headers.get("authorization"), svc.settings.jwt_leeway_s
    )


Svc = Annotated[Services, Depends(services)]
Account = Annotated[int, Depends(current_account)]

router = APIRouter()


MAX_BODY_BYTES = 256 * 1024  # a maximal valid request is ~20 KB


async def _json_body(request: Request) -> Any:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise e.InvalidRequestError(f"request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise e.InvalidRequestError("request body is empty; expected a JSON object")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise e.InvalidRequestError(f"request body is not valid JSON: {exc}") from None


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
async def create_text2video(request: Request, svc: Svc, account: Account) -> JSONResponse:
    task = await svc.create_text2video(
        account, await _json_body(request), base_url=str(request.base_url)
    )
    info = {"external_task_id": task.external_task_id} if task.external_task_id else {}
    data = {
        "task_id": task.task_id,
        "task_status": task.status.value,
        "task_info": info,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
    }
    return ok(data, request_id_of(request))


@router.get(
    "/v1/videos/text2video/{task_id:path}",
    summary="Query one task by task_id or external_task_id",
    response_model=Envelope[TaskData],
    responses=error_responses(*AUTH, e.NotFoundError),
    tags=["text2video"],
)
async def get_text2video(
    request: Request, task_id: str, svc: Svc, account: Account
) -> JSONResponse:
    data = await svc.task_view(account, task_id, str(request.base_url))
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
    svc: Svc,
    account: Account,
    page_num: Annotated[int, Query(alias="pageNum", ge=1, le=1000)] = 1,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=500)] = 30,
) -> JSONResponse:
    data = await svc.list_view(account, page_num, page_size, str(request.base_url))
    return ok(data, request_id_of(request))


@router.get(
    "/account/costs",
    summary="Resource packs and remaining units",
    responses=error_responses(*AUTH, e.InvalidParameterError),
    tags=["account"],
)
async def account_costs(
    request: Request,
    svc: Svc,
    account: Account,
    start_time: Annotated[int, Query(ge=0, description="window start, Unix ms")],
    end_time: Annotated[int, Query(ge=0, description="window end, Unix ms")],
    resource_pack_name: str | None = None,
) -> JSONResponse:
    data = await svc.costs_view(account, start_time, end_time)
    return ok(data, request_id_of(request))


@router.get(
    "/v1/models",
    summary="Served models with capabilities and units (extension)",
    responses=error_responses(*AUTH),
    tags=["models"],
)
async def list_models(request: Request, svc: Svc, account: Account) -> JSONResponse:
    data = [spec.as_dict() for spec in svc.catalog.specs]
    health = svc.model_health()
    for item in data:
        item["default"] = item["id"] == svc.catalog.default.id
        item["health"] = health.get(item["id"], "ok")
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
    key: str, svc: Svc, expires: str | None = None, signature: str | None = None
) -> FileResponse:
    path = svc.storage.verify(key, expires, signature)
    media_type = "video/mp4" if path.suffix == ".mp4" else "image/jpeg"
    return FileResponse(path, media_type=media_type)


health_router = APIRouter()


@health_router.get("/healthz", summary="200 when the store is reachable", tags=["health"])
async def healthz(request: Request, svc: Svc) -> JSONResponse:
    try:
        await svc.store.ping()
    except Exception as exc:
        raise e.ServiceUnavailableError(f"store unreachable: {type(exc).__name__}") from None
    health = svc.model_health()
    models = {spec.id: health.get(spec.id, "ok") for spec in svc.catalog.specs}
    data: dict[str, Any] = {"status": "ok", "store": "ok", "models": models}
    return ok(data, request_id_of(request))
