"""README.md's SDK and CLI examples, run as written against a real ``reelgate serve``.

The examples are the fenced blocks tagged ```` ```python sdk-example ```` and
```` ```bash cli-example ````. They run in an empty directory, with no ``REELGATE_*`` credentials
in the environment, so they must find the server the way a reader's would: through the data
directory's ``credentials.json``. Every MP4 they leave behind must decode.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from .client_support import RunningServer, reelgate_serve

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"


def fenced_blocks(text: str, info: str) -> list[str]:
    """The bodies of the fenced code blocks whose info string is exactly ``info``."""
    pattern = re.compile(rf"^```{re.escape(info)}[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
    return [match.group(1) for match in pattern.finditer(text)]


def test_fenced_blocks_are_found_by_their_tag() -> None:
    text = (
        "x\n```python sdk-example\nprint(1)\n```\n"
        "```python\nnot this\n```\n"
        "```bash cli-example\nls\n```\n"
    )
    assert fenced_blocks(text, "python sdk-example") == ["print(1)\n"]
    assert fenced_blocks(text, "bash cli-example") == ["ls\n"]


SDK_TAG, CLI_TAG = "python sdk-example", "bash cli-example"


def _examples(info: str) -> list[str]:
    if not README.exists():
        pytest.skip("README.md does not exist yet")
    blocks = fenced_blocks(README.read_text(encoding="utf-8"), info)
    if not blocks:
        pytest.skip(f"README.md has no ```{info} block yet")
    return blocks


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    for tag in (SDK_TAG, CLI_TAG):  # start no server when there is nothing to run
        if README.exists() and fenced_blocks(README.read_text(encoding="utf-8"), tag):
            break
    else:
        pytest.skip(f"README.md has no ```{SDK_TAG} or ```{CLI_TAG} block yet")
    with reelgate_serve(tmp_path_factory.mktemp("readme") / "data") as running:
        yield running


def _run(command: list[str], cwd: Path, server: RunningServer) -> None:
    result = subprocess.run(
        command, cwd=cwd, env=server.env(), capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def _assert_videos_decode(directory: Path) -> None:
    videos = sorted(directory.rglob("*.mp4"))
    assert videos, "the example downloaded no video"
    for video in videos:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            assert stream.width > 0 and stream.height > 0
            assert sum(1 for _ in container.decode(stream)) > 0


def test_sdk_example(server: RunningServer, tmp_path: Path) -> None:
    for i, block in enumerate(_examples(SDK_TAG)):
        script = tmp_path / f"sdk_example_{i}.py"
        script.write_text(block, encoding="utf-8")
        _run([sys.executable, str(script)], tmp_path, server)
    _assert_videos_decode(tmp_path)


def test_cli_example(server: RunningServer, tmp_path: Path) -> None:
    for i, block in enumerate(_examples(CLI_TAG)):
        script = tmp_path / f"cli_example_{i}.sh"
        script.write_text(block, encoding="utf-8")
        _run(["bash", "-euo", "pipefail", str(script)], tmp_path, server)
    _assert_videos_decode(tmp_path)
