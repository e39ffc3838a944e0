"""Callbacks: delivery of task status changes to ``callback_url`` (contract §7).

- :class:`CallbackDispatcher` reads the store's outbox and POSTs each event, in order per task,
  at least once, with backoff and a timeout per attempt, signed when a webhook secret is set.
- :func:`verify_signature` checks the Standard Webhooks headers of a received callback.
- :func:`callback_target` re-checks a callback URL at delivery and pins it to the checked
  address (SSRF and DNS rebinding guard).
"""

from .dispatcher import USER_AGENT, CallbackDispatcher, retry_delay_s, webhook_id
from .signing import secret_key, signature, verify_signature, webhook_headers
from .targets import Target, callback_target

__all__ = [
    "USER_AGENT",
    "CallbackDispatcher",
    "Target",
    "callback_target",
    "retry_delay_s",
    "secret_key",
    "signature",
    "verify_signature",
    "webhook_headers",
    "webhook_id",
]
