"""A pytest plugin that runs the Kling emulator (``reelgate sandbox``) for a test session.

Enable it in your ``conftest.py``::

    pytest_plugins = ["reelgate.testing"]

(an installed reelgate also registers it as the ``reelgate`` pytest plugin, so the fixtures
are there without the line). Fixtures:

``reelgate_sandbox`` (session)
    A :class:`SandboxServer`: a ``reelgate sandbox`` process on a free loopback port, its
    ``base_url`` and credentials, and the ``/_sandbox`` controls (``reset()``, ``release()``,
    ``finish()``, ``advance()``, ``fired()``, ``callbacks()``).
``reelgate_client``
    A :class:`reelgate.Client` configured for it, closed after the test.

Options (ini or command line): ``reelgate_profile`` / ``--reelgate-profile`` (``kling`` or
``cometapi``) and ``reelgate_scenarios`` / ``--reelgate-scenarios`` (a scenarios TOML file).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx
import pytest

if TYPE_CHECKING:
    from reelgate.client import Client

START_TIMEOUT_S = 60.0  # generous: a loaded CI machine imports slowly


class SandboxError(RuntimeError):
    """The sandbox did not start, or a control call failed."""


class SandboxServer:
    """A running ``reelgate sandbox`` and its controls."""

    def __init__(self, process: subprocess.Popen[str], info: dict[str, Any], log: IO[str]):
        self.process = process
        self.info = info
        self._log = log
        self.base_url: str = info["base_url"]
        self.api_key: str = info["api_key"]
        self.access_key: str = info["access_key"]
        self.secret_key: str = info["secret_key"]
        self.admin_key: str = info["admin_key"]
        self.profile: str = info["profile"]
        self._admin = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=30.0,
        )

    @classmethod
    def start(
        cls, *, profile: str = "kling", scenarios: Path | None = None, extra: Sequence[str] = ()
    ) -> SandboxServer:
        args = [sys.executable, "-m", "reelgate.cli", "sandbox", "--port", "0", "--json"]
        args += ["--profile", profile, *extra]
        if scenarios is not None:
            args += ["--scenarios", str(scenarios)]
        # a pipe nobody reads could fill and block the server; the file lives as long as it
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
        line = _read_line(process, START_TIMEOUT_S)
        if not line:
            process.kill()
            process.wait()
            log.seek(0)
            raise SandboxError(f"reelgate sandbox did not start:\n{log.read()[-4000:]}")
        return cls(process, json.loads(line), log)

    def client(self, **options: Any) -> Client:
        """A :class:`reelgate.Client` for this sandbox (keyword options pass through)."""
        from reelgate.client import Client

        return Client(self.base_url, api_key=self.api_key, **options)

    def stop(self) -> None:
        self._admin.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    # -- /_sandbox ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        response = self._admin.request(method, f"/_sandbox{path}", **kw)
        body = response.json()
        if response.status_code != 200 or body.get("code") != 0:
            raise SandboxError(f"{method} /_sandbox{path}: {response.status_code} {body}")
        return body["data"]

    def reset(self) -> dict[str, int]:
        """Forget every task, callback, firing and signal (the credentials stay)."""
        removed: dict[str, int] = self._call("POST", "/reset")["removed"]
        return removed

    def release(self, task_id: str) -> None:
        """Let a stalled task go on."""
        self._call("POST", f"/tasks/{task_id}/release")

    def finish(self, task_id: str) -> None:
        """Skip the task's remaining stall and slow-down now."""
        self._call("POST", f"/tasks/{task_id}/finish")

    def advance(self, seconds: float, task_id: str | None = None) -> None:
        """Move one task's clock (or every running task's) ahead by ``seconds``."""
        path = f"/tasks/{task_id}/advance" if task_id else "/clock/advance"
        self._call("POST", path, params={"seconds": seconds})

    def fired(self) -> list[dict[str, Any]]:
        """Scenarios that fired, oldest first."""
        items: list[dict[str, Any]] = self._call("GET", "/fired")
        return items

    def callbacks(self, task_id: str | None = None) -> list[dict[str, Any]]:
        """Callbacks sent (delivery attempts recorded), with their bodies."""
        params = {"task_id": task_id} if task_id else {}
        items: list[dict[str, Any]] = self._call("GET", "/callbacks", params=params)
        return items


def _read_line(process: subprocess.Popen[str], timeout_s: float) -> str:
    """The first stdout line, or "" when the process ends or the time is up first."""
    assert process.stdout is not None
    stdout = process.stdout
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout_s)
    return found[0] if found else ""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("reelgate", "reelgate Kling emulator")
    group.addoption("--reelgate-profile", default=None, help="sandbox fidelity profile")
    group.addoption("--reelgate-scenarios", default=None, help="sandbox scenarios TOML file")
    parser.addini("reelgate_profile", "sandbox fidelity profile (kling, cometapi)", default="")
    parser.addini("reelgate_scenarios", "sandbox scenarios TOML file", default="")


def _option(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"--reelgate-{name}") or config.getini(f"reelgate_{name}")
    return str(value or "")


@pytest.fixture(scope="session")
def reelgate_sandbox(pytestconfig: pytest.Config) -> Iterator[SandboxServer]:
    """A ``reelgate sandbox`` for the test session."""
    scenarios = _option(pytestconfig, "scenarios")
    path = Path(scenarios) if scenarios else None
    if path is not None and not path.is_absolute():
        path = Path(pytestconfig.rootpath, path)
    server = SandboxServer.start(
        profile=_option(pytestconfig, "profile") or "kling", scenarios=path
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def reelgate_client(reelgate_sandbox: SandboxServer) -> Iterator[Client]:
    """A :class:`reelgate.Client` for the session's sandbox."""
    client = reelgate_sandbox.client()
    try:
        yield client
    finally:
        client.close()


__all__ = ["SandboxError", "SandboxServer", "reelgate_client", "reelgate_sandbox"]
