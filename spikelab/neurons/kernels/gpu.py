"""Triton kernels for the fused current-based LIF on CUDA devices.

One program handles ``BLOCK`` neurons and walks through all ``T`` steps, keeping ``v`` and
``i`` in registers: each input element is read once and each spike written once, which makes
the kernel memory-bound. Floating-point contraction into FMA is disabled
(``enable_fp_fusion=False``) so that results equal the step-by-step reference bit for bit.

Without a GPU the kernels can be checked on CPU tensors with ``TRITON_INTERPRET=1`` (slow).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 256


@triton.jit
def _surrogate(u, code: tl.constexpr, alpha):
    if code == 1:
        d = tl.abs(u) + 1.0
        return 1.0 / (d * d)
    elif code == 2:
        return alpha * tl.maximum(1.0 - tl.abs(u), 0.0)
    elif code == 3:
        s = 1.0 / (1.0 + tl.exp(-alpha * u))
        return alpha * s * (1.0 - s)
    elif code == 4:
        y = 1.5707963267948966 * alpha * u
        return (alpha / 2.0) / (1.0 + y * y)
    else:
        return u * 0.0


@triton.jit
def _lif_forward_kernel(
    x_ptr, v_ptr, i_ptr, am_ptr, nas_ptr, vl_ptr, th_ptr, vr_ptr,
    z_ptr, vd_ptr, vt_ptr, it_ptr, bad_ptr,
    T, N, M,
    STORE: tl.constexpr, RECORD: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < N
    m = offs % M
    a_m = tl.load(am_ptr + m, mask=mask, other=0.0)
    neg_a_s = tl.load(nas_ptr + m, mask=mask, other=0.0)
    v_leak = tl.load(vl_ptr + m, mask=mask, other=0.0)
    v_th = tl.load(th_ptr + m, mask=mask, other=0.0)
    v_reset = tl.load(vr_ptr + m, mask=mask, other=0.0)
    v = tl.load(v_ptr + offs, mask=mask, other=0.0)
    i = tl.load(i_ptr + offs, mask=mask, other=0.0)
    nonfinite = tl.zeros([BLOCK_SIZE], dtype=tl.int32)
    for t in range(T):
        idx = t * N + offs
        i1 = i + tl.load(x_ptr + idx, mask=mask, other=0.0)
        vd = v + a_m * ((v_leak - v) + i1)
        i = i1 + neg_a_s * i1
        spike = (vd - v_th) > 0.0
        tl.store(z_ptr + idx, tl.where(spike, 1.0, 0.0).to(z_ptr.dtype.element_ty), mask=mask)
        v = tl.where(spike, v_reset, vd)
        if STORE:
            tl.store(vd_ptr + idx, vd, mask=mask)
        if RECORD:
            tl.store(vt_ptr + idx, v, mask=mask)
            tl.store(it_ptr + idx, i, mask=mask)
        nonfinite = nonfinite | ((vd - vd) != 0.0).to(tl.int32)
    tl.store(v_ptr + offs, v, mask=mask)
    tl.store(i_ptr + offs, i, mask=mask)
    tl.atomic_add(bad_ptr, tl.sum(tl.where(mask, nonfinite, 0), axis=0))


@triton.jit
def _lif_backward_kernel(
    gz_ptr, gv_ptr, gi_ptr, vd_ptr, am_ptr, nas_ptr, th_ptr, vr_ptr, gx_ptr,
    T, N, M, alpha,
    CODE: tl.constexpr, BLOCK_SIZE: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < N
    m = offs % M
    a_m = tl.load(am_ptr + m, mask=mask, other=0.0)
    neg_a_s = tl.load(nas_ptr + m, mask=mask, other=0.0)
    v_th = tl.load(th_ptr + m, mask=mask, other=0.0)
    v_reset = tl.load(vr_ptr + m, mask=mask, other=0.0)
    gv = tl.load(gv_ptr + offs, mask=mask, other=0.0)
    gi = tl.load(gi_ptr + offs, mask=mask, other=0.0)
    for tt in range(T):
        idx = (T - 1 - tt) * N + offs
        vd = tl.load(vd_ptr + idx, mask=mask, other=0.0)
        u = vd - v_th
        gz = tl.load(gz_ptr + idx, mask=mask, other=0.0) + gv * (v_reset - vd)
        gvd = gz * _surrogate(u, CODE, alpha) + tl.where(u > 0.0, 0.0, gv)
        gi1 = gvd * a_m + (gi + gi * neg_a_s)
        tl.store(gx_ptr + idx, gi1, mask=mask)
        gi = gi1
        gv = gvd - gvd * a_m
    tl.store(gv_ptr + offs, gv, mask=mask)
    tl.store(gi_ptr + offs, gi, mask=mask)


class TritonBackend:
    """Launches the Triton kernels; same interface as the CPU backend in ``fused.py``."""

    @staticmethod
    def forward(x, v0, i0, coeffs, store, record):
        T, N = x.shape
        M = coeffs[0].numel()
        x = x.detach().contiguous()
        v = v0.detach().clone().contiguous()
        i = i0.detach().clone().contiguous()
        z = torch.empty_like(x)
        v_dec = torch.empty_like(x) if store else z
        trace = (torch.empty_like(x), torch.empty_like(x)) if record else None
        bad = torch.zeros(1, dtype=torch.int32, device=x.device)
        grid = (triton.cdiv(N, BLOCK),)
        _lif_forward_kernel[grid](
            x, v, i, *coeffs, z, v_dec,
            trace[0] if record else z, trace[1] if record else z, bad,
            T, N, M, STORE=store, RECORD=record, BLOCK_SIZE=BLOCK, enable_fp_fusion=False,
        )
        return z, v, i, (v_dec if store else None), trace, int(bad.item())

    @staticmethod
    def backward(grad_z, grad_v, grad_i, v_dec, coeffs, code, alpha):
        T, N = grad_z.shape
        a_m, neg_a_s, _v_leak, v_th, v_reset = coeffs
        grad_z = grad_z.contiguous()
        gv = grad_v.detach().clone().contiguous()
        gi = grad_i.detach().clone().contiguous()
        gx = torch.empty_like(grad_z)
        grid = (triton.cdiv(N, BLOCK),)
        _lif_backward_kernel[grid](
            grad_z, gv, gi, v_dec, a_m, neg_a_s, v_th, v_reset, gx,
            T, N, a_m.numel(), float(alpha),
            CODE=code, BLOCK_SIZE=BLOCK, enable_fp_fusion=False,
        )
        return gx, gv, gi
