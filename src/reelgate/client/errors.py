"""The SDK's exception tree: the server's tree (``reelgate.domain.errors``) plus client-only errors.

Errors the server sends are rebuilt as the same classes the server raised, from the envelope's
``code``. Errors that no server sent carry ``http_status`` 0 and a code in the client-only range
9001..9004, so scripts can tell them apart from wire codes::

    ReelgateError
    ├── ClientError                 the server refused the request (1xxx, see domain.errors)
    │   ├── AuthenticationError ... RateLimitError, ConcurrencyLimitError, QuotaExceededError, ...
    ├── ServerError                 the server failed (5000, 5001, 5002); also a response that
    │                               is not a Kling envelope
    ├── TransportError       9001   no response: connection refused, reset, timed out
    ├── WaitTimeoutError     9002   Task.wait() gave up; the task keeps running
    ├── TaskFailedError      9003   the task ended ``failed``; the reason is in ``message``
    └── TaskNotReadyError    9004   download() of a task that has not succeeded yet
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reelgate.domain.errors import (
    AccountError,
    AuthenticationError,
    ClientError,
    ConcurrencyLimitError,
    ContentPolicyError,
    ForbiddenLinkError,
    InArrearsError,
    InvalidCredentialsError,
    InvalidParameterError,
    InvalidRequestError,
    IPNotAllowedError,
    MethodNotFoundError,
    MissingCredentialsError,
    NotFoundError,
    PermissionDeniedError,
    PolicyError,
    QuotaExceededError,
    RateLimitError,
    ReelgateError,
    ServerError,
    ServerTimeoutError,
    ServiceUnavailableError,
    TokenExpiredError,
    TokenNotYetValidError,
    error_for_code,
)

if TYPE_CHECKING:
    from .task import BaseTask


class TransportError(ReelgateError):
    """No usable response: the connection failed, was reset or timed out (after retries)."""

    code, http_status, default_message = 9001, 0, "could not reach the server"


class _TaskError(ReelgateError):
    """An error about one task; ``task`` is the SDK's task handle at the time of the error."""

    def __init__(self, message: str, *, task: BaseTask) -> None:
        super().__init__(message)
        self.task = task


class WaitTimeoutError(_TaskError):
    """``wait()`` ran out of time. The task is still running on the server."""

    code, http_status, default_message = 9002, 0, "timed out waiting for the task"


class TaskFailedError(_TaskError):
    """The task finished with status ``failed``; the server's reason is in ``message``."""

    code, http_status, default_message = 9003, 0, "task failed"


class TaskNotReadyError(_TaskError):
    """The task has no video to download yet (it is still submitted or processing)."""

    code, http_status, default_message = 9004, 0, "task has not succeeded yet"


__all__ = [
    "AccountError",
    "AuthenticationError",
    "ClientError",
    "ConcurrencyLimitError",
    "ContentPolicyError",
    "ForbiddenLinkError",
    "IPNotAllowedError",
    "InArrearsError",
    "InvalidCredentialsError",
    "InvalidParameterError",
    "InvalidRequestError",
    "MethodNotFoundError",
    "MissingCredentialsError",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyError",
    "QuotaExceededError",
    "RateLimitError",
    "ReelgateError",
    "ServerError",
    "ServerTimeoutError",
    "ServiceUnavailableError",
    "TaskFailedError",
    "TaskNotReadyError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TransportError",
    "WaitTimeoutError",
    "error_for_code",
]
