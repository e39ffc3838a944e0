"""Authentication (contract §2): Kling AK/SK JWTs (HS256) and opaque API keys.

A token is checked in this order, and nothing unvalidated reaches the store: the header's shape
and size; for a JWT its JSON (the same bounded parser as request bodies), ``alg``, the type of
every time claim and the ``iss`` string; then the store lookup of the access key; then the
signature; then the clock. Each failure names the claim it concerns.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any

import jwt

from reelgate.domain.errors import (
    InvalidCredentialsError,
    MissingCredentialsError,
    RateLimitError,
    TokenExpiredError,
    TokenNotYetValidError,
)
from reelgate.domain.requests import check_text
from reelgate.store import Store
from reelgate.store.accounts import hash_api_key

from .body import JSONRuleError, parse_json

MAX_TOKEN_CHARS = 8192  # a Kling JWT is ~200 characters, an API key ~50
MAX_ISS_CHARS = 256  # far above any access key; bounds what is sent to the store
TIME_CLAIMS = ("exp", "nbf", "iat")
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


def bearer_token(header: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``; 1001 when empty, 1002 when malformed."""
    if header is None or not header.strip():
        raise MissingCredentialsError()
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidCredentialsError("Authorization header must be 'Bearer <token>'")
    token = token.strip()
    if not token:
        raise MissingCredentialsError("Authorization header has no token after 'Bearer'")
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidCredentialsError(f"token is longer than {MAX_TOKEN_CHARS} characters")
    return token


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def authenticate(store: Store, header: str | None, leeway_s: int) -> int:
    """The caller's account id, or an AuthenticationError with the contract's code."""
    token = bearer_token(header)
    if looks_like_jwt(token):
        return await _verify_jwt(store, token, leeway_s)
    account_id = await store.account_for_api_key(token)  # hashed before it is looked up
    if account_id is None:
        raise InvalidCredentialsError("API key is not valid")
    return account_id


async def authenticate_counted(
    store: Store, header: str | None, leeway_s: int, default_rate: int
) -> int:
    """:func:`authenticate`, then count the request against the key's rate (1302 past it).

    The key is the credential: the access key of a JWT, the hash of an API key. The count lives
    in the store, so the limit holds however many replicas answer.
    """
    account_id = await authenticate(store, header, leeway_s)
    token = bearer_token(header)
    if looks_like_jwt(token):
        key = "ak:" + _issuer(_segment(token, 1, "payload"))
    else:
        key = "api:" + hash_api_key(token)
    decision = await store.count_request(key, account_id, default_rate)
    if decision is not None and not decision.allowed:
        exc = RateLimitError(
            f"rate limit exceeded: this key may send {decision.limit} requests per minute;"
            f" retry in {decision.retry_after_s} s"
        )
        exc.retry_after = decision.retry_after_s
        raise exc
    return account_id


def _segment(token: str, index: int, name: str) -> dict[str, Any]:
    """One base64url JSON segment of a JWT, decoded as strictly as a request body."""
    text = token.split(".")[index]
    if not _SEGMENT.fullmatch(text):
        raise InvalidCredentialsError(f"token {name} is not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = parse_json(raw)
    except (binascii.Error, ValueError) as exc:
        reason = f": {exc}" if isinstance(exc, JSONRuleError) else ""
        raise InvalidCredentialsError(f"token {name} is not a JSON object{reason}") from None
    if not isinstance(value, dict):
        raise InvalidCredentialsError(f"token {name} is not a JSON object")
    return value


def _time_claims(claims: dict[str, Any]) -> dict[str, float]:
    """exp (required), nbf and iat as numbers; 1002 naming the claim that is not one."""
    if "exp" not in claims:
        raise InvalidCredentialsError("token has no exp claim")
    found: dict[str, float] = {}
    for name in TIME_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        # RFC 7519 NumericDate: seconds since the epoch; JSON true is not one
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "null" if value is None else type(value).__name__
            raise InvalidCredentialsError(
                f"{name} must be an integer (seconds since the epoch), not {kind}"
            )
        found[name] = value
    return found


def _issuer(claims: dict[str, Any]) -> str:
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidCredentialsError("token has no iss claim (the access key)")
    if len(issuer) > MAX_ISS_CHARS:
        raise InvalidCredentialsError(f"iss is longer than {MAX_ISS_CHARS} characters")
    try:
        check_text(issuer)
    except ValueError as exc:
        raise InvalidCredentialsError(f"iss {exc}") from None
    return issuer


async def _verify_jwt(store: Store, token: str, leeway_s: int) -> int:
    header = _segment(token, 0, "header")
    claims = _segment(token, 1, "payload")
    if header.get("alg") != "HS256":
        alg = header.get("alg")
        shown = repr(alg) if isinstance(alg, str) and len(alg) <= 20 else "something else"
        raise InvalidCredentialsError(f"token alg must be HS256, not {shown}")
    times = _time_claims(claims)
    found = await store.secret_for_access_key(_issuer(claims))
    if found is None:
        raise InvalidCredentialsError("access key in iss is not known")
    account_id, secret = found
    try:
        jwt.PyJWS().decode(token, secret, algorithms=["HS256"])
    except jwt.InvalidSignatureError:
        raise InvalidCredentialsError("token signature does not match the secret key") from None
    except jwt.PyJWTError:
        raise InvalidCredentialsError("token is not a well-formed JWT") from None
    now = time.time()
    if times["exp"] <= now - leeway_s:
        raise TokenExpiredError("Authorization token has expired (exp is in the past)")
    for name in ("nbf", "iat"):
        if name in times and times[name] > now + leeway_s:
            raise TokenNotYetValidError(
                f"Authorization token is not yet valid ({name} is in the future)"
            )
    return account_id
