"""Limits that hold across replicas: two apps on one store never let more through than one would.

Each replica is its own ``create_app`` with its own store connection pool, as two processes
would be; only the database is shared.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from reelgate.api import create_app
from reelgate.cli import app as cli_app
from reelgate.domain.tasks import TaskStatus
from reelgate.settings import Settings
from reelgate.store import Store
from reelgate.store.accounts import CREDENTIAL_TTL_S
from reelgate.store.db import create_engine
from reelgate.store.tables import tasks

from .conftest import Api, _drop_postgres_database, _postgres_database
from .helpers import assert_error, assert_ok, mint_jwt

BODY = {"model_name": "kling-v1", "prompt": "a red fox in the snow"}


class Clock:
    """A hand-moved clock (Unix ms), so a test never straddles a rate window by chance."""

    def __init__(self) -> None:
        self.now = 1_700_000_000_000 - 1_700_000_000_000 % 60_000 + 5_000  # 5 s into a minute

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'reelgate.db'}"
    else:
        url = await _postgres_database()
        yield url
        await _drop_postgres_database(url)


async def replicas(
    stack: AsyncExitStack,
    url: str,
    settings: Settings,
    count: int = 2,
    clock: Callable[[], int] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> list[httpx.AsyncClient]:
    """``count`` API replicas on the database at ``url`` (migrated first), as HTTP clients."""
    migrated = await Store.open(url)
    await migrated.close()
    clients = []
    for _ in range(count):
        store = Store(create_engine(url), clock, monotonic=monotonic) if clock is not None else None
        app = create_app(settings, store=store)
        await stack.enter_async_context(app.router.lifespan_context(app))
        if store is not None:
            stack.push_async_callback(store.close)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(await stack.enter_async_context(client))
    return clients


@pytest.mark.postgres
async def test_a_burst_across_two_replicas_never_exceeds_the_concurrency_limit(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=postgres_url)
    async with AsyncExitStack() as stack:
        a, b = await replicas(stack, postgres_url, settings)
        store = await Store.open(postgres_url)
        stack.push_async_callback(store.close)
        creds = await store.create_account("burst", max_concurrent_tasks=4)
        headers = {"Authorization": f"Bearer {creds.api_key}"}

        for _round in range(2):
            answers = await asyncio.gather(
                *(
                    (a if i % 2 else b).post("/v1/videos/text2video", json=BODY, headers=headers)
                    for i in range(40)
                )
            )
            created = [r for r in answers if r.status_code == 200]
            refused = [r for r in answers if r.status_code != 200]
            for response in refused:
                assert_error(response, 429, 1303)
            async with store.engine.connect() as conn:
                unfinished = (
                    await conn.execute(
                        select(func.count())
                        .select_from(tasks)
                        .where(
                            tasks.c.account_id == creds.account_id,
                            tasks.c.status.in_(
                                [TaskStatus.SUBMITTED.value, TaskStatus.PROCESSING.value]
                            ),
                        )
                    )
                ).scalar_one()
            # the first round fills the limit exactly; the second finds it full
            assert len(created) == (4 if _round == 0 else 0)
            assert unfinished == 4
            assert len(refused) == 40 - len(created)


async def test_the_request_rate_is_counted_across_replicas_and_1302_says_when_to_retry(
    store_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=store_url)
    clock = Clock()
    seconds = [0.0]  # the replicas' monotonic clock
    async with AsyncExitStack() as stack:
        a, b = await replicas(stack, store_url, settings, clock=clock, monotonic=lambda: seconds[0])
        store = await Store.open(store_url)
        stack.push_async_callback(store.close)
        creds = await store.create_account("rated", rate_limit=5)
        key = {"Authorization": f"Bearer {creds.api_key}"}

        answers = await asyncio.gather(
            *((a if i % 2 else b).get("/v1/videos/text2video", headers=key) for i in range(8))
        )
        assert sorted(r.status_code for r in answers) == [200] * 5 + [429] * 3
        for response in answers:
            if response.status_code == 429:
                assert_error(response, 429, 1302, "5 requests per minute")
                assert response.headers["retry-after"] == "55"  # 5 s into the minute

        # the JWT of the same account is another key, with its own count
        jwt = {"Authorization": f"Bearer {mint_jwt(creds.access_key, creds.secret_key)}"}
        assert_ok(await b.get("/v1/videos/text2video", headers=jwt))

        clock.now += 60_000  # the next window
        assert_ok(await a.get("/v1/videos/text2video", headers=key))

        await store.set_rate_limit(creds.account_id, 0)  # 0: unlimited, on every replica
        seconds[0] += CREDENTIAL_TTL_S  # once they ask the store again
        for client in (a, b) * 5:
            assert_ok(await client.get("/v1/videos/text2video", headers=key))


async def test_rate_limit_setting_is_the_default_and_an_account_value_wins(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'reelgate.db'}"
    settings = Settings(data_dir=tmp_path / "data", database_url=url, rate_limit=2)
    async with AsyncExitStack() as stack:
        (client,) = await replicas(stack, url, settings, count=1, clock=Clock())
        store = await Store.open(url)
        stack.push_async_callback(store.close)
        default = await store.create_account("default")
        unlimited = await store.create_account("unlimited", rate_limit=0)
        for creds, allowed in ((default, 2), (unlimited, 6)):
            headers = {"Authorization": f"Bearer {creds.api_key}"}
            codes = [
                (await client.get("/v1/videos/text2video", headers=headers)).status_code
                for _ in range(6)
            ]
            assert codes == [200] * allowed + [429] * (6 - allowed)
        # a bad credential is refused as such, never counted as the key's traffic
        bad = await client.get("/v1/videos/text2video", headers={"Authorization": "Bearer rg-x"})
        assert_error(bad, 401, 1002)


def test_keys_create_sets_and_changes_the_rate_limit(tmp_path: Path) -> None:
    data = str(tmp_path / "data")

    def keys(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(
            cli_app, ["keys", "create", "--data-dir", data, "--json", *args]
        )
        assert result.exit_code == 0, result.output
        payload: dict[str, object] = json.loads(result.stdout)
        return payload

    def rate_limit(account_id: object) -> int | None:
        assert isinstance(account_id, int)

        async def read() -> int | None:
            store = await Store.open(f"sqlite+aiosqlite:///{data}/reelgate.db")
            try:
                account = await store.get_account(account_id)
                assert account is not None
                return account.rate_limit
            finally:
                await store.close()

        return asyncio.run(read())

    first = keys("--name", "team", "--rate-limit", "30")
    assert first["rate_limit"] == 30 and rate_limit(first["account_id"]) == 30
    plain = keys("--name", "plain")
    assert "rate_limit" not in plain and rate_limit(plain["account_id"]) is None
    keys("--name", "ci", "--account", str(first["account_id"]), "--rate-limit", "0")
    assert rate_limit(first["account_id"]) == 0
    refused = CliRunner().invoke(
        cli_app, ["keys", "create", "--data-dir", data, "--name", "x", "--rate-limit=-1"]
    )
    assert refused.exit_code == 2 and "--rate-limit" in refused.output


async def test_a_revoked_key_is_refused_within_the_cache_ttl_on_another_replica(
    store_url: str, tmp_path: Path
) -> None:
    """Credentials found in the store are believed for CREDENTIAL_TTL_S, no longer: a key
    revoked by another process (the CLI, another replica) stops working within that time."""
    settings = Settings(data_dir=tmp_path / "data", database_url=store_url)
    seconds = [0.0]  # the replica's monotonic clock
    async with AsyncExitStack() as stack:
        (client,) = await replicas(
            stack, store_url, settings, count=1, clock=Clock(), monotonic=lambda: seconds[0]
        )
        other = await Store.open(store_url)
        stack.push_async_callback(other.close)
        creds = await other.create_account("revoked")
        key = {"Authorization": f"Bearer {creds.api_key}"}
        jwt = {"Authorization": f"Bearer {mint_jwt(creds.access_key, creds.secret_key)}"}
        assert_ok(await client.get("/v1/videos/text2video", headers=key))
        assert_ok(await client.get("/v1/videos/text2video", headers=jwt))

        assert await other.revoke_key(creds.api_key)
        assert await other.revoke_key(creds.access_key)
        assert not await other.revoke_key(creds.api_key)  # already gone
        assert_ok(await client.get("/v1/videos/text2video", headers=key))  # still believed
        seconds[0] += CREDENTIAL_TTL_S - 0.01
        assert_ok(await client.get("/v1/videos/text2video", headers=jwt))
        seconds[0] += 0.01
        assert_error(await client.get("/v1/videos/text2video", headers=key), 401, 1002, "API key")
        assert_error(
            await client.get("/v1/videos/text2video", headers=jwt), 401, 1002, "access key"
        )


async def test_a_key_revoked_in_this_process_is_refused_at_once(api: Api) -> None:
    assert_ok(await api.client.get("/v1/videos/text2video", headers=api.key_headers))
    assert_ok(await api.client.get("/v1/videos/text2video", headers=api.jwt_headers))
    assert await api.store.revoke_key(api.creds.api_key)
    assert await api.store.revoke_key(api.creds.access_key)
    for headers in (api.key_headers, api.jwt_headers):
        response = await api.client.get("/v1/videos/text2video", headers=headers)
        assert_error(response, 401, 1002)
