"""CPU per request of the API in-process (no worker): a number a busy machine hardly moves.

    python bench/api_cpu.py [--requests 300] [--profile get|list|create] [--postgres-url URL]

Serves GET one task, GET a list of 30 (each with three signed links) and POST create through
``httpx.ASGITransport`` on the store bench/api.py seeds, and prints the process's CPU time per
request (the in-process client included, so it is an upper bound of the server's share; on
PostgreSQL the server's own CPU is not counted). The store is SQLite, or with
``--postgres-url ADMIN_URL`` a fresh database made on that server.
``--profile ROUTE`` prints a pyinstrument profile of that route (``pip install pyinstrument``).
To compare with another checkout: ``PYTHONPATH=/other/checkout/src python bench/api_cpu.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
from api import POSTGRES_ADMIN_URL, seed  # bench/api.py, next to this file
from pgscratch import create_database, drop_database

from reelgate.api import create_app
from reelgate.settings import Settings

WARMUP = 20


async def measure(requests: int, profile: str | None, database_url: str | None) -> dict[str, float]:
    data_dir = Path(tempfile.mkdtemp(prefix="reelgate-bench-cpu-"))
    api_key, task_id, _ = await seed(data_dir, database_url, 0)
    app = create_app(Settings(data_dir=data_dir, run_worker=False, database_url=database_url))
    paths = {
        "get": f"/v1/videos/text2video/{task_id}",
        "list": "/v1/videos/text2video?pageNum=1&pageSize=30",
        "create": "/v1/videos/text2video",
    }
    found: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            for route, path in paths.items():

                async def one(route: str = route, path: str = path) -> None:
                    if route == "create":
                        r = await client.post(path, json={"prompt": "a fox in the snow"})
                    else:
                        r = await client.get(path)
                    assert r.status_code == 200, r.text

                for _ in range(WARMUP):
                    await one()
                profiler = None
                if profile == route:
                    from pyinstrument import Profiler

                    profiler = Profiler(interval=0.0005)
                    profiler.start()
                started = time.process_time()
                for _ in range(requests):
                    await one()
                found[route] = (time.process_time() - started) * 1000 / requests
                if profiler is not None:
                    profiler.stop()
                    print(profiler.output_text(color=False, show_all=False))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--profile", choices=("get", "list", "create"), default=None)
    parser.add_argument(
        "--postgres-url",
        nargs="?",
        const=POSTGRES_ADMIN_URL,
        default=None,
        help=f"a fresh database on this PostgreSQL server (default {POSTGRES_ADMIN_URL})",
    )
    args = parser.parse_args()
    url = None
    if args.postgres_url:
        url = asyncio.run(create_database(args.postgres_url))
        if url is None:
            parser.error(f"{args.postgres_url} is unreachable")
    try:
        found = asyncio.run(measure(args.requests, args.profile, url))
    finally:
        if url is not None:
            asyncio.run(drop_database(args.postgres_url, url))
    for route, ms in found.items():
        print(f"{route}: {ms:.2f} ms CPU per request")
    print("RESULT " + " ".join(f"{route}_cpu_ms={ms:.2f}" for route, ms in found.items()))


if __name__ == "__main__":
    main()
