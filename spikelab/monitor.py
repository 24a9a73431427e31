"""Monitors: record spikes and state traces (voltages, currents, ...) of neuron layers.

Example::

    with Monitor(model) as mon:          # every neuron layer inside `model`
        model(x)
    mon["0.neuron"]["v"]                  # (T, B, ...) voltage after each step
    mon["0.neuron"]["z"]                  # (T, B, ...) spikes

Recording never changes what layers return. Each forward call while the monitor is attached
appends to the record; consecutive calls are concatenated along time (dim 0).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from spikelab.neurons.modules import NeuronModule


class Monitor:
    """Record the spikes ``z`` and every state variable of the neuron layers of ``model``.

    Args:
        model: a neuron layer or any module containing neuron layers.
        layers: optional names (as in ``model.named_modules()``) to restrict recording to.
    """

    def __init__(self, model: nn.Module, layers: list[str] | None = None) -> None:
        found = {name: m for name, m in model.named_modules() if isinstance(m, NeuronModule)}
        if layers is not None:
            missing = set(layers) - set(found)
            if missing:
                raise ValueError(f"no neuron layers named {sorted(missing)}; available: {sorted(found)}")
            found = {name: found[name] for name in layers}
        if not found:
            raise ValueError("the model contains no spikelab neuron layers to monitor")
        self._names = {id(m): name for name, m in found.items()}
        self._modules = list(found.values())
        self._records: dict[str, dict[str, list[torch.Tensor]]] = defaultdict(lambda: defaultdict(list))
        self._attached = False

    def attach(self) -> "Monitor":
        """Start recording."""
        if not self._attached:
            for m in self._modules:
                m._monitors.append(self)
            self._attached = True
        return self

    def detach(self) -> None:
        """Stop recording (records are kept)."""
        if self._attached:
            for m in self._modules:
                m._monitors.remove(self)
            self._attached = False

    def __enter__(self) -> "Monitor":
        return self.attach()

    def __exit__(self, *exc) -> None:
        self.detach()

    def record(self, module: NeuronModule, spikes: torch.Tensor, trace) -> None:
        """Called by a neuron layer after each forward pass (not for direct use)."""
        rec = self._records[self._names[id(module)]]
        rec["z"].append(spikes.detach())
        for field, value in zip(trace._fields, trace):
            rec[field].append(value.detach())

    def __getitem__(self, layer: str) -> dict[str, torch.Tensor]:
        if layer not in self._records:
            raise KeyError(f"nothing recorded for layer {layer!r}; recorded: {sorted(self._records)}")
        return {k: torch.cat(v) for k, v in self._records[layer].items()}

    def layers(self) -> list[str]:
        """Names of the layers that have records."""
        return sorted(self._records)

    def clear(self) -> None:
        """Drop all records."""
        self._records.clear()
