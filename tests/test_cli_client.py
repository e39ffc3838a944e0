"""The client commands against a fake external server (the SDK's transport injected)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from reelgate.cli import client_commands
from reelgate.client import Client

from .client_fakes import FAIL_SCRIPT, VIDEO_BYTES, FakeKling, error, sync_client


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    client_commands.register(app)
    return app


class CliFake(FakeKling):
    """The fake server, plus the connection settings each command opened its client with."""

    def __init__(self) -> None:
        super().__init__()
        self.opened: list[client_commands.Connection] = []


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> CliFake:
    fake = CliFake()

    def open_client(conn: client_commands.Connection) -> Client:
        fake.opened.append(conn)
        return sync_client(fake)

    monkeypatch.setattr(client_commands, "open_client", open_client)
    return fake


def run(app: typer.Typer, *args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


FAST = ("--poll-interval", "0.001")


def test_generate_waits_downloads_and_prints_the_path(
    app: typer.Typer, fake: FakeKling, tmp_path: Path
) -> None:
    out = tmp_path / "fox.mp4"
    result = run(
        app, "generate", "a fox", "-o", str(out), "--model", "kling-v1", "--duration", "10",
        "--camera", "simple:zoom=-3", "--sound", "--watermark", "--external-id", "e1", *FAST,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert out.read_bytes() == VIDEO_BYTES
    body = json.loads(fake.api_requests()[0].content)
    assert body["camera_control"] == {
        "type": "simple",
        "config": {"horizontal": 0, "vertical": 0, "pan": 0, "tilt": 0, "roll": 0, "zoom": -3},
    }
    assert (body["duration"], body["sound"], body["external_task_id"]) == ("10", "on", "e1")
    assert body["watermark_info"] == {"enabled": True} and body["model_name"] == "kling-v1"


def test_generate_json_for_scripts(
    app: typer.Typer, fake: FakeKling, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run(app, "generate", "a fox", "--json", *FAST)
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout)
    task_id = payload["task"]["task_id"]
    assert payload["task"]["task_status"] == "succeed"
    assert payload["path"] == f"{task_id}.mp4"
    assert (tmp_path / f"{task_id}.mp4").read_bytes() == VIDEO_BYTES


def test_generate_no_wait_prints_the_task_id(app: typer.Typer, fake: FakeKling) -> None:
    result = run(app, "generate", "a fox", "--no-wait")
    assert result.exit_code == 0
    assert result.stdout.strip() == next(iter(fake.tasks))
    assert [r.method for r in fake.api_requests()] == ["POST"]


def test_connection_flags_reach_the_sdk(app: typer.Typer, fake: CliFake) -> None:
    run(app, "generate", "a fox", "--no-wait", "--base-url", "http://h:1", "--api-key", "k")
    assert fake.opened == [client_commands.Connection("http://h:1", None, None, "k")]


def test_errors_are_one_line_with_the_code(app: typer.Typer, fake: FakeKling) -> None:
    fake.interrupt(error(429, 1102, "resource pack depleted"))
    result = run(app, "generate", "a fox")
    assert result.exit_code == 1
    assert result.stderr == "error [1102]: resource pack depleted\n"
    assert result.stdout == ""


def test_invalid_values_fail_before_sending(app: typer.Typer, fake: FakeKling) -> None:
    result = run(app, "generate", "a fox", "--mode", "professional")
    assert result.exit_code == 1
    assert result.stderr.startswith("error [1201]: mode:")
    assert fake.requests == []


def test_bad_camera_syntax_is_a_usage_error(app: typer.Typer, fake: FakeKling) -> None:
    result = run(app, "generate", "a fox", "--camera", "simple:spin=3")
    assert result.exit_code == 2
    assert "--camera" in result.stderr
    assert fake.requests == []


def test_failed_task_exits_non_zero_with_the_reason(app: typer.Typer, fake: FakeKling) -> None:
    fake.script = FAIL_SCRIPT
    result = run(app, "generate", "a fox", *FAST)
    assert result.exit_code == 1
    task_id = next(iter(fake.tasks))
    last_line = result.stderr.splitlines()[-1]  # after the progress bar's last frame
    assert last_line == f"error [9003]: task {task_id} failed: content policy: blocked"


def test_ctrl_c_while_waiting_leaves_the_task_and_says_how_to_resume(
    app: typer.Typer, fake: FakeKling, tmp_path: Path
) -> None:
    fake.interrupt(None, None, KeyboardInterrupt())  # create, first poll, then Ctrl-C
    out = tmp_path / "x.mp4"
    result = run(app, "generate", "a fox", "-o", str(out), *FAST)
    assert result.exit_code == 130
    task_id = next(iter(fake.tasks))
    assert f"task {task_id} keeps running" in result.stderr
    assert f"reelgate tasks wait {task_id} -o {out}" in result.stderr
    assert not out.exists()


def test_tasks_list_show_wait_download(app: typer.Typer, fake: FakeKling, tmp_path: Path) -> None:
    assert run(app, "generate", "a fox", "--no-wait", "--external-id", "ext-1").exit_code == 0
    task_id = next(iter(fake.tasks))

    listed = run(app, "tasks", "list", "--json")
    assert [t["task_id"] for t in json.loads(listed.stdout)] == [task_id]
    table = run(app, "tasks", "list")
    assert task_id in table.stdout and "ext-1" in table.stdout

    shown = run(app, "tasks", "show", "ext-1")
    assert f"task_id:          {task_id}" in shown.stdout
    assert "processing" in shown.stdout

    waited = run(app, "tasks", "wait", task_id, "--json", *FAST)
    assert json.loads(waited.stdout)["path"] is None
    assert json.loads(waited.stdout)["task"]["task_status"] == "succeed"

    downloaded = run(app, "tasks", "download", task_id, "-o", str(tmp_path))
    assert downloaded.stdout.strip() == str(tmp_path / f"{task_id}.mp4")
    assert (tmp_path / f"{task_id}.mp4").read_bytes() == VIDEO_BYTES


def test_tasks_show_unknown_id(app: typer.Typer, fake: FakeKling) -> None:
    result = run(app, "tasks", "show", "404404")
    assert result.exit_code == 1
    assert result.stderr == "error [1203]: task 404404 not found\n"


def test_bad_base_url_is_reported(app: typer.Typer) -> None:
    result = run(app, "tasks", "list", "--base-url", "nope", "--api-key", "k")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: base_url must be an absolute http(s) URL")


@pytest.fixture
def no_credentials_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("BASE_URL", "API_KEY", "ACCESS_KEY", "SECRET_KEY", "DATA_DIR"):
        monkeypatch.delenv(f"REELGATE_{name}", raising=False)
    monkeypatch.chdir(tmp_path)


def test_no_credentials_says_where_it_looked_and_how_to_pass_them(
    app: typer.Typer, no_credentials_env: None, tmp_path: Path
) -> None:
    result = run(app, "tasks", "list", "--data-dir", str(tmp_path / "elsewhere"))
    assert result.exit_code == 2
    message = result.stderr
    assert message.startswith("error: no credentials for http://127.0.0.1:8000.")
    assert message.count("\n") == 1
    for source in (
        "--api-key",
        "--access-key",
        "--secret-key",
        "REELGATE_API_KEY",
        "REELGATE_ACCESS_KEY",
        "REELGATE_SECRET_KEY",
        f"{tmp_path / 'elsewhere' / 'credentials.json'} (not found)",
        "--data-dir",
        "REELGATE_DATA_DIR",
    ):
        assert source in message, source


def test_keys_in_the_data_dir_for_another_server_are_named_as_such(
    app: typer.Typer, no_credentials_env: None, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "credentials.json").write_text(
        json.dumps({"base_url": "http://127.0.0.1:8123", "api_key": "k"})
    )
    result = run(app, "tasks", "list", "--base-url", "http://127.0.0.1:9", "--data-dir", str(data))
    assert result.exit_code == 2
    assert "its keys are for http://127.0.0.1:8123, never sent to another server" in result.stderr


def test_data_dir_flag_picks_the_servers_credentials_file(
    no_credentials_env: None, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "credentials.json").write_text(
        json.dumps({"base_url": "http://127.0.0.1:8123", "api_key": "file-key"})
    )
    conn = client_commands.Connection(None, None, None, None, str(data))
    with client_commands.open_client(conn) as client:
        assert client.base_url == "http://127.0.0.1:8123"
    assert "--data-dir" in conn.resume_hint("1", None)


def test_help_shows_defaults_and_plain_flags() -> None:
    from reelgate.cli import app

    out = CliRunner().invoke(app, ["generate", "--help"]).stdout
    text = " ".join(out.split())  # help wraps at 80 columns
    for flag in ("--json", "--watermark", "--no-wait", "--sound / --no-sound"):
        assert f" {flag} " in text and f"{flag} <bool>" not in text, flag
    timeout = "--timeout <float> seconds to wait before giving up (the task runs on)"
    assert f"{timeout} [default: 1800.0]" in text
    assert "--poll-interval <float> seconds between queries [default: 2.0]" in text
    assert "$REELGATE_DATA_DIR, then ./reelgate-data" in text


@pytest.mark.parametrize(
    "command",
    [
        ["generate"],
        ["tasks", "list"],
        ["tasks", "show"],
        ["tasks", "wait"],
        ["tasks", "download"],
        ["tasks", "cancel"],
    ],
    ids=" ".join,
)
def test_every_client_command_takes_the_connection_options(command: list[str]) -> None:
    from reelgate.cli import app

    out = CliRunner().invoke(app, [*command, "--help"]).stdout
    for flag in ("--base-url", "--api-key", "--access-key", "--secret-key", "--data-dir"):
        assert flag in out, (command, flag)


def test_the_connection_options_are_declared_once() -> None:
    """One declaration per option (client_commands.CONNECTION_OPTIONS), one field of Connection
    each: a command gets them all by ``@connected``, never by repeating them."""
    import dataclasses
    import re

    fields = [f.name for f in dataclasses.fields(client_commands.Connection)]
    assert list(client_commands.CONNECTION_OPTIONS) == fields
    source = Path(client_commands.__file__).read_text()
    for flag in ("--base-url", "--api-key", "--access-key", "--secret-key", "--data-dir"):
        assert len(re.findall(rf'typer\.Option\(\s*"{flag}"', source)) == 1, flag
