"""Standard Webhooks signatures for callback requests (https://www.standardwebhooks.com/).

A signed request carries three headers::

    webhook-id: evt_<task_id>_<event id>       stable across retries of one event
    webhook-timestamp: 1700000000              seconds, the time of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>

``body`` is the exact bytes sent. The key comes from ``REELGATE_WEBHOOK_SECRET``:

- ``whsec_<base64>`` (the form the specification and its libraries generate): the key is the
  base64-decoded bytes, so receivers can verify with any Standard Webhooks library;
- anything else: the key is the secret's UTF-8 bytes (what a hand-written receiver would do).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
# Receivers reject timestamps further than this from their clock, which bounds replays.
DEFAULT_TOLERANCE_S = 300.0


def secret_key(secret: str) -> bytes:
    """The HMAC key a secret stands for; ValueError when a ``whsec_`` secret is not base64."""
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except binascii.Error:
            raise ValueError(
                "REELGATE_WEBHOOK_SECRET: a 'whsec_' secret must be followed by base64"
            ) from None
        if not key:
            raise ValueError("REELGATE_WEBHOOK_SECRET: the 'whsec_' secret is empty")
        return key
    if not secret:
        raise ValueError("REELGATE_WEBHOOK_SECRET: the secret is empty")
    return secret.encode("utf-8")


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature entry."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def webhook_headers(
    secret: str, msg_id: str, body: bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt of sending ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature(secret, msg_id, ts, body),
    }


def verify_signature(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_s: float | None = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True when ``headers`` carry a valid signature of ``body`` under ``secret``.

    ``headers`` may be any mapping (header names are matched case-insensitively). The
    signature header may list several space-separated entries (key rotation): one valid ``v1``
    entry suffices. With ``tolerance_s`` set, a timestamp further than that from ``now``
    (default: the current time) fails, so a captured request cannot be replayed later.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    raw_ts = lowered.get("webhook-timestamp")
    sent = lowered.get("webhook-signature")
    if not msg_id or not raw_ts or not sent:
        return False
    try:
        timestamp = int(raw_ts)
    except ValueError:
        return False
    if tolerance_s is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance_s:
            return False
    expected = signature(secret, msg_id, timestamp, body).encode("ascii")
    return any(
        hmac.compare_digest(entry.encode("ascii", "replace"), expected)
        for entry in sent.split()
        if entry.startswith("v1,")
    )
