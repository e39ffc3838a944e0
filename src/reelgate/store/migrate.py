"""Bring the store's database to the newest schema.

Alembic (and Mako under it) costs a noticeable part of a second to import, and most starts find
the schema current or the database empty, so neither case imports it:

- at the head revision already (plain SQL reads ``alembic_version``): nothing to do;
- a brand-new database (no table at all): the tables are created from ``tables.py`` and the
  database is stamped at the head, as Alembic's cookbook builds a database from scratch
  (``tests/test_store_schema.py`` checks that this schema is the one the migrations build);
- anything else (an older revision, a downgrade): Alembic runs the migrations.

The head is read from the revision files themselves, without importing them.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


def head_revision() -> str | None:
    """The one revision no other revision revises; None when there are several (a branch)."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
                continue
            target = node.targets[0]
            if not isinstance(target, ast.Name):
                continue
            value = ast.literal_eval(node.value)
            if target.id == "revision":
                revisions.add(value)
            elif target.id == "down_revision" and value is not None:
                revised.update([value] if isinstance(value, str) else value)
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else None


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade_sync(connection: Connection, revision: str) -> None:
    head = head_revision() if revision == "head" else None
    if head is not None:
        tables = set(inspect(connection).get_table_names())
        if not tables:
            _create_at_head(connection, head)
            return
        if VERSION_TABLE in tables:
            versions = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            if [row[0] for row in versions] == [head]:
                return
    from alembic import command

    command.upgrade(_config(connection), revision)


def _create_at_head(connection: Connection, head: str) -> None:
    """An empty database: the tables as ``tables.py`` declares them, stamped at ``head``."""
    from .tables import metadata

    metadata.create_all(connection)
    connection.execute(
        text(
            f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL,"
            f" CONSTRAINT {VERSION_TABLE}_pkc PRIMARY KEY (version_num))"
        )
    )
    connection.execute(
        text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:head)"), {"head": head}
    )


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_sync, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    from alembic import command

    async with engine.begin() as conn:
        await conn.run_sync(lambda sync_conn: command.downgrade(_config(sync_conn), revision))
