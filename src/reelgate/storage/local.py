"""Blobs in a local directory, served by the API at HMAC-signed, expiring URLs."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from reelgate.domain.errors import ForbiddenLinkError, NotFoundError

from .base import READ_CHUNK, BlobInfo

FILES_ROUTE = "/files"
PROBE_TTL_S = 5.0  # how long a writability probe's answer is reused
PROBE_BYTES = 4096  # one page: a full filesystem refuses it
TMP_MAX_AGE_S = 3600.0  # a put's temporary file this old belongs to a killed process

Copy = Callable[[Path, Path], object]
# The link-signing key, or how to get it when it is first needed (a worker never signs, so it
# never creates DATA_DIR/signing.key)
Secret = bytes | Callable[[], bytes]


class LocalStorage:
    def __init__(
        self,
        root: Path,
        secret: Secret,
        ttl_s: int = 86400,
        *,
        copy: Copy = shutil.copyfile,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``copy`` and ``monotonic`` are the OS boundary (copying a file, the clock)."""
        self.root = root
        self._secret = secret
        self.ttl_s = ttl_s
        self._copy = copy
        self._monotonic = monotonic
        self._probe_lock = threading.Lock()
        self._probed: tuple[float, str | None] | None = None
        self._root_prefix = os.path.join(root, "")  # "<root>/", for :meth:`sign`
        self._keyed: hmac.HMAC | None = None

    @property
    def location(self) -> str:
        return str(self.root)

    @property
    def secret(self) -> bytes:
        if callable(self._secret):
            self._secret = self._secret()
        return self._secret

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise NotFoundError("no such file")
        return path

    def put(self, key: str, source: Path, content_type: str) -> None:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            self._copy(source, tmp)
            os.replace(tmp, target)  # readers see the old file or the new one, never half of one
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk must not also keep the partial copy
            raise

    def write_problem(self) -> str | None:
        with self._probe_lock:
            now = self._monotonic()
            if self._probed is not None and now - self._probed[0] < PROBE_TTL_S:
                return self._probed[1]
            problem = self._probe()
            self._probed = (self._monotonic(), problem)
            return problem

    def _probe(self) -> str | None:
        probe = self.root / f".probe.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                with probe.open("wb") as fh:
                    fh.write(b"\0" * PROBE_BYTES)
                    fh.flush()
                    os.fsync(fh.fileno())
            finally:
                probe.unlink(missing_ok=True)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return f"cannot write to {self.root}: {reason}"
        return None

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        path = self.path_for(key)
        try:
            fh = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no blob at {key!r}") from None
        with fh:
            fh.seek(start)
            left = None if end is None else max(0, end - start)
            while left is None or left > 0:
                chunk = fh.read(READ_CHUNK if left is None else min(READ_CHUNK, left))
                if not chunk:
                    return
                if left is not None:
                    left -= len(chunk)
                yield chunk

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def list_blobs(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Blobs under ``prefix``; temporary files of unfinished puts are not blobs."""
        root = self.root.resolve()
        base = self.path_for(prefix) if prefix else root
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if _temporary(path):
                continue
            try:
                if not path.is_file():
                    continue
                st = path.stat()
            except FileNotFoundError:  # removed meanwhile (a finished put, another sweep)
                continue
            yield BlobInfo(path.relative_to(root).as_posix(), st.st_size, st.st_mtime)

    def signature(self, key: str, expires: int) -> str:
        if self._keyed is None:  # HMAC's key schedule, once: each link copies it
            self._keyed = hmac.new(self.secret, digestmod=hashlib.sha256)
        mac = self._keyed.copy()
        mac.update(f"{key}\n{expires}".encode())
        return mac.hexdigest()

    def sign(self, key: str, base_url: str, ttl_s: int | None = None) -> str | None:
        """A link to ``key`` valid for ``ttl_s`` (default: the storage's TTL) seconds; None when
        the blob is gone.

        Keys come from the store, written by the worker, so one ``stat`` answers whether the
        blob is there; whether the path stays inside the root (symlinks and all) is checked
        where it matters, when the link is followed (:meth:`verify`). Resolving it here too
        cost 50 us a link, most of a task list's CPU.
        """
        if not _plain_key(key) or not os.path.isfile(self._root_prefix + key):
            return None
        expires = int(time.time()) + (self.ttl_s if ttl_s is None else ttl_s)
        sig = self.signature(key, expires)
        return f"{base_url.rstrip('/')}{FILES_ROUTE}/{quote(key)}?expires={expires}&signature={sig}"

    def verify(self, key: str, expires: str | None, signature: str | None) -> Path:
        """The file behind a signed link; 403 when tampered or expired, 404 when swept."""
        if not expires or not signature:
            raise ForbiddenLinkError("link is missing its expires or signature parameter")
        # "²" and "①" pass str.isdigit() but not int(); thousands of digits pass neither check
        if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
            raise ForbiddenLinkError("link expires must be a Unix time of at most 12 digits")
        expected = self.signature(key, int(expires)).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "replace")):
            raise ForbiddenLinkError("link signature is invalid")
        if int(expires) < time.time():
            raise ForbiddenLinkError("link has expired")
        path = self.path_for(key)
        if not path.is_file():
            raise NotFoundError("file no longer exists (retention period passed)")
        return path

    def sweep(self, older_than_s: float) -> int:
        """Delete blobs older than ``older_than_s``, and temporary files of killed writers."""
        now = time.time()
        cutoff = now - older_than_s
        tmp_cutoff = now - TMP_MAX_AGE_S
        removed = 0
        if not self.root.exists():
            return 0
        for path in self.root.rglob("*"):
            try:
                if not path.is_file():
                    continue
                mtime = path.stat().st_mtime
            except FileNotFoundError:  # removed meanwhile (a finished put, another sweep)
                continue
            if mtime < cutoff or (_temporary(path) and mtime < tmp_cutoff):
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _plain_key(key: str) -> bool:
    """A relative key without ``.``, ``..`` or empty segments (what the worker writes)."""
    padded = f"/{key}/"
    return not (key == "" or "//" in padded or "/./" in padded or "/../" in padded or "\0" in key)


def _temporary(path: Path) -> bool:
    """A put's or a probe's temporary file (``.<name>.<pid>.<thread>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")
