"""Seconds and memory per phase for a diffusers model: the stock pipeline call against reelgate's.

Sources of the model (one of):

- ``--random-weights FAMILY``: the family's real architecture built from its published
  configuration with random weights, on the device, nothing downloaded (a denoising step takes
  as long whatever the weights' values). Families: wan2.1-1.3b, wan2.1-14b, wan2.2-ti2v-5b.
  ``--tiny-config`` swaps in the tiny test configuration (CPU, CI).
- ``--catalog models.toml --model ID``: a catalogue entry with its real weights.
- ``--tiny [wan|ltx|...]``: a tiny random-weight pipeline saved and loaded from disk.

Rows, for one fixed prompt and identical size, frames, guidance, shift and seed:

- ``stock``: the plain pipeline call;
- ``engine``: reelgate's loader and runner with the entry's memory options, no speed option;
- one row per speed option (``compile``, ``cache``, ``fp8 torchao``) and ``fp8 storage``, which
  is a memory option (FP8 weights upcast per layer: less memory, usually a little slower);
- ``lora``: the LoRA profile with its own steps and guidance (the others use the base profile);
- ``engine e2e`` (catalogue and tiny sources): the full engine through its generation process.

Each row runs ``--steps`` denoising steps (default 4) and reports text encoding, seconds per
denoising step, VAE decode and MP4 encode (median of ``--runs`` after ``--warmup``), the peak
GPU memory of each phase, the clip's total extrapolated to the profile's step count, and the
ratio of the measured step to its FLOP floor::

    floor_s = passes * L * (8 N d^2 + 4 N^2 d + 4 N d^2 + 4 N M d + 4 N d f) / peak_flops

with L layers of width d and feed-forward width f, N video tokens (latent frames x latent
height x latent width / patch area), M text tokens, and passes = 2 with classifier-free guidance
(the self-attention projections, scores and values; the cross-attention's query/output
projections and scores; the feed-forward). Key/value projections of the M text tokens, norms,
modulation and the VAE are left out, so the floor is a lower bound. ``--peak-tflops`` is the
device's dense bf16 peak (H200: 989).

    python bench/gpu_generate.py --random-weights wan2.1-1.3b          # one H200, < 10 min
    python bench/gpu_generate.py --random-weights wan2.1-1.3b --tiny-config --device cpu
    python bench/gpu_generate.py --catalog models.toml --model wan-1.3b --mode pro
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.diffusers.tiny_models

from reelgate.domain.requests import Text2VideoRequest  # noqa: E402
from reelgate.engines.base import Job  # noqa: E402
from reelgate.engines.diffusers import DiffusersEngine, ModelEntry, parse_entry  # noqa: E402
from reelgate.engines.diffusers.loader import LoadedModel, configure, load_model  # noqa: E402
from reelgate.engines.diffusers.mapping import GenerationPlan, plan_for  # noqa: E402
from reelgate.engines.diffusers.options import CacheSpec, SpeedOptions  # noqa: E402
from reelgate.engines.diffusers.runner import (  # noqa: E402
    _encode,
    _peak_since_last,
    generate,
    pipeline_kwargs,
)
from reelgate.engines.diffusers.timing import PhaseTimer  # noqa: E402

PROMPT = "a red fox runs through a snowy forest at sunrise, wide shot, slow camera pan"
PHASES = ("text_encode", "denoise", "decode", "encode")

# Published configurations (the checkpoints' transformer/, vae/ and text_encoder/ config.json).
UMT5_XXL = {
    "vocab_size": 256384, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24,
    "num_heads": 64, "relative_attention_num_buckets": 32, "feed_forward_proj": "gated-gelu",
}  # fmt: skip
WAN_TRANSFORMER = {
    "patch_size": (1, 2, 2), "text_dim": 4096, "freq_dim": 256, "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads", "eps": 1e-6, "rope_max_seq_len": 1024,
}  # fmt: skip
WAN_VAE = {"base_dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2,
           "temperal_downsample": [False, True, True]}  # fmt: skip
RANDOM = {
    "wan2.1-1.3b": {
        "transformer": WAN_TRANSFORMER | {"num_attention_heads": 12, "attention_head_dim": 128,
                                          "in_channels": 16, "out_channels": 16,
                                          "ffn_dim": 8960, "num_layers": 30},
        "vae": WAN_VAE,
    },
    "wan2.1-14b": {
        "transformer": WAN_TRANSFORMER | {"num_attention_heads": 40, "attention_head_dim": 128,
                                          "in_channels": 16, "out_channels": 16,
                                          "ffn_dim": 13824, "num_layers": 40},
        "vae": WAN_VAE,
    },
    "wan2.2-ti2v-5b": {
        "transformer": WAN_TRANSFORMER | {"num_attention_heads": 24, "attention_head_dim": 128,
                                          "in_channels": 48, "out_channels": 48,
                                          "ffn_dim": 14336, "num_layers": 30},
        "vae": {"base_dim": 160, "decoder_base_dim": 256, "z_dim": 48, "in_channels": 12,
                "out_channels": 12, "is_residual": True, "patch_size": 2,
                "scale_factor_spatial": 16, "scale_factor_temporal": 4, "dim_mult": [1, 2, 4, 4],
                "num_res_blocks": 2, "temperal_downsample": [False, True, True],
                "latents_mean": [0.0] * 48, "latents_std": [1.0] * 48},
        "expand_timesteps": True,
    },
}  # fmt: skip
TINY = {
    "transformer": {"patch_size": (1, 2, 2), "num_attention_heads": 2, "attention_head_dim": 12,
                    "in_channels": 16, "out_channels": 16, "text_dim": 32, "freq_dim": 256,
                    "ffn_dim": 32, "num_layers": 2, "cross_attn_norm": True,
                    "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 32},
    "vae": {"base_dim": 3, "z_dim": 16, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1,
            "temperal_downsample": [False, True, True]},
    "text": {"vocab_size": 64, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2,
             "num_heads": 4, "relative_attention_num_buckets": 8},
}  # fmt: skip


def random_wan(family: str, tiny: bool, device: str, dtype: str) -> Callable[[], Any]:
    """A builder of a WanPipeline with the family's architecture and random weights."""

    def build() -> Any:
        import torch
        from diffusers import (
            AutoencoderKLWan,
            UniPCMultistepScheduler,
            WanPipeline,
            WanTransformer3DModel,
        )
        from tests.diffusers.tiny_models import _tokenizer
        from transformers import UMT5Config, UMT5EncoderModel

        config = RANDOM[family]
        torch_dtype = getattr(torch, dtype)
        torch.manual_seed(0)
        with torch.device(device):  # initialise on the device: a 14B model in seconds
            text = UMT5EncoderModel(UMT5Config(**(TINY["text"] if tiny else UMT5_XXL)))
            text = text.to(torch_dtype).eval()
            transformer = WanTransformer3DModel(
                **(TINY["transformer"] if tiny else config["transformer"])
            )
            transformer = transformer.to(torch_dtype)
            vae = AutoencoderKLWan(**(TINY["vae"] if tiny else config["vae"])).to(torch.float32)
        scheduler = UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0
        )
        extra = {} if tiny else {k: v for k, v in config.items() if k == "expand_timesteps"}
        return WanPipeline(
            tokenizer=_tokenizer(),
            text_encoder=text,
            transformer=transformer,
            vae=vae,
            scheduler=scheduler,
            **extra,
        )

    return build


