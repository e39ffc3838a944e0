"""The studio in headless Chromium (Debian's ``chromium``, driven by Playwright for Python)
against a real ``reelgate serve`` on the sandbox engine.

Locally the suite skips when chromium, Playwright or axe-core is missing; under ``CI=true`` it
fails instead (``.ci/run`` installs all three). Screenshots of the main states are written to
``tests/artifacts/studio/`` (gitignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .server import ServerProcess, running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts" / "studio"
CHROMIUM = os.environ.get("REELGATE_TEST_CHROMIUM", "/usr/bin/chromium")
AXE_JS = Path(os.environ.get("REELGATE_TEST_AXE_JS", ROOT / "build/axe/package/axe.min.js"))
# Without the background-networking flags chromium keeps dialling Google's hosts, which this
# closed network refuses; root needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 120_000  # generous: two cores shared by many
# the ids the task list shows, top to bottom (read at once: polling re-renders it)
LISTED = "[...document.querySelectorAll('#task-list button')].map(b => b.dataset.taskId)"


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"browser suite cannot run under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with running_server(tmp_path_factory.mktemp("studio") / "data") as srv:
        yield srv


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _missing(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # the page works under its own policy: nothing it needs is blocked by the CSP
    tab.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    tab.goto(server.base_url + "/")
    yield tab
    context.close()
    assert not errors, f"uncaught errors or CSP violations in the page: {errors}"


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def sign_in(page: Any, server: ServerProcess) -> None:
    page.fill("#api-key", server.credentials()["api_key"])
    page.click("#sign-in-form button[type=submit]")
    page.wait_for_selector("#studio:not([hidden])")


def api_key_headers(server: ServerProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.credentials()['api_key']}"}


def create_task(server: ServerProcess, **body: Any) -> str:
    response = httpx.post(
        f"{server.base_url}/v1/videos/text2video",
        json=body,
        headers=api_key_headers(server),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    task_id: str = response.json()["data"]["task_id"]
    return task_id


def all_tasks(server: ServerProcess) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.base_url}/v1/videos/text2video",
        params={"pageSize": 500},
        headers=api_key_headers(server),
        timeout=30,
    )
    tasks: list[dict[str, Any]] = response.json()["data"]
    return tasks


def test_sign_in_refuses_a_wrong_key_and_offers_the_local_key(
    page: Any, server: ServerProcess
) -> None:
    page.wait_for_selector("#sign-in:not([hidden])")
    page.fill("#api-key", "not-a-key")
    page.keyboard.press("Enter")
    error = page.locator("#sign-in-error")
    error.filter(has_text="1002").wait_for()
    assert page.get_attribute("#api-key", "aria-invalid") == "true"
    # the page is open on 127.0.0.1 with no proxy: the local key is offered
    page.wait_for_selector("#local-offer:not([hidden])")
    shot(page, "01-sign-in")
    page.click("#use-local-key")
    page.wait_for_selector("#studio:not([hidden])")
    assert (
        page.evaluate("localStorage.getItem('reelgate.api_key')")
        == (server.credentials()["api_key"])
    )
    # the key survives a reload; signing out forgets it
    page.reload()
    page.wait_for_selector("#studio:not([hidden])")
    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.evaluate("localStorage.getItem('reelgate.api_key')") is None


def test_submit_progress_to_succeed_and_play_the_video(page: Any, server: ServerProcess) -> None:
    sign_in(page, server)
    page.select_option("#f-model_name", "kling-v1")
    page.fill("#f-prompt", "[[sandbox:slow=4]] a lighthouse at dusk, waves crashing")
    page.check("#f-watermark")
    page.fill("#f-external_task_id", "studio-play")
    page.click("#submit")
    status = page.locator("#detail-status")
    # the open task is polled without reload: seen unfinished, then succeed
    status.filter(has_text="processing").wait_for()
    shot(page, "02-processing")
    status.filter(has_text="succeed").wait_for()
    item = page.locator("#task-list button", has_text="a lighthouse at dusk").first
    item.locator(".badge", has_text="succeed").wait_for()
    links = {
        a.get_attribute("id"): a.get_attribute("href") for a in page.locator("#detail a").all()
    }
    assert "/files/" in links["download-clean"] and "/files/" in links["download-watermarked"]
    assert links["download-clean"] != links["download-watermarked"]
    for href in links.values():
        assert httpx.get(href, timeout=30).status_code == 200
    rows = page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#detail dt')]"
        ".map(dt => [dt.textContent, dt.nextElementSibling.textContent]))"
    )
    assert rows["units charged"] == "1"  # kling-v1 std 5 s
    assert rows["external_task_id"] == "studio-play" and rows["model"] == "kling-v1"
    assert rows["watermark"] == "yes" and rows["duration"] == "5"
    assert rows["prompt"].endswith("a lighthouse at dusk, waves crashing")
    assert float(rows["took"].removesuffix(" s")) >= 4

    video = page.locator("#player")
    video.evaluate("v => { v.muted = true; }")
    page.wait_for_function(
        "() => { const v = document.querySelector('#player'); return v && v.duration > 0; }"
    )
    duration = video.evaluate("v => v.duration")
    assert 4.5 <= duration <= 5.5, duration  # a 5 s clip
    assert video.evaluate("v => v.videoWidth") == 1280
    video.evaluate("v => v.play()")
    page.wait_for_function("() => document.querySelector('#player').currentTime > 0.5")
    # seeking: the /files route answers Range requests
    video.evaluate("v => v.pause()")
    video.evaluate(
        "v => new Promise(done => { v.addEventListener('seeked', done, {once: true});"
        " v.currentTime = 3.5; })"
    )
    assert abs(video.evaluate("v => v.currentTime") - 3.5) < 0.1
    shot(page, "03-playing")


def test_validation_errors_before_submit_and_server_errors(
    page: Any, server: ServerProcess
) -> None:
    sign_in(page, server)
    before = len(all_tasks(server))
    page.select_option("#f-model_name", "kling-v1")
    page.fill("#f-prompt", "")
    page.select_option("#f-camera_type", "simple")
    page.fill("#f-cam-pan", "4")
    page.fill("#f-cam-zoom", "2")
    page.fill("#f-cfg_scale", "1.5")
    page.click("#submit")
    summary = page.locator("#form-errors")
    summary.filter(has_text="prompt is required").wait_for()
    text = summary.inner_text()
    assert "cfg_scale must be a number from 0 to 1" in text
    assert "exactly one of the six must be non-zero" in text
    assert page.get_attribute("#f-prompt", "aria-invalid") == "true"
    assert page.evaluate("document.activeElement.id") == "form-errors"
    shot(page, "04-validation")
    # nothing reached the server
    assert len(all_tasks(server)) == before

    # fields the model does not support are disabled with the reason
    page.select_option("#f-model_name", "kling-v2-master")
    assert page.is_disabled("#f-cfg_scale") and page.is_disabled("#f-mode")
    assert "accepted and ignored" in page.inner_text("#h-cfg_scale")
    assert page.is_disabled("#f-camera_type")  # inside the disabled fieldset
    assert "does not take camera control" in page.inner_text("#h-camera")
    page.select_option("#f-model_name", "kling-v2-6")
    page.select_option("#f-mode", "std")
    assert page.is_disabled("#f-sound")
    assert "pro" in page.inner_text("#h-sound")
    page.select_option("#f-mode", "pro")
    assert page.is_enabled("#f-sound")

    # a rule only the server knows: a duplicate external_task_id is 400/1201, shown as such
    create_task(server, prompt="first", external_task_id="taken-id")
    page.fill("#f-prompt", "second")
    page.fill("#f-external_task_id", "taken-id")
    page.click("#submit")
    summary.filter(has_text="1201").wait_for()
    assert "external_task_id" in summary.inner_text()


def test_list_paginates_newest_first_and_finds_by_external_id(
    page: Any, server: ServerProcess
) -> None:
    ids = [
        create_task(server, prompt=f"page test {n}", external_task_id=f"page-{n}") for n in range(7)
    ]
    sign_in(page, server)
    page.select_option("#page-size", "5")
    page.wait_for_function(f"() => {LISTED}.length === 5 && {LISTED}[0] === {ids[-1]!r}")
    listed = page.evaluate(LISTED)
    assert listed == list(reversed(ids))[:5]  # newest first
    assert page.is_disabled("#prev-page")
    shot(page, "05-list")
    page.click("#next-page")
    page.locator("#page-label", has_text="Page 2").wait_for()
    page.wait_for_function(f"() => {LISTED}.includes({ids[1]!r})")
    second = page.evaluate(LISTED)
    assert second[:2] == [ids[1], ids[0]] and not set(second) & set(listed)
    page.click("#prev-page")
    page.locator("#page-label", has_text="Page 1").wait_for()

    page.fill("#search-id", "page-3")
    page.keyboard.press("Enter")
    page.locator("#detail-title", has_text=ids[3]).wait_for()
    page.fill("#search-id", "no-such-task")
    page.click("#search-form button")
    page.locator("#search-error", has_text="1203").wait_for()


def test_cancel_is_offered_only_where_the_server_has_it(page: Any, server: ServerProcess) -> None:
    schema = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    offered = any(p.endswith("/cancel") for p in schema["paths"])
    task_id = create_task(server, prompt="[[sandbox:slow=20]] a slow one", external_task_id="slow")
    sign_in(page, server)
    page.fill("#search-id", "slow")
    page.keyboard.press("Enter")
    page.locator("#detail-title", has_text=task_id).wait_for()
    page.locator("#detail-status", has_text="%").wait_for()
    if offered:
        page.click("#cancel")
        page.locator("#detail-status", has_text="failed").wait_for()
    else:
        assert page.locator("#cancel").count() == 0


def test_phone_width_and_accessibility(browser: Any, server: ServerProcess) -> None:
    if not AXE_JS.is_file():
        _missing(f"no axe-core at {AXE_JS} (npm pack axe-core; see .ci/run)")
    create_task(server, prompt="an accessible clip", external_task_id="a11y")
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(server.base_url + "/")
        page.wait_for_selector("#sign-in:not([hidden])")
        problems = {"sign-in": _axe(page)}
        # keyboard only: Tab reaches the skip link first, then the key field; Enter signs in
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "api-key"
        page.keyboard.type(server.credentials()["api_key"])
        page.keyboard.press("Enter")
        page.wait_for_selector("#studio:not([hidden])")
        page.fill("#search-id", "a11y")
        page.keyboard.press("Enter")
        page.locator("#detail-status", has_text="succeed").wait_for()
        page.wait_for_selector("#player")
        # the form with its validation messages shown, too
        page.fill("#f-prompt", "")
        page.click("#submit")
        page.locator("#form-errors", has_text="prompt is required").wait_for()
        problems["studio"] = _axe(page)
        # nothing wider than the phone: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "06-phone")
    finally:
        context.close()
    serious = {k: v for k, v in problems.items() if v}
    assert not serious, serious


def _axe(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, as readable lines."""
    # evaluated through the devtools protocol: the page's CSP (script-src 'self') stays on
    page.evaluate(AXE_JS.read_text())
    result: dict[str, Any] = page.evaluate("() => axe.run(document)")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
