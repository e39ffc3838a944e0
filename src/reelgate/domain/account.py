"""The account report of ``GET /account/costs``: Kling's double-wrapped resource packs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .wire import WireModel

PackType = Literal["decreasing_total", "constant_period", "unlimited"]
PackStatus = Literal["toBeOnline", "online", "expired", "runOut"]


class ResourcePack(WireModel):
    resource_pack_name: str
    resource_pack_id: str
    resource_pack_type: PackType = Field(description="unlimited: an account without a quota")
    total_quantity: float | None = Field(description="null when unlimited")
    remaining_quantity: float | None = Field(description="null when unlimited")
    used_quantity: float = Field(description="extension: units charged so far")
    purchase_time: int = Field(description="Unix ms")
    effective_time: int = Field(description="Unix ms")
    invalid_time: int = Field(description="Unix ms; 0: never expires")
    status: PackStatus


class CostsReport(WireModel):
    """``data`` of ``/account/costs``: Kling nests its own ``code`` and ``msg`` in it."""

    code: int = 0
    msg: str = "success"
    resource_pack_subscribe_infos: list[ResourcePack]
    units_charged: str = Field(description="extension: units charged so far, a decimal string")

    def wire(self) -> dict[str, Any]:
        # every field is always sent: an unlimited pack's quantities are null, not left out
        return self.model_dump(mode="json")
