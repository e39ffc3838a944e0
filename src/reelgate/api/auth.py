"""Authentication (contract §2): Kling AK/SK JWTs (HS256) and opaque API keys."""

from __future__ import annotations

import jwt

from reelgate.domain.errors import (
    AuthenticationError,
    InvalidCredentialsError,
    MissingCredentialsError,
    TokenExpiredError,
    TokenNotYetValidError,
)
from reelgate.store import Store


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
    return token


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def authenticate(store: Store, header: str | None, leeway_s: int) -> int:
    """The caller's account id, or an AuthenticationError with the contract's code."""
    token = bearer_token(header)
    if looks_like_jwt(token):
        return await _verify_jwt(store, token, leeway_s)
    account_id = await store.account_for_api_key(token)
    if account_id is None:
        raise InvalidCredentialsError("API key is not valid")
    return account_id


async def _verify_jwt(store: Store, token: str, leeway_s: int) -> int:
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise InvalidCredentialsError("token is not a well-formed JWT") from None
    if header.get("alg") != "HS256":
        raise InvalidCredentialsError(f"token alg must be HS256, not {header.get('alg')!r}")
    issuer = claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise InvalidCredentialsError("token has no iss claim (the access key)")
    found = await store.secret_for_access_key(issuer)
    if found is None:
        raise InvalidCredentialsError("access key in iss is not known")
    account_id, secret = found
    try:
        jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=leeway_s,
            options={"require": ["exp"], "verify_aud": False},
        )
    except jwt.ImmatureSignatureError:
        raise TokenNotYetValidError() from None
    except jwt.ExpiredSignatureError:
        raise TokenExpiredError() from None
    except jwt.MissingRequiredClaimError:
        raise InvalidCredentialsError("token has no exp claim") from None
    except jwt.InvalidSignatureError:
        raise InvalidCredentialsError("token signature does not match the secret key") from None
    except jwt.PyJWTError as exc:
        raise AuthenticationError(f"token rejected: {exc}") from None
    return account_id
