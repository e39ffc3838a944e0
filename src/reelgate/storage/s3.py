"""Blobs in S3-compatible object storage (AWS S3, MinIO, Ceph, R2...), through obstore.

Links are presigned GETs: clients download straight from the bucket (Range included), so
result bytes never pass through an API replica, and a link works whichever replica signed it.
obstore presigns in Rust, without a request: about 25 µs a link, against 400 µs for boto3's
``generate_presigned_url`` (measured against moto on loopback).

Whether a blob is still there is known mostly without asking the bucket: blobs go away only
through the retention sweep, which deletes what is older than the retention, and a task's blobs
are written after the task was created, a time its id carries (keys are
``videos/<task_id>/...``). A blob whose task is younger than the retention (less a margin for
clocks that disagree) cannot have been swept, so its link is signed without a request; an older
one costs a HEAD, whose answer is kept until the sweep could change it.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reelgate.domain.errors import NotFoundError

from .base import READ_CHUNK, RESULTS_PREFIX, BlobInfo, StorageConfigError, key_created_s

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config, S3Store

PROBE_TTL_S = 5.0  # how long a writability probe's answer is reused
PROBE_KEY = ".reelgate-probe"  # probes write under here, each its own object
PROBE_MAX_AGE_S = 3600.0  # a probe this old belongs to a killed process
PRESIGN_MAX_S = 7 * 86400  # SigV4: a presigned URL lives at most 7 days
SKEW_MARGIN_S = 3600.0  # clocks of API, workers and the bucket may disagree by this much
ABSENT_TTL_S = 60.0  # a HEAD that found nothing is believed this long
PRESENCE_CACHE_SIZE = 100_000  # HEAD answers kept (LRU)
PART_SIZE = 8 * 1024 * 1024  # multipart part size; smaller files go up in one PUT
PART_CONCURRENCY = 8  # parts of one file in flight


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (bucket, prefix without slashes at either end)."""
    if not url.startswith("s3://"):
        raise StorageConfigError("storage_url", f"{url!r} is not an s3://bucket/prefix URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise StorageConfigError("storage_url", f"{url!r} names no bucket (s3://bucket/prefix)")
    return bucket, prefix.strip("/")


def open_s3_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> S3Store:
    """The bucket behind ``url``. What is not given comes from the standard AWS variables
    (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID``...), read by obstore."""
    try:
        from obstore.store import S3Store
    except ImportError:
        raise StorageConfigError(
            "storage_url", "S3 storage needs the obstore package: pip install 'reelgate[s3]'"
        ) from None
    bucket, prefix = parse_s3_url(url)
    config: S3Config = {}
    if endpoint_url:
        config["endpoint"] = endpoint_url
    if region:
        config["region"] = region
    if access_key_id:
        config["access_key_id"] = access_key_id
    if secret_access_key:
        config["secret_access_key"] = secret_access_key
    client: ClientConfig = {}
    if endpoint_url and endpoint_url.startswith("http://"):
        client["allow_http"] = True  # a plain-HTTP endpoint is a choice made by naming it
    return S3Store(bucket, prefix=prefix or None, config=config, client_options=client)


class S3Storage:
    def __init__(
        self,
        store: S3Store,
        location: str,
        ttl_s: int = 86400,
        retention_s: float = 30 * 86400,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``store``: the bucket (and prefix); ``retention_s``: the age the retention sweep of
        every replica deletes at; ``clock`` and ``monotonic`` are the OS's clocks."""
        if not 1 <= ttl_s <= PRESIGN_MAX_S:
            raise StorageConfigError(
                "url_ttl_s",
                f"{ttl_s} s is not a lifetime a presigned S3 link can have (1 to"
                f" {PRESIGN_MAX_S} s)",
            )
        self._store = store
        self._location = location
        self.ttl = timedelta(seconds=ttl_s)
        self._clock = clock
        self._monotonic = monotonic
        # Blobs of tasks younger than this cannot have been swept (see the module docstring).
        self._unswept_s = retention_s - SKEW_MARGIN_S
        self._lock = threading.Lock()
        self._presence: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._probed: tuple[float, str | None] | None = None

    @property
    def location(self) -> str:
        return self._location

    def put(self, key: str, source: Path, content_type: str) -> None:
        import obstore

        # Over PART_SIZE the file goes up as a multipart upload, parts in parallel; a failed
        # upload is aborted, so nothing partial becomes visible under the key.
        obstore.put(
            self._store,
            key,
            source,
            attributes={"Content-Type": content_type},
            chunk_size=PART_SIZE,
            max_concurrency=PART_CONCURRENCY,
        )
        self._remember(key, True, self._clock() + max(self._unswept_s, 0.0))

    def write_problem(self) -> str | None:
        with self._lock:
            now = self._monotonic()
            if self._probed is not None and now - self._probed[0] < PROBE_TTL_S:
                return self._probed[1]
        problem = self._probe()
        with self._lock:
            self._probed = (self._monotonic(), problem)
        return problem

    def _probe(self) -> str | None:
        import obstore

        key = f"{PROBE_KEY}/{uuid.uuid4().hex}"
        try:
            obstore.put(self._store, key, b"\0", use_multipart=False)
            obstore.delete(self._store, key)
        except Exception as exc:
            return f"cannot write to {self._location}: {_reason(exc)}"
        return None

    def exists(self, key: str) -> bool:
        return self._head(key) is not None

    def _head(self, key: str) -> float | None:
        """The blob's last write, Unix seconds; None when it is not there."""
        import obstore
        from obstore.exceptions import NotFoundError as ObjectMissing

        try:
            meta = obstore.head(self._store, key)
        except (ObjectMissing, FileNotFoundError):
            return None
        return meta["last_modified"].timestamp()

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        import obstore
        from obstore.exceptions import NotFoundError as ObjectMissing

        if end is not None and end <= start:
            return
        options: dict[str, Any] = {"range": (start, end) if end is not None else {"offset": start}}
        try:
            result = obstore.get(self._store, key, options=options)  # type: ignore[arg-type]
        except (ObjectMissing, FileNotFoundError):
            raise NotFoundError(f"no blob at {key!r}") from None
        for chunk in result.stream(min_chunk_size=READ_CHUNK):
            yield bytes(chunk)

    def delete(self, key: str) -> None:
        import obstore

        obstore.delete(self._store, key)  # S3 answers a delete of a missing key with success
        self._forget(key)

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        import obstore

        for batch in obstore.list(self._store, prefix=prefix or None):
            for meta in batch:
                if meta["path"].startswith(PROBE_KEY + "/"):
                    continue
                yield BlobInfo(meta["path"], meta["size"], meta["last_modified"].timestamp())

    def sweep(self, older_than_s: float) -> int:
        """Delete task outputs older than ``older_than_s`` (in batches of DeleteObjects), and
        probes a killed process left behind. Only reelgate's own keys: a bucket prefix shared
        with other data loses nothing else."""
        import obstore

        now = self._clock()
        cutoff = now - older_than_s
        probe_cutoff = now - PROBE_MAX_AGE_S
        # A sweep younger than the retention makes young blobs go away too: from now on, ask.
        self._unswept_s = min(self._unswept_s, older_than_s - SKEW_MARGIN_S)
        doomed = [b.key for b in self.list_blobs(RESULTS_PREFIX) if b.modified < cutoff]
        for batch in obstore.list(self._store, prefix=PROBE_KEY):
            doomed += [m["path"] for m in batch if m["last_modified"].timestamp() < probe_cutoff]
        for start in range(0, len(doomed), 1000):  # a DeleteObjects request takes 1000 keys
            obstore.delete(self._store, doomed[start : start + 1000])
        with self._lock:
            self._presence.clear()
        return len(doomed)

    def sign(self, key: str, base_url: str, ttl_s: int | None = None) -> str | None:
        import obstore

        if not self._present(key):
            return None
        ttl = self.ttl if ttl_s is None else timedelta(seconds=ttl_s)
        return obstore.sign(self._store, "GET", key, ttl)

    def _present(self, key: str) -> bool:
        now = self._clock()
        created = key_created_s(key)
        if created is not None and now - created < self._unswept_s:
            return True  # too young to have been swept: no request
        with self._lock:
            known = self._presence.get(key)
            if known is not None and now < known[1]:
                self._presence.move_to_end(key)
                return known[0]
        modified = self._head(key)
        if modified is None:
            self._remember(key, False, now + ABSENT_TTL_S)
            return False
        # Believed until the sweep could delete it (never past the retention: stay safe)
        self._remember(key, True, modified + max(self._unswept_s, 0.0))
        return True

    def _remember(self, key: str, present: bool, until: float) -> None:
        with self._lock:
            self._presence[key] = (present, until)
            self._presence.move_to_end(key)
            while len(self._presence) > PRESENCE_CACHE_SIZE:
                self._presence.popitem(last=False)

    def _forget(self, key: str) -> None:
        with self._lock:
            self._presence.pop(key, None)

    def verify(self, key: str, expires: str | None, signature: str | None) -> Path:
        raise NotFoundError(
            "results are kept in object storage: download them through the links in the task"
        )


def _reason(exc: BaseException) -> str:
    """The first line of an obstore error (they run to several lines of context)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
