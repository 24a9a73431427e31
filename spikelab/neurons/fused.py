"""Fused multi-step current-based LIF: one call advances a whole ``(T, B, ...)`` sequence.

:func:`lif_sequence` is the fast path behind :class:`spikelab.neurons.LIF`. It runs a compiled
kernel over all time steps (numba on CPU, Triton on CUDA) with a hand-written backward through
time (:class:`LIFSequenceFunction`), instead of autograd over ``T`` small steps: the forward
stores only the pre-reset voltage per step, and the backward is one more pass in reverse.

It falls back to looping :func:`spikelab.neurons.functional.lif_step` (autograd through every
step, identical results) when a neuron parameter requires a gradient, or on devices without a
kernel. :func:`lif_sequence_reference` is that loop, exported for tests and comparisons.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from spikelab.neurons.functional import LIFParameters, LIFState, decay_coefficient, lif_step
from spikelab.neurons.surrogate import check_method, resolve_alpha


def check_finite(x: torch.Tensor, name: str = "x") -> None:
    """``ValueError`` if ``x`` holds NaN or inf."""
    if not torch.isfinite(x).all():
        raise ValueError(f"`{name}` contains NaN or inf values")


class LIFTrace(NamedTuple):
    """Per-step state of a LIF population, each ``(T, B, ...)``: voltage ``v`` and current ``i``
    after the step (after reset)."""

    v: torch.Tensor
    i: torch.Tensor


def lif_sequence_reference(
    x: torch.Tensor, state: LIFState, p: LIFParameters, dt: float, record: bool = False
) -> tuple[torch.Tensor, LIFState, LIFTrace | None]:
    """Reference: loop :func:`lif_step` over time with autograd through every step."""
    spikes, vs, is_ = [], [], []
    for x_t in x:
        z, state = lif_step(x_t, state, p, dt)
        spikes.append(z)
        if record:
            vs.append(state.v)
            is_.append(state.i)
    trace = LIFTrace(torch.stack(vs), torch.stack(is_)) if record else None
    return torch.stack(spikes), state, trace


def _coefficients(p: LIFParameters, dt: float, neuron_shape: torch.Size, like: torch.Tensor):
    """Per-neuron kernel coefficients, each flattened to length M = prod(neuron_shape)."""
    a_m = decay_coefficient(p.tau_mem_inv, dt, p.integration)
    neg_a_s = -decay_coefficient(p.tau_syn_inv, dt, p.integration)
    out = []
    for c in (a_m, neg_a_s, p.v_leak, p.v_th, p.v_reset):
        c = torch.as_tensor(c, device=like.device).to(like.dtype)
        out.append(c.detach().expand(neuron_shape).reshape(-1).contiguous())
    return out


class LIFSequenceFunction(torch.autograd.Function):
    """Autograd function of the fused LIF; inputs ``x (T, B, ...)``, ``v0``, ``i0 (B, ...)``."""

    @staticmethod
    def forward(ctx, x, v0, i0, coeffs, code, alpha, record):
        T = x.shape[0]
        n = v0.numel()
        needs_grad = any(ctx.needs_input_grad[:3])
        backend = _backend(x)
        z, v, i, v_dec, trace, bad = backend.forward(
            x.reshape(T, n), v0.reshape(n), i0.reshape(n), coeffs, needs_grad, record
        )
        if bad:
            raise ValueError(
                "LIF input `x` or the initial state contains NaN or inf (a non-finite membrane "
                "voltage appeared); nothing was returned"
            )
        ctx.code, ctx.alpha, ctx.backend = code, alpha, backend
        ctx.shapes = (x.shape, v0.shape)
        if needs_grad:
            ctx.save_for_backward(v_dec, *coeffs)
        vt, it = (t.reshape(x.shape) for t in trace) if trace is not None else (None, None)
        if trace is not None:
            ctx.mark_non_differentiable(vt, it)
        return z.reshape(x.shape), v.reshape(v0.shape), i.reshape(v0.shape), vt, it

    @staticmethod
    def backward(ctx, grad_z, grad_v, grad_i, _gvt, _git):
        x_shape, s_shape = ctx.shapes
        T, n = x_shape[0], int(np.prod(s_shape))
        v_dec, *coeffs = ctx.saved_tensors
        like = v_dec
        grad_z = torch.zeros_like(v_dec) if grad_z is None else grad_z.reshape(T, n)
        grad_v = torch.zeros(n, dtype=like.dtype, device=like.device) if grad_v is None else grad_v
        grad_i = torch.zeros(n, dtype=like.dtype, device=like.device) if grad_i is None else grad_i
        gx, gv0, gi0 = ctx.backend.backward(
            grad_z, grad_v.reshape(n), grad_i.reshape(n), v_dec, coeffs, ctx.code, ctx.alpha
        )
        return gx.reshape(x_shape), gv0.reshape(s_shape), gi0.reshape(s_shape), None, None, None, None


class _NumbaBackend:
    """CPU kernels (:mod:`spikelab.neurons.kernels.cpu`) on zero-copy numpy views."""

    @staticmethod
    def forward(x, v0, i0, coeffs, store, record):
        from spikelab.neurons.kernels import cpu

        cpu.set_threads(torch.get_num_threads())
        x = x.detach().contiguous()
        v = v0.detach().clone().contiguous()
        i = i0.detach().clone().contiguous()
        z = torch.empty_like(x)
        v_dec = torch.empty_like(x) if store else None
        trace = (torch.empty_like(x), torch.empty_like(x)) if record else None
        dummy = cpu.dummy(x.numpy().dtype)
        bad = cpu.lif_forward(
            x.numpy(), v.numpy(), i.numpy(), *(c.numpy() for c in coeffs), z.numpy(),
            v_dec.numpy() if store else dummy,
            trace[0].numpy() if record else dummy,
            trace[1].numpy() if record else dummy,
            store, record,
        )
        return z, v, i, v_dec, trace, bad

    @staticmethod
    def backward(grad_z, grad_v, grad_i, v_dec, coeffs, code, alpha):
        from spikelab.neurons.kernels import cpu

        cpu.set_threads(torch.get_num_threads())
        grad_z = grad_z.contiguous()
        gv = grad_v.detach().clone().contiguous()
        gi = grad_i.detach().clone().contiguous()
        gx = torch.empty_like(grad_z)
        a_m, neg_a_s, _v_leak, v_th, v_reset = coeffs
        cpu.lif_backward(
            grad_z.numpy(), gv.numpy(), gi.numpy(), v_dec.numpy(),
            a_m.numpy(), neg_a_s.numpy(), v_th.numpy(), v_reset.numpy(),
            code, alpha, gx.numpy(),
        )
        return gx, gv, gi


def _backend(x: torch.Tensor):
    if x.device.type == "cuda":
        from spikelab.neurons.kernels import gpu

        return gpu.TritonBackend
    return _NumbaBackend


def fused_available(x: torch.Tensor) -> bool:
    """Whether a fused kernel exists for ``x``'s device (CPU always; CUDA when Triton imports)."""
    if x.device.type == "cpu":
        return x.dtype in (torch.float32, torch.float64)
    if x.device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False
        return x.dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16)
    return False


