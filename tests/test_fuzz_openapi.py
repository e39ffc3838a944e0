"""Fuzzing from the served schema: no request gets a 5xx, every answer is the JSON envelope.

Schemathesis generates requests for every operation in ``/openapi.json`` as served (whatever
shape it has today), in both of its modes: ``positive`` (requests that fit the schema) and
``negative`` (requests that break it). They go to a real uvicorn server with valid credentials.
The create route parses its body by hand, so it is also fed raw bodies: arbitrary JSON values,
objects built from its own field names with values of any type, and arbitrary bytes.

The run is bounded (a fixed number of cases per operation) and derandomized, so CI is
reproducible; a failure prints the request that broke the rule.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from reelgate.api import create_app
from reelgate.domain.requests import Text2VideoRequest
from reelgate.settings import Settings
from reelgate.store import Store

from .conftest import _drop_postgres_database, _postgres_database
from .live import serving

CASES_PER_OPERATION = 20  # per generation mode and store
RAW_BODIES = 60  # per raw-body strategy and store
CREATE = "/v1/videos/text2video"
BINARY_ANSWERS = ("video/mp4", "image/jpeg")  # what /files may answer with a 200

FUZZ = settings(
    max_examples=CASES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


class Live:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.auth = {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A served app with one account, on each store (PostgreSQL refuses NUL characters)."""
    data = tmp_path_factory.mktemp("fuzz") / "data"
    data.mkdir()
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{data / 'reelgate.db'}"
    else:
        url = asyncio.run(_postgres_database())

    async def account() -> str:
        store = await Store.open(url)
        try:
            return (await store.create_account("fuzz")).api_key
        finally:
            await store.close()

    api_key = asyncio.run(account())
    # private callback targets allowed: the fuzzer's host names must not be looked up in DNS
    app = create_app(Settings(data_dir=data, database_url=url, callback_allow_private=True))
    try:
        with serving(app) as base_url:
            yield Live(base_url, api_key)
    finally:
        if request.param == "postgres":
            asyncio.run(_drop_postgres_database(url))


def check_answer(status: int, headers: Mapping[str, str], body: bytes, what: str) -> None:
    """No 5xx; the envelope, with code 0 exactly when HTTP 200; or a file from /files."""
    assert status < 500, f"{what} -> {status}: {body[:500]!r}"
    content_type = headers.get("content-type", "")
    if status in (200, 206) and content_type.startswith(BINARY_ANSWERS):
        return
    assert content_type.startswith("application/json"), f"{what} -> {content_type}: {body[:300]!r}"
    envelope = json.loads(body)
    assert isinstance(envelope, dict), f"{what} -> {envelope!r}"
    assert {"code", "message", "request_id"} <= set(envelope), f"{what} -> {envelope!r}"
    assert isinstance(envelope["code"], int) and isinstance(envelope["message"], str)
    uuid.UUID(envelope["request_id"])
    assert headers.get("x-request-id") == envelope["request_id"]
    if status == 200:
        assert envelope["code"] == 0, f"{what} -> {envelope!r}"
    else:
        assert 1000 <= envelope["code"] < 5000, f"{what} -> {status} {envelope!r}"


def operations(live: Live) -> list[Any]:
    doc = httpx.get(f"{live.base_url}/openapi.json", timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    found = [result.ok() for result in schema.get_all_operations()]
    assert any(op.path == CREATE and op.method.upper() == "POST" for op in found)
    return found


@pytest.mark.slow  # about 40 s on a loaded 2-core machine; CI runs it
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_of_the_served_schema(live: Live, mode: GenerationMode) -> None:
    session = requests.Session()  # one keep-alive connection, as a client would hold it
    tried = 0
    for operation in operations(live):

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case: Any) -> None:
            nonlocal tried
            try:
                response = case.call(base_url=live.base_url, session=session, headers=live.auth)
            except (requests.exceptions.InvalidHeader, requests.exceptions.InvalidURL):
                return  # a request no HTTP client can send (e.g. a newline in a header)
            tried += 1
            what = f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"
            headers = {name.lower(): values[0] for name, values in response.headers.items()}
            check_answer(response.status_code, headers, response.content, what[:2000])

        try:
            fuzz()
        except Unsatisfiable:
            # negative mode finds nothing to break in an operation without parameters
            assert mode is GenerationMode.NEGATIVE, operation.label
    assert tried > 0


# Raw bodies are written as JSON text, so they can hold what no encoder writes: integers past
# Python's 4300-digit limit, NaN and Infinity, lone surrogates, deep nesting, Unicode digits.
TEXT = st.text(st.characters(exclude_categories=()) | st.characters(categories=["Cs"]))
SCALARS = st.one_of(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
).map(lambda value: json.dumps(value, allow_nan=True))
ODD_SCALARS = st.one_of(
    st.integers(min_value=20, max_value=12_000).map(lambda digits: "9" * digits),
    st.sampled_from(["NaN", "-Infinity", "1e999", "-0", '"²"', '"①"', '"\\u0000"', '"\\ud800"']),
    st.sampled_from(["http://h:99999/", "http://h:abc/", "http://h:-1/", "http://[::1/"]).map(
        json.dumps
    ),
)
FIELDS = [*Text2VideoRequest.model_fields, "config", "type", "enabled", *"xyz"]


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(items: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in items.items()) + "}"


def _nested(depth_and_value: tuple[int, str]) -> str:
    depth, value = depth_and_value
    return "[" * depth + value + "]" * depth


JSON_TEXT = st.recursive(
    SCALARS | ODD_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(_array),
        st.dictionaries(st.sampled_from(FIELDS) | TEXT, inner, max_size=4).map(_object),
        st.tuples(st.integers(min_value=1, max_value=3000), inner).map(_nested),
    ),
    max_leaves=12,
)
REQUEST_LIKE = st.dictionaries(st.sampled_from(FIELDS), JSON_TEXT, max_size=8).map(
    lambda body: _object({"prompt": '"x"', **body})
)


@pytest.fixture(scope="module")
def client(live: Live) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live.base_url, headers=live.auth, timeout=30) as c:
        yield c


def post(client: httpx.Client, content: bytes) -> None:
    r = client.post(CREATE, content=content)
    check_answer(r.status_code, r.headers, r.content, f"POST {CREATE} {content[:1000]!r}")


@settings(FUZZ, max_examples=RAW_BODIES)
@given(text=JSON_TEXT)
def test_create_with_any_json_value(client: httpx.Client, text: str) -> None:
    post(client, text.encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=RAW_BODIES)
@given(text=REQUEST_LIKE)
def test_create_with_its_fields_holding_any_json(client: httpx.Client, text: str) -> None:
    post(client, text.encode("utf-8", "surrogatepass"))


@settings(FUZZ, max_examples=RAW_BODIES)
@given(content=st.binary(max_size=512))
def test_create_with_any_bytes(client: httpx.Client, content: bytes) -> None:
    post(client, content)
