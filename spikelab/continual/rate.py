"""Rate-based training (DSR-style): gradients through firing rates instead of through time.

Differentiation on spike representation (DSR, Meng et al. 2022; the default training method of
the HLOP reference code) runs the spiking network forward as usual but back-propagates through
the *rates*: each neuron layer is treated as ``r = phi(mean_t x_t)``, with ``phi`` a clipped
linear approximation of its rate-input curve, and the gradient reaching the input is spread
evenly over the time steps:

    dL/dx_t = phi'(x_mean) * (1/T) * sum_t' dL/dz_t'.

For spikelab's current-based :class:`~spikelab.neurons.LIF` (Euler or exact integration), a
constant input ``x`` per step builds a synaptic current ``x / a_s`` that charges the membrane by
``a_m x / a_s`` per step; without leak the neuron fires ``phi(x) = clamp(g x, 0, 1)`` spikes per
step with gain ``g = a_m / (a_s (v_th - v_reset))`` (``a_m``, ``a_s``: the per-step decay
coefficients). :class:`~spikelab.neurons.LIFBox` has no synaptic current: ``g = a_m / (v_th - v_reset)``.

Because no graph through time is stored, rate-based training is cheaper than BPTT, and every
weight gradient is ``(mean_t dL/dx_t)^T (sum_t input_t)``: a function of presynaptic *rates*,
the signal HLOP's Hebbian neurons then learn from.

:class:`RateGradients` installs this on every neuron layer of a model with forward hooks, so
the model itself stays a plain spikelab network.
"""

from __future__ import annotations

import torch
from torch import nn

from spikelab.neurons import LIF, LIFBox
from spikelab.neurons.functional import decay_coefficient

import os
MAX_RATE = float(os.environ.get("SL_MAXRATE", "1.0"))


def rate_gain(neuron: nn.Module) -> torch.Tensor:
    """Spikes per step per unit of input, ``g``, of a LIF or LIFBox layer (scalar or per neuron)."""
    if isinstance(neuron, LIF):
        a_m = decay_coefficient(neuron.tau_mem_inv, neuron.dt, neuron.integration)
        a_s = decay_coefficient(neuron.tau_syn_inv, neuron.dt, neuron.integration)
        return (a_m / (a_s * (neuron.v_th - neuron.v_reset))).detach()
    if isinstance(neuron, LIFBox):
        a_m = decay_coefficient(neuron.tau_mem_inv, neuron.dt, neuron.integration)
        return (a_m / (neuron.v_th - neuron.v_reset)).detach()
    raise ValueError(f"rate-based (DSR) training supports LIF and LIFBox layers, not {type(neuron).__name__}")


class _RateGradient(torch.autograd.Function):
    """Forward: the spikes ``z`` computed without a graph; backward: the DSR rate gradient to ``x``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, z: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        drive = gain * x.mean(0)
        ctx.save_for_backward(torch.where((drive > 0) & (drive < MAX_RATE), gain, torch.zeros_like(drive)))
        return z.clone()

    @staticmethod
    def backward(ctx, grad_z: torch.Tensor):
        (slope,) = ctx.saved_tensors
        grad_x = (grad_z.mean(0) * slope).unsqueeze(0).expand_as(grad_z)
        return grad_x, None, None


class RateGradients:
    """Context manager: every LIF / LIFBox layer inside ``model`` back-propagates through rates.

    The neuron still runs its (fused) forward, but on a detached input, so no per-step state is
    kept for a backward through time.
    """

    def __init__(self, model: nn.Module) -> None:
        self.neurons = [m for m in model.modules() if isinstance(m, (LIF, LIFBox))]
        if not self.neurons:
            raise ValueError("the model has no LIF or LIFBox layers for rate-based training")
        for n in self.neurons:
            rate_gain(n)  # fail early on unsupported configurations
        self._handles: list = []
        self._inputs: dict[int, torch.Tensor] = {}

    def _pre(self, module, args):
        x = args[0]
        if not (torch.is_grad_enabled() and x.requires_grad):
            return None
        self._inputs[id(module)] = x
        return (x.detach(), *args[1:])

    def _post(self, module, args, output):
        x = self._inputs.pop(id(module), None)
        if x is None:
            return None
        z, state = output
        return _RateGradient.apply(x, z, rate_gain(module).to(x.dtype)), state

    def __enter__(self) -> "RateGradients":
        for n in self.neurons:
            self._handles.append(n.register_forward_pre_hook(self._pre))
            self._handles.append(n.register_forward_hook(self._post))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._inputs.clear()
