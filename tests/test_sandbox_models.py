"""Every Kling model, mode and aspect ratio renders at Kling's size, frame rate and length.

The expected sizes are written out from the contract (section 8), not computed with the code
under test. Planning is checked for every combination; real renders cover each distinct frame
size at the shortest clip, and the full matrix runs under ``-m slow``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from reelgate.domain.models import ModelSpec
from reelgate.domain.requests import Text2VideoRequest
from reelgate.engines.base import Job
from reelgate.engines.sandbox import SandboxEngine
from reelgate.engines.sandbox.plan import plan_clip
from reelgate.media import probe

SIZES = {
    "720p": {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)},
    "1080p": {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1440, 1440)},
}
PRO_IS_1080P = {"kling-v1-6", "kling-v2-5-turbo", "kling-v2-6", "kling-v3"}
MODES = {
    "kling-v1": ("std", "pro"),
    "kling-v1-6": ("std", "pro"),
    "kling-v2-master": ("std", "pro"),  # no mode choice: the mode is accepted and ignored
    "kling-v2-1-master": ("std", "pro"),
    "kling-v2-5-turbo": ("std", "pro"),
    "kling-v2-6": ("std", "pro"),
    "kling-v3": ("std", "pro"),
}
DURATIONS = {model: (5, 10) for model in MODES} | {"kling-v3": tuple(range(3, 16))}


def expected(model: str, mode: str, aspect: str, duration: int) -> tuple[int, int, int, int]:
    """(width, height, fps, frames) as the contract states them."""
    hd = model == "kling-v2-1-master" or (mode == "pro" and model in PRO_IS_1080P)
    width, height = SIZES["1080p" if hd else "720p"][aspect]
    fps = 30 if model == "kling-v1" else 24
    return width, height, fps, fps * duration


ENGINE = SandboxEngine([], None)
SPECS = {spec.id: spec for spec in ENGINE.models()}
COMBOS = [
    (model, mode, aspect, duration)
    for model, modes in MODES.items()
    for mode in modes
    for aspect in ("16:9", "9:16", "1:1")
    for duration in DURATIONS[model]
]


def request(mode: str, aspect: str, duration: int) -> Text2VideoRequest:
    return Text2VideoRequest.model_validate(
        {"prompt": "a windmill", "mode": mode, "aspect_ratio": aspect, "duration": str(duration)}
    )


def test_the_sandbox_serves_the_seven_kling_models() -> None:
    assert list(SPECS) == list(MODES)


@pytest.mark.parametrize(("model", "mode", "aspect", "duration"), COMBOS)
def test_plan_matches_kling(model: str, mode: str, aspect: str, duration: int) -> None:
    plan = plan_clip(SPECS[model], request(mode, aspect, duration), "a windmill")
    assert (plan.width, plan.height, plan.fps, plan.frame_count) == expected(
        model, mode, aspect, duration
    )
    assert plan.duration == duration


async def render(spec: ModelSpec, mode: str, aspect: str, duration: int, workdir: Path) -> None:
    job = Job(f"task-{spec.id}-{mode}", spec, request(mode, aspect, duration), workdir)
    output = await ENGINE.generate(job, lambda percent: None, lambda: False)
    found = probe(output.videos[0].path)
    width, height, fps, frames = expected(spec.id, mode, aspect, duration)
    assert (found.width, found.height, found.fps, found.frame_count) == (width, height, fps, frames)
    assert found.duration == pytest.approx(duration, abs=1e-3)
    assert (found.codec, found.pix_fmt, found.has_audio) == ("h264", "yuv420p", False)
    assert output.videos[0].duration == duration


@pytest.mark.parametrize("mode", ["std", "pro"])
@pytest.mark.parametrize("aspect", ["16:9", "9:16", "1:1"])
async def test_each_frame_size_renders(tmp_path: Path, mode: str, aspect: str) -> None:
    await render(SPECS["kling-v3"], mode, aspect, 3, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "mode", "aspect", "duration"),
    [(m, mode, a, DURATIONS[m][0]) for m in MODES for mode in MODES[m] for a in SIZES["720p"]]
    + [(m, "pro", "16:9", DURATIONS[m][-1]) for m in MODES],
)
async def test_every_model_renders(
    tmp_path: Path, model: str, mode: str, aspect: str, duration: int
) -> None:
    await render(SPECS[model], mode, aspect, duration, tmp_path)
