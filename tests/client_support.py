"""A real ``reelgate serve`` subprocess on a free loopback port (no tests here; imported by the
end-to-end SDK, CLI and README tests)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from .server import running_server

BIN_DIR = str(Path(sys.executable).parent)  # where the `reelgate` script is installed


class Keys(TypedDict, total=False):
    """Credential keyword arguments of ``Client`` / ``AsyncClient``: one auth style."""

    api_key: str
    access_key: str
    secret_key: str


def keys_for(credentials: dict[str, str], auth: str) -> Keys:
    """``auth`` is ``"api"`` (API key) or ``"jwt"`` (AK/SK)."""
    if auth == "api":
        return {"api_key": credentials["api_key"]}
    return {"access_key": credentials["access_key"], "secret_key": credentials["secret_key"]}


@dataclass(frozen=True)
class RunningServer:
    base_url: str
    data_dir: Path
    credentials: dict[str, str]  # access_key, secret_key, api_key, base_url

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for child processes that finds this server through its data dir
        only (no REELGATE_* credentials), with the venv's scripts on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
        env["REELGATE_DATA_DIR"] = str(self.data_dir)
        env["PATH"] = BIN_DIR + os.pathsep + env.get("PATH", "")
        env.update(extra)
        return env


@contextmanager
def reelgate_serve(data_dir: Path) -> Iterator[RunningServer]:
    """Start ``reelgate serve`` on a fresh data dir, wait until it answers, stop it after."""
    # tests may leave slow tasks running: a short grace keeps teardown quick
    with running_server(data_dir, env={"REELGATE_SHUTDOWN_GRACE": "1"}) as server:
        yield RunningServer(server.base_url, data_dir, server.credentials())
