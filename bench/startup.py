"""Seconds from spawning `reelgate sandbox --port 0` to its "ready at" line (target: under 2 s).

    python bench/startup.py [--runs 11] [--baseline OTHER_CHECKOUT/src]

Each run spawns ``python -m reelgate.cli sandbox --port 0`` (a free port, state in a temporary
directory), reads stderr until the ready line, then stops it with SIGTERM and waits for it to
exit; and ``reelgate --help``. Interleaved with the runs, a bare interpreter (``python -c pass``)
is spawned, so that a loaded machine shows as a slower interpreter rather than as a slower
reelgate. With ``--baseline``, the same runs of another source tree (e.g. the main branch:
``git archive main src | tar -x -C /tmp/base``), interleaved too, give ``speedup`` = baseline
median / this median, a ratio that load affects far less than the seconds. On Linux the CPU
seconds the sandbox used until ready (from /proc) are reported too: on a loaded machine they stay
close to the idle wall time while the wall time grows with the load.
Prints a table, then one ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

READY = "reelgate sandbox ready at"


def _env(src: str | None = None) -> dict[str, str]:
    """No REELGATE_* of the caller; with ``src``, that tree's ``reelgate`` package is imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far (Linux: /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_sandbox(timeout: float, src: str | None = None) -> tuple[float, float]:
    """Seconds from spawn to the ready line, and the CPU seconds the sandbox spent until then;
    the process is stopped and reaped before return."""
    cmd = [sys.executable, "-m", "reelgate.cli", "sandbox", "--port", "0"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=_env(src), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith(READY):
                ready = time.perf_counter() - start
                cpu = cpu_seconds(proc.pid)
                break
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"no ready line within {timeout} s")
        else:
            raise SystemExit(f"the sandbox exited with {proc.wait()} before it was ready")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    return ready, cpu


def time_command(args: list[str], src: str | None = None) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=_env(src), check=True, capture_output=True)
    return time.perf_counter() - start


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--baseline", help="src/ folder of another checkout to compare with")
    args = parser.parse_args()
    trees: dict[str, str | None] = {"": None}
    if args.baseline:
        trees["baseline "] = args.baseline
    for src in trees.values():  # warm the OS file cache: every run then reads the same way
        time_sandbox(args.timeout, src)
    rows: dict[str, list[float]] = {"python -c pass": []}
    for _ in range(args.runs):
        rows["python -c pass"].append(time_command(["-c", "pass"]))
        for label, src in trees.items():
            ready_s, cpu_s = time_sandbox(args.timeout, src)
            rows.setdefault(f"{label}sandbox ready", []).append(ready_s)
            rows.setdefault(f"{label}sandbox CPU to ready", []).append(cpu_s)
            help_s = time_command(["-m", "reelgate.cli", "--help"], src)
            rows.setdefault(f"{label}reelgate --help", []).append(help_s)
    print(f"{'':<26}{'median s':>10}{'p90 s':>10}{'min s':>10}")
    for name, values in rows.items():
        row = f"{statistics.median(values):>10.3f}{p90(values):>10.3f}{min(values):>10.3f}"
        print(f"{name:<26}{row}")
    ready, cli_help = rows["sandbox ready"], rows["reelgate --help"]
    cpu = statistics.median(rows["sandbox CPU to ready"])
    result = (
        f"RESULT runs={args.runs} ready_median_s={statistics.median(ready):.3f}"
        f" ready_p90_s={p90(ready):.3f} ready_cpu_median_s={cpu:.3f}"
        f" help_median_s={statistics.median(cli_help):.3f}"
        f" python_median_s={statistics.median(rows['python -c pass']):.3f}"
    )
    if args.baseline:
        base = statistics.median(rows["baseline sandbox ready"])
        base_cpu = statistics.median(rows["baseline sandbox CPU to ready"])
        base_help = statistics.median(rows["baseline reelgate --help"])
        result += (
            f" baseline_ready_median_s={base:.3f}"
            f" ready_speedup={base / statistics.median(ready):.2f}"
            f" baseline_ready_cpu_median_s={base_cpu:.3f} cpu_speedup={base_cpu / cpu:.2f}"
            f" help_speedup={base_help / statistics.median(cli_help):.2f}"
        )
    print(result)


if __name__ == "__main__":
    main()
