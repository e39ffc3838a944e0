"""Blob storage: the protocol, the local folder and S3-compatible backends, and the factory."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .base import (
    BlobInfo,
    Storage,
    StorageConfigError,
    key_created_s,
    storage_full,
    task_prefix,
)
from .local import FILES_ROUTE, LocalStorage

__all__ = [
    "FILES_ROUTE",
    "BlobInfo",
    "LocalStorage",
    "Storage",
    "StorageConfig",
    "StorageConfigError",
    "key_created_s",
    "open_storage",
    "storage_full",
    "task_prefix",
]


class StorageConfig(Protocol):
    """What :func:`open_storage` reads (``reelgate.settings.Settings`` has all of it)."""

    @property
    def storage_url(self) -> str | None: ...
    @property
    def files_dir(self) -> Path: ...
    @property
    def url_ttl_s(self) -> int: ...
    @property
    def retention_days(self) -> float: ...
    @property
    def s3_endpoint_url(self) -> str | None: ...
    @property
    def s3_region(self) -> str | None: ...
    @property
    def s3_access_key_id(self) -> str | None: ...
    @property
    def s3_secret_access_key(self) -> str | None: ...
    def link_secret(self) -> bytes: ...


def open_storage(config: StorageConfig) -> Storage:
    """The storage ``config`` names: ``s3://bucket/prefix`` for object storage; else a local
    folder (``storage_url`` as a path, default DATA_DIR/files). Raises
    :class:`StorageConfigError` on settings it cannot use."""
    url = config.storage_url
    if url and url.startswith("s3://"):
        from .s3 import S3Storage, open_s3_store

        store = open_s3_store(
            url,
            endpoint_url=config.s3_endpoint_url,
            region=config.s3_region,
            access_key_id=config.s3_access_key_id,
            secret_access_key=config.s3_secret_access_key,
        )
        return S3Storage(store, url.rstrip("/"), config.url_ttl_s, config.retention_days * 86400)
    if url and "://" in url and not url.startswith("file://"):
        scheme = url.split("://", 1)[0]
        raise StorageConfigError(
            "storage_url", f"the scheme {scheme}:// is not supported (s3:// or a folder)"
        )
    root = Path(url.removeprefix("file://")) if url else config.files_dir
    # The key is read when the first link is signed or checked: a worker never creates it.
    return LocalStorage(root, config.link_secret, config.url_ttl_s)
