"""The API's speed side by side: the stack's ceiling, Prism, and reelgate on SQLite and PostgreSQL.

    python bench/api.py [--duration 2] [--runs 3] [--connections 64] [--skip-prism]
                        [--postgres-url URL] [--postgres-worker] [--api-workers 2] [--uvloop]

One run starts every server, then measures each route of each server in turn, ``--runs`` rounds
(interleaved, so drift of a shared machine hits every target alike; the servers not being
measured are stopped with SIGSTOP meanwhile, so a +worker target's renders load only its own
rows), and prints the medians:

- ``ceiling``: a bare FastAPI app on uvicorn with httptools and uvloop (its fastest settings:
  uvloop serves a bare app more req/s than asyncio's loop, which reelgate runs on by default),
  returning the same JSON bodies reelgate answered, as constant dicts (FastAPI's own encoding,
  as a plain app written for it would);
- ``prism``: a Prism mock server (npm ``@stoplight/prism-cli`` in build/prism) of reelgate's own
  /openapi.json; left out with a note when npm or node is missing;
- ``sqlite`` / ``postgres``: `reelgate serve --no-worker` on a store seeded with 30 succeeded
  tasks (three real blobs each, so a list of them has 90 signed links); the creates go to a
  second account, so every round lists those same 30;
- ``... +worker``: the same with the in-process worker rendering sandbox clips the whole time
  (50 waiting tasks seeded, and every create adds one); on PostgreSQL only with
  ``--postgres-worker``;
- ``sqlite xN``: ``--api-workers N`` API processes on one port (no worker);
- ``sqlite uvloop``: with ``--uvloop``, `reelgate serve --no-worker` on REELGATE_EVENT_LOOP=uvloop.

Routes: GET one task, GET a list of 30, POST create; 64 connections. The load generator is wrk
(``apt-get install wrk``) in its own process, else a Python asyncio/httpx generator in a child
process. The last line is ``RESULT name=value ...``: ``<target>_<route>_rps``, ``_p99_ms`` and,
for reelgate, ``_ratio`` to the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pgscratch import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent
PRISM = ROOT / "build" / "prism" / "node_modules" / ".bin" / "prism"
ROUTES = ("get", "list", "create")
LIST_SIZE = 30
CREATE_BODY = {"prompt": "a lighthouse at dusk, waves crashing", "duration": "5"}
POSTGRES_ADMIN_URL = os.environ.get(
    "REELGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Target:
    name: str
    base: str
    headers: dict[str, str]
    task_id: str
    process: subprocess.Popen[bytes] | None = None
    reelgate: bool = True
    log: Path | None = None
    results: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # route: runs
    cpu_ms: dict[str, list[float]] = field(default_factory=dict)  # route: server CPU per request
    creator: dict[str, str] | None = None  # headers of the create route, when not ``headers``

    def headers_for(self, route: str) -> dict[str, str]:
        return dict(self.creator if route == "create" and self.creator else self.headers)

    def url(self, route: str) -> str:
        if route == "get":
            return f"{self.base}/v1/videos/text2video/{self.task_id}"
        if route == "list":
            return f"{self.base}/v1/videos/text2video?pageNum=1&pageSize={LIST_SIZE}"
        return f"{self.base}/v1/videos/text2video"


# -- seeding a store -------------------------------------------------------------------------


async def seed(data_dir: Path, database_url: str | None, waiting: int) -> tuple[str, str, str]:
    """An account with LIST_SIZE succeeded tasks (a real blob each) and ``waiting`` submitted
    ones: its API key and one succeeded task's id; and the API key of a second account, which
    the create route uses (so the list route lists the same 30 tasks every round)."""
    from decimal import Decimal

    from reelgate.settings import Settings
    from reelgate.storage import open_storage
    from reelgate.store import NewTask, Store

    settings = Settings(data_dir=data_dir, database_url=database_url)
    storage = open_storage(settings)
    store = await Store.open(settings.store_url)
    blob = data_dir / "seed.mp4"
    blob.write_bytes(os.urandom(64 * 1024))
    try:
        creds = await store.create_account("bench")
        params = {"prompt": "seeded", "duration": "5", "model_name": "kling-v1"}
        new = NewTask(creds.account_id, "kling-v1", params, Decimal(1))
        first = ""
        for i in range(LIST_SIZE):
            task = await store.create_task(new)
            claimed = await store.claim_task("seed", 60)
            assert claimed is not None and claimed.task_id == task.task_id
            keys = {k: f"videos/{task.task_id}/{k}" for k in ("0.mp4", "0.wm.mp4", "0.jpg")}
            for key in keys.values():
                storage.put(key, blob, "video/mp4")
            video = {
                "id": str(uuid.uuid4()),
                "key": keys["0.mp4"],
                "watermark_key": keys["0.wm.mp4"],
                "thumbnail_key": keys["0.jpg"],
                "duration": "5",
            }
            await store.finish_task(task.task_id, "seed", {"videos": [video], "seed": i})
            first = first or task.task_id
        for _ in range(waiting):
            await store.create_task(new)
        creator = await store.create_account("bench creates")
        return creds.api_key, first, creator.api_key
    finally:
        await store.close()


# -- servers ---------------------------------------------------------------------------------


def session_cpu_s(sid: int) -> float:
    """CPU seconds used so far by the processes of session ``sid`` (a server and its children;
    Linux /proc). Unlike req/s, CPU per request hardly moves when other work shares the cores."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: the session id
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def start_reelgate(
    name: str,
    work: Path,
    database_url: str | None,
    *,
    worker: bool,
    api_workers: int = 1,
    event_loop: str = "asyncio",
) -> Target:
    data_dir = work / name.replace(" ", "_").replace("+", "w")
    data_dir.mkdir()
    api_key, task_id, creator_key = asyncio.run(seed(data_dir, database_url, 50 if worker else 0))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    env["REELGATE_EVENT_LOOP"] = event_loop
    if database_url:
        env["REELGATE_DATABASE_URL"] = database_url
        env["REELGATE_SIGNING_KEY"] = os.urandom(32).hex()  # links are signed, not checked
    cmd = [sys.executable, "-m", "reelgate.cli", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data_dir)]
    if not worker:
        cmd.append("--no-worker")
    if api_workers > 1:
        cmd += ["--api-workers", str(api_workers)]
    log = data_dir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=out, start_new_session=True)
    headers = {"Authorization": f"Bearer {api_key}"}
    creator = {"Authorization": f"Bearer {creator_key}"}
    return Target(
        name, f"http://127.0.0.1:{port}", headers, task_id, process, log=log, creator=creator
    )


