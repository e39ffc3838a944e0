"""The response envelope of every answer, success or error (contract §3)."""

from __future__ import annotations

import json
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


class _Rendered(JSONResponse):
    """A JSON answer whose body is already bytes."""

    def render(self, content: Any) -> bytes:
        assert isinstance(content, bytes)
        return content


def wire_json(model: WireModel) -> bytes:
    """``model.wire()`` as JSON bytes."""
    if type(model).wire is not WireModel.wire:  # a model with its own rule
        return _dumps(model.wire())
    # The rule of ``WireModel.wire()`` (JSON mode, None left out), written straight to bytes by
    # pydantic-core instead of to a dict that json.dumps then walks a second time.
    return model.__pydantic_serializer__.to_json(model, exclude_none=True)


def _json_of(data: Data) -> bytes:
    return data if isinstance(data, bytes) else wire_json(data)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


Data = WireModel | bytes  # bytes: the JSON of a wire model, rendered before (wire_json)
Answer = Data | Sequence[Data] | Mapping[str, Any]  # what a success envelope carries


def ok(data: Answer, request_id: str) -> JSONResponse:
    """The success envelope, serialised once; wire models by the rule of their ``wire()``."""
    if isinstance(data, Mapping):
        body = _dumps(data)
    elif isinstance(data, WireModel | bytes):
        body = _json_of(data)
    else:
        body = b"[" + b",".join(_json_of(item) for item in data) + b"]"
    head = f'{{"code":0,"message":"SUCCEED","request_id":{json.dumps(request_id)},"data":'
    return _Rendered(head.encode() + body + b"}")


def error(exc: ReelgateError, request_id: str) -> JSONResponse:
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(math.ceil(exc.retry_after))}
    return JSONResponse(
        {"code": exc.code, "message": exc.message, "request_id": request_id},
        status_code=exc.http_status,
        headers=headers,
    )
