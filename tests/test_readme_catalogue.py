"""README.md's model catalogue example is a catalogue the server accepts, as written."""

from __future__ import annotations

import asyncio
from pathlib import Path

from reelgate.engines.registry import build_engines, read_catalog_file

from .test_client_readme import README, fenced_blocks


def test_the_readme_catalogue_example_is_served_as_written(tmp_path: Path) -> None:
    (block,) = fenced_blocks(README.read_text(), "toml models-example")
    path = tmp_path / "models.toml"
    path.write_text(block)
    engines = build_engines(read_catalog_file(path), tmp_path / "data")
    try:
        served = {spec.id: spec for spec in engines.catalog.specs}
        assert set(served) == {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b", "kling-v1"}
        assert engines.catalog.resolve("kling-v2-5-turbo").id == "wan2.1-t2v-1.3b"
    finally:
        asyncio.run(engines.aclose())