def wait_started(target: Target) -> None:
    assert target.process is not None
    try:
        wait_ready(f"{target.base}/healthz", target.process)
    except RuntimeError:
        if target.log is not None:
            print(target.log.read_text()[-3000:], file=sys.stderr)
        raise


CEILING_APP = """
import json, os
from fastapi import FastAPI

BODIES = json.loads(os.environ["BENCH_BODIES"])
app = FastAPI()


@app.get("/v1/videos/text2video/{task_id}")
async def one(task_id: str) -> dict:
    return BODIES["get"]


@app.get("/v1/videos/text2video")
async def many() -> dict:
    return BODIES["list"]


@app.post("/v1/videos/text2video")
async def create() -> dict:
    return BODIES["create"]
"""


def start_ceiling(work: Path, bodies: dict[str, Any]) -> Target:
    (work / "ceiling_app.py").write_text(textwrap.dedent(CEILING_APP))
    port = free_port()
    env = {**os.environ, "BENCH_BODIES": json.dumps(bodies), "PYTHONPATH": str(work)}
    cmd = [sys.executable, "-m", "uvicorn", "ceiling_app:app", "--port", str(port)]
    cmd += ["--loop", "uvloop", "--http", "httptools", "--log-level", "info"]
    process = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/v1/videos/text2video", process)
    return Target("ceiling", base, {}, "any", process, reelgate=False)


def start_prism(work: Path, openapi: dict[str, Any], headers: dict[str, str]) -> Target | None:
    if not PRISM.exists():
        print(
            f"note: Prism left out: {PRISM} missing (npm install --prefix build/prism"
            " @stoplight/prism-cli)",
            file=sys.stderr,
        )
        return None
    spec = work / "openapi.json"
    spec.write_text(json.dumps(openapi))
    port = free_port()
    cmd = [str(PRISM), "mock", str(spec), "-p", str(port), "-h", "127.0.0.1"]
    process = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{base}/v1/models", process)
    except RuntimeError as exc:
        print(f"note: Prism left out: {exc}", file=sys.stderr)
        stop(process)
        return None
    return Target("prism", base, headers, "any", process, reelgate=False)


