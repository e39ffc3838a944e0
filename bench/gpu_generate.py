"""Seconds per clip for a diffusers catalogue entry: the stock pipeline call against reelgate's.

For one fixed prompt it runs, side by side in one process and with identical settings (size,
frames, steps, guidance, scheduler shift, seed):

- ``stock``: ``<Pipeline>.from_pretrained(weights, dtype).to(device)`` and a plain call;
- ``engine``: the engine's loader and runner with the entry's memory options but no speed option;
- one row per speed option (``compile``, ``cache``, ``fp8``, ``lora``): the engine with only it;
- ``engine e2e``: the full engine through its generation process (wall time only).

Each row shows text encoding, denoising, decode and MP4 encode (median over ``--runs`` after
``--warmup`` calls; the first call, which pays for compilation, is shown separately), the peak
GPU memory, and the speed-up over ``stock``.

    python bench/gpu_generate.py --tiny                       # CPU, tiny random-weight Wan
    python bench/gpu_generate.py --catalog models.toml --model wan2.1-t2v-1.3b --mode pro
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import statistics
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.diffusers.tiny_models

from reelgate.domain.requests import Text2VideoRequest  # noqa: E402
from reelgate.engines.base import Job  # noqa: E402
from reelgate.engines.diffusers import DiffusersEngine, ModelEntry  # noqa: E402
from reelgate.engines.diffusers.loader import LoadedModel, load_model  # noqa: E402
from reelgate.engines.diffusers.mapping import GenerationPlan, plan_for  # noqa: E402
from reelgate.engines.diffusers.options import CacheSpec, SpeedOptions  # noqa: E402
from reelgate.engines.diffusers.runner import _encode, generate, pipeline_kwargs  # noqa: E402
from reelgate.engines.diffusers.timing import PhaseTimer  # noqa: E402

PROMPT = "a red fox runs through a snowy forest at sunrise, wide shot, slow camera pan"
PHASES = ("text_encode", "denoise", "decode", "encode")


def tiny_entry(family: str, workdir: Path) -> dict[str, Any]:
    from tests.diffusers.tiny_models import BUILDERS

    weights = BUILDERS[family](workdir / f"tiny-{family}")
    profile = {"short_side": 64, "fps": 8, "steps": 8, "max_sequence_length": 16}
    return {
        "id": f"tiny-{family}",
        "engine": "diffusers",
        "weights": str(weights),
        "device": "cpu",
        "durations": [1, 2],
        "profiles": {"std": profile},
    }


def variants(entry: ModelEntry, try_defaults: bool) -> dict[str, ModelEntry]:
    """stock/engine baselines plus one entry per speed option (the entry's, or defaults)."""
    base = dataclasses.replace(entry, speed=SpeedOptions())
    rows = {"engine": base}
    speed = entry.speed
    compile_ = speed.compile or ("regional" if try_defaults else None)
    cache = speed.cache or (CacheSpec("first_block", {"threshold": 0.05}) if try_defaults else None)
    fp8 = speed.fp8 or ("storage" if try_defaults else None)
    if compile_:
        rows[f"compile {compile_}"] = dataclasses.replace(
            base, speed=SpeedOptions(compile=compile_)
        )
    if cache:
        rows[f"cache {cache.type}"] = dataclasses.replace(base, speed=SpeedOptions(cache=cache))
    if fp8:
        rows[f"fp8 {fp8}"] = dataclasses.replace(base, speed=SpeedOptions(fp8=fp8))
    return rows


def without_lora(entry: ModelEntry) -> ModelEntry:
    profiles = {m: dataclasses.replace(p, lora=None) for m, p in entry.profiles.items()}
    return dataclasses.replace(entry, profiles=profiles)


def load_stock(entry: ModelEntry) -> LoadedModel:
    import diffusers
    import torch

    from reelgate.engines.diffusers.loader import _dtype_argument, _with_flow_shift

    dtypes = {"default": getattr(torch, entry.dtype)}
    if entry.vae_dtype:
        dtypes["vae"] = getattr(torch, entry.vae_dtype)
    pipe = getattr(diffusers, entry.pipeline).from_pretrained(
        entry.weights, **_dtype_argument(dtypes)
    )
    pipe.set_progress_bar_config(disable=True)
    pipe.to(entry.device)
    schedulers = {}
    for mode, profile in entry.profiles.items():
        if profile.flow_shift is not None:  # a setting, not a speed option: keep it identical
            schedulers[mode] = _with_flow_shift(pipe.scheduler, profile.flow_shift)
    return LoadedModel(entry, pipe, [], schedulers)


def run_stock(loaded: LoadedModel, plan: GenerationPlan) -> dict[str, Any]:
    import torch

    cuda = loaded.entry.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(loaded.entry.device)
    timer = PhaseTimer((lambda: torch.cuda.synchronize()) if cuda else (lambda: None))
    loaded.pipe.scheduler = loaded.schedulers.get(plan.mode, loaded.pipe.scheduler)
    kwargs = pipeline_kwargs(loaded, plan, torch.Generator("cpu").manual_seed(plan.seed))
    kwargs["callback_on_step_end"] = lambda pipe, i, t, tensors: timer.step_done() or {}
    with timer.around_call(loaded.pipe):
        video = loaded.pipe(**kwargs).frames[0]
    frames = (video * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    _encode(plan, frames)
    timer.encode_done()
    peak = torch.cuda.max_memory_allocated(loaded.entry.device) if cuda else None
    return {"timings": timer.phases(), "peak": peak}


def measure(name: str, load: Any, run: Any, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    loaded = load()
    load_s = time.perf_counter() - started
    samples, first = [], None
    for i in range(args.warmup + args.runs):
        t0 = time.perf_counter()
        out = run(loaded)
        wall = time.perf_counter() - t0
        if i == 0:
            first = wall
        if i >= args.warmup:
            samples.append({**out["timings"], "total": wall, "peak": out["peak"]})
    del loaded
    _free()
    row = {k: statistics.median(s[k] for s in samples) for k in (*PHASES, "total")}
    peaks = [s["peak"] for s in samples if s["peak"] is not None]
    row |= {"name": name, "load": load_s, "first": first, "peak": max(peaks) if peaks else None}
    print(f"  measured {name}: {row['total']:.3f} s", file=sys.stderr)
    return row


def _quiet() -> None:
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    for lib in (dlog, tlog):
        lib.set_verbosity_error()
        lib.disable_progress_bar()


def _free() -> None:
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def engine_e2e(raw: dict[str, Any], job: Job, args: argparse.Namespace, data: Path) -> float:
    async def go() -> float:
        engine = DiffusersEngine([raw], data)
        try:
            await engine.warm_up()
            times = []
            for _ in range(args.warmup + args.runs):
                t0 = time.perf_counter()
                await engine.generate(job, lambda p: None, lambda: False)
                times.append(time.perf_counter() - t0)
            return statistics.median(times[args.warmup :])
        finally:
            await engine.aclose()

    return asyncio.run(go())


def print_table(rows: list[dict[str, Any]], plan: GenerationPlan, device: str) -> None:
    print(
        f"\n{plan.model_id} {plan.mode}: {plan.width}x{plan.height}, {plan.num_frames} frames,"
        f" {plan.steps} steps, guidance {plan.guidance_scale:g}, on {device}"
    )
    columns = ["variant", "total s", *(f"{p} s" for p in PHASES), "first call s", "peak GPU GiB"]
    columns.append("vs stock")
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    stock = next((r["total"] for r in rows if r["name"] == "stock"), None)
    for r in rows:
        cells = [r["name"], f"{r['total']:.3f}"]
        cells += [f"{r[p]:.3f}" if p in r else "" for p in PHASES]
        cells.append(f"{r['first']:.3f}" if r.get("first") is not None else "")
        cells.append(f"{r['peak'] / 2**30:.2f}" if r.get("peak") else "-")
        cells.append(f"{stock / r['total']:.2f}x" if stock else "")
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tiny", nargs="?", const="wan", choices=("wan", "ltx"))
    source.add_argument("--catalog", type=Path, help="a models TOML file")
    parser.add_argument("--model", help="the entry id in --catalog")
    parser.add_argument("--mode", default="std")
    parser.add_argument("--aspect-ratio", default="16:9")
    parser.add_argument("--duration", type=int)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--try-options", action="store_true", help="also measure default options")
    parser.add_argument("--skip", default="", help="comma-separated rows to skip, e.g. compile")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    _quiet()
    work = Path(tempfile.mkdtemp(prefix="reelgate-bench-"))
    if args.tiny:
        raw = tiny_entry(args.tiny, work)
        args.try_options = True
    else:
        entries = tomllib.loads(args.catalog.read_text())["models"]
        raw = next(e for e in entries if e["id"] == args.model)
    engine = DiffusersEngine([raw], work / "data")
    spec = engine.models()[0]
    entry = engine.entry(spec.id)
    duration = args.duration or min(entry.durations, key=lambda d: abs(d - 5))
    request = Text2VideoRequest(
        prompt=PROMPT, mode=args.mode, aspect_ratio=args.aspect_ratio, duration=duration
    )
    spec.check(request)
    job = Job("bench-task", spec, request, work / "out")
    plan = plan_for(entry, job)
    skip = set(filter(None, args.skip.split(",")))
    plain = without_lora(entry)
    rows = [measure("stock", lambda: load_stock(plain), lambda m: run_stock(m, plan), args)]
    table = variants(plain, args.try_options)
    if entry.profile_for(plan.mode).lora is not None:
        table[f"lora ({plan.steps} steps)"] = dataclasses.replace(entry, speed=SpeedOptions())
    for name, variant in table.items():
        if name.split(" ")[0] in skip:
            continue

        def run(m: LoadedModel) -> dict[str, Any]:
            result = generate(m, plan, lambda p: None, lambda: False)
            return {"timings": result.timings, "peak": result.peak_memory_bytes}

        rows.append(measure(name, lambda v=variant: load_model(v), run, args))
    if "e2e" not in skip:
        rows.append({"name": "engine e2e", "total": engine_e2e(raw, job, args, work / "data")})
    print_table(rows, plan, entry.device)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":  # required: the engine's generation process is started with spawn
    main()
