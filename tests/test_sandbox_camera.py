"""Camera control as motion measured in rendered frames.

Small real renders (480x270, first and last frame of the clip) are compared with image
registration written here in numpy: phase correlation for shifts, and a brute-force search over
scale and rotation about the frame centre. Image coordinates have y pointing down, so a
positive angle turns +x toward +y: clockwise as seen on screen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from reelgate.domain.requests import CameraControl, Text2VideoRequest
from reelgate.engines.base import Job
from reelgate.engines.sandbox import SandboxEngine
from reelgate.engines.sandbox.plan import ClipPlan
from reelgate.engines.sandbox.render import Scene
from reelgate.media import probe, read_frames
from reelgate.media.color import yuv420_to_rgb

Gray = NDArray[np.float64]
W, H = 480, 270
BODY = slice(40, H)  # below the caption band, which does not move
SCALES = np.geomspace(0.4, 2.5, 33)


def gray(frame: NDArray[np.uint8]) -> Gray:
    return frame[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def first_and_last(camera: dict[str, Any] | None, seed: int = 7) -> tuple[Gray, Gray]:
    control = CameraControl.model_validate(camera) if camera else None
    plan = ClipPlan(W, H, fps=24, frame_count=2, seed=seed, caption="camera test", camera=control)
    scene = Scene(plan)
    return gray(yuv420_to_rgb(scene.frame(0))), gray(yuv420_to_rgb(scene.frame(1)))


def phase_shift(a: Gray, b: Gray) -> tuple[int, int, float]:
    """``(dx, dy, peak)``: ``b`` looks like ``a`` moved by (dx, dy) pixels."""
    window = np.hanning(a.shape[0])[:, None] * np.hanning(a.shape[1])[None, :]
    fa = np.fft.fft2((a - a.mean()) * window)
    fb = np.fft.fft2((b - b.mean()) * window)
    cross = fb * np.conj(fa)
    surface = np.fft.ifft2(cross / (np.abs(cross) + 1e-9)).real
    iy, ix = np.unravel_index(np.argmax(surface), surface.shape)
    h, w = a.shape
    return (
        int(ix if ix <= w // 2 else ix - w),
        int(iy if iy <= h // 2 else iy - h),
        float(surface.max()),
    )


def turned(image: Gray, scale: float, degrees: float) -> Gray:
    """``image`` magnified by ``scale`` and turned by ``degrees`` about its centre."""
    h, w = image.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = x + 0.5 - w / 2, y + 0.5 - h / 2
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    sx = np.clip((c * x + s * y) / scale + w / 2, 0, w - 1).astype(int)
    sy = np.clip((-s * x + c * y) / scale + h / 2, 0, h - 1).astype(int)
    return image[sy, sx]


def similarity(
    a: Gray,
    b: Gray,
    rows: slice = BODY,
    scales: Any = (1.0,),
    angles: Any = (0.0,),
) -> tuple[float, float, int, int]:
    """``(scale, degrees, dx, dy)`` that best turn ``a`` into ``b`` over ``rows``."""
    best = (0.0, 1.0, 0.0, 0, 0)
    for scale in scales:
        for degrees in angles:
            dx, dy, peak = phase_shift(turned(a, scale, degrees)[rows], b[rows])
            if peak > best[0]:
                best = (peak, float(scale), float(degrees), dx, dy)
    return best[1:]


def simple(axis: str, value: float) -> dict[str, Any]:
    return {"type": "simple", "config": {axis: value}}


@pytest.mark.parametrize("value", [-10, -5, 5, 10])
def test_horizontal_moves_near_things_more_than_far_ones(value: int) -> None:
    a, b = first_and_last(simple("horizontal", value))
    # the near ground: from row 215 (the hills, which move half as far, reach row 205)
    near_dx, near_dy, _ = phase_shift(a[215:], b[215:])
    sky_dx, _, _ = phase_shift(a[40:100], b[40:100])  # sky, far away
    # Moving left (negative) slides the picture right; the ground moves 0.5 * 270 / 1.2 px at 10.
    assert np.sign(near_dx) == -np.sign(value) and near_dy == 0
    assert abs(near_dx) == pytest.approx(abs(value) / 10 * 0.5 * H / 1.2, abs=3)
    assert abs(sky_dx) < abs(near_dx) / 2  # parallax


@pytest.mark.parametrize("value", [-10, 10])
def test_vertical_moves_the_picture_the_other_way(value: int) -> None:
    a, b = first_and_last(simple("vertical", value))
    _, dy, _ = phase_shift(a[BODY], b[BODY])
    assert np.sign(dy) == np.sign(value)  # camera down (negative): picture up (negative y)


@pytest.mark.parametrize("value", [-10, -5, 5, 10])
def test_pan_turns_everything_alike(value: int) -> None:
    a, b = first_and_last(simple("pan", value))
    near_dx, _, _ = phase_shift(a[200:], b[200:])
    sky_dx, _, _ = phase_shift(a[40:100], b[40:100])
    assert np.sign(near_dx) == -np.sign(value)  # turning left (negative): picture moves right
    assert sky_dx == pytest.approx(near_dx, abs=2)  # a turn has no parallax


@pytest.mark.parametrize("value", [-10, 10])
def test_tilt_moves_the_picture_vertically(value: int) -> None:
    a, b = first_and_last(simple("tilt", value))
    dx, dy, _ = phase_shift(a[BODY], b[BODY])
    assert dx == 0 and np.sign(dy) == np.sign(value)  # tilting down: picture moves up


@pytest.mark.parametrize(
    ("value", "expected_scale"), [(-10, 2.0), (-5, 1.41), (5, 0.71), (10, 0.5)]
)
def test_zoom_changes_the_field_of_view(value: int, expected_scale: float) -> None:
    a, b = first_and_last(simple("zoom", value))
    scale, _, dx, dy = similarity(a, b, scales=SCALES)
    # Positive zoom widens the view, so the picture shrinks; negative narrows it.
    assert scale == pytest.approx(expected_scale, rel=0.05)
    assert (dx, dy) == (0, 0)


@pytest.mark.parametrize(("value", "expected_degrees"), [(-10, 20), (-5, 10), (5, -10), (10, -20)])
def test_roll_turns_the_picture_against_the_camera(value: int, expected_degrees: int) -> None:
    a, b = first_and_last(simple("roll", value))
    _, degrees, _, _ = similarity(a, b, angles=np.linspace(-30, 30, 31))
    # A camera rolling counter-clockwise (negative) sees the picture turn clockwise (positive).
    assert degrees == pytest.approx(expected_degrees, abs=2)


@pytest.mark.parametrize(
    ("preset", "grows", "dx_sign", "dy_sign"),
    [
        ("down_back", False, 0, -1),  # descends: picture rises; pulls back: picture shrinks
        ("forward_up", True, 0, 1),  # rises: picture sinks; pushes in: picture grows
        ("right_turn_forward", True, -1, 0),  # turns right: picture slides left
        ("left_turn_forward", True, 1, 0),
    ],
)
def test_presets(preset: str, grows: bool, dx_sign: int, dy_sign: int) -> None:
    a, b = first_and_last({"type": preset})
    scale, _, dx, dy = similarity(a, b, scales=np.geomspace(0.6, 1.7, 37))
    assert (scale > 1) is grows and scale != 1
    assert np.sign(dx) == dx_sign and np.sign(dy) == dy_sign
    # The sky is infinitely far: only turning moves it, travelling does not.
    sky_dx, sky_dy, _ = phase_shift(a[40:100], b[40:100])
    assert np.sign(sky_dx) == dx_sign and sky_dy == 0


def test_without_camera_control_the_camera_drifts_gently() -> None:
    a, b = first_and_last(None)
    dx, dy, _ = phase_shift(a[200:], b[200:])
    assert dy == 0 and 5 <= abs(dx) <= 30  # 0.06 * 270 / 1.2 = 13.5 px over the clip
    again = first_and_last(None)
    assert np.array_equal(a, again[0]) and np.array_equal(b, again[1])


async def test_camera_control_in_a_real_kling_v1_clip(tmp_path: Path) -> None:
    engine = SandboxEngine([], None)
    spec = next(s for s in engine.models() if s.id == "kling-v1")
    request = Text2VideoRequest.model_validate(
        {"prompt": "a village by a lake", "camera_control": simple("pan", -10)}
    )
    output = await engine.generate(
        Job("task-camera", spec, request, tmp_path), lambda percent: None, lambda: False
    )
    path = output.videos[0].path
    found = probe(path)
    assert (found.width, found.height, found.fps, found.frame_count) == (1280, 720, 30.0, 150)
    first, last = (gray(f)[::2, ::2] for f in read_frames(path, [0, 149]))
    dx, dy, _ = phase_shift(first[40:], last[40:])
    # Pan -10 over the clip: the picture moves right by 0.35 * 720 px (252), 126 at half size.
    assert dx == pytest.approx(126, abs=3) and dy == 0
