"""User docs agree with the code: links stay inside the repository, and every ``REELGATE_*``
name in the docs, the deployment files and ``--help`` is a declared setting (settings.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main

from reelgate.cli import app
from reelgate.settings import help_for, variables

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
NAME = re.compile(r"REELGATE_[A-Z0-9_]*[A-Z0-9]")
#: reelgate's own test suite reads these (tests/conftest.py); they are not settings of reelgate
TEST_SUITE_PREFIX = "REELGATE_TEST_"


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
    """One row per declared variable, the client's included, with its default."""
    rows = {}
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`REELGATE_"):
            assert cells[0].strip("`") not in rows, f"{cells[0]} has two rows"
            rows[cells[0].strip("`")] = cells[1]
    declared = {}
    for env, field in variables().items():
        default = field.default
        if isinstance(default, bool):
            default = str(default).lower()
        declared[env] = "none" if default is None else f"`{default}`"
    assert rows == declared


def mentioned_variables() -> dict[str, set[str]]:
    """Every ``REELGATE_*`` name in the README, docs/*.md and deploy/*, by file."""
    files = [*PAGES, *sorted(p for p in (ROOT / "deploy").iterdir() if p.is_file())]
    found = {}
    for path in files:
        names = {n for n in NAME.findall(path.read_text()) if not n.startswith(TEST_SUITE_PREFIX)}
        found[str(path.relative_to(ROOT))] = names
    return found


def test_docs_and_deploy_files_name_only_declared_variables() -> None:
    mentioned = mentioned_variables()
    assert mentioned["docs/operations.md"], "the settings table was not found"
    undeclared = {path: names - set(variables()) for path, names in mentioned.items()}
    assert {path: names for path, names in undeclared.items() if names} == {}


def commands(group: Any, path: str = "reelgate") -> Iterator[tuple[str, Any]]:
    """Every leaf command under ``group`` (click's objects: typer may vendor click)."""
    ctx = typer.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        if hasattr(command, "list_commands"):
            yield from commands(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


def test_every_flag_that_names_a_variable_mirrors_a_declared_setting() -> None:
    """A flag's help names only declared variables, a mirroring flag's ``(env: X)`` comes with
    X's own help line, and the client variables are all reachable as flags."""
    declared = variables()
    named: set[str] = set()
    seen = []
    for path, command in commands(typer.main.get_command(app)):
        seen.append(path)
        for param in command.params:
            text = getattr(param, "help", None) or ""
            where = f"{path} {'/'.join(param.opts)}"
            for env in NAME.findall(text):
                assert env in declared, f"{where}: {env} is not declared"
                named.add(env)
            for env in re.findall(r"\(env: (REELGATE_\w+)", text):
                if "=" not in text.split(f"env: {env}")[1][:1]:  # not "(env: X=false)"
                    assert text.startswith(help_for(declared[env].setting)), where
    assert {"reelgate serve", "reelgate tasks list", "reelgate db upgrade"} <= set(seen)
    client = {"REELGATE_BASE_URL", "REELGATE_API_KEY", "REELGATE_ACCESS_KEY"}
    assert client | {"REELGATE_SECRET_KEY", "REELGATE_DATA_DIR", "REELGATE_PORT"} <= named
