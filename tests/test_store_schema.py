"""A new store is built from ``tables.py`` and stamped (store/migrate.py): that schema must be
the one the Alembic migrations build, on SQLite and on PostgreSQL; starts that need no
migration never import Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelgate.store.db import create_engine
from reelgate.store.migrate import MIGRATIONS, _config, head_revision, upgrade


def test_the_head_is_read_from_the_revision_files_as_alembic_reads_it() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head()


def schema(conn: Connection) -> dict[str, Any]:
    """Everything about the tables that reflection sees, in a comparable form."""
    seen = inspect(conn)
    out: dict[str, Any] = {}
    for table in sorted(seen.get_table_names()):
        out[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in seen.get_columns(table)
            ],
            "pk": seen.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (str(i["name"]), tuple(i["column_names"]), bool(i["unique"]))
                for i in seen.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in seen.get_unique_constraints(table)),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in seen.get_foreign_keys(table)
            ),
            "checks": sorted(str(c["sqltext"]) for c in seen.get_check_constraints(table)),
        }
    out["version"] = [
        row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))
    ]
    return out


async def _schema(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await conn.run_sync(schema)


async def _migrated_by_alembic(engine: AsyncEngine) -> None:
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), "head"))


async def _compare(fresh_url: str, migrated_url: str) -> None:
    fresh, migrated = create_engine(fresh_url), create_engine(migrated_url)
    try:
        await upgrade(fresh)  # empty: created from tables.py and stamped
        await _migrated_by_alembic(migrated)
        built, stepped = await _schema(fresh), await _schema(migrated)
        assert built["version"] == [head_revision()]
        assert built == stepped
        await upgrade(migrated)  # at the head already: nothing happens
        assert await _schema(migrated) == stepped
    finally:
        await fresh.dispose()
        await migrated.dispose()


async def test_a_new_sqlite_store_has_the_migrated_schema(tmp_path: Path) -> None:
    await _compare(
        f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}", f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    )


@pytest.mark.postgres
async def test_a_new_postgres_store_has_the_migrated_schema() -> None:
    from .conftest import _drop_postgres_database, _postgres_database

    fresh, migrated = await _postgres_database(), await _postgres_database()
    try:
        await _compare(fresh, migrated)
    finally:
        await _drop_postgres_database(fresh)
        await _drop_postgres_database(migrated)


async def test_an_older_store_is_still_migrated_by_alembic(tmp_path: Path) -> None:
    from alembic import command

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_config(sync), "0004"))
        await upgrade(engine)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert "rate_windows" in tables  # 0005 ran
        assert [row[0] for row in version] == [head_revision()]
    finally:
        await engine.dispose()


def test_opening_a_new_or_current_store_never_imports_alembic(tmp_path: Path) -> None:
    code = (
        "import asyncio, sys\n"
        "from reelgate.store import Store\n"
        "async def main(url):\n"
        "    for _ in range(2):  # new, then current\n"
        "        store = await Store.open(url)\n"
        "        await store.close()\n"
        f"asyncio.run(main('sqlite+aiosqlite:///{tmp_path / 'r.db'}'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tables_py_declares_every_table() -> None:
    """A new store is created from ``tables.metadata`` alone (``reelgate db upgrade`` imports no
    other store module): a table declared elsewhere would be missing from it."""
    import reelgate.store
    import reelgate.store.sandbox
    from reelgate.store.tables import metadata

    alone = subprocess.run(
        [
            sys.executable,
            "-c",
            "from reelgate.store.tables import metadata; print(' '.join(sorted(metadata.tables)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert alone == sorted(metadata.tables)
    assert {"sandbox_fired", "sandbox_signals", "rate_windows"} <= set(alone)
    assert reelgate.store.Store is not None
