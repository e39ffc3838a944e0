"""Blob storage: a protocol and the local-directory implementation."""

from .base import Storage, task_prefix
from .local import FILES_ROUTE, LocalStorage

__all__ = ["FILES_ROUTE", "LocalStorage", "Storage", "task_prefix"]
