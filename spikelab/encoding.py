"""Encoders: turn static values ``(B, ...)`` into time-major spike trains ``(T, B, ...)``.

* :class:`PoissonEncoder`: rate code, a spike with probability ``f_max * dt * x`` per step.
* :class:`ConstantCurrentEncoder`: the value is a constant current into a LIF without synaptic
  current (Norse's ``ConstantCurrentLIFEncoder``); stronger inputs fire more often.
* :class:`LatencyEncoder`: one spike per input, earlier for larger values (time to first spike).

All return float spikes of the input's dtype. Randomness comes from an optional
``torch.Generator`` so that runs are reproducible.
"""

from __future__ import annotations

import torch
from torch import nn

from spikelab.neurons.modules import LIFBox


def _check_unit_interval(x: torch.Tensor, who: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{who} expects a floating-point tensor")
    if x.numel() and (not torch.isfinite(x).all() or x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{who} expects intensities in [0, 1]; got values in "
            f"[{x.min().item():g}, {x.max().item():g}] (normalise the input first)"
        )


def _check_length(seq_length: int) -> int:
    if not isinstance(seq_length, int) or seq_length < 1:
        raise ValueError(f"seq_length must be a positive integer, got {seq_length!r}")
    return seq_length


class PoissonEncoder(nn.Module):
    """Poisson rate code: spike at each step with probability ``f_max * dt * x``.

    Args:
        seq_length: number of time steps T.
        f_max: firing rate in Hz for ``x = 1``.
        dt: time step in seconds (``f_max * dt`` must not exceed 1).
    Input ``x`` (B, ...) with values in [0, 1]; output (T, B, ...).
    """

    def __init__(self, seq_length: int, f_max: float = 100.0, dt: float = 1e-3) -> None:
        super().__init__()
        self.seq_length = _check_length(seq_length)
        if dt <= 0 or f_max <= 0 or f_max * dt > 1:
            raise ValueError(f"need dt > 0, f_max > 0 and f_max * dt <= 1; got f_max={f_max}, dt={dt}")
        self.f_max, self.dt = float(f_max), float(dt)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        _check_unit_interval(x, "PoissonEncoder")
        u = torch.rand((self.seq_length, *x.shape), device=x.device, dtype=x.dtype, generator=generator)
        return (u < self.f_max * self.dt * x).to(x.dtype)


class ConstantCurrentEncoder(nn.Module):
    """Constant-current code: ``x`` is injected every step into a :class:`LIFBox` population.

    Args:
        seq_length: number of time steps T.
        tau_mem_inv, v_th, dt: parameters of the encoding neurons (see :class:`LIFBox`).
    Input ``x`` (B, ...) of currents (any real values); output spikes (T, B, ...).
    """

    def __init__(self, seq_length: int, tau_mem_inv: float = 100.0, v_th: float = 1.0, dt: float = 1e-3) -> None:
        super().__init__()
        self.seq_length = _check_length(seq_length)
        self.neuron = LIFBox(tau_mem_inv=tau_mem_inv, v_th=v_th, dt=dt, method="heaviside")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.neuron(x.unsqueeze(0).expand(self.seq_length, *x.shape))
        return z


class LatencyEncoder(nn.Module):
    """Time-to-first-spike code: a single spike at step ``round((1 - x) * (T - 1))``.

    ``x = 1`` fires at step 0, ``x`` at or below ``threshold`` never fires. Input (B, ...) in
    [0, 1]; output (T, B, ...) with at most one spike per input element.
    """

    def __init__(self, seq_length: int, threshold: float = 0.0) -> None:
        super().__init__()
        self.seq_length = _check_length(seq_length)
        self.threshold = float(threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_unit_interval(x, "LatencyEncoder")
        t_spike = torch.round((1 - x) * (self.seq_length - 1)).long()
        steps = torch.arange(self.seq_length, device=x.device).view(-1, *([1] * x.dim()))
        return ((steps == t_spike) & (x > self.threshold)).to(x.dtype)
