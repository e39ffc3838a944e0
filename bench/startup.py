"""Seconds from spawning `reelgate sandbox --port 0` to its "ready at" line (target: under 2 s).

    python bench/startup.py [--runs 11] [--command sandbox|help]

Each run spawns ``python -m reelgate.cli sandbox --port 0`` (a free port, state in a temporary
directory), reads stderr until the ready line, then stops it with SIGTERM and waits for it to
exit. Side by side, interleaved with the runs, a bare interpreter (``python -c pass``) is spawned
so that a loaded machine shows as a slower baseline rather than as a slower reelgate: the
``over_python`` figures are the sandbox's own share. Prints a table, then one ``RESULT`` line.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

READY = "reelgate sandbox ready at"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REELGATE_")}


def time_sandbox(timeout: float) -> float:
    """Seconds from spawn to the ready line; the process is stopped and reaped before return."""
    cmd = [sys.executable, "-m", "reelgate.cli", "sandbox", "--port", "0"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            if line.startswith(READY):
                ready = time.perf_counter() - start
                break
            if time.perf_counter() - start > timeout:
                raise SystemExit(f"no ready line within {timeout} s")
        else:
            raise SystemExit(f"the sandbox exited with {proc.wait()} before it was ready")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    return ready


def time_command(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], env=_env(), check=True, capture_output=True)
    return time.perf_counter() - start


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    time_sandbox(args.timeout)  # warm the OS file cache: every run then reads the same way
    ready, python, cli_help = [], [], []
    for _ in range(args.runs):
        python.append(time_command(["-c", "pass"]))
        ready.append(time_sandbox(args.timeout))
        cli_help.append(time_command(["-m", "reelgate.cli", "--help"]))
    rows = {"sandbox ready": ready, "reelgate --help": cli_help, "python -c pass": python}
    print(f"{'':<18}{'median s':>10}{'p90 s':>10}{'min s':>10}")
    for name, values in rows.items():
        row = f"{statistics.median(values):>10.3f}{p90(values):>10.3f}{min(values):>10.3f}"
        print(f"{name:<18}{row}")
    own = [r - p for r, p in zip(ready, python, strict=True)]
    print(
        f"RESULT runs={args.runs} ready_median_s={statistics.median(ready):.3f}"
        f" ready_p90_s={p90(ready):.3f} over_python_median_s={statistics.median(own):.3f}"
        f" help_median_s={statistics.median(cli_help):.3f}"
        f" python_median_s={statistics.median(python):.3f}"
    )


if __name__ == "__main__":
    main()
