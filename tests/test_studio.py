"""The studio's routes in-process: the page and its files, and the local key offer's rule."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from reelgate.api import create_app
from reelgate.api.studio import loopback_host, static_dir
from reelgate.settings import Settings

from .helpers import assert_error, assert_ok

LOCAL = {"Host": "127.0.0.1:8000", "Origin": "http://127.0.0.1:8000"}

Client = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def client(tmp_path: Path) -> Client:
    """An in-process client whose TCP peer is ``peer``; DATA_DIR holds a credentials file."""

    @asynccontextmanager
    async def make(
        peer: str = "127.0.0.1", public_url: str | None = None, credentials: bool = True
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(data_dir=tmp_path / "data", public_url=public_url)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if credentials:
            payload = {"access_key": "ak", "secret_key": "sk", "api_key": "the-local-key"}
            (settings.data_dir / "credentials.json").write_text(json.dumps(payload))
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=(peer, 50000))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1:8000"
            ) as c:
                yield c

    return make


async def test_page_and_files_are_served_with_a_strict_policy(client: Client) -> None:
    async with client() as c:
        page = await c.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        # every file the page links is served from the package with its type, none from a CDN
        for name in sorted(p.name for p in static_dir().iterdir()):
            if name == "index.html":
                continue
            assert f"/studio/{name}" in page.text or name.endswith(".js"), name
            got = await c.get(f"/studio/{name}")
            assert got.status_code == 200, name
            assert got.content == (static_dir() / name).read_bytes()
        assert "http://" not in page.text and "https://" not in page.text
        js = (await c.get("/studio/app.js")).headers["content-type"]
        assert js.startswith("text/javascript")


async def test_modules_import_only_each_other() -> None:
    """ES modules reach nothing outside the folder: no build step, no network."""
    for path in static_dir().glob("*.js"):
        for line in path.read_text().splitlines():
            if line.startswith("import "):
                target = line.rsplit("from ", 1)[1].strip("\"'; ")
                assert target.startswith("./") and (static_dir() / target[2:]).is_file(), line


@pytest.mark.parametrize(
    "name", ["nope.js", "..%2Fstudio.py", "app.py", "INDEX.HTML", ".hidden.js", "a.exe"]
)
async def test_unknown_studio_paths_are_envelopes(client: Client, name: str) -> None:
    async with client() as c:
        assert_error(await c.get(f"/studio/{name}"), 404, 1202, "/studio/")


async def test_local_key_offered_to_a_loopback_browser_without_proxy(client: Client) -> None:
    async with client() as c:
        response = await c.post("/studio/local-key", headers=LOCAL)
        assert assert_ok(response) == {"api_key": "the-local-key"}
        assert response.headers["cache-control"] == "no-store"
        ipv6 = {"Host": "[::1]:8000", "Origin": "http://[::1]:8000"}
        assert assert_ok(await c.post("/studio/local-key", headers=ipv6))["api_key"]
        named = {"Host": "localhost:8000", "Origin": "http://localhost:8000"}
        assert assert_ok(await c.post("/studio/local-key", headers=named))["api_key"]


@pytest.mark.parametrize(
    ("headers", "rule"),
    [
        ({"X-Forwarded-For": "203.0.113.9"}, "x-forwarded-for"),
        ({"Forwarded": "for=203.0.113.9"}, "forwarded"),
        ({"X-Forwarded-Proto": "https"}, "x-forwarded-proto"),
        ({"X-Real-IP": "203.0.113.9"}, "x-real-ip"),
        ({"Via": "1.1 proxy"}, "via"),
        ({"Host": "studio.example.com", "Origin": "http://studio.example.com"}, "Host header"),
        # DNS rebinding: a name that resolves to 127.0.0.1 is still not a loopback name
        ({"Host": "rebind.example:8000", "Origin": "http://rebind.example:8000"}, "Host header"),
        ({"Host": "127.0.0.1:99999"}, "Host header"),
        # a page of another site, or a proxy that rewrites Host to its loopback upstream
        ({"Origin": "https://studio.example.com"}, "Origin header is not"),
        ({"Origin": "http://127.0.0.1:9999"}, "Origin header is not"),
        ({"Origin": "null"}, "Origin header is not"),
        ({"Origin": None}, "Origin header is missing"),
    ],
)
async def test_local_key_refused_when_any_rule_fails(
    client: Client, headers: dict[str, str | None], rule: str
) -> None:
    sent = {k: v for k, v in {**LOCAL, **headers}.items() if v is not None}
    async with client() as c:
        message = assert_error(await c.post("/studio/local-key", headers=sent), 403, 1103, rule)
        assert "the-local-key" not in message


async def test_local_key_refused_to_a_remote_peer_and_with_a_public_url(client: Client) -> None:
    async with client(peer="192.0.2.7") as c:
        assert_error(await c.post("/studio/local-key", headers=LOCAL), 403, 1103, "TCP peer")
    async with client(peer="::ffff:127.0.0.1") as c:  # IPv4-mapped loopback is loopback
        assert_ok(await c.post("/studio/local-key", headers=LOCAL))
    async with client(public_url="https://video.example.com") as c:
        assert_error(
            await c.post("/studio/local-key", headers=LOCAL), 403, 1103, "REELGATE_PUBLIC_URL"
        )


async def test_local_key_not_offered_without_the_credentials_file(client: Client) -> None:
    async with client(credentials=False) as c:
        assert_error(
            await c.post("/studio/local-key", headers=LOCAL), 404, 1203, "credentials.json"
        )
        assert_error(await c.get("/studio/local-key", headers=LOCAL), 404, 1202)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("127.0.0.1", True),
        ("127.8.9.10:80", True),
        ("[::1]:8000", True),
        ("LOCALHOST:1", True),
        ("localhost.example.com", False),
        ("10.0.0.1:8000", False),
        ("0.0.0.0:8000", False),
        ("", False),
        ("127.0.0.1:bad", False),
        ("user@127.0.0.1", False),
    ],
)
def test_loopback_host(host: str, loopback: bool) -> None:
    assert loopback_host(host) is loopback
