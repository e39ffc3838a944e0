"""`reelgate serve` as a real subprocess, driven over HTTP (issue: core service)."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .helpers import assert_error, assert_ok, mint_jwt
from .server import run_cli, running_server

pytestmark = pytest.mark.slow

CREATE = "/v1/videos/text2video"


def test_first_start_creates_local_account_and_credentials_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data, "--no-worker") as server:
        creds = server.credentials()
        assert set(creds) >= {"access_key", "secret_key", "api_key", "base_url"}
        assert stat.S_IMODE(os.stat(data / "credentials.json").st_mode) == 0o600
        log = server.log()  # a file, not a terminal: the keys stay out of it
        assert creds["api_key"] not in log and creds["secret_key"] not in log
        assert f"its keys are in {(data / 'credentials.json').resolve()}" in log
        r = httpx.post(
            f"{server.base_url}{CREATE}",
            json={"prompt": "hello"},
            headers={"Authorization": f"Bearer {creds['api_key']}"},
        )
        assert_ok(r)
    # a second start with the same store creates nothing new
    with running_server(data, "--no-worker") as server:
        assert server.credentials() == creds
        assert "created a local account" not in server.log()


def test_keys_jwt_and_api_key_on_both_prefixes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    run_cli("db", "upgrade", "--data-dir", str(data))
    keys = json.loads(
        run_cli("keys", "create", "--name", "acme", "--data-dir", str(data), "--json")
    )
    assert set(keys) == {"account_id", "access_key", "secret_key", "api_key"}
    rival = json.loads(
        run_cli("keys", "create", "--name", "rival", "--data-dir", str(data), "--json")
    )
    with running_server(data, "--no-worker") as server:
        jwt_headers = {
            "Authorization": f"Bearer {mint_jwt(keys['access_key'], keys['secret_key'])}"
        }
        key_headers = {"Authorization": f"Bearer {keys['api_key']}"}
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for prefix, headers in (("", jwt_headers), ("/kling", key_headers)):
                created = assert_ok(
                    client.post(
                        f"{prefix}{CREATE}", json={"prompt": "p", "duration": "5"}, headers=headers
                    )
                )
                for other_prefix in ("", "/kling"):
                    got = assert_ok(
                        client.get(f"{other_prefix}{CREATE}/{created['task_id']}", headers=headers)
                    )
                    assert got["task_id"] == created["task_id"]
            listed = assert_ok(client.get(f"/kling{CREATE}?pageSize=10", headers=jwt_headers))
            assert len(listed) == 2
            # another account cannot see acme's tasks
            local = {"Authorization": f"Bearer {rival['api_key']}"}
            assert assert_ok(client.get(CREATE, headers=local)) == []
            assert_error(client.get(f"{CREATE}/{listed[0]['task_id']}", headers=local), 404, 1203)
            assert_error(client.get("/nothing/here"), 404, 1202)
            assert_error(client.post(CREATE, content=b"{", headers=key_headers), 400, 1200)
            expired = mint_jwt(keys["access_key"], keys["secret_key"], exp_in=-100, nbf_in=-200)
            assert_error(
                client.get(CREATE, headers={"Authorization": f"Bearer {expired}"}), 401, 1004
            )
    # keys create --account adds credentials to the same account
    more = json.loads(
        run_cli(
            "keys", "create", "--name", "ci", "--account", "1", "--data-dir", str(data), "--json"
        )
    )
    with running_server(data, "--no-worker") as server:
        headers = {"Authorization": f"Bearer {more['api_key']}"}
        assert len(assert_ok(httpx.get(f"{server.base_url}{CREATE}", headers=headers))) == 2


def test_200_creates_over_20_connections_against_real_server(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", "--no-worker") as server:
        headers = {"Authorization": f"Bearer {server.credentials()['api_key']}"}
        clients = [
            httpx.Client(base_url=server.base_url, headers=headers, timeout=30) for _ in range(20)
        ]

        def create(i: int) -> str:
            r = clients[i % 20].post(CREATE, json={"prompt": f"n{i}", "external_task_id": f"x{i}"})
            return str(assert_ok(r)["task_id"])

        with ThreadPoolExecutor(20) as pool:
            ids = list(pool.map(create, range(200)))
        assert len(set(ids)) == 200
        listed = assert_ok(clients[0].get(f"{CREATE}?pageSize=500"))
        assert sorted(t["task_id"] for t in listed) == sorted(ids)
        assert sorted(t["task_info"]["external_task_id"] for t in listed) == sorted(
            f"x{i}" for i in range(200)
        )
        for c in clients:
            c.close()


def test_help_names_environment_variables() -> None:
    out = run_cli("serve", "--help", env={"COLUMNS": "200"})
    for var in ("REELGATE_PORT", "REELGATE_DATA_DIR", "REELGATE_DATABASE_URL", "REELGATE_WORKERS"):
        assert var in out
