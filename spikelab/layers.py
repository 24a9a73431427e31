"""Spiking layers and a container that threads neuron state through them.

Layers take time-major input ``(T, B, ...)``. A synaptic transform (``nn.Linear``,
``nn.Conv2d``, ...) is applied to all ``T * B`` samples at once (one large matrix product
instead of ``T`` small ones), then the neuron layer runs over time.

* :class:`TimeDistributed`: apply any stateless module to every time step.
* :class:`SpikingLinear`, :class:`SpikingConv2d`: synapses followed by a neuron layer.
* :class:`SequentialState`: like ``nn.Sequential``, passing each stateful layer its own state
  and returning the list of states (Norse's ``SequentialState``).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from spikelab.neurons.modules import LIF, check_sequence


class TimeDistributed(nn.Module):
    """Apply a stateless ``module`` to each time step: (T, B, ...) -> (T, B, ...')."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_sequence(x, None)
        y = self.module(x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]))
        return y.reshape(x.shape[0], x.shape[1], *y.shape[1:])


class SpikingLinear(nn.Module):
    """``nn.Linear`` synapses then a neuron layer (default :class:`LIF`).

    Input (T, B, in_features) -> spikes (T, B, out_features) and the neuron state.
    """

    def __init__(self, in_features: int, out_features: int, neuron: nn.Module | None = None, bias: bool = True) -> None:
        super().__init__()
        self.synapse = nn.Linear(in_features, out_features, bias=bias)
        self.neuron = LIF() if neuron is None else neuron

    def forward(self, x: torch.Tensor, state=None):
        check_sequence(x, None)
        if x.shape[-1] != self.synapse.in_features or x.dim() != 3:
            raise ValueError(
                f"SpikingLinear expects (T, B, {self.synapse.in_features}); got {tuple(x.shape)}"
            )
        return self.neuron(self.synapse(x), state)


class SpikingConv2d(nn.Module):
    """``nn.Conv2d`` synapses then a neuron layer (default :class:`LIF`).

    Input (T, B, C_in, H, W) -> spikes (T, B, C_out, H', W') and the neuron state. Extra
    keyword arguments go to ``nn.Conv2d``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, neuron: nn.Module | None = None, **conv_kwargs) -> None:
        super().__init__()
        self.synapse = nn.Conv2d(in_channels, out_channels, kernel_size, **conv_kwargs)
        self.neuron = LIF() if neuron is None else neuron

    def forward(self, x: torch.Tensor, state=None):
        check_sequence(x, None)
        if x.dim() != 5 or x.shape[2] != self.synapse.in_channels:
            raise ValueError(
                f"SpikingConv2d expects (T, B, {self.synapse.in_channels}, H, W); got {tuple(x.shape)}"
            )
        T, B = x.shape[:2]
        y = self.synapse(x.reshape(T * B, *x.shape[2:]))
        return self.neuron(y.reshape(T, B, *y.shape[1:]), state)


def is_stateful(module: nn.Module) -> bool:
    """Whether ``module.forward`` takes a ``state`` argument (and returns ``(out, state)``)."""
    return "state" in inspect.signature(module.forward).parameters


class SequentialState(nn.Sequential):
    """Sequential container that handles neuron state explicitly.

    ``forward(x, state=None)`` returns ``(output, states)`` where ``states`` has one entry per
    layer (None for stateless layers). Pass ``states`` back in to continue a sequence; pass
    None to start every layer from rest (the state reset between samples).
    """

    def forward(self, x: torch.Tensor, state: list | None = None):
        if state is not None and len(state) != len(self):
            raise ValueError(f"state has {len(state)} entries but the container has {len(self)} layers")
        states = [None] * len(self) if state is None else list(state)
        for index, module in enumerate(self):
            if is_stateful(module):
                x, states[index] = module(x, states[index])
            else:
                x = module(x)
        return x, states
