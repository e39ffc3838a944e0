"""Hostile and broken input gets a 4xx Kling envelope, on SQLite and on PostgreSQL (issue 8).

Each class of input here answered 500 before: deep JSON, huge integers, Unicode digits, NUL
characters that PostgreSQL refuses, callback URLs with impossible ports, JWT claims of the wrong
type. Statements sent to the store are recorded (an SQLAlchemy event, not a fake) to show that
nothing unvalidated reaches it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from reelgate.api import create_app
from reelgate.settings import Settings
from reelgate.storage import LocalStorage
from reelgate.store import Store

from .conftest import Api
from .helpers import assert_error, assert_ok, mint_jwt

CREATE = "/v1/videos/text2video"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_api(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url_factory: Any
) -> AsyncIterator[Api]:
    """The in-process API on each store backend."""
    url = None if request.param == "sqlite" else await postgres_url_factory()
    app = create_app(
        Settings(data_dir=tmp_path / "data", database_url=url, callback_allow_private=True)
    )
    async with app.router.lifespan_context(app):
        store: Store = app.state.services.store
        creds = await store.create_account("hostile")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield Api(client, store, creds)


@pytest.fixture
async def postgres_url_factory() -> AsyncIterator[Any]:
    """Fresh PostgreSQL databases on demand, dropped afterwards (only the postgres case asks)."""
    from .conftest import _drop_postgres_database, _postgres_database

    made: list[str] = []

    async def make() -> str:
        made.append(await _postgres_database())
        return made[-1]

    yield make
    for url in made:
        await _drop_postgres_database(url)


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Every SQL statement with its parameters, as text, sent while the block runs."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        seen.append(f"{sql} {params!r}")

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def raw_jwt(payload: str, secret: str, header: str = '{"alg":"HS256","typ":"JWT"}') -> str:
    """A JWT over a payload written by hand (PyJWT refuses to encode most of these)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{b64(header.encode())}.{b64(payload.encode())}"
    sig = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(sig)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def post_raw(api: Api, content: bytes) -> httpx.Response:
    return await api.client.post(CREATE, content=content, headers=api.key_headers)


# --- request bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [33, 1000, 30_000])
async def test_deeply_nested_json_is_1200_naming_the_limit(api: Api, depth: int) -> None:
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        body = b'{"prompt": "x", "extra": ' + opener * depth + b"1" + closer * depth + b"}"
        assert_error(await post_raw(api, body), 400, 1200, "deeper than 32 levels")


async def test_nesting_up_to_the_limit_is_accepted(api: Api) -> None:
    # the body object is level 1, so 31 more levels of arrays reach exactly 32
    body = b'{"prompt": "x", "extra": ' + b"[" * 31 + b"]" * 31 + b"}"
    assert_ok(await post_raw(api, body))


@pytest.mark.parametrize(
    "field",
    ["cfg_scale", "duration", "prompt", "unknown", "camera_control.config.zoom"],
)
async def test_ten_thousand_digit_integer_in_any_field_is_1200(api: Api, field: str) -> None:
    huge = "7" * 10_000
    body: dict[str, Any] = {"prompt": "x", field: "HUGE"}
    if field == "camera_control.config.zoom":
        body = {"prompt": "x", "camera_control": {"type": "simple", "config": {"zoom": "HUGE"}}}
    text = json.dumps(body).replace('"HUGE"', huge)
    r = await post_raw(api, text.encode())
    assert_error(r, 400, 1200, "more than 100 digits")


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_finite_numbers_are_1200(api: Api, number: str) -> None:
    r = await post_raw(api, b'{"prompt": "x", "cfg_scale": %s}' % number.encode())
    assert_error(r, 400, 1200, "request body")


@pytest.mark.parametrize(
    "body",
    [b'{"prompt": "\\ud800"}', b'{"\\udfff": 1, "prompt": "x"}', b'{"prompt": "\xed\xa0\x80"}'],
)
async def test_unpaired_surrogates_are_1200(api: Api, body: bytes) -> None:
    assert_error(await post_raw(api, body), 400, 1200, "surrogate")


@pytest.mark.parametrize("duration", ["²", "①", "\u0665", "5" * 5000, "1e1", True])
async def test_odd_durations_are_1201(api: Api, duration: object) -> None:
    r = await api.create({"prompt": "x", "duration": duration})
    assert_error(r, 400, 1201, "duration: must be a whole number of seconds")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("external_task_id", "order\x00-1"),
        ("external_task_id", "line\nbreak"),
        ("external_task_id", "x" * 257),
        ("prompt", "a cat\x00"),
        ("prompt", "bell\x07"),
        ("negative_prompt", "\x1b[31mred"),
        ("model_name", "kling-v1\x00"),
        ("prompt", "c1 control \x85"),
    ],
)
async def test_control_characters_in_text_fields_are_1201_on_every_store(
    any_api: Api, field: str, value: str
) -> None:
    body = {"prompt": "x", field: value}
    with statements(any_api.store) as sent:
        r = await any_api.create(body)
    assert_error(r, 400, 1201, f"{field}: ")
    assert not any("INSERT" in s for s in sent), sent
    assert not any("\\x00" in s or "\x00" in s for s in sent)
    assert assert_ok(await any_api.client.get(CREATE, headers=any_api.key_headers)) == []


