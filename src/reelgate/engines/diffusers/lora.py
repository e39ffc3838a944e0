"""The LoRAs of an entry: loaded once, switched per task by value, never by graph (generation
process only).

Every profile's LoRA is loaded at load time as a named adapter (Wan 2.2 A14B: the high-noise
file into ``transformer``, the low-noise one into ``transformer_2``, under one name) and every
adapter stays active. A profile picks its LoRA through the adapters' scales: each LoRA layer's
``scaling[adapter]`` becomes a 0-dim tensor, filled with the profile's scale for its adapter and
0 for the others (a profile without a LoRA sets them all to 0).

Why not ``set_adapters`` / ``disable_lora`` per task: they change Python values peft's forward
branches on (the active adapter list, the disabled flag, a float scale), which torch.compile
guards on, so every switch recompiles the transformer, and past dynamo's cache limit it falls
back to eager. A tensor scale is a graph input: a switch changes data, not the graph. This is
how peft prepares a model for compiled hotswapping (``peft.utils.hotswap``: scalings converted
to tensors, updated with ``fill_``); unlike hotswapping, a switch copies no weights, and "no
LoRA" is a state like the others. The cost: each step also runs the low-rank matmuls of the
adapters not in use (rank r adds about 2r / width of a projection's FLOPs per adapter).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from .entry import ModelEntry
from .profiles import LoraSpec


@dataclass
class Adapters:
    """The adapters of one loaded pipeline and the scale each profile gives them."""

    names: dict[str, str]  # mode -> adapter name (profiles with a LoRA)
    scales: dict[str, float]  # mode -> that LoRA's scale
    # (LoRA layer, adapter name, the adapter's own scaling: lora_alpha / r)
    _layers: list[tuple[Any, str, float]] = field(default_factory=list)
    selected: str | None = None  # the mode whose scales are set

    def freeze_scales(self, denoisers: list[Any]) -> None:
        """Turn every LoRA layer's scale into a tensor on the layer's device (after placement,
        before compile); all adapters start switched off."""
        import torch
        from peft.tuners.lora import LoraLayer

        for denoiser in denoisers:
            for module in denoiser.modules():
                if not isinstance(module, LoraLayer):
                    continue
                device = module.weight.device
                if device.type == "meta":  # offloaded: a CPU scalar multiplies any device's
                    device = torch.device("cpu")
                for name, value in module.scaling.items():
                    self._layers.append((module, name, float(value)))
                    module.scaling[name] = torch.tensor(0.0, device=device)

    def select(self, mode: str) -> None:
        """Give ``mode``'s adapter its scale and every other adapter 0."""
        if mode == self.selected:
            return
        chosen = self.names.get(mode)
        factor = self.scales.get(mode, 0.0)
        for module, name, base in self._layers:
            module.scaling[name].fill_(base * factor if name == chosen else 0.0)
        self.selected = mode


def load_adapters(pipe: Any, entry: ModelEntry) -> Adapters | None:
    """Load each profile's LoRA as a named adapter and activate them all (scale 1 for now:
    :meth:`Adapters.freeze_scales` then takes each layer's own scaling from it)."""
    names: dict[str, str] = {}
    scales: dict[str, float] = {}
    with warnings.catch_warnings():
        # peft warns that a second adapter makes several adapters in the model: that is the point
        warnings.filterwarnings("ignore", "Already found a `peft_config`", UserWarning)
        for mode, profile in entry.profiles.items():
            if profile.lora is not None:
                names[mode] = f"reelgate_{mode}"
                scales[mode] = profile.lora.scale
                _load_one(pipe, names[mode], profile.lora)
    if not names:
        return None
    pipe.set_adapters(list(names.values()), [1.0] * len(names))
    return Adapters(names, scales)


def _load_one(pipe: Any, name: str, lora: LoraSpec) -> None:
    kwargs: dict[str, Any] = {"adapter_name": name}
    if lora.weight_name:
        kwargs["weight_name"] = lora.weight_name
    pipe.load_lora_weights(lora.path, **kwargs)
    if lora.path_2 is not None:
        # Wan 2.2 A14B: the low-noise expert has its own file (Wan2.2-Lightning ships
        # high_noise_model and low_noise_model), under the same adapter name.
        kwargs_2: dict[str, Any] = {"adapter_name": name, "load_into_transformer_2": True}
        if lora.weight_name_2:
            kwargs_2["weight_name"] = lora.weight_name_2
        pipe.load_lora_weights(lora.path_2, **kwargs_2)
