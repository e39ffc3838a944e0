"""api/hot.py answers create, get and list as FastAPI's own routes would, and only those.

Each request goes to two apps on one store: the app as served (HotRoutes in its middleware)
and the same app with HotRoutes taken out of its middleware list, which is FastAPI serving
routes.py alone. Their answers must be the same but for the request id (and, for creates,
the new task's id and times). A spy on HotRoutes counts which requests it answered itself, so
a hot path that quietly handed everything to FastAPI would fail here too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reelgate.api import create_app
from reelgate.api.hot import HotRoutes
from reelgate.settings import Settings
from reelgate.store import Credentials, NewTask, Store

from .helpers import assert_ok, mint_jwt

CREATE = "/v1/videos/text2video"


@dataclass
class Pair:
    hot: httpx.AsyncClient
    plain: httpx.AsyncClient
    creds: Credentials
    other: Credentials
    store: Store
    answered: list[str]  # the paths HotRoutes answered itself

    def auth(self, creds: Credentials | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {(creds or self.creds).api_key}"}

    async def both(self, method: str, url: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
        kw.setdefault("headers", self.auth())
        return await self.hot.request(method, url, **kw), await self.plain.request(
            method, url, **kw
        )


def _without_hot_routes(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not HotRoutes]
    return app


@pytest.fixture
async def pair(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Pair]:
    answered: list[str] = []
    real = HotRoutes._answer

    async def spy(self: HotRoutes, operation: Any, params: Any, scope: Any, *rest: Any) -> None:
        answered.append(scope["path"])
        await real(self, operation, params, scope, *rest)

    monkeypatch.setattr(HotRoutes, "_answer", spy)
    settings = Settings(data_dir=tmp_path / "data", callback_allow_private=True)
    hot = create_app(settings, store=store)
    plain = _without_hot_routes(create_app(settings, store=store))
    creds = await store.create_account("hot")
    other = await store.create_account("other")
    async with hot.router.lifespan_context(hot), plain.router.lifespan_context(plain):
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                base_url="http://testserver",
            )
            for app in (hot, plain)
        ]
        async with clients[0], clients[1]:
            yield Pair(clients[0], clients[1], creds, other, store, answered)


def _same(hot: httpx.Response, plain: httpx.Response, *volatile: str) -> None:
    """The two answers are equal but for the request id and the ``volatile`` data fields."""
    assert hot.status_code == plain.status_code, (hot.text, plain.text)
    assert _headers(hot) == _headers(plain)
    bodies = [r.json() for r in (hot, plain)]
    for body, response in zip(bodies, (hot, plain), strict=True):
        assert body.pop("request_id") == response.headers["x-request-id"]
        data = body.get("data")
        for name in volatile:
            assert isinstance(data, dict) and name in data, body
            data.pop(name)
    assert bodies[0] == bodies[1]


def _headers(response: httpx.Response) -> dict[str, str]:
    skip = {"x-request-id", "content-length"}
    return {k: v for k, v in response.headers.items() if k not in skip}


async def _seed(pair: Pair) -> list[str]:
    """Three tasks of the account (one with an external id, one finished) and one of another."""
    ids = []
    for i, external in enumerate(["ext-1", None, None]):
        params = {"prompt": f"task {i}", "duration": "5", "model_name": "kling-v1"}
        task = await pair.store.create_task(
            NewTask(pair.creds.account_id, "kling-v1", params, 1, external_task_id=external)
        )
        ids.append(task.task_id)
    claimed = await pair.store.claim_task("w", 60)
    assert claimed is not None
    await pair.store.finish_task(claimed.task_id, "w", {"videos": []})
    params = {"prompt": "theirs", "duration": "5", "model_name": "kling-v1"}
    theirs = await pair.store.create_task(NewTask(pair.other.account_id, "kling-v1", params, 1))
    return [*ids, theirs.task_id]


async def test_get_and_list_answer_as_fastapi_does(pair: Pair) -> None:
    mine_1, mine_2, mine_3, theirs = await _seed(pair)
    hot_urls = [
        f"/v1/videos/text2video/{mine_1}",  # finished
        f"/v1/videos/text2video/{mine_2}",
        "/v1/videos/text2video/ext-1",  # by external id
        f"/kling/v1/videos/text2video/{mine_3}",
        f"/v1/videos/text2video/{theirs}",  # another account's: 404
        "/v1/videos/text2video/no-such-task",
        "/v1/videos/text2video/a/b%20c",  # a path id with a slash and a space: 404
        "/v1/videos/text2video",
        "/kling/v1/videos/text2video",
        "/v1/videos/text2video?pageNum=1&pageSize=2",
        "/v1/videos/text2video?pageNum=2&pageSize=2",
        "/v1/videos/text2video?pageNum=1000&pageSize=500",
        "/v1/videos/text2video?pageSize=1&unknown=x",
    ]
    for url in hot_urls:
        _same(*await pair.both("GET", url))
    assert pair.answered == [url.split("?")[0].replace("%20", " ") for url in hot_urls]
    # the same data as the route gives (not only the same as each other)
    listed = assert_ok(await pair.hot.get(CREATE, headers=pair.auth()))
    assert [t["task_id"] for t in listed] == [mine_3, mine_2, mine_1]


@pytest.mark.parametrize(
    "query",
    [
        "pageSize=0",
        "pageSize=501",
        "pageNum=0",
        "pageNum=1001",
        "pageSize=abc",
        "pageSize=",
        "pageSize=+5",
        "pageSize=05",
        "pageSize=%205",
        "pageSize=1e1",
        "pageSize=2&pageSize=3",
        "pageNum=99999999999999999999",
    ],
)
async def test_a_query_fastapi_must_judge_goes_to_fastapi(pair: Pair, query: str) -> None:
    await _seed(pair)
    hot, plain = await pair.both("GET", f"{CREATE}?{query}")
    _same(hot, plain)
    assert pair.answered == []


async def test_auth_failures_answer_as_fastapi_does(pair: Pair) -> None:
    task_id = (await _seed(pair))[0]
    expired = mint_jwt(pair.creds.access_key, pair.creds.secret_key, exp_in=-3600)
    for headers in [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer rg-not-a-key"},
        {"Authorization": f"Bearer {expired}"},
        {"Authorization": "Bearer a.b.c"},
    ]:
        for method, url in [
            ("GET", f"{CREATE}/{task_id}"),
            ("GET", CREATE),
            ("GET", f"{CREATE}?pageSize=0"),  # bad auth and a bad query: FastAPI's order
            ("POST", CREATE),
        ]:
            _same(*await pair.both(method, url, headers=headers, content=b"{}"))
    jwt_headers = {
        "Authorization": f"Bearer {mint_jwt(pair.creds.access_key, pair.creds.secret_key)}"
    }
    _same(*await pair.both("GET", f"{CREATE}/{task_id}", headers=jwt_headers))


async def test_creates_answer_as_fastapi_does(pair: Pair) -> None:
    await _seed(pair)  # "ext-1" is taken
    good = [
        {"prompt": "a fox in the snow"},
        {"prompt": "a fox", "duration": 10, "mode": "pro", "model_name": "kling-v1"},
        {"prompt": "a fox", "callback_url": "http://127.0.0.1:9/x", "watermark_info": None},
    ]
    for body in good:
        hot, plain = await pair.both("POST", CREATE, json=body)
        _same(hot, plain, "task_id", "created_at", "updated_at")
        assert assert_ok(hot)["task_status"] == "submitted"
    hot = await pair.hot.post(
        CREATE, json={"prompt": "x", "external_task_id": "new-1"}, headers=pair.auth()
    )
    assert assert_ok(hot)["task_info"] == {"external_task_id": "new-1"}
    bad: list[bytes] = [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"prompt": ""}',
        b'{"prompt": "x", "duration": "7"}',
        b'{"prompt": "x", "aspect_ratio": "4:5"}',
        b'{"prompt": "x", "model_name": "no-such-model"}',
        b'{"prompt": "x", "external_task_id": "ext-1"}',  # taken
        b'{"prompt": "x", "callback_url": "ftp://example.com"}',
        json.dumps({"prompt": "x" * 3000}).encode(),
        b"[" * 40 + b"]" * 40,
    ]
    for content in bad:
        headers = {**pair.auth(), "Content-Type": "application/json"}
        _same(*await pair.both("POST", CREATE, content=content, headers=headers))
    assert pair.answered == [CREATE] * (len(good) + 1 + len(bad))


async def test_other_routes_and_methods_go_to_fastapi(pair: Pair) -> None:
    task_id = (await _seed(pair))[1]
    for method, url in [
        ("HEAD", f"{CREATE}/{task_id}"),
        ("PUT", CREATE),
        ("DELETE", f"{CREATE}/{task_id}"),
        ("GET", "/v1/models"),
        ("GET", "/account/costs?start_time=0&end_time=1"),
        ("GET", "/v1/videos/text2videos"),
        ("GET", "/v1/videos/text2video/"),  # an empty task id
    ]:
        hot, plain = await pair.both(method, url)
        if method == "HEAD":
            assert hot.status_code == plain.status_code
        else:
            _same(hot, plain)
    cancelled = await pair.hot.post(f"{CREATE}/{task_id}/cancel", headers=pair.auth())
    assert assert_ok(cancelled)["task_status"] == "failed"
    assert pair.answered == []


async def test_metrics_count_hot_answers_under_their_route(pair: Pair) -> None:
    task_id = (await _seed(pair))[0]
    await pair.hot.get(f"{CREATE}/{task_id}", headers=pair.auth())
    await pair.hot.get(f"/kling{CREATE}/no-such", headers=pair.auth())
    await pair.hot.get(CREATE, headers=pair.auth())
    text = (await pair.hot.get("/metrics")).text
    assert (
        'reelgate_http_requests_total{code="200",method="GET",'
        'route="/v1/videos/text2video/{task_id:path}"}'
    ) in text
    assert (
        'reelgate_http_requests_total{code="404",method="GET",'
        'route="/v1/videos/text2video/{task_id:path}"}'
    ) in text
    assert (
        'reelgate_http_requests_total{code="200",method="GET",route="/v1/videos/text2video"}'
        in text
    )
