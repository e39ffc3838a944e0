"""LoRA switching between profiles of one model: the right adapter each time, no recompile.

Every LoRA of an entry is loaded once and stays active; a profile picks its adapter through the
adapters' tensor scales (:mod:`reelgate.engines.diffusers.lora`). A resident adapter at scale 0
adds exactly nothing, so outputs are compared for equality, not closeness.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")
av = pytest.importorskip("av")
import numpy as np  # noqa: E402

from reelgate.engines.diffusers import parse_entry  # noqa: E402
from reelgate.engines.diffusers.mapping import GenerationPlan  # noqa: E402

from .test_diffusers_families import PROFILE, raw_entry  # noqa: E402
from .tiny_models import build_tiny_wan, build_tiny_wan_lora  # noqa: E402

pytestmark = [pytest.mark.diffusers]


@pytest.fixture(scope="module")
def wan(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wan-lora")
    weights = build_tiny_wan(root / "wan")
    return {
        "weights": weights,
        "a": build_tiny_wan_lora(weights, root / "a", seed=1),
        "b": build_tiny_wan_lora(weights, root / "b", seed=2),
    }


def load(wan: dict[str, Path], model_id: str, std: Any, pro: Any, **keys: Any) -> Any:
    from reelgate.engines.diffusers.loader import load_model

    profiles = {
        mode: PROFILE | ({"lora": {"path": str(wan[lora[0]]), "scale": lora[1]}} if lora else {})
        for mode, lora in (("std", std), ("pro", pro))
    }
    return load_model(parse_entry(raw_entry(model_id, wan["weights"], profiles=profiles, **keys)))


def render(loaded: Any, mode: str, workdir: Path) -> Any:
    from reelgate.engines.diffusers.runner import generate

    plan = GenerationPlan(
        "t", loaded.entry.id, mode, "a fox", "", 64, 32, 9, 8, 3, 3.0, None, 1, workdir, False
    )
    result = generate(loaded, plan, lambda p: None, lambda: False)
    with av.open(result.video_path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def test_switching_profiles_back_and_forth_applies_each_profiles_adapter(
    wan: dict[str, Path], tmp_path: Path
):
    plain = load(wan, "plain", None, None)
    none_a = load(wan, "none-a", None, ("a", 1.0))
    a_b = load(wan, "a-b", ("a", 1.0), ("b", 0.5))
    only_b = load(wan, "only-b", None, ("b", 0.5))
    assert plain.adapters is None
    assert none_a.adapters is not None and a_b.adapters is not None
    assert set(a_b.adapters.names.values()) == {"reelgate_std", "reelgate_pro"}  # both resident

    modes = ["std", "pro", "std", "pro"]
    seen = [render(none_a, mode, tmp_path / f"{i}") for i, mode in enumerate(modes)]
    assert np.array_equal(seen[0], seen[2]) and np.array_equal(seen[1], seen[3])
    assert not np.array_equal(seen[0], seen[1])  # the LoRA acts
    assert np.array_equal(seen[0], render(plain, "std", tmp_path / "p"))  # "no LoRA" is no LoRA

    # a-b's std is LoRA a alone (b resident at 0), its pro LoRA b alone at its own scale
    a_b_std = render(a_b, "std", tmp_path / "s1")
    a_b_pro = render(a_b, "pro", tmp_path / "p1")
    assert np.array_equal(a_b_std, seen[1])
    assert np.array_equal(a_b_pro, render(only_b, "pro", tmp_path / "b"))
    assert np.array_equal(a_b_std, render(a_b, "std", tmp_path / "s2"))
    assert not np.array_equal(a_b_std, a_b_pro)


@pytest.mark.slow
# inductor, compiling in this process, touches torch.jit (the engine's child is not under pytest)
@pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")
def test_switching_profiles_on_a_compiled_model_does_not_recompile(
    wan: dict[str, Path], tmp_path: Path
):
    """Warm-up compiles the shape once; switching LoRA profiles afterwards changes tensor values
    only, which dynamo's guards do not look at (``error_on_recompile`` turns any recompile into
    an error). The control at the end shows the check bites: a peft float scale recompiles."""
    import torch
    from torch._dynamo.exc import RecompileError

    from reelgate.engines.diffusers.runner import warm

    loaded = load(wan, "c", ("a", 1.0), ("b", 1.0), compile="regional", aspect_ratios=["16:9"])
    plan = GenerationPlan(
        "w", "c", "std", "warm-up", "", 64, 32, 9, 8, 3, 3.0, None, 1, tmp_path, False
    )
    warm(loaded, plan)
    with torch._dynamo.config.patch(error_on_recompile=True):
        first = render(loaded, "std", tmp_path / "1")
        other = render(loaded, "pro", tmp_path / "2")
        again = render(loaded, "std", tmp_path / "3")
        assert np.array_equal(first, again) and not np.array_equal(first, other)
        # the control: peft's own switch (float scales) on the same compiled model
        loaded.pipe.set_adapters(["reelgate_std", "reelgate_pro"], [1.0, 0.0])
        with pytest.raises(RecompileError):
            loaded.pipe(
                prompt="a fox", width=64, height=32, num_frames=9, num_inference_steps=1,
                output_type="latent",
            )  # fmt: skip
