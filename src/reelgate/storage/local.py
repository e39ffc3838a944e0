"""Blobs in a local directory, served by the API at HMAC-signed, expiring URLs."""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import time
from pathlib import Path
from urllib.parse import quote

from reelgate.domain.errors import ForbiddenLinkError, NotFoundError

FILES_ROUTE = "/files"


class LocalStorage:
    def __init__(self, root: Path, secret: bytes, ttl_s: int = 86400) -> None:
        self.root = root
        self.secret = secret
        self.ttl_s = ttl_s

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise NotFoundError("no such file")
        return path

    def put(self, key: str, source: Path, content_type: str) -> None:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)  # readers see the old file or the new one, never half of one

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def signature(self, key: str, expires: int) -> str:
        msg = f"{key}\n{expires}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def sign(self, key: str, base_url: str) -> str | None:
        if not self.exists(key):
            return None
        expires = int(time.time()) + self.ttl_s
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
        cutoff = time.time() - older_than_s
        removed = 0
        if not self.root.exists():
            return 0
        for path in self.root.rglob("*"):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed
