"""How late callbacks reach a healthy receiver while other receivers hang, against `reelgate serve`.

    python bench/callback_latency.py [--healthy 12] [--hanging 4] [--database-url URL]

Starts `reelgate serve` (sandbox engine, in-process worker and dispatcher, default callback
settings) on a free port with a temporary data dir, and two kinds of loopback receivers:
``--hanging`` receivers that never answer (each attempt runs into the 10 s timeout, then is
retried) and one healthy receiver. It creates one task per hanging receiver, then
``--healthy`` tasks whose callbacks go to the healthy receiver, a few at a time, and waits for
every one of their events (submitted, processing, succeed). Lateness of an event is its
arrival time minus the status change's ``updated_at`` (same machine, same clock). Prints the
distribution (p50/p90/p99/max) and, with ``--json``, writes every sample.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from reelgate.callbacks.receiver import Receiver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(args: argparse.Namespace, data: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env["REELGATE_CALLBACK_ALLOW_PRIVATE"] = "true"  # the receivers are on loopback
    env["REELGATE_WORKERS"] = str(args.workers)
    if args.database_url:
        env["REELGATE_DATABASE_URL"] = args.database_url
    cmd = [sys.executable, "-m", "reelgate.cli", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data)]
    with (data / "serve.log").open("wb") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    return server, f"http://127.0.0.1:{port}"


async def run(args: argparse.Namespace, base: str, data: Path) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client, Receiver() as rx:
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        creds = json.loads((data / "credentials.json").read_text())
        client.headers["Authorization"] = f"Bearer {creds['api_key']}"

        async def create(callback_url: str) -> str:
            r = await client.post(
                "/v1/videos/text2video",
                json={"prompt": "bench", "duration": "5", "callback_url": callback_url},
            )
            r.raise_for_status()
            return str(r.json()["data"]["task_id"])

        for i in range(args.hanging):
            rx.always(f"/hang{i}", "hang")
            await create(rx.url(f"/hang{i}"))
        started = time.monotonic()
        for _ in range(args.healthy):
            await create(rx.url("/ok"))
            await asyncio.sleep(args.spacing)
        async with asyncio.timeout(args.timeout):
            await rx.wait_for_count(3 * args.healthy, "/ok")
        elapsed = time.monotonic() - started
        received = rx.to("/ok")
        late = [r.wall - r.payload["updated_at"] / 1000 for r in received]
        hung = sum(len(rx.to(f"/hang{i}")) for i in range(args.hanging))
    return {
        "healthy_tasks": args.healthy,
        "hanging_receivers": args.hanging,
        "events": len(late),
        "attempts_to_hanging_receivers": hung,
        "seconds": round(elapsed, 1),
        "p50_s": round(statistics.median(late), 3),
        "p90_s": round(percentile(late, 0.90), 3),
        "p99_s": round(percentile(late, 0.99), 3),
        "max_s": round(max(late), 3),
        "over_1s": sum(1 for x in late if x > 1.0),
        "samples_s": [
            [r.payload["task_status"], round(x, 3)] for r, x in zip(received, late, strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--healthy", type=int, default=12, help="tasks calling the healthy hook")
    parser.add_argument("--hanging", type=int, default=4, help="receivers that never answer")
    parser.add_argument("--workers", type=int, default=4, help="REELGATE_WORKERS of the server")
    parser.add_argument("--spacing", type=float, default=0.3, help="seconds between creates")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="reelgate-bench-"))
    server, base = start_server(args, data)
    try:
        result = asyncio.run(run(args, base, data))
    finally:
        server.terminate()
        server.wait(60)
    summary = {k: v for k, v in result.items() if k != "samples_s"}
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