async def test_prompts_keep_tabs_and_line_breaks(api: Api) -> None:
    created = assert_ok(await api.create({"prompt": "line one\n\tline two\r\n"}))
    assert created["task_status"] == "submitted"


@pytest.mark.parametrize(
    "ident",
    ["a%00b", "%00", "x" * 257, "tab%09id", "%7F", "%C2%85"],
)
async def test_path_ids_that_no_task_can_have_are_1203_without_a_query(
    any_api: Api, ident: str
) -> None:
    with statements(any_api.store) as sent:
        r = await any_api.client.get(f"{CREATE}/{ident}", headers=any_api.key_headers)
        assert_error(r, 404, 1203, "task not found: a task id")
        # authentication comes first, whatever else is wrong
        assert_error(await any_api.client.get(f"{CREATE}/{ident}"), 401, 1001)
    assert not any("FROM tasks" in s for s in sent), sent


async def test_a_valid_external_id_is_found_by_path(any_api: Api) -> None:
    ident = "order 42/ü"
    task = assert_ok(await any_api.create({"prompt": "x", "external_task_id": ident}))
    got = assert_ok(
        await any_api.client.get(f"{CREATE}/order%2042/%C3%BC", headers=any_api.key_headers)
    )
    assert got["task_id"] == task["task_id"]


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://example.com:99999/hook", "port must be a number in 1..65535"),
        ("http://example.com:abc/hook", "port must be a number in 1..65535"),
        ("http://example.com:-1/hook", "port must be a number in 1..65535"),
        ("http://example.com:0/hook", "port must be a number in 1..65535"),
        ("http://exa mple.com/hook", "spaces or control characters"),
        ("http://example.com/\x00", "spaces or control characters"),
        ("http://a..b/hook", "is not a valid host name"),
        ("http://-a.com/hook", "is not a valid host name"),
        ("http://a_b%.com/", "is not a valid host name"),
        ("http://[zz]/hook", "absolute http(s) URL"),
        ("http://[::1/hook", "absolute http(s) URL"),
        ("http:///hook", "absolute http(s) URL"),
    ],
)
async def test_callback_url_ports_and_hosts_are_1201(api: Api, url: str, fragment: str) -> None:
    r = await api.create({"prompt": "x", "callback_url": url})
    assert_error(r, 400, 1201, "callback_url: ", fragment)


@pytest.mark.parametrize(
    "url",
    ["http://example.com:8080/hook", "https://[::1]:443/h", "http://bücher.example/h", "http://h/"],
)
async def test_well_formed_callback_urls_are_accepted(api: Api, url: str) -> None:
    assert_ok(await api.create({"prompt": "x", "callback_url": url}))


# --- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ('{"iss": "AK\\u0000x", "exp": 9999999999}', "iss must not contain control characters"),
        ('{"iss": "%s", "exp": 9999999999}' % ("A" * 300), "iss is longer than 256"),
        ('{"iss": ["AK"], "exp": 9999999999}', "no iss claim"),
        ('{"iss": "AK\\ud800", "exp": 9999999999}', "surrogate"),
    ],
)
async def test_bad_iss_is_1002_before_any_query(any_api: Api, payload: str, fragment: str) -> None:
    token = raw_jwt(payload, any_api.creds.secret_key)
    with statements(any_api.store) as sent:
        r = await any_api.client.get(CREATE, headers=bearer(token))
    assert_error(r, 401, 1002, fragment)
    assert sent == []


@pytest.mark.parametrize(
    ("claims", "code", "fragment", "claim"),
    [
        ({"exp": True}, 1002, "exp must be an integer", "exp"),
        ({"exp": None}, 1002, "exp must be an integer", "exp"),
        ({"exp": [1]}, 1002, "exp must be an integer", "exp"),
        ({"nbf": {"t": 1}}, 1002, "nbf must be an integer", "nbf"),
        ({"iat": "1700000000"}, 1002, "iat must be an integer", "iat"),
        ({"exp": -10}, 1004, "exp is in the past", "exp"),
        ({"nbf": "FUTURE"}, 1003, "nbf is in the future", "nbf"),
        ({"iat": "FUTURE"}, 1003, "iat is in the future", "iat"),
    ],
)
async def test_time_claims_map_to_their_code_and_name_their_claim(
    api: Api, claims: dict[str, object], code: int, fragment: str, claim: str
) -> None:
    now = int(time.time())
    payload: dict[str, object] = {"iss": api.creds.access_key, "exp": now + 600, "nbf": now - 5}
    payload.update({k: now + 600 if v == "FUTURE" else v for k, v in claims.items()})
    token = raw_jwt(json.dumps(payload), api.creds.secret_key)
    message = assert_error(await api.client.get(CREATE, headers=bearer(token)), 401, code, fragment)
    for other in {"exp", "nbf", "iat"} - {claim}:
        assert other not in message, message