def pause(targets: list[Target], running: Target | None) -> None:
    """SIGSTOP every server but ``running`` (its whole session: render children too);
    ``running=None`` lets them all run again."""
    for target in targets:
        if target.process is None or target.process.poll() is not None:
            continue
        wanted = signal.SIGCONT if running is None or target is running else signal.SIGSTOP
        os.killpg(target.process.pid, wanted)
    time.sleep(0.2)


def stop(process: subprocess.Popen[bytes] | None) -> None:
    if process is None or process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGCONT)  # a stopped process would not act on SIGTERM
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# -- load ------------------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
{headers}
"""


def run_wrk(
    target: Target, route: str, work: Path, duration: int, conns: int
) -> tuple[float, float]:
    """(requests per second, p99 ms); non-2xx answers count as failures (reported)."""
    headers = target.headers_for(route)
    method, body = "GET", "nil"
    if route == "create":
        method, body = "POST", json.dumps(json.dumps(CREATE_BODY))
        headers["Content-Type"] = "application/json"
    lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    script = work / f"wrk_{route}.lua"
    script.write_text(WRK_SCRIPT.format(method=method, body=body, headers=lines))
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{duration}s", "--latency"]
    cmd += ["-s", str(script), target.url(route)]
    cpu_before = session_cpu_s(target.process.pid) if target.process else 0.0
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    if target.process is not None:
        done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        used = session_cpu_s(target.process.pid) - cpu_before
        target.cpu_ms.setdefault(route, []).append(used * 1000 / max(done, 1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _wrk_ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    problems = [m.group(0) for m in re.finditer(r"(Non-2xx or 3xx responses|Socket errors).*", out)]
    if problems:
        print(f"  {target.name} {route}: {'; '.join(problems)}", file=sys.stderr)
    return rps, p99


def _wrk_ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


PY_LOAD = """
import asyncio, json, sys, time
import httpx

url, method, headers, body, conns, duration = json.loads(sys.argv[1])

async def main():
    latencies = []
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    async with httpx.AsyncClient(limits=limits, headers=headers, timeout=30) as client:
        end = time.perf_counter() + duration
        async def loop():
            while time.perf_counter() < end:
                t = time.perf_counter()
                await client.request(method, url, content=body)
                latencies.append(time.perf_counter() - t)
        start = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(conns)))
        took = time.perf_counter() - start
    latencies.sort()
    print(json.dumps([len(latencies) / took, latencies[int(len(latencies) * 0.99) - 1] * 1000]))

