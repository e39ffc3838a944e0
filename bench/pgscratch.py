"""A scratch PostgreSQL database for a benchmark run: made fresh, dropped after."""

from __future__ import annotations

import sys
import uuid


async def create_database(admin_url: str) -> str | None:
    """The URL of a new, empty database beside ``admin_url``'s; None when the server is down."""
    import asyncpg

    admin = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    try:
        conn = await asyncpg.connect(admin, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL skipped: not reachable at {admin} ({exc})", file=sys.stderr)
        return None
    name = f"reelgate_bench_{uuid.uuid4().hex[:12]}"
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def drop_database(admin_url: str, url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()
