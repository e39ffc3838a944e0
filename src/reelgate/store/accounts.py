"""Accounts and their credentials: AK/SK pairs (for JWTs) and hashed API keys."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import access_keys, accounts, api_keys

API_KEY_PREFIX = "rg-"
# How long a credential found in the store is believed without asking again. A change made in
# this process (revoke, new rate limit) takes effect at once; one made by another process (the
# CLI, another replica) within this many seconds.
CREDENTIAL_TTL_S = 5.0
CREDENTIAL_CACHE_SIZE = 10_000  # entries; the least recently used go first

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    created_at: int
    max_concurrent_tasks: int | None
    unit_quota: Decimal | None
    rate_limit: int | None = None  # requests per minute per key; None: the server default


@dataclass(frozen=True)
class Credentials:
    """What ``keys create`` prints once: nothing here can be read back later but the AK."""

    account_id: int
    access_key: str
    secret_key: str
    api_key: str


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_access_key() -> str:
    return "AK" + secrets.token_hex(15)


def new_secret_key() -> str:
    return secrets.token_hex(24)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def row_to_account(row: object) -> Account:
    quota = getattr(row, "unit_quota", None)
    return Account(
        id=row.id,  # type: ignore[attr-defined]
        name=row.name,  # type: ignore[attr-defined]
        created_at=row.created_at,  # type: ignore[attr-defined]
        max_concurrent_tasks=row.max_concurrent_tasks,  # type: ignore[attr-defined]
        unit_quota=Decimal(quota) if quota is not None else None,
        rate_limit=getattr(row, "rate_limit", None),
    )


async def insert_account(
    conn: AsyncConnection,
    name: str,
    now: int,
    max_concurrent_tasks: int | None,
    unit_quota: Decimal | None,
    rate_limit: int | None = None,
) -> int:
    result = await conn.execute(
        insert(accounts)
        .values(
            name=name,
            created_at=now,
            max_concurrent_tasks=max_concurrent_tasks,
            unit_quota=str(unit_quota) if unit_quota is not None else None,
            rate_limit=rate_limit,
        )
        .returning(accounts.c.id)
    )
    return int(result.scalar_one())


async def insert_credentials(
    conn: AsyncConnection,
    account_id: int,
    name: str,
    now: int,
    given: tuple[str, str, str] | None = None,
) -> Credentials:
    """A new AK/SK pair and API key for the account; ``given`` (AK, SK, key): these instead."""
    ak, sk, key = given or (new_access_key(), new_secret_key(), new_api_key())
    await conn.execute(
        insert(access_keys).values(
            access_key=ak, account_id=account_id, secret_key=sk, name=name, created_at=now
        )
    )
    await conn.execute(
        insert(api_keys).values(
            key_hash=hash_api_key(key),
            account_id=account_id,
            prefix=key[:10],
            name=name,
            created_at=now,
        )
    )
    return Credentials(account_id, ak, sk, key)


async def update_max_concurrent_tasks(
    conn: AsyncConnection, account_id: int, limit: int | None
) -> bool:
    """Set an account's limit of unfinished tasks (None: the server default); False if absent."""
    result = await conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(max_concurrent_tasks=limit)
    )
    return result.rowcount > 0


async def update_rate_limit(conn: AsyncConnection, account_id: int, limit: int | None) -> bool:
    """Set an account's requests per minute per key (None: the server default); False if absent."""
    result = await conn.execute(
        update(accounts).where(accounts.c.id == account_id).values(rate_limit=limit)
    )
    return result.rowcount > 0


async def count_accounts(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(accounts))).scalar_one())


async def delete_credential(conn: AsyncConnection, key: str) -> bool:
    """Remove an API key (given in full) or an access key (its AK/SK pair); False if unknown."""
    by_hash = delete(api_keys).where(api_keys.c.key_hash == hash_api_key(key))
    if (await conn.execute(by_hash)).rowcount > 0:
        return True
    by_ak = delete(access_keys).where(access_keys.c.access_key == key)
    return (await conn.execute(by_ak)).rowcount > 0


class TtlCache(Generic[K, V]):
    """Values found in the store, each believed for ``ttl_s`` (``monotonic`` seconds).

    Only what was found is remembered: an unknown key is asked for every time, so a key created
    elsewhere works at once and random keys cannot fill the cache.
    """

    def __init__(
        self,
        monotonic: Callable[[], float],
        ttl_s: float = CREDENTIAL_TTL_S,
        size: int = CREDENTIAL_CACHE_SIZE,
    ) -> None:
        self._monotonic = monotonic
        self._ttl_s = ttl_s
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if self._monotonic() >= found[0]:
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = (self._monotonic() + self._ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def forget(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
