"""Seconds from a create's 200 to the task showing `processing`, against a real `reelgate serve`.

    python bench/claim_latency.py [--tasks 20] [--database-url URL]

Starts `reelgate serve` on a free port with a temporary data dir, creates tasks one at a time
after the worker has gone idle, and polls each at 5 ms until a worker has claimed it.
"""

from __future__ import annotations

import argparse
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--idle", type=float, default=2.0, help="seconds idle before each create")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="reelgate-bench-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    if args.database_url:
        env["REELGATE_DATABASE_URL"] = args.database_url
    cmd = [
        sys.executable,
        "-m",
        "reelgate.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data),
    ]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        key = json.loads((data / "credentials.json").read_text())["api_key"]
        latencies = []
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
            for i in range(args.tasks):
                time.sleep(args.idle)  # let the worker's poll interval back off fully
                r = client.post(
                    "/v1/videos/text2video", json={"prompt": f"b{i} [[sandbox:slow=1]]"}
                )
                created = time.perf_counter()
                task_id = r.json()["data"]["task_id"]
                while (
                    client.get(f"/v1/videos/text2video/{task_id}").json()["data"]["task_status"]
                    == "submitted"
                ):
                    time.sleep(0.005)
                latencies.append(time.perf_counter() - created)
        ms = sorted(x * 1000 for x in latencies)
        print(
            f"create→processing over {len(ms)} tasks: median {statistics.median(ms):.0f} ms,"
            f" p90 {ms[int(len(ms) * 0.9) - 1]:.0f} ms, max {ms[-1]:.0f} ms"
        )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
