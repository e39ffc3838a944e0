"""The URL an upstream calls back on: reelgate's own, never the client's (issue 10).

It names our task and carries a token, an HMAC of the task id under the link signing key, so
the route can check that the caller got the URL from us (the upstream we gave it to) without
any credential of its own. One module for the rule: the worker makes the URL, the API checks it.
"""

from __future__ import annotations

import hashlib
import hmac

UPSTREAM_HOOK_PREFIX = "/v1/_upstream/callback"


def upstream_hook_token(secret: bytes, task_id: str) -> str:
    message = f"upstream-callback:{task_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:40]


def upstream_hook_url(base_url: str, secret: bytes, task_id: str) -> str:
    token = upstream_hook_token(secret, task_id)
    return f"{base_url.rstrip('/')}{UPSTREAM_HOOK_PREFIX}/{task_id}?token={token}"


def upstream_hook_valid(secret: bytes, task_id: str, token: str) -> bool:
    return hmac.compare_digest(upstream_hook_token(secret, task_id), token)