asyncio.run(main())
"""


def run_python_load(target: Target, route: str, duration: float, conns: int) -> tuple[float, float]:
    headers = target.headers_for(route)
    method, body = "GET", None
    if route == "create":
        method, body = "POST", json.dumps(CREATE_BODY)
        headers["Content-Type"] = "application/json"
    arg = json.dumps([target.url(route), method, headers, body, conns, duration])
    out = subprocess.run(
        [sys.executable, "-c", PY_LOAD, arg], capture_output=True, text=True, check=True
    ).stdout
    rps, p99 = json.loads(out)
    return float(rps), float(p99)


# -- the run ---------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=2, help="seconds per measurement")
    parser.add_argument("--runs", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--skip-prism", action="store_true")
    parser.add_argument("--no-worker-rows", action="store_true", help="leave out the +worker rows")
    parser.add_argument(
        "--postgres-worker",
        action="store_true",
        help="add the row 'postgres +worker' (left out by default: it holds no target, and the"
        " whole run then stays under two minutes)",
    )
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help="an admin URL of a PostgreSQL server (a fresh database is made); '' to skip",
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="N > 1 adds a row 'sqlite xN': `serve --api-workers N --no-worker`",
    )
    parser.add_argument(
        "--uvloop", action="store_true", help="add a row 'sqlite uvloop' (REELGATE_EVENT_LOOP)"
    )
    args = parser.parse_args()
    load = "wrk" if shutil.which("wrk") else "python"
    if load == "python":
        print("note: wrk not found; using the Python load generator", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="reelgate-bench-api-"))
    targets: list[Target] = []
    pg_urls: list[str] = []
    started = time.monotonic()
    try:
        plan: list[tuple[str, str | None, bool, int]] = [("sqlite", None, False, 1)]
        if not args.no_worker_rows:
            plan.append(("sqlite +worker", None, True, 1))
        if args.api_workers > 1:
            plan.append((f"sqlite x{args.api_workers}", None, False, args.api_workers))
        if args.uvloop:
            plan.append(("sqlite uvloop", None, False, 1))
        if args.postgres_url:
            with_worker = args.postgres_worker and not args.no_worker_rows
            for worker in (False, True) if with_worker else (False,):
                url = asyncio.run(create_database(args.postgres_url))
                if url is None:
                    print(
                        f"note: PostgreSQL rows left out: {args.postgres_url} unreachable",
                        file=sys.stderr,
                    )
                    break
                pg_urls.append(url)
                plan.append(("postgres +worker" if worker else "postgres", url, worker, 1))
        for name, url, worker, procs in plan:  # seeded one by one, then started together
            loop = "uvloop" if name.endswith("uvloop") else "asyncio"
            targets.append(
                start_reelgate(name, work, url, worker=worker, api_workers=procs, event_loop=loop)
            )
        for target in targets:
            wait_started(target)
        first = targets[0]
        with httpx.Client(headers=first.headers, timeout=30) as client:
            bodies = {
                "get": client.get(first.url("get")).json(),
                "list": client.get(first.url("list")).json(),
                "create": client.post(
                    first.url("create"), json=CREATE_BODY, headers=first.headers_for("create")
                ).json(),
            }
            openapi = client.get(f"{first.base}/openapi.json").json()
        assert len(bodies["list"]["data"]) == LIST_SIZE, bodies["list"]
        sizes = {k: len(json.dumps(v)) for k, v in bodies.items()}
        print(
            f"bodies (bytes): {sizes}; load: {load}; {args.connections} connections",
            file=sys.stderr,
        )
        targets.insert(0, start_ceiling(work, bodies))
        if not args.skip_prism:
            prism = start_prism(work, openapi, first.headers)
            if prism is not None:
                targets.insert(1, prism)
        print(f"servers up in {time.monotonic() - started:.0f} s", file=sys.stderr)
        for _ in range(args.runs):
            for target in targets:
                # Only the measured server runs: a +worker target renders all along, which
                # would otherwise load every other measurement (the ceiling's included).
                pause(targets, running=target)
                for route in ROUTES:
                    if load == "wrk":
                        got = run_wrk(target, route, work, args.duration, args.connections)
                    else:
                        got = run_python_load(target, route, args.duration, args.connections)
                    target.results.setdefault(route, []).append(got)
        pause(targets, running=None)
        report(targets)
        print(f"took {time.monotonic() - started:.0f} s", file=sys.stderr)
    finally:
        for target in targets:
            stop(target.process)
        for url in pg_urls:
            asyncio.run(drop_database(args.postgres_url, url))
        shutil.rmtree(work, ignore_errors=True)


def report(targets: list[Target]) -> None:
    ceiling = {r: statistics.median(x for x, _ in targets[0].results[r]) for r in ROUTES}
    print("| target | route | req/s (median) | spread | p99 ms | / ceiling | server CPU ms/req |")
    print("|---|---|---|---|---|---|---|")
    result: list[str] = []
    for target in targets:
        key = re.sub(r"[^a-z0-9]+", "_", target.name).strip("_")
        for route in ROUTES:
            runs = target.results[route]
            rps = statistics.median(x for x, _ in runs)
            p99 = statistics.median(p for _, p in runs)
            spread = f"{min(x for x, _ in runs):.0f}-{max(x for x, _ in runs):.0f}"
            ratio = rps / ceiling[route]
            cpu = statistics.median(target.cpu_ms[route]) if target.cpu_ms.get(route) else 0.0
            print(
                f"| {target.name} | {route} | {rps:.0f} | {spread} | {p99:.0f} | {ratio:.2f}"
                f" | {cpu:.2f} |"
            )
            result += [f"{key}_{route}_rps={rps:.0f}", f"{key}_{route}_p99_ms={p99:.0f}"]
            if cpu:
                result.append(f"{key}_{route}_cpu_ms={cpu:.2f}")
            if target.reelgate:
                result.append(f"{key}_{route}_ratio={ratio:.3f}")
    print("RESULT " + " ".join(result))


if __name__ == "__main__":
    main()
