"""Functional core: pure single-step neuron dynamics on explicit state (Norse's semantics).

Every function takes the input of one time step ``x`` with shape ``(B, ...)``, the state
entering the step and a parameter tuple, and returns ``(spikes, new_state)``. Nothing is
stored between calls. These step functions are the *reference*: the fused multi-step kernels
in :mod:`spikelab.neurons.fused` must reproduce them bit for bit.

Integration (``p.integration``):

* ``"euler"`` (default, as Norse): decay factor per step ``alpha = dt * tau_inv``.
* ``"exact"``: exponential decay, ``alpha = 1 - exp(-dt * tau_inv)``; the leak toward the
  target is then exact for a constant target over one step (exponential Euler).

Units follow Norse: time constants are inverse seconds (``tau_mem_inv = 100`` is 10 ms),
``dt`` is seconds, voltages and currents are dimensionless (threshold 1).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from spikelab.neurons.surrogate import spike_fn

INTEGRATIONS = ("euler", "exact")


def decay_coefficient(tau_inv: torch.Tensor, dt: float, integration: str) -> torch.Tensor:
    """Fraction of the distance to the target covered in one step of length ``dt``."""
    if integration == "euler":
        return dt * tau_inv
    if integration == "exact":
        return -torch.expm1(-dt * tau_inv)
    raise ValueError(f"integration={integration!r}: choose one of {INTEGRATIONS}")


class LIFParameters(NamedTuple):
    """Current-based LIF parameters (Norse ``LIFParameters`` names and defaults).

    tau_syn_inv, tau_mem_inv: inverse synaptic / membrane time constants (1/s);
    v_leak, v_th, v_reset: leak, threshold and reset potentials; method, alpha: surrogate
    gradient (:mod:`spikelab.neurons.surrogate`); integration: ``"euler"`` or ``"exact"``.
    """

    tau_syn_inv: torch.Tensor = torch.as_tensor(200.0)
    tau_mem_inv: torch.Tensor = torch.as_tensor(100.0)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    method: str = "super"
    alpha: float | None = None
    integration: str = "euler"


class LIFState(NamedTuple):
    """State of a current-based LIF population: membrane voltage ``v`` and synaptic current ``i``."""

    v: torch.Tensor
    i: torch.Tensor


class LIFBoxParameters(NamedTuple):
    """LIF without synaptic current: the input drives the membrane directly (Norse ``LIFBox``)."""

    tau_mem_inv: torch.Tensor = torch.as_tensor(100.0)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    method: str = "super"
    alpha: float | None = None
    integration: str = "euler"


class LIFBoxState(NamedTuple):
    """State of a LIF population without synaptic current: membrane voltage ``v``."""

    v: torch.Tensor


class AdaptiveLIFParameters(NamedTuple):
    """LIF with an adaptive threshold ``b`` (Norse ``LSNNParameters`` names and defaults).

    ``b`` relaxes toward ``v_th`` with rate ``tau_adapt_inv`` and jumps by ``beta`` per spike.
    """

    tau_syn_inv: torch.Tensor = torch.as_tensor(200.0)
    tau_mem_inv: torch.Tensor = torch.as_tensor(100.0)
    tau_adapt_inv: torch.Tensor = torch.as_tensor(1.0 / 800)
    v_leak: torch.Tensor = torch.as_tensor(0.0)
    v_th: torch.Tensor = torch.as_tensor(1.0)
    v_reset: torch.Tensor = torch.as_tensor(0.0)
    beta: torch.Tensor = torch.as_tensor(1.8)
    method: str = "super"
    alpha: float | None = None
    integration: str = "euler"


class AdaptiveLIFState(NamedTuple):
    """State of an adaptive LIF population: voltage ``v``, current ``i`` and threshold ``b``."""

    v: torch.Tensor
    i: torch.Tensor
    b: torch.Tensor


def lif_step(
    x: torch.Tensor, state: LIFState, p: LIFParameters, dt: float = 1e-3
) -> tuple[torch.Tensor, LIFState]:
    """One step of the current-based LIF (Norse ``lif_feed_forward_step``).

    ``i1 = i + x``; ``v_d = v + a_m ((v_leak - v) + i1)``; ``i' = i1 - a_s i1``;
    ``z = H(v_d - v_th)``; ``v' = (1 - z) v_d + z v_reset``. The reset is differentiable
    through ``z`` as in Norse.
    """
    a_m = decay_coefficient(p.tau_mem_inv, dt, p.integration)
    a_s = decay_coefficient(p.tau_syn_inv, dt, p.integration)
    i_jump = state.i + x
    v_decayed = state.v + a_m * ((p.v_leak - state.v) + i_jump)
    i_decayed = i_jump + (-a_s) * i_jump
    z = spike_fn(v_decayed - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return z, LIFState(v=v_new, i=i_decayed)


def lif_box_step(
    x: torch.Tensor, state: LIFBoxState, p: LIFBoxParameters, dt: float = 1e-3
) -> tuple[torch.Tensor, LIFBoxState]:
    """One step of the LIF without synaptic current (Norse ``lif_box_feed_forward_step``).

    ``v_d = v + a_m (x + v_leak - v)``; ``z = H(v_d - v_th)``; ``v' = (1 - z) v_d + z v_reset``.
    """
    a_m = decay_coefficient(p.tau_mem_inv, dt, p.integration)
    v_decayed = state.v + a_m * (x + p.v_leak - state.v)
    z = spike_fn(v_decayed - p.v_th, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    return z, LIFBoxState(v=v_new)


def adaptive_lif_step(
    x: torch.Tensor, state: AdaptiveLIFState, p: AdaptiveLIFParameters, dt: float = 1e-3
) -> tuple[torch.Tensor, AdaptiveLIFState]:
    """One step of the adaptive-threshold LIF (Norse ``lsnn_feed_forward_step``).

    Voltage and current decay first, the threshold relaxes toward ``v_th``, the neuron spikes
    when ``v_d > b_d``, the threshold jumps by ``beta`` per spike, and the input is added to
    the current at the end of the step (Norse's order).
    """
    a_m = decay_coefficient(p.tau_mem_inv, dt, p.integration)
    a_s = decay_coefficient(p.tau_syn_inv, dt, p.integration)
    a_b = decay_coefficient(p.tau_adapt_inv, dt, p.integration)
    v_decayed = state.v + a_m * ((p.v_leak - state.v) + state.i)
    i_decayed = state.i + (-a_s) * state.i
    b_decayed = state.b + a_b * (p.v_th - state.b)
    z = spike_fn(v_decayed - b_decayed, p.method, p.alpha)
    v_new = (1 - z) * v_decayed + z * p.v_reset
    b_new = b_decayed + z * p.beta
    return z, AdaptiveLIFState(v=v_new, i=i_decayed + x, b=b_new)
