"""SQLite durability setting (issue 8, faults 4): FULL by default, NORMAL on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelgate.settings import Settings
from reelgate.store import Store
from reelgate.store.db import create_engine


async def _synchronous(url: str) -> int:
    store = await Store.open(url)
    try:
        async with store.engine.connect() as conn:
            value = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        assert mode == "wal"
        return int(value)
    finally:
        await store.close()


async def test_default_is_full_and_normal_is_a_setting(tmp_path: Path) -> None:
    full = Settings(data_dir=tmp_path / "a")
    assert full.store_url.endswith("reelgate.db?synchronous=FULL")
    assert await _synchronous(full.store_url) == 2  # FULL
    normal = Settings.from_env({"REELGATE_SQLITE_SYNCHRONOUS": "normal"}, data_dir=tmp_path / "b")
    assert await _synchronous(normal.store_url) == 1  # NORMAL
    # a SQLite URL given in full keeps its own choice; other databases are left alone
    given = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}?synchronous=NORMAL")
    assert await _synchronous(given.store_url) == 1
    pg = Settings(database_url="postgresql://u@h/db")
    assert pg.store_url == "postgresql+asyncpg://u@h/db"


def test_an_unknown_mode_is_refused_naming_the_setting(tmp_path: Path) -> None:
    url = Settings(data_dir=tmp_path, sqlite_synchronous="OFF").store_url
    with pytest.raises(ValueError, match=r"REELGATE_SQLITE_SYNCHRONOUS.*FULL, NORMAL"):
        create_engine(url)
