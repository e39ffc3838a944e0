"""The error tree shared by the server and the SDK.

Every error carries its Kling ``code``, its HTTP status and a message that names the field and
the rule. User errors and infrastructure errors are separate branches::

    ReelgateError
    ├── ClientError                      (the caller can fix it)
    │   ├── AuthenticationError          401 1000
    │   │   ├── MissingCredentialsError  401 1001
    │   │   ├── InvalidCredentialsError  401 1002
    │   │   ├── TokenNotYetValidError    401 1003
    │   │   └── TokenExpiredError        401 1004
    │   ├── AccountError                 429 1100
    │   │   ├── InArrearsError           429 1101
    │   │   └── QuotaExceededError       429 1102
    │   ├── PermissionDeniedError        403 1103
    │   ├── InvalidRequestError          400 1200
    │   │   └── InvalidParameterError    400 1201
    │   ├── MethodNotFoundError          404 1202
    │   ├── NotFoundError                404 1203
    │   ├── PolicyError                  400 1300
    │   │   └── ContentPolicyError       400 1301
    │   ├── RateLimitError               429 1302
    │   │   └── ConcurrencyLimitError    429 1303
    │   ├── IPNotAllowedError            429 1304
    │   └── ForbiddenLinkError           403 1103 (tampered or expired signed link)
    └── ServerError                      500 5000
        ├── ServiceUnavailableError      503 5001
        └── ServerTimeoutError           504 5002
"""

from __future__ import annotations


class ReelgateError(Exception):
    """Root of every error reelgate raises, on the server and in the SDK."""

    code: int = 5000
    http_status: int = 500
    default_message: str = "internal error"
    retry_after: float | None = None  # seconds; sent as the Retry-After header when set

    def __init__(
        self,
        message: str | None = None,
        *,
        code: int | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        self.request_id = request_id
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class ClientError(ReelgateError):
    """The request was wrong; repeating it unchanged gives the same answer."""

    code = 1200
    http_status = 400
    default_message = "invalid request"


class AuthenticationError(ClientError):
    code, http_status, default_message = 1000, 401, "authentication failed"


class MissingCredentialsError(AuthenticationError):
    code, default_message = 1001, "Authorization header is missing or empty"


class InvalidCredentialsError(AuthenticationError):
    code, default_message = 1002, "Authorization token is invalid"


class TokenNotYetValidError(AuthenticationError):
    code, default_message = 1003, "Authorization token is not yet valid (nbf is in the future)"


class TokenExpiredError(AuthenticationError):
    code, default_message = 1004, "Authorization token has expired"


class AccountError(ClientError):
    code, http_status, default_message = 1100, 429, "account exception"


class InArrearsError(AccountError):
    code, default_message = 1101, "account in arrears"


class QuotaExceededError(AccountError):
    code, default_message = 1102, "resource pack depleted or expired"


class PermissionDeniedError(ClientError):
    code, http_status, default_message = 1103, 403, "no permission for this resource"


class ForbiddenLinkError(PermissionDeniedError):
    default_message = "link is invalid or has expired"


class InvalidRequestError(ClientError):
    code, http_status, default_message = 1200, 400, "invalid request"


class InvalidParameterError(InvalidRequestError):
    code, default_message = 1201, "invalid parameter"


class MethodNotFoundError(ClientError):
    code, http_status, default_message = 1202, 404, "invalid method"


class NotFoundError(ClientError):
    code, http_status, default_message = 1203, 404, "resource not found"


class PolicyError(ClientError):
    code, http_status, default_message = 1300, 400, "platform policy triggered"


class ContentPolicyError(PolicyError):
    code, default_message = 1301, "content security policy triggered"


class RateLimitError(ClientError):
    code, http_status, default_message = 1302, 429, "rate limit exceeded"


class ConcurrencyLimitError(RateLimitError):
    code, default_message = 1303, "parallel task over resource pack limit"


class IPNotAllowedError(ClientError):
    code, http_status, default_message = 1304, 429, "IP not allowed"


class ServerError(ReelgateError):
    """Our side failed; the same request may succeed later."""

    code, http_status, default_message = 5000, 500, "internal error"


class ServiceUnavailableError(ServerError):
    code, http_status, default_message = 5001, 503, "service unavailable"


class ServerTimeoutError(ServerError):
    code, http_status, default_message = 5002, 504, "internal timeout"


_BY_CODE: dict[int, type[ReelgateError]] = {
    cls.code: cls
    for cls in (
        AuthenticationError,
        MissingCredentialsError,
        InvalidCredentialsError,
        TokenNotYetValidError,
        TokenExpiredError,
        AccountError,
        InArrearsError,
        QuotaExceededError,
        PermissionDeniedError,
        InvalidRequestError,
        InvalidParameterError,
        MethodNotFoundError,
        NotFoundError,
        PolicyError,
        ContentPolicyError,
        RateLimitError,
        ConcurrencyLimitError,
        IPNotAllowedError,
        ServerError,
        ServiceUnavailableError,
        ServerTimeoutError,
    )
}


def error_for_code(
    code: int, http_status: int, message: str, request_id: str | None = None
) -> ReelgateError:
    """Rebuild the typed error for a wire ``code`` (used by the SDK)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = ServerError if http_status >= 500 else ClientError
    return cls(message, code=code, http_status=http_status, request_id=request_id)
