"""A real S3-protocol server on loopback for the storage tests: moto in server mode, run as a
child process (never an in-process mock). Each test gets its own bucket."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from .helpers import free_port

ACCESS_KEY = "reelgate-test"
SECRET_KEY = "reelgate-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    def create_bucket(self) -> str:
        """A new, empty bucket; its name."""
        name = f"reelgate-{uuid.uuid4().hex[:12]}"
        r = httpx.put(f"{self.endpoint}/{name}", timeout=10)
        assert r.status_code == 200, r.text
        return name

    def env(self) -> dict[str, str]:
        """What a reelgate process needs to reach this server (as REELGATE_* settings)."""
        return {
            "REELGATE_S3_ENDPOINT_URL": self.endpoint,
            "REELGATE_S3_REGION": REGION,
            "REELGATE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "REELGATE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    pytest.importorskip("moto.server", reason="moto[server] (the test extra) is not installed")
    port = free_port()
    log_path = Path(tmp_path_factory.mktemp("moto")) / "moto.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = S3Server(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"moto server exited:\n{log_path.read_text()}")
            try:
                httpx.get(f"{server.endpoint}/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"moto did not start:\n{log_path.read_text()}") from None
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
