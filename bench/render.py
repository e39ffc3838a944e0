"""Sandbox render time per clip against the floor of encoding the same frames.

    python bench/render.py                      # 5 s and 10 s at 720p and 1080p, clean and wm
    python bench/render.py --repeat 3 --cores 1 --only 720p-5s
    python bench/render.py --preset veryfast --only 1080p-10s     # another libx264 preset

For each clip (kling-v2-6: 720p is ``std``, 1080p ``pro``; 24 fps) it times, side by side in
one process:

- ``render``: the whole clip as the sandbox renders it (world painting, every frame, the
  H.264 encode, the thumbnail), without and with the watermarked copy (``wm``);
- ``floor``: :func:`reelgate.media.encode_clip` fed the clip's first frame ``frame_count``
  times, with the same encoder settings and no copy or thumbnail: what encoding that many
  frames costs when producing them is free. The sandbox makes ``yuv420p`` frames, so this is
  the x264 encode and what ``encode_clip`` adds around it;
- ``floor rgb``: the same fed that frame as RGB, so ``encode_clip`` converts each to YUV
  first (what encoding costs a producer of RGB frames; the floor of the first measurements);
- ``floor wm``: the floor with the watermarked copy, which is encoded a second time;
- ``x264``: the libx264 encode alone of that frame (for reference).

Ratios are render / floor (the target is 1.5 or less), render / floor rgb and render+wm /
floor wm in wall seconds, and render / floor in CPU seconds of the process, all threads (the
floor's CPU is x264's alone, so that one counts all of the render's painting against it; the
encoder threads let wall time fall below CPU time when a core is free). Each number is the
median of ``--repeat`` runs. Ends with ``RESULT name=value ...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from reelgate.domain.kling import kling_models
from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.sandbox.plan import ClipPlan, plan_clip
from reelgate.engines.sandbox.render import Scene, render_clip
from reelgate.media import EncodeSettings, encode_clip
from reelgate.media.color import yuv420_frame, yuv420_to_rgb

PROMPT = "A quiet valley at dawn with hot-air balloons drifting over the hills"
CASES = {
    "720p-5s": ("std", 5),
    "720p-10s": ("std", 10),
    "1080p-5s": ("pro", 5),
    "1080p-10s": ("pro", 10),
}


def plan_for(mode: str, duration: int) -> ClipPlan:
    spec = next(s for s in kling_models() if s.id == "kling-v2-6")
    request = Text2VideoRequest.model_validate(
        {"prompt": PROMPT, "mode": mode, "duration": duration}
    )
    return plan_clip(spec, request, PROMPT)


def timed(work: Callable[[Path], object], cpu: list[float]) -> float:
    """Wall seconds of ``work``; its CPU seconds (every thread of this process) go to ``cpu``."""
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu_started = time.perf_counter(), time.process_time()
        work(Path(tmp))
        cpu.append(time.process_time() - cpu_started)
        return time.perf_counter() - started


def floor(
    plan: ClipPlan,
    frame: np.ndarray,
    out_dir: Path,
    settings: EncodeSettings,
    watermark: bool = False,
) -> None:
    encode_clip(
        (frame for _ in range(plan.frame_count)),
        fps=plan.fps,
        width=plan.width,
        height=plan.height,
        out_path=out_dir / "f.mp4",
        watermarked_path=out_dir / "fw.mp4" if watermark else None,
        settings=settings,
    )


def x264_only(plan: ClipPlan, frame: np.ndarray, out_dir: Path, settings: EncodeSettings) -> None:
    yuv = yuv420_frame(frame)
    with av.open(str(out_dir / "x.mp4"), mode="w") as container:
        stream = container.add_stream(
            "libx264", rate=plan.fps, options={"preset": settings.preset, "crf": str(settings.crf)}
        )
        stream.width, stream.height, stream.pix_fmt = plan.width, plan.height, "yuv420p"
        stream.thread_count = settings.threads
        for index in range(plan.frame_count):
            yuv.pts = index
            container.mux(stream.encode(yuv))
        container.mux(stream.encode(None))


def measure(plan: ClipPlan, repeat: int, settings: EncodeSettings) -> dict[str, float]:
    frame = Scene(plan).frame(0)
    rgb = yuv420_to_rgb(frame)
    work: dict[str, Callable[[Path], object]] = {
        "floor": lambda d: floor(plan, frame, d, settings),
        "floor_rgb": lambda d: floor(plan, rgb, d, settings),
        "floor_wm": lambda d: floor(plan, frame, d, settings, watermark=True),
        "render": lambda d: render_clip(plan, d, watermark=False, settings=settings),
        "wm": lambda d: render_clip(plan, d, watermark=True, settings=settings),
        "x264": lambda d: x264_only(plan, frame, d, settings),
    }
    runs: dict[str, list[float]] = {k: [] for k in (*work, *(f"{k}_cpu" for k in work))}
    for _ in range(repeat):  # interleaved, so a change of load hits all alike
        for key, job in work.items():
            runs[key].append(timed(job, runs[f"{key}_cpu"]))
    return {key: statistics.median(values) for key, values in runs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per number; the median")
    parser.add_argument("--cores", type=int, default=0, help="pin to this many cores (0: all)")
    parser.add_argument("--only", action="append", choices=sorted(CASES))
    parser.add_argument("--preset", default=EncodeSettings().preset, help="libx264 preset")
    args = parser.parse_args()
    if args.cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[: args.cores]))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"cores={cores} load={os.getloadavg()[0]:.1f} python={sys.version.split()[0]}")
    settings = EncodeSettings(preset=args.preset)
    print(f"libx264 preset={settings.preset} crf={settings.crf} threads={settings.threads}\n")
    print(
        "| clip | frames | render s | floor s | ratio | floor rgb s | ratio rgb | render+wm s"
        " | floor wm s | ratio wm | CPU ratio | x264 s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    results: dict[str, float] = {}
    for name in args.only or CASES:
        plan = plan_for(*CASES[name])
        s = measure(plan, max(args.repeat, 1), settings)
        ratio, rgb_ratio = s["render"] / s["floor"], s["render"] / s["floor_rgb"]
        wm_ratio, cpu = s["wm"] / s["floor_wm"], s["render_cpu"] / s["floor_cpu"]
        print(
            f"| {name} | {plan.frame_count} | {s['render']:.2f} | {s['floor']:.2f} |"
            f" {ratio:.2f} | {s['floor_rgb']:.2f} | {rgb_ratio:.2f} | {s['wm']:.2f} |"
            f" {s['floor_wm']:.2f} | {wm_ratio:.2f} | {cpu:.2f} | {s['x264']:.2f} |",
            flush=True,
        )
        key = name.replace("-", "_")
        results[f"{key}_s"] = s["render"]
        results[f"{key}_ratio"] = ratio
        results[f"{key}_rgb_ratio"] = rgb_ratio
        results[f"{key}_wm_ratio"] = wm_ratio
        results[f"{key}_cpu_ratio"] = cpu
    print("RESULT " + " ".join(f"{k}={v:.3f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
