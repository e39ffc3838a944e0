"""Links behind a TLS proxy: forwarded headers from trusted peers only (api/proxy.py), and
REELGATE_PUBLIC_URL above all (issue 8, fidelity 6). In-process through httpx.ASGITransport,
whose ``client`` is the peer address the middleware judges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from reelgate.api import create_app
from reelgate.api.proxy import (
    PEERS_REMEMBERED,
    ForwardedHeadersMiddleware,
    TrustedProxies,
    parse_forwarded,
)
from reelgate.settings import Settings


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    client = request.client.host if request.client else None
    await JSONResponse({"base": str(request.base_url), "client": client})(scope, receive, send)


async def seen(
    headers: dict[str, str], *, peer: str = "127.0.0.1", allow: str = "127.0.0.1"
) -> dict[str, Any]:
    app = ForwardedHeadersMiddleware(
        echo, TrustedProxies(Settings(forwarded_allow_ips=allow).forwarded_allow)
    )
    transport = httpx.ASGITransport(app=app, client=(peer, 4321))
    async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.5:8000") as c:
        data: dict[str, Any] = (await c.get("/x", headers=headers)).json()
        return data


@pytest.mark.parametrize(
    ("headers", "base", "client"),
    [
        ({}, "http://10.0.0.5:8000/", "127.0.0.1"),
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "videos.example"},
            "https://videos.example/",
            "127.0.0.1",
        ),
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "videos.example:8443"},
            "https://videos.example:8443/",
            "127.0.0.1",
        ),
        ({"X-Forwarded-Proto": "https"}, "https://10.0.0.5:8000/", "127.0.0.1"),
        (
            {"Forwarded": 'for="[2001:db8::7]:555";proto=https;host="api.example"'},
            "https://api.example/",
            "2001:db8::7",
        ),
        # Several hops: the last element is the one the trusted peer wrote.
        (
            {
                "Forwarded": "for=6.6.6.6;host=evil.example;proto=http,"
                " for=8.8.8.8;host=a.example;proto=https"
            },
            "https://a.example/",
            "8.8.8.8",
        ),
        ({"X-Forwarded-Host": "evil.example, b.example"}, "http://b.example/", "127.0.0.1"),
        # Forwarded wins over X-Forwarded-* where it says something.
        (
            {
                "Forwarded": "proto=https",
                "X-Forwarded-Proto": "http",
                "X-Forwarded-Host": "c.example",
            },
            "https://c.example/",
            "127.0.0.1",
        ),
        # Malformed values are ignored.
        (
            {"X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "a b/c"},
            "http://10.0.0.5:8000/",
            "127.0.0.1",
        ),
        ({"X-Forwarded-Host": "user@evil.example"}, "http://10.0.0.5:8000/", "127.0.0.1"),
        # The client: the nearest hop that is not a trusted proxy.
        ({"X-Forwarded-For": "1.1.1.1, 9.9.9.9, 127.0.0.1"}, "http://10.0.0.5:8000/", "9.9.9.9"),
    ],
)
async def test_trusted_peer_forwarded_headers_shape_the_base_url(
    headers: dict[str, str], base: str, client: str
) -> None:
    assert await seen(headers) == {"base": base, "client": client}


async def test_untrusted_peer_cannot_forge_scheme_host_or_client() -> None:
    forged = {
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-For": "1.2.3.4",
        "Forwarded": "for=1.2.3.4;proto=https;host=evil.example",
    }
    assert await seen(forged, peer="203.0.113.9") == {
        "base": "http://10.0.0.5:8000/",
        "client": "203.0.113.9",
    }
    # Networks and "*" in the setting.
    assert (await seen(forged, peer="10.1.2.3", allow="127.0.0.1, 10.0.0.0/8"))["base"] == (
        "https://evil.example/"
    )
    assert (await seen(forged, peer="203.0.113.9", allow="*"))["base"] == "https://evil.example/"


def test_forwarded_parsing_handles_quotes_and_escapes() -> None:
    assert parse_forwarded('for="_x;y,z";Proto=HTTPS, host="a\\"b"') == [
        {"for": "_x;y,z", "proto": "HTTPS"},
        {"host": 'a"b'},
    ]


def test_a_malformed_allow_list_fails_when_settings_are_read() -> None:
    with pytest.raises(ValueError, match=r"REELGATE_FORWARDED_ALLOW_IPS: 'proxy\.local' is not"):
        Settings.from_env({"REELGATE_FORWARDED_ALLOW_IPS": "127.0.0.1,proxy.local"})


@pytest.fixture
async def proxied(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(Settings(data_dir=tmp_path, callback_allow_private=True))
    async with app.router.lifespan_context(app):
        store = app.state.services.store
        creds = await store.create_account("p")
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5555))
        headers = {"Authorization": f"Bearer {creds.api_key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8000", headers=headers
        ) as client:
            yield client, app


@pytest.mark.parametrize(
    ("headers", "stored"),
    [
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "videos.example"},
            "https://videos.example/",
        ),
        ({}, "http://127.0.0.1:8000/"),
    ],
)
async def test_create_keeps_the_base_the_request_came_through_for_callbacks(
    proxied: tuple[httpx.AsyncClient, Any],
    headers: dict[str, str],
    stored: str,
) -> None:
    client, app = proxied
    r = await client.post(
        "/v1/videos/text2video",
        json={"prompt": "x", "callback_url": "http://127.0.0.1:9/hook"},
        headers=headers,
    )
    task_id = r.json()["data"]["task_id"]
    (event,) = await app.state.services.store.events_for(task_id)
    assert event.base_url == stored
    # Links in responses use the same base, REELGATE_PUBLIC_URL above all.
    services = app.state.services
    storage = services.storage
    key = f"videos/{task_id}/0.mp4"
    (storage.root / "videos" / task_id).mkdir(parents=True)
    (storage.root / key).write_bytes(b"x")
    assert (services.signer(stored)(key) or "").startswith(stored.rstrip("/") + "/files/")
    services.settings = Settings(
        data_dir=services.settings.data_dir, public_url="https://cdn.example/"
    )
    assert (services.signer(stored)(key) or "").startswith("https://cdn.example/files/")


def test_trust_decisions_stay_right_when_remembered_and_past_the_bound() -> None:
    trusted = TrustedProxies(Settings(forwarded_allow_ips="10.1.0.0/16,::1").forwarded_allow)
    asked = ["10.1.2.3", "10.2.0.1", "::1", "not-an-ip", "10.1.2.3"]
    expected = [True, False, True, False, True]
    assert [trusted.trusts(peer) for peer in asked] == expected
    for i in range(PEERS_REMEMBERED + 10):  # more peers than are remembered
        assert trusted.trusts(f"10.{1 + i % 2}.{i // 256 % 256}.{i % 256}") is (i % 2 == 0)
    assert [trusted.trusts(peer) for peer in asked] == expected
    assert trusted.trusts(None) is False and trusted.trusts("") is False
