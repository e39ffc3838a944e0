"""Sandbox render + encode time and peak memory per clip, one fresh process per clip.

    python bench/sandbox_render.py                  # all cases, pinned to one core
    python bench/sandbox_render.py --preset veryfast --cores 2 --only v2-6-720p-5s --repeat 3

Each case runs in its own child process so its peak RSS is its own. Prints a Markdown table:
seconds for the whole clip (world painting, frames, clean + watermarked encode, thumbnail),
milliseconds per frame, the clean MP4's size and the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CASES: dict[str, dict[str, Any]] = {
    "v2-6-720p-5s": {"model": "kling-v2-6", "mode": "std", "aspect_ratio": "16:9", "duration": 5},
    "v2-6-720p-5s-sound-wm": {
        "model": "kling-v2-6",
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": 5,
        "sound": "on",
        "watermark_info": {"enabled": True},
    },
    "v1-720p30-5s-zoom+10": {
        "model": "kling-v1",
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": 5,
        "camera_control": {"type": "simple", "config": {"zoom": 10}},
    },
    "v1-720p30-5s-roll-10": {
        "model": "kling-v1",
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": 5,
        "camera_control": {"type": "simple", "config": {"roll": -10}},
    },
    "v1-720p30-5s-forward_up": {
        "model": "kling-v1",
        "mode": "std",
        "aspect_ratio": "16:9",
        "duration": 5,
        "camera_control": {"type": "forward_up"},
    },
    "v3-720p-9:16-5s": {"model": "kling-v3", "mode": "std", "aspect_ratio": "9:16", "duration": 5},
    "v2-6-1080p-10s-sound-wm": {
        "model": "kling-v2-6",
        "mode": "pro",
        "aspect_ratio": "16:9",
        "duration": 10,
        "sound": "on",
        "watermark_info": {"enabled": True},
    },
    "v3-1440x1440-15s-wm": {
        "model": "kling-v3",
        "mode": "pro",
        "aspect_ratio": "1:1",
        "duration": 15,
        "watermark_info": {"enabled": True},
    },
}
PROMPT = "A quiet valley at dawn with hot-air balloons drifting over the hills"


def run_one(name: str, preset: str, cores: int) -> dict[str, Any]:
    """Render one case in this process (the child) and measure it."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:cores]))
    from reelgate.domain.kling import kling_models
    from reelgate.domain.requests import Text2VideoRequest
    from reelgate.engines.sandbox.plan import plan_clip
    from reelgate.engines.sandbox.render import render_clip
    from reelgate.media import EncodeSettings

    case = dict(CASES[name])
    model = case.pop("model")
    spec = next(s for s in kling_models() if s.id == model)
    request = Text2VideoRequest.model_validate({"prompt": PROMPT, **case})
    plan = plan_clip(spec, request, PROMPT)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        clip = render_clip(
            plan, Path(tmp), watermark=request.watermark, settings=EncodeSettings(preset=preset)
        )
        seconds = time.perf_counter() - started
        size = clip.path.stat().st_size
    return {
        "case": name,
        "size": f"{plan.width}x{plan.height}@{plan.fps}",
        "frames": plan.frame_count,
        "seconds": seconds,
        "ms_per_frame": 1000 * seconds / plan.frame_count,
        "mp4_mb": size / 2**20,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="ultrafast", help="libx264 preset")
    parser.add_argument("--cores", type=int, default=1, help="CPU cores the child may use")
    parser.add_argument("--only", action="append", choices=sorted(CASES), help="case(s) to run")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per case; the fastest is shown (noisy hosts)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.preset, args.cores)))
        return
    print(f"preset={args.preset} cores={args.cores} python={sys.version.split()[0]}\n")
    print("| case | size | frames | seconds | ms/frame | MP4 MB | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for name in args.only or CASES:
        runs = [_child(name, args.preset, args.cores) for _ in range(max(args.repeat, 1))]
        r = min(runs, key=lambda run: float(run["seconds"]))
        r["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
        print(
            f"| {r['case']} | {r['size']} | {r['frames']} | {r['seconds']:.2f} |"
            f" {r['ms_per_frame']:.1f} | {r['mp4_mb']:.2f} | {r['peak_rss_mb']:.0f} |",
            flush=True,
        )


def _child(name: str, preset: str, cores: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", name, "--preset", preset, "--cores", str(cores)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    main()
