"""The base of every response object: one serialisation rule, one schema rule."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


def _sent_fields_required(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """In the published schema, a field is required when it is always sent: every field but
    those that default to None (left out of the JSON when they have no value)."""
    schema["required"] = [
        name
        for name, info in model.model_fields.items()
        if info.is_required() or info.get_default(call_default_factory=True) is not None
    ]


class WireModel(BaseModel):
    """A response object. Optional fields that have no value are left out of the JSON."""

    model_config = ConfigDict(json_schema_extra=_sent_fields_required)

    def wire(self) -> dict[str, Any]:
        """The JSON-ready dict sent to clients and callback receivers."""
        return self.model_dump(mode="json", exclude_none=True)
