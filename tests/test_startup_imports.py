"""What `reelgate sandbox` imports before it is ready: the start-up time (bench/startup.py) is
mostly imports, so the modules it must not need are pinned here, structurally, not by timing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

#: not needed to serve a new SQLite-backed sandbox: migrations (a new store is created from
#: tables.py), the client SDK and its commands, PostgreSQL's dialect
NOT_BEFORE_READY = (
    "alembic",
    "mako",
    "reelgate.client",
    "reelgate.cli.client_commands",
    "sqlalchemy.dialects.postgresql",
    "av",  # the renderer (PyAV, numpy) loads in the render processes, at the first render
    "numpy",
    "httpx",  # the callback dispatcher's client, at the first delivery
)


def imported_until_ready(*args: str) -> set[str]:
    """Every module ``python -X importtime -m reelgate.cli ARGS`` imported before its ready line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    cmd = [sys.executable, "-X", "importtime", "-m", "reelgate.cli", *args]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert proc.stderr is not None
    modules: set[str] = set()
    deadline = time.monotonic() + 120
    try:
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            if line.startswith("import time:") and "|" in line:
                modules.add(line.rsplit("|", 1)[1].strip())
            elif line.startswith("reelgate sandbox ready at"):
                return modules
            assert time.monotonic() < deadline, "no ready line"
        pytest.fail(f"the sandbox exited ({proc.wait()}) before it was ready")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def _loaded(modules: set[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


@pytest.mark.slow
def test_the_sandbox_is_ready_without_migrations_the_sdk_or_postgres() -> None:
    modules = imported_until_ready("sandbox", "--port", "0")
    assert {"reelgate.cli.sandbox", "reelgate.store", "uvicorn"} <= modules  # the test sees
    assert [name for name in NOT_BEFORE_READY if _loaded(modules, name)] == []


def test_the_cli_loads_the_client_commands_only_when_they_are_used() -> None:
    code = (
        "import sys, typer.main, reelgate.cli\n"
        "group = typer.main.get_command(reelgate.cli.app)\n"
        "ctx = typer.Context(group)\n"
        "assert group.get_command(ctx, 'sandbox') is not None\n"
        "print('reelgate.client' in sys.modules, end=' ')\n"
        "assert group.get_command(ctx, 'tasks') is not None\n"
        "print('reelgate.client' in sys.modules, group.list_commands(ctx))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split(" ", 2)[:2] == ["False", "True"]
    assert "'generate', 'tasks'" in out.stdout