def floor_seconds(
    entry: ModelEntry, plan: GenerationPlan, transformer: Any, peak: float
) -> float | None:
    """The FLOP floor of one denoising step (formula in the module docstring); Wan only."""
    c = transformer.config
    if "ffn_dim" not in c:
        return None
    d = c.num_attention_heads * c.attention_head_dim
    layers, ffn = c.num_layers, c.ffn_dim
    patch = c.patch_size[1] * c.patch_size[2]
    spatial = 16 if entry.family.size_multiple == 32 else 8  # Wan 2.2 TI2V: 16x VAE
    frames = (plan.num_frames - 1) // 4 + 1
    n = frames * (plan.height // spatial) * (plan.width // spatial) // patch
    m = entry.profile_for(plan.mode).max_sequence_length or 512
    passes = 2 if plan.guidance_scale > 1 else 1
    per_layer = 8 * n * d * d + 4 * n * n * d + 4 * n * d * d + 4 * n * m * d + 4 * n * d * ffn
    return passes * layers * per_layer / peak


def variants(entry: ModelEntry) -> dict[str, ModelEntry]:
    """engine (no speed option), then one entry per option: the entry's own or a default."""
    base = dataclasses.replace(entry, speed=SpeedOptions())
    speed = entry.speed
    cache = speed.cache or CacheSpec("first_block", {"threshold": 0.05})
    rows = {"engine": base}
    rows[f"compile {speed.compile or 'regional'}"] = dataclasses.replace(
        base, speed=SpeedOptions(compile=speed.compile or "regional")
    )
    rows[f"cache {cache.type}"] = dataclasses.replace(base, speed=SpeedOptions(cache=cache))
    rows["fp8 storage (memory)"] = dataclasses.replace(base, speed=SpeedOptions(fp8="storage"))
    if entry.device.startswith("cuda"):
        rows["fp8 torchao"] = dataclasses.replace(base, speed=SpeedOptions(fp8="torchao"))
    return rows


def base_and_lora(raw: dict[str, Any]) -> tuple[ModelEntry, ModelEntry | None]:
    """The entry without LoRA (its base steps and guidance), and as written if it has one."""
    profiles = raw.get("profiles", {})
    has_lora = any("lora" in p for p in profiles.values())
    plain = {m: {k: v for k, v in p.items() if k != "lora"} for m, p in profiles.items()}
    base = parse_entry(raw | ({"profiles": plain} if profiles else {}))
    return base, parse_entry(raw) if has_lora else None


def run_stock(loaded: LoadedModel, plan: GenerationPlan) -> dict[str, Any]:
    """The plain pipeline call: the same arguments, none of the engine's options or hooks."""
    import torch

    device = loaded.entry.device
    cuda = device.startswith("cuda")
    peak = (lambda: _peak_since_last(torch, device)) if cuda else None
    timer = PhaseTimer((lambda: torch.cuda.synchronize(device)) if cuda else (lambda: None), peak)
    loaded.pipe.scheduler = loaded.schedulers.get(plan.mode, loaded.pipe.scheduler)
    kwargs = pipeline_kwargs(loaded, plan, torch.Generator("cpu").manual_seed(plan.seed))
    kwargs["callback_on_step_end"] = lambda pipe, i, t, tensors: timer.step_done() or {}
    with timer.around_call(loaded.pipe):
        video = loaded.pipe(**kwargs).frames[0]
    frames = (video * 255).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    _encode(plan, frames)
    timer.encode_done()
    return {"timings": timer.phases(), "peaks": timer.peaks}


def run_engine(loaded: LoadedModel, plan: GenerationPlan) -> dict[str, Any]:
    result = generate(loaded, plan, lambda p: None, lambda: False)
    return {"timings": result.timings, "peaks": result.phase_peaks}


def measure(
    name: str,
    load: Callable[[], LoadedModel],
    run: Callable[[LoadedModel, GenerationPlan], dict[str, Any]],
    plan: GenerationPlan,
    args: argparse.Namespace,
) -> dict[str, Any]:
    started = time.perf_counter()
    loaded = load()
    load_s = time.perf_counter() - started
    samples, first = [], None
    for i in range(args.warmup + args.runs):
        t0 = time.perf_counter()
        out = run(loaded, plan)
        wall = time.perf_counter() - t0
        first = wall if i == 0 else first
        if i >= args.warmup:
            samples.append({**out["timings"], "total": wall, "peaks": out["peaks"]})
    transformer = loaded.pipe.transformer
    del loaded
    _free()
    row: dict[str, Any] = {
        k: statistics.median(s.get(k, 0.0) for s in samples) for k in (*PHASES, "total")
    }
    row["step"] = row["denoise"] / plan.steps
    peaks = {
        p: max(s["peaks"].get(p, 0) for s in samples) for p in ("text_encode", "denoise", "decode")
    }
    row |= {"name": name, "load": load_s, "first": first, "steps": plan.steps, "peaks": peaks}
    row["transformer"] = transformer
    print(f"  measured {name}: {row['total']:.3f} s", file=sys.stderr)
    return row


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


def print_table(rows: list[dict[str, Any]], title: str) -> None:
    print(f"\n{title}")
    columns = ["variant", "steps", "text s", "s/step", "decode s", "encode s", "clip s (extrap.)"]
    columns += ["vs stock", "step / floor", "peak GiB text/denoise/decode", "first call s"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    stock = next((r for r in rows if r["name"] == "stock"), None)
    for r in rows:
        if "step" not in r:
            print(f"| {r['name']} | | | | | | {r['total']:.3f} (measured) | | | | |")
            continue
        peaks = "/".join(
            f"{r['peaks'][p] / 2**30:.2f}" for p in ("text_encode", "denoise", "decode")
        )
        cells = [r["name"], str(r["full_steps"]), f"{r['text_encode']:.3f}", f"{r['step']:.4f}"]
        cells += [f"{r['decode']:.3f}", f"{r['encode']:.3f}", f"{r['clip']:.2f}"]
        cells.append(f"{stock['clip'] / r['clip']:.2f}x" if stock else "")
        cells.append(f"{r['step'] / r['floor']:.2f}" if r.get("floor") else "")
        cells += [peaks if any(r["peaks"].values()) else "-", f"{r['first']:.3f}"]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--random-weights", choices=tuple(RANDOM), help="real size, no download")
    source.add_argument("--tiny", nargs="?", const="wan", help="a tiny pipeline from disk")
    source.add_argument("--catalog", type=Path, help="a models TOML file")
    parser.add_argument("--tiny-config", action="store_true", help="with --random-weights")
    parser.add_argument("--model", help="the entry id in --catalog")
    parser.add_argument("--device", default="cuda", help="with --random-weights or --tiny")
    parser.add_argument("--mode", default="std")
    parser.add_argument("--aspect-ratio", default="16:9")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="measured steps per row")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak")
    parser.add_argument("--skip", default="", help="comma-separated rows to skip, e.g. compile")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reelgate-bench-"))
    build: Callable[[], Any] | None = None
    if args.random_weights:
        weights = str(work / "unused")  # the pipeline is built in memory; never read
        raw: dict[str, Any] = {"id": args.random_weights, "engine": "diffusers",
                               "weights": weights, "family": args.random_weights,
                               "device": args.device}  # fmt: skip
        if args.tiny_config:
            sizes = {"16:9": [64, 32], "9:16": [32, 64], "1:1": [32, 32]}
            profile = {"sizes": sizes, "fps": 8, "max_sequence_length": 16}
            raw |= {"durations": [1], "profiles": {"std": profile}}
            raw |= {"aspect_ratios": ["16:9", "9:16"]}
            args.duration = 1
        base, lora = parse_entry(raw), None
        build = random_wan(args.random_weights, args.tiny_config, base.device, base.dtype)
    elif args.tiny:
        from tests.diffusers.tiny_models import BUILDERS

        weights = str(BUILDERS[args.tiny](work / f"tiny-{args.tiny}"))
        sizes = {"16:9": [64, 32], "9:16": [32, 64], "1:1": [32, 32]}
        profile = {"sizes": sizes, "fps": 8, "steps": 8, "max_sequence_length": 16}
        raw = {"id": f"tiny-{args.tiny}", "engine": "diffusers", "weights": weights}
        raw |= {"device": args.device, "durations": [1], "profiles": {"std": profile}}
        args.duration = 1
        base, lora = base_and_lora(raw)
    else:
        entries = tomllib.loads(args.catalog.read_text())["models"]
        raw = next(e for e in entries if e["id"] == args.model)
        base, lora = base_and_lora(raw)

    def plan_of(entry: ModelEntry) -> tuple[GenerationPlan, int]:
        engine_spec = DiffusersEngine([raw], work / "data").models()[0]
        request = Text2VideoRequest(
            prompt=PROMPT, mode=args.mode, aspect_ratio=args.aspect_ratio, duration=args.duration
        )
        engine_spec.check(request)
        plan = plan_for(entry, Job("bench-task", engine_spec, request, work / "out"))
        return dataclasses.replace(plan, steps=min(args.steps, plan.steps)), plan.steps

    def loader(entry: ModelEntry) -> Callable[[], LoadedModel]:
        if build is not None:
            return lambda: configure(entry, build())
        return lambda: load_model(entry)

    skip = set(filter(None, args.skip.split(",")))
    plan, full_steps = plan_of(base)
    stock = dataclasses.replace(base, speed=SpeedOptions(), memory=type(base.memory)())
    table: list[tuple[str, ModelEntry, GenerationPlan, int]] = [("stock", stock, plan, full_steps)]
    table += [(name, entry, plan, full_steps) for name, entry in variants(base).items()]
    if lora is not None:
        lora_plan, lora_steps = plan_of(lora)
        table.append((f"lora ({lora_steps} steps)", lora, lora_plan, lora_steps))
    rows = []
    for name, entry, row_plan, steps in table:
        if name.split(" ")[0] in skip:
            continue
        run = run_stock if name == "stock" else run_engine
        row = measure(name, loader(entry), run, row_plan, args)
        row["full_steps"] = steps
        row["clip"] = row["text_encode"] + row["step"] * steps + row["decode"] + row["encode"]
        peak = args.peak_tflops * 1e12
        row["floor"] = floor_seconds(entry, row_plan, row.pop("transformer"), peak)
        rows.append(row)
    if "e2e" not in skip and build is None:
        spec = DiffusersEngine([raw], work / "data").models()[0]
        request = Text2VideoRequest(
            prompt=PROMPT, mode=args.mode, aspect_ratio=args.aspect_ratio, duration=args.duration
        )
        job = Job("bench-task", spec, request, work / "e2e")
        rows.append({"name": "engine e2e", "total": engine_e2e(raw, job, args, work / "data")})
    title = (
        f"{base.id} ({base.family.name}) {plan.mode}: {plan.width}x{plan.height},"
        f" {plan.num_frames} frames, {full_steps} steps ({args.steps} measured), guidance"
        f" {plan.guidance_scale:g}, on {base.device}; floor at {args.peak_tflops:g} TFLOP/s"
    )
    print_table(rows, title)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":  # required: the engine's generation process is started with spawn
    main()
