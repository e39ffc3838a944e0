"""The blob storage protocol: put files under keys, sign expiring links, sweep old blobs."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    def put(self, key: str, source: Path, content_type: str) -> None:
        """Store the file at ``source`` under ``key`` (overwrite: a retried task rewrites it)."""
        ...

    def exists(self, key: str) -> bool: ...

    def sign(self, key: str, base_url: str) -> str | None:
        """An expiring URL for ``key``, or None when the blob is gone."""
        ...

    def sweep(self, older_than_s: float) -> int:
        """Delete blobs older than ``older_than_s`` seconds; return how many."""
        ...


def task_prefix(task_id: str) -> str:
    """Keys of one task's outputs share a prefix, so a retry overwrites instead of adding."""
    return f"videos/{task_id}"
