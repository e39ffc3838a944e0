"""User docs: links stay inside the repository; the settings table matches settings.py."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from reelgate.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    return {
        slug(line.lstrip("#"))
        for line in page.read_text().splitlines()
        if line.startswith("#") and not line.startswith("#!")
    }


def test_the_docs_folder_has_the_contract_architecture_and_operations() -> None:
    names = {p.name for p in PAGES}
    assert {"README.md", "api.md", "architecture.md", "operations.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_stay_inside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert "shared/docs" not in text
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue  # an outside web page, not a file of some other checkout
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{page.name}: no heading for #{anchor}"


def test_operations_settings_table_matches_settings_py() -> None:
    rows = {}
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`REELGATE_"):
            rows[cells[0].strip("`")] = cells[1]
    declared = {}
    for f in dataclasses.fields(Settings):
        default = f.default
        if isinstance(default, bool):
            default = str(default).lower()
        declared[f.metadata["env"]] = "none" if default is None else f"`{default}`"
    assert rows == declared
