"""Blob storage: a protocol and the local-directory implementation."""

from .base import Storage, storage_full, task_prefix
from .local import FILES_ROUTE, LocalStorage

__all__ = ["FILES_ROUTE", "LocalStorage", "Storage", "storage_full", "task_prefix"]
