"""JWT minting and renewal, and where base URL and credentials come from."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import jwt
import pytest

from reelgate.client import ApiKeyAuth, Client, JWTAuth
from reelgate.client.config import DEFAULT_BASE_URL, normalize_base_url, resolve_config

SECRET = "s" * 32


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_jwt_has_kling_claims_and_is_signed_hs256() -> None:
    auth = JWTAuth("my-ak", SECRET, clock=FakeClock(1_700_000_000.4))
    token = auth.token()
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False}
    )
    assert claims == {"iss": "my-ak", "exp": 1_700_001_800, "nbf": 1_699_999_995}


def test_jwt_is_reused_then_renewed_before_expiry() -> None:
    clock = FakeClock(1_000_000.0)
    auth = JWTAuth("ak", SECRET, ttl=1800, renew_before=300, clock=clock)
    first = auth.token()
    clock.now += 1400  # 400 s left: still good
    assert auth.token() == first
    clock.now += 101  # 299 s left: renew
    second = auth.token()
    assert second != first
    exp = jwt.decode(second, SECRET, algorithms=["HS256"], options={"verify_exp": False})["exp"]
    assert exp == int(clock.now) + 1800


def test_each_request_carries_a_valid_token() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"code": 0, "message": "SUCCEED", "data": []})

    transport = httpx.MockTransport(handler)
    client = Client("http://kling.test", access_key="ak", secret_key=SECRET, transport=transport)
    with client:
        client.text2video.list()
        client.text2video.list()
    scheme, token = seen[0].split(" ")
    assert scheme == "Bearer" and seen[0] == seen[1]
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["iss"] == "ak"


def test_secrets_stay_out_of_reprs() -> None:
    assert "sk-secret" not in repr(ApiKeyAuth("sk-secret"))
    assert SECRET not in repr(JWTAuth("ak", SECRET))


def test_explicit_arguments_win_over_the_environment(tmp_path: Path) -> None:
    env = {
        "REELGATE_BASE_URL": "https://env.example",
        "REELGATE_API_KEY": "env-key",
        "REELGATE_DATA_DIR": str(tmp_path),
    }
    config = resolve_config(
        "https://arg.example/kling/", access_key="ak", secret_key=SECRET, env=env
    )
    assert config.base_url == "https://arg.example/kling"
    assert isinstance(config.auth, JWTAuth)


def test_environment_is_used_when_no_arguments(tmp_path: Path) -> None:
    env = {
        "REELGATE_BASE_URL": "https://env.example",
        "REELGATE_ACCESS_KEY": "ak",
        "REELGATE_SECRET_KEY": SECRET,
        "REELGATE_DATA_DIR": str(tmp_path),
    }
    config = resolve_config(env=env)
    assert config.base_url == "https://env.example"
    assert isinstance(config.auth, JWTAuth) and config.auth.access_key == "ak"


def test_credentials_come_as_a_set_from_one_source(tmp_path: Path) -> None:
    env = {"REELGATE_SECRET_KEY": SECRET, "REELGATE_DATA_DIR": str(tmp_path)}
    with pytest.raises(ValueError, match="together"):
        resolve_config("https://x.example", access_key="ak", env=env)


def test_api_key_wins_over_a_key_pair_of_the_same_source(tmp_path: Path) -> None:
    config = resolve_config(
        "https://x.example", api_key="k", access_key="ak", secret_key=SECRET, env={}
    )
    assert isinstance(config.auth, ApiKeyAuth)


def _write_credentials(data_dir: Path, **fields: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "credentials.json").write_text(json.dumps(fields))


def test_local_credentials_file_is_the_last_resort(tmp_path: Path) -> None:
    _write_credentials(
        tmp_path,
        base_url="http://127.0.0.1:8123",
        api_key="file-key",
        access_key="file-ak",
        secret_key=SECRET,
    )
    config = resolve_config(env={"REELGATE_DATA_DIR": str(tmp_path)})
    assert config.base_url == "http://127.0.0.1:8123"
    assert isinstance(config.auth, ApiKeyAuth)
    # the same server under another loopback name still gets the file's credentials
    config = resolve_config("http://localhost:8123", env={"REELGATE_DATA_DIR": str(tmp_path)})
    assert config.auth is not None


def test_local_credentials_are_never_sent_to_another_server(tmp_path: Path) -> None:
    _write_credentials(tmp_path, base_url="http://127.0.0.1:8123", api_key="file-key")
    env = {"REELGATE_DATA_DIR": str(tmp_path)}
    assert resolve_config("https://api-singapore.klingai.com", env=env).auth is None
    assert resolve_config("http://127.0.0.1:9999", env=env).auth is None


def test_default_data_dir_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BASE_URL", "API_KEY", "ACCESS_KEY", "SECRET_KEY", "DATA_DIR"):
        monkeypatch.delenv(f"REELGATE_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    assert Client().base_url == DEFAULT_BASE_URL
    _write_credentials(tmp_path / "reelgate-data", base_url="http://127.0.0.1:8555", api_key="k")
    with Client() as client:
        assert client.base_url == "http://127.0.0.1:8555"


def test_a_broken_credentials_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"credentials\.json is not valid JSON"):
        resolve_config(env={"REELGATE_DATA_DIR": str(tmp_path)})


@pytest.mark.parametrize(
    "url,expected",
    [
        ("https://api-singapore.klingai.com", "https://api-singapore.klingai.com"),
        ("https://api.cometapi.com/kling/", "https://api.cometapi.com/kling"),
        (" http://127.0.0.1:8000 ", "http://127.0.0.1:8000"),
    ],
)
def test_base_urls_are_normalized(url: str, expected: str) -> None:
    assert normalize_base_url(url) == expected


@pytest.mark.parametrize("url", ["api.example.com", "ftp://x.example", "https://x.example/?a=1"])
def test_bad_base_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        normalize_base_url(url)


def test_data_dir_argument_wins_over_the_variable(tmp_path: Path) -> None:
    _write_credentials(tmp_path / "a", base_url="http://127.0.0.1:8123", api_key="a-key")
    _write_credentials(tmp_path / "b", base_url="http://127.0.0.1:8124", api_key="b-key")
    env = {"REELGATE_DATA_DIR": str(tmp_path / "a")}
    assert resolve_config(env=env).base_url == "http://127.0.0.1:8123"
    config = resolve_config(env=env, data_dir=tmp_path / "b")
    assert config.base_url == "http://127.0.0.1:8124"
    assert config.credentials.api_key == "b-key"


def test_missing_credentials_message_names_each_source(tmp_path: Path) -> None:
    config = resolve_config(env={"REELGATE_DATA_DIR": str(tmp_path)})
    assert config.auth is None
    message = config.missing_credentials_message()
    assert f"{(tmp_path / 'credentials.json').resolve()} (not found)" in message
    assert "REELGATE_API_KEY" in message and "--api-key" in message
    (tmp_path / "credentials.json").write_text("{}")
    message = resolve_config(env={"REELGATE_DATA_DIR": str(tmp_path)}).missing_credentials_message()
    assert "credentials.json (holds no keys)" in message
