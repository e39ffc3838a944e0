"""Operator commands: fast --help, serve on a busy port, keys create limits, first-start keys."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reelgate.cli import app
from reelgate.cli.server import bind_problem
from reelgate.store import NewTask, Store

from .helpers import free_port
from .server import REELGATE, reelgate_env, stop

HEAVY = ("reelgate.store", "reelgate.api", "sqlalchemy", "alembic", "fastapi", "uvicorn", "torch")

# Builds the two help pages in a fresh interpreter and prints the heavy modules it imported,
# then (as a control that the check can fail) the same after importing the server's runtime.
HELP_IMPORTS = f"""
import json, sys
from typer.testing import CliRunner
from reelgate.cli import app

def heavy():
    return sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in {HEAVY!r}))

pages = [CliRunner().invoke(app, args).output for args in (["--help"], ["tasks", "list", "--help"])]
before = heavy()
import reelgate.cli.runtime
print(json.dumps({{"pages": pages, "heavy": before, "control": heavy()}}))
"""


def test_help_imports_neither_server_store_nor_alembic() -> None:
    out = subprocess.run(
        [sys.executable, "-c", HELP_IMPORTS],
        capture_output=True,
        text=True,
        check=True,
        env=reelgate_env(),
    )
    result = json.loads(out.stdout)
    main_help, list_help = result["pages"]
    assert "serve" in main_help and "tasks" in main_help
    assert "--page-size" in list_help
    assert result["heavy"] == []
    # (alembic is imported only when a migration runs: tests/test_store_schema.py)
    assert {"reelgate.store", "reelgate.api", "sqlalchemy", "fastapi"} <= set(result["control"])


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_serve_on_a_port_in_use_says_so_in_one_line_first(busy_port: int, tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, out, err = invoke("serve", "--port", str(busy_port), "--data-dir", str(data))
    assert code == 1
    assert out == ""
    assert err == (
        f"error: port {busy_port} on 127.0.0.1 is already in use (set --port or REELGATE_PORT)\n"
    )
    assert not data.exists()  # nothing was built: no store, no engines, no credentials


def test_bind_problem_names_other_bind_errors(busy_port: int) -> None:
    assert bind_problem("127.0.0.1", free_port()) is None
    assert "already in use" in (bind_problem("127.0.0.1", busy_port) or "")
    # an address of no interface on this machine (TEST-NET-1, RFC 5737)
    problem = bind_problem("192.0.2.1", free_port())
    assert problem is not None and problem.startswith("cannot listen on 192.0.2.1:")


def keys_create(data: Path, *args: str) -> dict[str, object]:
    code, out, err = invoke("keys", "create", "--data-dir", str(data), "--json", *args)
    assert code == 0, err
    payload: dict[str, object] = json.loads(out)
    return payload


def account_limit(data: Path, account_id: object) -> int | None:
    assert isinstance(account_id, int)

    async def read() -> int | None:
        store = await Store.open(f"sqlite+aiosqlite:///{data / 'reelgate.db'}")
        try:
            account = await store.get_account(account_id)
            assert account is not None
            return account.max_concurrent_tasks
        finally:
            await store.close()

    return asyncio.run(read())


def test_keys_create_applies_max_concurrent_and_reports_the_account(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = keys_create(data, "--name", "team")
    assert set(first) == {"account_id", "access_key", "secret_key", "api_key"}
    assert account_limit(data, first["account_id"]) is None

    more = keys_create(
        data, "--name", "ci", "--account", str(first["account_id"]), "--max-concurrent", "3"
    )
    assert more["account_id"] == first["account_id"]
    assert more["max_concurrent_tasks"] == 3
    assert more["api_key"] != first["api_key"]
    assert account_limit(data, first["account_id"]) == 3

    other = keys_create(data, "--name", "other", "--max-concurrent", "0")
    assert other["account_id"] != first["account_id"]
    assert account_limit(data, other["account_id"]) == 0


def test_keys_create_refuses_an_unknown_account_and_a_negative_limit(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    code, _, err = invoke(
        "keys", "create", "--data-dir", data, "--name", "x", "--account", "99",
        "--max-concurrent", "2",
    )  # fmt: skip
    assert code == 2 and "account 99 does not exist" in err
    code, _, err = invoke(
        "keys", "create", "--data-dir", data, "--name", "x", "--max-concurrent=-1"
    )
    assert code == 2 and "--max-concurrent" in err


async def test_a_changed_limit_is_enforced_at_create(store: Store) -> None:
    from reelgate.domain.errors import ConcurrencyLimitError

    creds = await store.create_account("a")
    await store.set_max_concurrent_tasks(creds.account_id, 1)
    await store.create_task(new_task(creds.account_id))
    with pytest.raises(ConcurrencyLimitError):
        await store.create_task(new_task(creds.account_id))
    await store.set_max_concurrent_tasks(creds.account_id, 0)  # 0: unlimited
    await store.create_task(new_task(creds.account_id))
    with pytest.raises(LookupError, match="account 404 does not exist"):
        await store.set_max_concurrent_tasks(404, 1)


def new_task(account_id: int) -> NewTask:
    return NewTask(account_id, "kling-v1", {"prompt": "p"}, Decimal(1))


# -- first start: the keys go to credentials.json, never into a log --------------------------


@pytest.mark.slow
def test_first_start_on_a_pipe_logs_the_file_not_the_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = subprocess.Popen(
        [*REELGATE, "serve", "--port", str(free_port()), "--data-dir", str(data), "--no-worker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=reelgate_env(),
    )
    assert proc.stdout is not None
    try:
        output = read_until(proc.stdout.fileno(), b"Uvicorn running on")
    finally:
        stop(proc)
        proc.stdout.close()
    creds = json.loads((data / "credentials.json").read_text())
    assert stat.S_IMODE(os.stat(data / "credentials.json").st_mode) == 0o600
    assert f"its keys are in {(data / 'credentials.json').resolve()} (mode 0600)" in output
    for secret in (creds["secret_key"], creds["api_key"]):
        assert secret not in output


@pytest.mark.slow
def test_first_start_on_a_terminal_shows_the_keys(tmp_path: Path) -> None:
    data = tmp_path / "data"
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [*REELGATE, "serve", "--port", str(free_port()), "--data-dir", str(data), "--no-worker"],
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=secondary,
        env=reelgate_env(),
    )
    os.close(secondary)
    try:
        output = read_until(primary, b"Uvicorn running on")
    finally:
        stop(proc)
        os.close(primary)
    creds = json.loads((data / "credentials.json").read_text())
    assert f"secret_key: {creds['secret_key']}" in output
    assert f"api_key:    {creds['api_key']}" in output


def read_until(fd: int, marker: bytes, timeout: float = 120) -> str:
    """Everything ``fd`` yields until ``marker`` shows (or the writer is gone), as text."""
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{marker!r} did not show within {timeout} s:\n{buf.decode()}"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pty reads EIO once the child closed it
            chunk = b""
        if not chunk:
            raise AssertionError(f"output ended before {marker!r}:\n{buf.decode()}")
        buf += chunk
    return buf.decode(errors="replace").replace("\r\n", "\n")
