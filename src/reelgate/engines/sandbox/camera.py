"""Camera motion over a clip: Kling's ``camera_control`` as a path of poses.

The scene is a stack of flat layers at different depths (see :mod:`.world`), so a pose maps each
layer to the screen with a similarity transform. Translations (``horizontal``, ``vertical``,
forward/back in the presets) move near layers more than far ones — real parallax — while
rotations (``pan``, ``tilt``, ``roll``) and ``zoom`` move every layer alike, as a turning camera
does. Screen coordinates are pixels from the frame's centre, x right, y down.

Signs follow the contract (section 4): a camera moving or turning left makes the picture move
right; a camera rolling counter-clockwise makes the picture turn clockwise; a positive zoom
widens the view (the picture shrinks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from reelgate.domain.requests import CameraControl

# How far each axis goes over a clip at |value| = 10, as a fraction of the frame's short side
# (or as noted). The value scales linearly: 5 goes half as far.
_HORIZONTAL = 0.5
_VERTICAL = 0.3
_PAN = 0.35
_TILT = 0.25
_ROLL = math.radians(20)
_ZOOM_OCTAVES = 1.0  # +10 halves the focal length (twice the field of view)
_DRIFT = 0.06  # the gentle sideways drift when a request has no camera_control


@dataclass(frozen=True)
class Pose:
    """Where the camera is at one instant, relative to where it started."""

    tx: float = 0.0  # sideways travel, in pixels as seen at depth 1 (right is positive)
    ty: float = 0.0  # vertical travel, in pixels as seen at depth 1 (down is positive)
    tz: float = 0.0  # forward travel, in depth units (layers sit at depth 1 and beyond)
    sx: float = 0.0  # picture shift from turning (pan), pixels; all depths alike
    sy: float = 0.0  # picture shift from tilting, pixels; all depths alike
    roll: float = 0.0  # picture rotation, radians, clockwise on screen
    focal: float = 1.0  # focal length factor: above 1 magnifies

    def magnification(self, depth: float) -> float:
        """How much larger a layer at ``depth`` looks than at the start."""
        if math.isinf(depth):
            return self.focal
        return self.focal * depth / (depth - self.tz)

    def offset(self, depth: float) -> tuple[float, float]:
        """Layer coordinates seen at the (unrotated) screen centre."""
        if math.isinf(depth):
            tx = ty = 0.0
        else:
            tx, ty = self.tx / depth, self.ty / depth
        m = self.magnification(depth)
        return tx - self.focal * self.sx / m, ty - self.focal * self.sy / m

    def to_layer(self, x: float, y: float, depth: float) -> tuple[float, float]:
        """The layer point (at ``depth``) that the screen point ``(x, y)`` shows."""
        cos, sin = math.cos(self.roll), math.sin(self.roll)
        m = self.magnification(depth)
        ox, oy = self.offset(depth)
        return (cos * x + sin * y) / m + ox, (-sin * x + cos * y) / m + oy

    def to_screen(self, x: float, y: float, depth: float) -> tuple[float, float]:
        """Where the layer point ``(x, y)`` at ``depth`` appears on screen."""
        m = self.magnification(depth)
        ox, oy = self.offset(depth)
        px, py = (x - ox) * m, (y - oy) * m
        cos, sin = math.cos(self.roll), math.sin(self.roll)
        return cos * px - sin * py, sin * px + cos * py


@dataclass(frozen=True)
class CameraPath:
    """Uniform motion from the identity pose (t = 0) to ``end`` (t = 1)."""

    end: Pose

    @property
    def parallax(self) -> bool:
        """Whether layers move differently (the camera travels) or all alike (it only turns)."""
        return self.end.tx != 0 or self.end.ty != 0 or self.end.tz != 0

    def at(self, t: float) -> Pose:
        e = self.end
        return Pose(
            tx=e.tx * t,
            ty=e.ty * t,
            tz=e.tz * t,
            sx=e.sx * t,
            sy=e.sy * t,
            roll=e.roll * t,
            # geometric, so a zoom looks steady rather than slowing down
            focal=e.focal**t,
        )


def camera_path(control: CameraControl | None, unit: float, drift: float = 1.0) -> CameraPath:
    """The path for a request; ``unit`` is the frame's short side in pixels.

    ``drift`` (-1..1) sets the direction and speed of the default drift without camera_control.
    """
    if control is None:
        return CameraPath(Pose(tx=_DRIFT * drift * unit))
    if control.type == "simple" and control.config is not None:
        axis, value = control.config.axis()
        return CameraPath(_simple(axis, value / 10.0, unit))
    presets = {
        "down_back": Pose(ty=0.2 * unit, tz=-0.4),
        "forward_up": Pose(ty=-0.2 * unit, tz=0.45),
        "right_turn_forward": Pose(sx=-0.3 * unit, tz=0.35),
        "left_turn_forward": Pose(sx=0.3 * unit, tz=0.35),
    }
    return CameraPath(presets[control.type])


def _simple(axis: str, s: float, unit: float) -> Pose:
    pose = Pose()
    if axis == "horizontal":
        return replace(pose, tx=s * _HORIZONTAL * unit)
    if axis == "vertical":  # positive moves up, which is -y on screen
        return replace(pose, ty=-s * _VERTICAL * unit)
    if axis == "pan":  # turning right moves the picture left
        return replace(pose, sx=-s * _PAN * unit)
    if axis == "tilt":  # tilting up moves the picture down
        return replace(pose, sy=s * _TILT * unit)
    if axis == "roll":  # the camera turns one way, the picture the other
        return replace(pose, roll=-s * _ROLL)
    if axis == "zoom":  # positive widens the view: a shorter focal length
        return replace(pose, focal=2.0 ** (-s * _ZOOM_OCTAVES))
    raise ValueError(f"unknown camera axis {axis!r}")
