"""Shared fixtures: stores on SQLite and on the real PostgreSQL server, and the in-process API."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from reelgate.api import create_app
from reelgate.settings import Settings
from reelgate.store import Credentials, Store

from .helpers import mint_jwt

POSTGRES_ADMIN_URL = os.environ.get(
    "REELGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


async def _postgres_database() -> str:
    """A fresh, empty database on the test server; its URL."""
    import asyncpg

    admin = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncpg.connect(admin, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {admin}: {exc}")
    name = f"reelgate_test_{uuid.uuid4().hex[:12]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


async def _drop_postgres_database(url: str) -> None:
    import asyncpg

    admin = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    url = await _postgres_database()
    yield url
    await _drop_postgres_database(url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated store on each backend."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'reelgate.db'}"
        s = await Store.open(url)
        yield s
        await s.close()
    else:
        url = await _postgres_database()
        s = await Store.open(url)
        yield s
        await s.close()
        await _drop_postgres_database(url)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", callback_allow_private=True)


class Api:
    """The app in-process, with one account's credentials at hand."""

    def __init__(self, client: httpx.AsyncClient, store: Store, creds: Credentials) -> None:
        self.client = client
        self.store = store
        self.creds = creds

    @property
    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.creds.api_key}"}

    @property
    def jwt_headers(self) -> dict[str, str]:
        token = mint_jwt(self.creds.access_key, self.creds.secret_key)
        return {"Authorization": f"Bearer {token}"}

    async def create(self, body: dict[str, object], **kw: object) -> httpx.Response:
        return await self.client.post(
            "/v1/videos/text2video",
            json=body,
            headers=self.key_headers,
            **kw,  # type: ignore[arg-type]
        )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        store: Store = app.state.services.store
        creds = await store.create_account("tests")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, store, creds)
