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
  frames costs (colour conversion and x264) when producing them is free;
- ``x264``: the libx264 encode alone of that frame already converted to YUV (for reference).

Ratios are render / floor in wall seconds (the target is 1.5 or less) and in CPU seconds of
the process, all threads (steadier on a busy machine; the encoder threads let wall time fall
below CPU time when a core is free). Each number is the median of ``--repeat`` runs.
Ends with ``RESULT name=value ...``.
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
from av.video.reformatter import ColorRange, Colorspace

from reelgate.domain.kling import kling_models
from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.sandbox.plan import ClipPlan, plan_clip
from reelgate.engines.sandbox.render import Scene, render_clip
from reelgate.media import EncodeSettings, encode_clip

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


def floor(plan: ClipPlan, frame: np.ndarray, out_dir: Path, settings: EncodeSettings) -> None:
    encode_clip(
        (frame for _ in range(plan.frame_count)),
        fps=plan.fps,
        width=plan.width,
        height=plan.height,
        out_path=out_dir / "f.mp4",
        settings=settings,
    )


def x264_only(plan: ClipPlan, frame: np.ndarray, out_dir: Path, settings: EncodeSettings) -> None:
    yuv = av.VideoFrame.from_numpy_buffer(frame, format="rgba").reformat(
        format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
    )
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
    keys = ("render", "wm", "floor", "x264")
    runs: dict[str, list[float]] = {k: [] for k in (*keys, *(f"{k}_cpu" for k in keys))}
    for _ in range(repeat):  # interleaved, so a change of load hits all alike
        runs["floor"].append(timed(lambda d: floor(plan, frame, d, settings), runs["floor_cpu"]))
        runs["render"].append(
            timed(
                lambda d: render_clip(plan, d, watermark=False, settings=settings),
                runs["render_cpu"],
            )
        )
        runs["wm"].append(
            timed(lambda d: render_clip(plan, d, watermark=True, settings=settings), runs["wm_cpu"])
        )
        runs["x264"].append(timed(lambda d: x264_only(plan, frame, d, settings), runs["x264_cpu"]))
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
        "| clip | frames | render s | render+wm s | floor s | x264 s | ratio | ratio wm"
        " | CPU ratio | CPU ratio wm |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    results: dict[str, float] = {}
    for name in args.only or CASES:
        plan = plan_for(*CASES[name])
        s = measure(plan, max(args.repeat, 1), settings)
        ratio, ratio_wm = s["render"] / s["floor"], s["wm"] / s["floor"]
        cpu, cpu_wm = s["render_cpu"] / s["floor_cpu"], s["wm_cpu"] / s["floor_cpu"]
        print(
            f"| {name} | {plan.frame_count} | {s['render']:.2f} | {s['wm']:.2f} |"
            f" {s['floor']:.2f} | {s['x264']:.2f} | {ratio:.2f} | {ratio_wm:.2f} |"
            f" {cpu:.2f} | {cpu_wm:.2f} |",
            flush=True,
        )
        key = name.replace("-", "_")
        results[f"{key}_s"] = s["render"]
        results[f"{key}_ratio"] = ratio
        results[f"{key}_wm_ratio"] = ratio_wm
        results[f"{key}_cpu_ratio"] = cpu
        results[f"{key}_wm_cpu_ratio"] = cpu_wm
    print("RESULT " + " ".join(f"{k}={v:.3f}" for k, v in results.items()))


if __name__ == "__main__":
    main()
