"""The blob storage protocol: put files under keys, read them back, link them, sweep old ones.

Every part of reelgate that touches results (the worker writing them, the API and the callback
dispatcher linking them, ``/healthz`` probing, the retention sweep) goes through
:class:`Storage`; the backends are the local folder (``local.py``) and S3-compatible object
storage (``s3.py``), chosen by :func:`reelgate.storage.open_storage`.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reelgate.domain.ids import task_id_created_ms

READ_CHUNK = 1 << 20  # bytes per chunk when a blob is streamed


class StorageConfigError(ValueError):
    """A storage setting that cannot work; ``setting`` names it (a field of the settings)."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


@dataclass(frozen=True)
class BlobInfo:
    """One stored blob, as a listing sees it."""

    key: str
    size: int
    modified: float  # Unix seconds of the last write


class Storage(Protocol):
    @property
    def location(self) -> str:
        """Where blobs go, for logs and messages (a folder, ``s3://bucket/prefix``)."""
        ...

    def put(self, key: str, source: Path, content_type: str) -> None:
        """Store the file at ``source`` under ``key`` (overwrite: a retried task rewrites it).

        All or nothing: on failure nothing is left behind (no partial or temporary file) and
        the error propagates; see :func:`storage_full`.
        """
        ...

    def write_problem(self) -> str | None:
        """Why the storage cannot take a write right now, or None when it can.

        Probes with a small write, cached for a few seconds so a burst of health checks does
        not hammer the backend.
        """
        ...

    def exists(self, key: str) -> bool: ...

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes ``[start, end)`` of ``key`` (``end`` None: to the end of the blob), in
        chunks. Raises :class:`reelgate.domain.errors.NotFoundError` when the blob is gone."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a key that is already gone is not an error."""
        ...

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every blob under ``prefix`` (what the retention sweep walks)."""
        ...

    def sweep(self, older_than_s: float) -> int:
        """Delete blobs older than ``older_than_s`` seconds; return how many."""
        ...

    def sign(self, key: str, base_url: str, ttl_s: int | None = None) -> str | None:
        """An expiring URL for ``key``, or None when the blob is gone.

        ``base_url`` is where this server is reached; a backend whose links point elsewhere
        (presigned object storage URLs) ignores it. ``ttl_s`` overrides the storage's link
        lifetime (a sandbox scenario's quickly expiring link).
        """
        ...

    def verify(self, key: str, expires: str | None, signature: str | None) -> Path:
        """The local file behind a reelgate link (the ``/files`` route): 403 when tampered
        or expired, 404 when swept or when this backend's links do not point here."""
        ...


RESULTS_PREFIX = "videos/"  # every task's outputs are under here


def task_prefix(task_id: str) -> str:
    """Keys of one task's outputs share a prefix, so a retry overwrites instead of adding."""
    return f"{RESULTS_PREFIX}{task_id}"


def key_created_s(key: str) -> float | None:
    """When the task owning ``key`` (``videos/<task_id>/...``) was created, Unix seconds; None
    for a key of any other shape. A task's blobs are written after it was created."""
    parts = key.split("/")
    if len(parts) < 3 or f"{parts[0]}/" != RESULTS_PREFIX:
        return None
    created_ms = task_id_created_ms(parts[1])
    return None if created_ms is None else created_ms / 1000


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
