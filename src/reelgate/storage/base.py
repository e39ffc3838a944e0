"""The blob storage protocol: put files under keys, sign expiring links, sweep old blobs."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    def put(self, key: str, source: Path, content_type: str) -> None:
        """Store the file at ``source`` under ``key`` (overwrite: a retried task rewrites it).

        All or nothing: on failure nothing is left behind (no partial or temporary file) and
        the OSError propagates; see :func:`storage_full`.
        """
        ...

    def write_problem(self) -> str | None:
        """Why the storage cannot take a write right now, or None when it can.

        Probes with a small write, cached for a few seconds so a burst of health checks does
        not hammer the disk.
        """
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


STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def storage_full(exc: BaseException) -> OSError | None:
    """The "no space left" (or quota) OSError behind ``exc``, following its causes; or None."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_FULL_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None
