"""The sandbox engine: Kling's text-to-video models emulated on CPU, deterministically.

It serves Kling's own model names with Kling's capability map (or the catalogue's sandbox
entries) and renders a real H.264 MP4 that follows the request: the model's frame size for the
mode and aspect ratio, its frame rate, ``fps x duration`` frames, camera motion for
``camera_control``, an AAC soundtrack when ``sound`` is ``on`` and a watermarked copy when
``watermark_info.enabled``. The picture is a procedural landscape (sky, sun, clouds, mountains,
hills, trees, drifting balloons) seeded from the model and prompt, with the prompt as a caption:
the same request always gives the same bytes, and the task's ``extra["seed"]`` names the seed.

Camera control
--------------
The scene is layered (sky, mountains, hills, near ground), so travelling shows parallax and
turning does not. Motion is uniform over the clip and scales with the value (10 is strong):
``horizontal``/``vertical`` move the camera (negative: left/down, so the picture moves
right/up, near layers most); ``pan``/``tilt`` turn it (negative: left/down, so everything moves
right/up alike); ``roll`` turns it about the lens axis (negative: counter-clockwise, so the
picture turns clockwise, 20 degrees at 10); ``zoom`` changes the focal length (+10 doubles the
field of view, -10 halves it). Presets: ``down_back`` descends and pulls back,
``forward_up`` pushes in and rises, ``right_turn_forward``/``left_turn_forward`` turn while
pushing in. Without camera_control the camera drifts gently sideways.

Scenario directives
-------------------
Put a directive anywhere in the prompt; it is removed before the prompt seeds the scene or
becomes the caption (``[[sandbox:slow=5]] a red fox`` renders the clip for ``a red fox``).
Case and spaces inside the brackets do not matter; several directives may be combined.

``[[sandbox:fail]]``
    The task fails with ``task_status_msg`` "sandbox: simulated failure".
``[[sandbox:fail=content_policy]]``
    The task fails with Kling's content-policy message "Failure to pass the risk control system".
``[[sandbox:slow=SECONDS]]``
    The task takes at least SECONDS (0 to 3600), with progress advancing smoothly; it can be
    cancelled at any moment. Combined with ``fail`` or ``crash``, the task fails at the end.
``[[sandbox:stall]]``
    The task waits until released (``POST /_sandbox/tasks/{id}/release``: it then goes on as
    its other directives say) or finished (``.../finish``), until cancelled, or until its
    processing timeout passes (catalogue ``timeout_s``, else ``REELGATE_TASK_TIMEOUT``).
``[[sandbox:crash]]``
    The engine raises a plain ``RuntimeError`` ("sandbox: simulated crash"), to test how the
    worker handles an engine that breaks rather than reporting a failure.

An unknown or malformed directive (``[[sandbox:slow=soon]]``) fails the task with a message
naming it, so a typo never passes as a normal clip.

Directives are one source of scenarios; rules in a scenarios file (``REELGATE_SCENARIOS``) are
the other, and can also refuse a create, duplicate or reorder callbacks and shorten link
lifetimes. Both are chosen when the task is created and stored with it; see
:mod:`reelgate.domain.scenarios`. ``/_sandbox`` advances a slow task's clock or finishes it.

Catalogue entries
-----------------
Without entries the sandbox serves Kling's seven text-to-video models. With entries it serves
exactly those; each copies a Kling model's capabilities, units and rendering::

    [[models]]
    id = "fast-preview"          # the served name
    engine = "sandbox"
    like = "kling-v2-6"          # the Kling model to copy (default: the id itself)
    aliases = ["preview"]
    description = "sandbox copy of Kling 2.6"
    delay_s = 2.0                # every task takes at least 2 s
    fail_rate = 0.1              # 10% of task ids fail (deterministic per task id)
"""

from .engine import SandboxEngine

__all__ = ["SandboxEngine"]
