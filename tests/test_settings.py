"""The settings models (settings.py): how variables are read, checked and reported."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from reelgate.settings import (
    ClientSettings,
    SettingError,
    Settings,
    default_of,
    env_name,
    help_for,
    variables,
)

SETTINGS_PY = Path(__file__).resolve().parent.parent / "src" / "reelgate" / "settings.py"


def test_every_setting_has_a_reelgate_variable_a_default_and_help() -> None:
    declared = variables()
    assert len(declared) == len(Settings.model_fields) + len(ClientSettings.model_fields) - 1
    for env, variable in declared.items():
        assert env.startswith("REELGATE_") and env == env_name(variable.setting)
        assert variable.help and help_for(variable.setting).endswith(f"(env: {env})")
        assert default_of(variable.setting) == variable.default
    # the data directory is one variable for both sides: the client reads credentials.json there
    assert Settings.model_fields["data_dir"] is not None
    assert ClientSettings.from_env({"REELGATE_DATA_DIR": "/d"}).data_dir == Path("/d")


def test_values_are_typed_and_overrides_win() -> None:
    env = {"REELGATE_PORT": "9000", "REELGATE_RETENTION_DAYS": "1.5", "REELGATE_DATA_DIR": "x"}
    settings = Settings.from_env(env, port=None, workers=7)
    assert (settings.port, settings.retention_days, settings.data_dir) == (9000, 1.5, Path("x"))
    assert settings.workers == 7  # an override that is not None wins; None means "not given"
    assert Settings.from_env(env, port=1234).port == 1234


def test_an_empty_variable_counts_as_unset() -> None:
    settings = Settings.from_env({"REELGATE_PORT": "", "REELGATE_PUBLIC_URL": ""})
    assert settings.port == 8000 and settings.public_url is None
    assert ClientSettings.from_env({"REELGATE_API_KEY": ""}).api_key is None


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        *[("1", True), ("true", True), ("Yes", True), (" ON ", True)],
        *[("0", False), ("false", False), ("NO", False), ("off", False)],
    ],
)
def test_bool_spellings(raw: str, value: bool) -> None:
    assert Settings.from_env({"REELGATE_RUN_WORKER": raw}).run_worker is value


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REELGATE_PORT": "x"}, "REELGATE_PORT='x' is not a valid int"),
        ({"REELGATE_RUN_WORKER": "t"}, "REELGATE_RUN_WORKER='t' is not a valid bool"),
        ({"REELGATE_RUN_WORKER": "maybe"}, "REELGATE_RUN_WORKER='maybe' is not a valid bool"),
        ({"REELGATE_LEASE_SECONDS": "soon"}, "REELGATE_LEASE_SECONDS='soon' is not a valid float"),
        ({"REELGATE_LOG_FORMAT": "xml"}, "REELGATE_LOG_FORMAT='xml' is not text or json"),
        (
            {"REELGATE_EVENT_LOOP": "trio"},
            "REELGATE_EVENT_LOOP='trio' is not one of asyncio, uvloop",
        ),
        ({"REELGATE_FORWARDED_ALLOW_IPS": "a b"}, "REELGATE_FORWARDED_ALLOW_IPS: 'a b' is not"),
    ],
)
def test_a_bad_value_names_its_variable_and_rule(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)  # one line for the CLI's error


def test_settings_built_in_code_never_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REELGATE_PORT", "9999")
    monkeypatch.setenv("REELGATE_API_KEY", "from-env")
    assert Settings().port == 8000 and Settings(port=1).port == 1
    assert ClientSettings().api_key is None
    assert Settings.from_env().port == 9999  # from_env reads os.environ by default
    assert ClientSettings.from_env().api_key == "from-env"


def test_settings_are_frozen_and_replace_checks_the_change() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]
    assert settings.replace(port=1).port == 1 and settings.port == 8000
    with pytest.raises(ValidationError):
        settings.replace(log_format="xml")
    with pytest.raises(ValidationError):
        settings.replace(no_such_setting=1)


def test_settings_is_a_leaf_and_the_client_stays_light() -> None:
    tree = ast.parse(SETTINGS_PY.read_text())
    imported = {
        node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    } | {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert not {name for name in imported if name.startswith("reelgate")}
    code = (
        "import sys, reelgate.client, reelgate.client.config;"
        "bad = [m for m in ('fastapi','starlette','sqlalchemy','alembic','uvicorn','av')"
        " if m in sys.modules]; print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
