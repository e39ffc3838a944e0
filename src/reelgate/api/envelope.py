"""The response envelope of every answer, success or error (contract §3)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from reelgate.domain.errors import ReelgateError
from reelgate.domain.wire import WireModel

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    code: int = Field(0, description="0 on success, else a Kling error code")
    message: str = Field("SUCCEED", description='"SUCCEED" or what went wrong')
    request_id: str = Field(description="a fresh UUID per request, also in X-Request-Id")
    data: T


class ErrorEnvelope(BaseModel):
    code: int
    message: str
    request_id: str


def ok(data: WireModel | Sequence[WireModel] | Mapping[str, Any], request_id: str) -> JSONResponse:
    """The success envelope; wire models are serialised through their own ``wire()``."""
    if isinstance(data, WireModel):
        body: Any = data.wire()
    elif isinstance(data, Sequence):
        body = [item.wire() for item in data]
    else:
        body = data
    return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": request_id, "data": body})


def error(exc: ReelgateError, request_id: str) -> JSONResponse:
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(math.ceil(exc.retry_after))}
    return JSONResponse(
        {"code": exc.code, "message": exc.message, "request_id": request_id},
        status_code=exc.http_status,
        headers=headers,
    )
