"""The ``upstream`` engine: forwards tasks to Kling or a Kling-shaped gateway, durably."""

from .engine import UpstreamEngine, idempotency_id

__all__ = ["UpstreamEngine", "idempotency_id"]
