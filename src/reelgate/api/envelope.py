"""The response envelope of every answer, success or error (contract §3)."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from reelgate.domain.errors import ReelgateError

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    code: int = Field(0, description="0 on success, else a Kling error code")
    message: str = Field("SUCCEED", description='"SUCCEED" or what went wrong')
    request_id: str = Field(description="a fresh UUID per request, also in X-Request-Id")
    data: T


class ErrorEnvelope(BaseModel):
    code: int
    message: str
    request_id: str


def ok(data: Any, request_id: str) -> JSONResponse:
    return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": request_id, "data": data})


def error(exc: ReelgateError, request_id: str) -> JSONResponse:
    return JSONResponse(
        {"code": exc.code, "message": exc.message, "request_id": request_id},
        status_code=exc.http_status,
    )
