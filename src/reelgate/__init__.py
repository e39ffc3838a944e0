"""reelgate: a self-hosted, Kling-compatible text-to-video service and its Python SDK.

``reelgate.Client`` / ``reelgate.AsyncClient`` and the error tree rooted at
``reelgate.ReelgateError`` are exported here. They load on first use, so importing a server
layer such as ``reelgate.domain`` does not pull in the SDK's HTTP stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from reelgate.client import (
        ApiKeyAuth,
        AsyncClient,
        AsyncTask,
        AuthenticationError,
        CameraConfig,
        CameraControl,
        Client,
        ClientError,
        ConcurrencyLimitError,
        ContentPolicyError,
        CreateOptions,
        InvalidParameterError,
        InvalidRequestError,
        JWTAuth,
        NotFoundError,
        PermissionDeniedError,
        QuotaExceededError,
        RateLimitError,
        ReelgateError,
        Retry,
        ServerError,
        Task,
        TaskFailedError,
        TaskNotReadyError,
        TaskStatus,
        TransportError,
        Video,
        WaitTimeoutError,
    )

__all__ = [
    "ApiKeyAuth",
    "AsyncClient",
    "AsyncTask",
    "AuthenticationError",
    "CameraConfig",
    "CameraControl",
    "Client",
    "ClientError",
    "ConcurrencyLimitError",
    "ContentPolicyError",
    "CreateOptions",
    "InvalidParameterError",
    "InvalidRequestError",
    "JWTAuth",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RateLimitError",
    "ReelgateError",
    "Retry",
    "ServerError",
    "Task",
    "TaskFailedError",
    "TaskNotReadyError",
    "TaskStatus",
    "TransportError",
    "Video",
    "WaitTimeoutError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("reelgate.client"), name)
    raise AttributeError(f"module 'reelgate' has no attribute {name!r}")
