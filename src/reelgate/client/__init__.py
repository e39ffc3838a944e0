"""The Python SDK for reelgate and any Kling-compatible text-to-video endpoint.

    with reelgate.Client() as client:
        task = client.text2video.create(prompt="a red fox in the snow", duration=5)
        task.wait(on_progress=lambda t: print(t.status, t.progress))
        task.download("fox.mp4")

``Client`` and ``AsyncClient`` have the same surface. Base URL and credentials default to the
``REELGATE_*`` variables, then to a local server's ``credentials.json`` (see
:mod:`reelgate.client.config`). The exception tree is drawn in :mod:`reelgate.client.errors`.
"""

from reelgate.domain.requests import CameraConfig, CameraControl
from reelgate.domain.tasks import TaskStatus, Video

from .auth import ApiKeyAuth, JWTAuth
from .client import AsyncClient, Client
from .endpoints import CreateOptions
from .errors import (
    AuthenticationError,
    ClientError,
    ConcurrencyLimitError,
    ContentPolicyError,
    InvalidParameterError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RateLimitError,
    ReelgateError,
    ServerError,
    TaskFailedError,
    TaskNotReadyError,
    TransportError,
    WaitTimeoutError,
)
from .retry import Retry
from .task import AsyncTask, Task

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
]