async def test_fractional_numeric_dates_are_accepted(api: Api) -> None:
    # RFC 7519 NumericDate may be fractional; `time.time() + 1800` clients send that
    token = mint_jwt(api.creds.access_key, api.creds.secret_key, exp=time.time() + 600)
    assert_ok(await api.client.get(CREATE, headers=bearer(token)))


@pytest.mark.parametrize(
    "token",
    [
        raw_jwt('{"iss": "AK", "exp": ' + "9" * 10_000 + "}", "s"),
        raw_jwt('{"iss": "AK", "exp": 1, "x": ' + "[" * 1000 + "]" * 1000 + "}", "s"),
        raw_jwt('{"iss": "AK", "exp": NaN}', "s"),
        raw_jwt("[1, 2]", "s"),
        raw_jwt('{"iss": "AK", "exp": 1}', "s", header='{"alg": "HS256", "x": 1e999}'),
        "e30.e30.*not-base64*",
        "a.b.c",
    ],
)
async def test_malformed_jwt_segments_are_1002(api: Api, token: str) -> None:
    assert_error(await api.client.get(CREATE, headers=bearer(token)), 401, 1002, "token")


@pytest.mark.parametrize(
    "value",
    ["Bearer a\x00b", "Bearer \x01\x02\x03", "Bearer " + "k" * 100_000, "Bearer\tkey", "\x7f"],
)
async def test_hostile_authorization_headers_are_401(any_api: Api, value: str) -> None:
    r = await any_api.client.get(CREATE, headers={"Authorization": value})
    assert r.status_code == 401 and r.json()["code"] in (1001, 1002), r.text


# --- query strings and signed links ---------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "pageNum=" + "9" * 10_000,
        "pageNum=²",
        "pageSize=①",
        "pageNum=-1",
        "pageNum=1e3",
        "pageNum=%00",
        "pageSize=" + "1" * 30,
    ],
)
async def test_odd_page_parameters_are_1201(api: Api, query: str) -> None:
    r = await api.client.get(f"{CREATE}?{query}", headers=api.key_headers)
    name = query.split("=")[0]
    assert_error(r, 400, 1201, name)


@pytest.mark.parametrize(
    "query",
    ["start_time=" + "9" * 10_000 + "&end_time=1", "start_time=²&end_time=1", "start_time=1"],
)
async def test_odd_cost_windows_are_1201(api: Api, query: str) -> None:
    r = await api.client.get(f"/account/costs?{query}", headers=api.key_headers)
    assert_error(r, 400, 1201, "_time")


@pytest.fixture
async def files(settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    blob = tmp_path / "clip.mp4"
    blob.write_bytes(bytes(range(256)) * 8)
    storage = LocalStorage(settings.files_dir, b"secret", ttl_s=60)
    storage.put("videos/1/0.mp4", blob, "video/mp4")
    app = create_app(settings, storage=storage)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            url = storage.sign("videos/1/0.mp4", "http://t")
            assert url is not None
            yield client, url


@pytest.mark.parametrize("expires", ["²", "①", "9" * 5000, "١٢٣", "-1", " 1", "1" * 13])
async def test_signed_link_expires_must_be_ascii_digits(
    files: tuple[httpx.AsyncClient, str], expires: str
) -> None:
    client, url = files
    path, query = url.split("?")
    signature = query.split("signature=")[1]
    r = await client.get(path, params={"expires": expires, "signature": signature})
    assert_error(r, 403, 1103, "expires must be a Unix time")


@pytest.mark.parametrize("signature", ["é", "%00", "0" * 10_000])
async def test_signed_link_odd_signatures_are_1103(
    files: tuple[httpx.AsyncClient, str], signature: str
) -> None:
    client, url = files
    r = await client.get(url.split("signature=")[0] + "signature=" + signature)
    assert_error(r, 403, 1103, "signature is invalid")


@pytest.mark.parametrize("range_header", ["bytes=abc", "bytes=99999999999-", "bytes=5-1", "kb=1-2"])
async def test_odd_range_headers_never_5xx(
    files: tuple[httpx.AsyncClient, str], range_header: str
) -> None:
    client, url = files
    r = await client.get(url, headers={"Range": range_header})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert_error(r, r.status_code, 1200)
