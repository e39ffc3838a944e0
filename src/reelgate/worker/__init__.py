"""The worker loop that claims tasks and runs engines."""

from .worker import Worker

__all__ = ["Worker"]