def lif_sequence(
    x: torch.Tensor,
    state: LIFState,
    p: LIFParameters,
    dt: float = 1e-3,
    record: bool = False,
    fused: bool | None = None,
) -> tuple[torch.Tensor, LIFState, LIFTrace | None]:
    """Run the current-based LIF over a whole sequence.

    Args:
        x: input currents ``(T, B, ...)`` added to the synaptic current each step.
        state: state entering step 0, tensors of shape ``(B, ...)``.
        p: parameters; tensors broadcastable to the neuron shape ``x.shape[2:]``.
        dt: time step in seconds.
        record: also return the per-step state (:class:`LIFTrace`).
        fused: force (True) or forbid (False) the fused kernel; None picks it when possible.

    Returns:
        ``(z, final_state, trace)`` with spikes ``z`` shaped like ``x`` and ``trace`` None unless
        ``record``.
    """
    params_need_grad = any(
        isinstance(t, torch.Tensor) and t.requires_grad
        for t in (p.tau_syn_inv, p.tau_mem_inv, p.v_leak, p.v_th, p.v_reset)
    )
    use_fused = fused_available(x) and not params_need_grad if fused is None else fused
    if not use_fused:
        check_finite(x)
        return lif_sequence_reference(x, state, p, dt, record)
    if params_need_grad:
        raise ValueError("fused=True cannot train neuron parameters; use fused=None or False")
    code = check_method(p.method)
    alpha = resolve_alpha(p.method, p.alpha)
    coeffs = _coefficients(p, dt, x.shape[2:], x)
    v0 = state.v.to(x.dtype).expand(x.shape[1:])
    i0 = state.i.to(x.dtype).expand(x.shape[1:])
    z, v, i, vt, it = LIFSequenceFunction.apply(x, v0, i0, coeffs, code, alpha, record)
    return z, LIFState(v=v, i=i), (LIFTrace(vt, it) if record else None)
