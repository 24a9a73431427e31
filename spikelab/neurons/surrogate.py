"""Surrogate gradients for the spike threshold.

The forward pass of every surrogate is the Heaviside step ``z = (x > 0)`` (Norse's convention:
exactly zero spikes at ``x == 0``). The backward pass replaces the step's derivative with a
smooth pseudo-derivative ``dz/dx ~= sg(x, alpha)``. The same derivative formulas are used by the
reference autograd path (:class:`SurrogateSpike`) and by the fused kernels, which select them by
integer code (:data:`SURROGATE_CODES`).

========== ========================================= ============ ===========================
name       pseudo-derivative ``sg(x, alpha)``        default alpha origin
========== ========================================= ============ ===========================
super      ``1 / (|x| + 1)**2``                      100 (unused) Norse 1.1.0 SuperSpike [1]_
triangle   ``alpha * max(0, 1 - |x|)``               100          Norse ``triangle`` (Esser 2016)
sigmoid    ``alpha * s * (1 - s)``, ``s=sig(a x)``   4            SpikingJelly ``Sigmoid``
atan       ``alpha/2 / (1 + (pi/2 * alpha * x)**2)`` 2            SpikingJelly ``ATan``
heaviside  ``0`` (no gradient)                       --           inference only
========== ========================================= ============ ===========================

.. [1] Norse 1.1.0's SuperSpike ignores ``alpha`` (its backward is ``1/(|x|+1)**2``). spikelab
   reproduces that exactly, so gradients match Norse's; use another surrogate to tune sharpness.
"""

from __future__ import annotations

import math

import torch

SURROGATE_CODES: dict[str, int] = {"heaviside": 0, "super": 1, "triangle": 2, "sigmoid": 3, "atan": 4}
DEFAULT_ALPHA: dict[str, float] = {
    "heaviside": 0.0,
    "super": 100.0,
    "triangle": 100.0,
    "sigmoid": 4.0,
    "atan": 2.0,
}


def check_method(method: str) -> int:
    """Return the integer code of surrogate ``method``; ``ValueError`` naming the options if unknown."""
    if method not in SURROGATE_CODES:
        raise ValueError(
            f"method={method!r} is not a known surrogate gradient; choose one of {sorted(SURROGATE_CODES)}"
        )
    return SURROGATE_CODES[method]


def resolve_alpha(method: str, alpha: float | None) -> float:
    """``alpha`` itself, or the surrogate's default when ``alpha`` is None."""
    check_method(method)
    return DEFAULT_ALPHA[method] if alpha is None else float(alpha)


def surrogate_derivative(x: torch.Tensor, method: str, alpha: float) -> torch.Tensor:
    """Pseudo-derivative ``sg(x, alpha)`` of surrogate ``method`` (see the module table)."""
    if method == "super":
        return 1.0 / (x.abs() + 1.0).pow(2)
    if method == "triangle":
        return alpha * torch.relu(1.0 - x.abs())
    if method == "sigmoid":
        s = torch.sigmoid(alpha * x)
        return alpha * s * (1.0 - s)
    if method == "atan":
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * x).pow(2))
    if method == "heaviside":
        return torch.zeros_like(x)
    check_method(method)
    raise AssertionError("unreachable")


class SurrogateSpike(torch.autograd.Function):
    """Heaviside forward, surrogate ``method`` backward (the autograd reference path)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, method: str, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.method = method
        ctx.alpha = alpha
        return torch.gt(x, 0.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_output * surrogate_derivative(x, ctx.method, ctx.alpha), None, None


def spike_fn(x: torch.Tensor, method: str = "super", alpha: float | None = None) -> torch.Tensor:
    """Spikes ``(x > 0)`` with the surrogate gradient ``method`` (differentiable)."""
    return SurrogateSpike.apply(x, method, resolve_alpha(method, alpha))
