"""OpenAPI descriptions of the error responses, built from the error types themselves."""

from __future__ import annotations

from typing import Any

from reelgate.domain import errors as e

from .envelope import ErrorEnvelope

_EXAMPLES: dict[type[e.ReelgateError], str] = {
    e.MissingCredentialsError: "Authorization header is missing or empty",
    e.InvalidCredentialsError: "token signature does not match the secret key",
    e.TokenNotYetValidError: "Authorization token is not yet valid (nbf is in the future)",
    e.TokenExpiredError: "Authorization token has expired",
    e.QuotaExceededError: "resource pack depleted: this task needs 1 units, 0 remain",
    e.ForbiddenLinkError: "link has expired",
    e.InvalidRequestError: "request body is not valid JSON",
    e.InvalidParameterError: (
        "camera_control is only supported in std mode with 5s duration and kling-v1"
    ),
    e.MethodNotFoundError: "no such endpoint: GET /v1/nope",
    e.NotFoundError: "task '123' not found",
    e.ConcurrencyLimitError: "parallel task over resource pack limit",
    e.ServerError: "internal error (request 2b0c…)",
    e.ServiceUnavailableError: "store unreachable",
}

AUTH = (
    e.MissingCredentialsError,
    e.InvalidCredentialsError,
    e.TokenNotYetValidError,
    e.TokenExpiredError,
    e.RateLimitError,  # counted per key after authentication (REELGATE_RATE_LIMIT)
)


def error_responses(*kinds: type[e.ReelgateError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: per HTTP status, the codes it can carry with examples."""
    by_status: dict[int, list[type[e.ReelgateError]]] = {}
    every: list[type[e.ReelgateError]] = [*kinds, e.ServerError]
    for kind in every:
        by_status.setdefault(kind.http_status, []).append(kind)
    out: dict[int | str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        examples = {
            f"{k.code}": {
                "summary": f"{k.code} {k.__name__}",
                "value": {
                    "code": k.code,
                    "message": _EXAMPLES.get(k, k.default_message),
                    "request_id": "6f1d2c3e-8a7b-4c5d-9e0f-1a2b3c4d5e6f",
                },
            }
            for k in group
        }
        out[status] = {
            "model": ErrorEnvelope,
            "description": "codes " + ", ".join(f"{k.code} ({k.default_message})" for k in group),
            "content": {"application/json": {"examples": examples}},
        }
    return out


CREATE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"$ref": "#/components/schemas/Text2VideoRequest"},
                "example": {
                    "model_name": "kling-v1",
                    "prompt": "a red fox running through snow at dawn",
                    "mode": "std",
                    "aspect_ratio": "16:9",
                    "duration": "5",
                    "external_task_id": "order-1234",
                },
            }
        },
    }
}
