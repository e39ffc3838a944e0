"""The Kling emulator's side of the API: scenarios chosen at create, and what they record.

Mounted only when the sandbox engine serves a model (see :func:`emulator_for`). A create for a
sandbox model is matched against the scenario rules and the prompt's directives
(:mod:`reelgate.domain.scenarios`); a refusing rule answers its error, otherwise the chosen
effects are stored in the task's params for the worker, and every firing is recorded for
``GET /_sandbox/fired``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reelgate.domain.models import Catalog, ModelSpec
from reelgate.domain.requests import Text2VideoRequest
from reelgate.domain.scenarios import Choice, ScenarioBook
from reelgate.settings import Settings
from reelgate.store import Store
from reelgate.store.sandbox import SandboxControl

SANDBOX_ENGINE = "sandbox"


@dataclass
class Emulator:
    book: ScenarioBook
    admin_key: str = field(repr=False)

    @staticmethod
    def control(store: Store) -> SandboxControl:
        return SandboxControl(store.engine, store.clock)

    async def choose(
        self,
        store: Store,
        account_id: int,
        spec: ModelSpec,
        req: Text2VideoRequest,
        header: str | None,
    ) -> Choice | None:
        """The scenario of a create, or None; raises the error of a rule that refuses it."""
        if spec.engine != SANDBOX_ENGINE:
            return None  # scenarios steer the sandbox only; other engines render for real
        choice = self.book.choose(req.prompt, req.external_task_id, header)
        rule = choice.rule
        refusal = rule.refusal() if rule is not None else None
        if rule is not None and refusal is not None:
            outcome = f"refused {refusal.code}"
            control = self.control(store)
            if await control.refuse(
                rule.name, account_id, outcome, req.external_task_id, rule.times
            ):
                raise refusal
        return choice

    async def created(
        self,
        store: Store,
        account_id: int,
        choice: Choice | None,
        task_id: str,
        external_task_id: str | None,
    ) -> None:
        """Record the firing of the scenario a created task carries: ``applied``, or
        ``accepted`` for a rule that only refused (its ``times`` are spent)."""
        effects = choice.effects if choice is not None else None
        if effects is None:
            return
        outcome = "accepted" if effects.inert else "applied"
        await self.control(store).record_firing(
            effects.name, account_id, outcome, task_id, external_task_id
        )


def emulator_for(settings: Settings, catalog: Catalog) -> Emulator | None:
    """The emulator when the sandbox serves a model; raises ValueError for a bad scenarios
    file."""
    if not any(spec.engine == SANDBOX_ENGINE for spec in catalog.specs):
        return None
    book = ScenarioBook.from_file(settings.scenarios_file) if settings.scenarios_file else None
    return Emulator(book or ScenarioBook(), settings.sandbox_admin_secret())
