"""Engine registry (entry-point group ``reelgate.engines``) and the model catalogue file.

Built-in engines register through the same entry points as a third-party one. The catalogue is
a TOML file of ``[[models]]`` entries, each with ``id``, ``engine``, optional ``aliases`` and
engine-specific keys; without one, the sandbox serves Kling's own models. The keys every engine
shares (``submitted_s``, ``processing_s``, ``timeout_s``: see :mod:`reelgate.domain.timing`) are
read here and never reach the engine.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast

from reelgate.domain.kling import KLING_UNAVAILABLE
from reelgate.domain.models import Catalog, ModelSpec
from reelgate.domain.timing import TIMING_KEYS, ModelTiming

from .base import Engine, EngineFactory

ENTRY_POINT_GROUP = "reelgate.engines"


class CatalogError(ValueError):
    """The catalogue file is unreadable or names something that does not exist."""


def load_factory(name: str) -> EngineFactory:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return cast(EngineFactory, ep.load())
    known = ", ".join(sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)))
    raise CatalogError(f"engine {name!r} is not installed (installed: {known})")


def read_catalog_file(path: Path) -> list[dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogError(f"cannot read model catalogue {path}: {exc}") from exc
    entries = data.get("models", [])
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{path}: expected one or more [[models]] entries")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("id") or not entry.get("engine"):
            raise CatalogError(f"{path}: [[models]] entry {i + 1} needs 'id' and 'engine'")
    return entries


@dataclass
class Engines:
    """The engines serving a catalogue, and the catalogue the API validates against."""

    engines: dict[str, Engine]
    catalog: Catalog

    def engine_for(self, model_id: str) -> Engine:
        spec = self.catalog.get(model_id)
        if spec is None:
            raise KeyError(model_id)
        return self.engines[spec.engine]

    def health(self) -> dict[str, str]:
        """Per served model: "ok", or the engine's own report (e.g. a diffusers load failure)."""
        report = {spec.id: "ok" for spec in self.catalog.specs}
        for engine in self.engines.values():
            engine_health = getattr(engine, "health", None)
            if callable(engine_health):
                report.update({str(k): str(v) for k, v in engine_health().items()})
        return report

    async def aclose(self) -> None:
        for engine in self.engines.values():
            await engine.aclose()


def build_engines(
    entries: Sequence[Mapping[str, Any]] | None,
    data_dir: Path,
    default_model: str | None = None,
    factories: Mapping[str, EngineFactory] | None = None,
) -> Engines:
    """Instantiate one engine per engine name used by ``entries`` (None: the sandbox alone).

    ``factories`` replaces the entry-point factory of an engine name (an engine built with a
    different collaborator, such as the diffusers engine with another generation process).
    """
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    timings: dict[str, ModelTiming] = {}
    for entry in entries or []:
        try:
            timings[str(entry["id"])] = ModelTiming.from_entry(entry)
        except ValueError as exc:
            raise CatalogError(str(exc)) from exc
        engine_keys = {k: v for k, v in entry.items() if k not in TIMING_KEYS}
        grouped.setdefault(str(entry["engine"]), []).append(engine_keys)
    if not grouped:
        grouped["sandbox"] = []
    try:
        made = dict(factories or {})
        engines = {
            name: (made.get(name) or load_factory(name))(group, data_dir)
            for name, group in grouped.items()
        }
        specs = [
            _with_timing(spec, timings) for engine in engines.values() for spec in engine.models()
        ]
        catalog = Catalog(specs, default=default_model, known_unavailable=KLING_UNAVAILABLE)
    except CatalogError:
        raise
    except ValueError as exc:  # a bad entry, a name served twice, an unknown default model
        raise CatalogError(str(exc)) from exc
    return Engines(engines, catalog)


def _with_timing(spec: ModelSpec, timings: Mapping[str, ModelTiming]) -> ModelSpec:
    timing = timings.get(spec.id)
    return replace(spec, timing=timing) if timing is not None else spec
