"""Run `reelgate serve` (or `reelgate worker`) as a real subprocess on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .helpers import free_port

REELGATE = [sys.executable, "-m", "reelgate.cli"]


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log_path: Path

    def credentials(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.data_dir / "credentials.json").read_text())
        return data

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def reelgate_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env["REELGATE_CALLBACK_ALLOW_PRIVATE"] = "true"
    env.update(extra or {})
    return env


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60) -> str:
    out = subprocess.run(
        [*REELGATE, *args], capture_output=True, text=True, env=reelgate_env(env), timeout=timeout
    )
    assert out.returncode == 0, f"reelgate {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@contextmanager
def running_server(
    data_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 60,
) -> Iterator[ServerProcess]:
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / f"serve-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*REELGATE, "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=reelgate_env(env),
        )
    server = ServerProcess(proc, f"http://127.0.0.1:{port}", data_dir, log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"reelgate serve exited early:\n{server.log()}")
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"reelgate serve did not start:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
