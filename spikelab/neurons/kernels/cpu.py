"""Numba kernels for the fused current-based LIF on CPU.

Layout: inputs are 2-D ``(T, N)`` arrays with ``N = B * M`` (batch times neurons per sample);
per-neuron coefficient arrays have length ``M``. Work is split into jobs of at most ``CHUNK``
neurons of one sample; a job keeps its state in L1 while it walks through time, so every input
element is read once and every output element written once.

Two details keep the inner loops vectorised (measured: 10x): indices are unsigned (numba
otherwise inserts a negative-index check on every access), and the non-finite check is an
integer OR (a float reduction cannot be reordered without fast-math).

Kernels compile on first use (about a second each) and numba caches them on disk.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

CHUNK = 512


@njit(inline="always")
def _surrogate(x, code, alpha):
    """Pseudo-derivative of the spike function (codes as in ``surrogate.SURROGATE_CODES``)."""
    if code == 1:
        d = abs(x) + 1.0
        return 1.0 / (d * d)
    if code == 2:
        r = 1.0 - abs(x)
        return alpha * r if r > 0.0 else 0.0
    if code == 3:
        s = 1.0 / (1.0 + math.exp(-alpha * x))
        return alpha * s * (1.0 - s)
    if code == 4:
        y = math.pi / 2.0 * alpha * x
        return (alpha / 2.0) / (1.0 + y * y)
    return 0.0


@njit(inline="always")
def _job_range(job, nchunk, M):
    """(base offset of the sample, first neuron, end neuron) of job ``job``, all unsigned."""
    c = job % nchunk
    base = np.uint64((job // nchunk) * M)
    m0 = np.uint64(c * CHUNK)
    m1 = np.uint64(min(M, c * CHUNK + CHUNK))
    return base, m0, m1


@njit(parallel=True, cache=True, nogil=True)
def lif_forward(x, v, i, a_m, neg_a_s, v_leak, v_th, v_reset, z, v_dec, v_trace, i_trace, store, record):
    """Advance ``T`` steps. ``v``/``i`` (length N) hold the initial state and receive the final one.

    ``store``: write pre-reset voltages to ``v_dec`` (for the backward pass); ``record``: write
    the state after every step to ``v_trace``/``i_trace`` (monitors). Returns the number of jobs
    in which a pre-reset voltage was NaN or infinite (non-finite input or state),
    counted in jobs.
    """
    T, N = x.shape
    M = a_m.shape[0]
    nchunk = (M + CHUNK - 1) // CHUNK
    bad = 0
    for job in prange((N // M) * nchunk):
        base, m0, m1 = _job_range(job, nchunk, M)
        nonfinite = False
        for t in range(T):
            for m in range(m0, m1):
                k = base + m
                i1 = i[k] + x[t, k]
                vv = v[k]
                vd = vv + a_m[m] * ((v_leak[m] - vv) + i1)
                i[k] = i1 + neg_a_s[m] * i1
                spike = vd - v_th[m] > 0
                z[t, k] = 1 if spike else 0
                v[k] = v_reset[m] if spike else vd
                if store:
                    v_dec[t, k] = vd
                if record:
                    v_trace[t, k] = v[k]
                    i_trace[t, k] = i[k]
                nonfinite |= (vd - vd) != 0
        bad += 1 if nonfinite else 0
    return bad


@njit(parallel=True, cache=True, nogil=True)
def lif_backward(grad_z, grad_v, grad_i, v_dec, a_m, neg_a_s, v_th, v_reset, code, alpha, grad_x):
    """Backpropagate through ``T`` steps in reverse.

    ``grad_v``/``grad_i`` (length N) hold the gradient w.r.t. the final state on entry and the
    gradient w.r.t. the initial state on exit; ``grad_x`` receives the input gradient.
    Per step (see ``functional.lif_step``), with ``g_v'``, ``g_i'`` the gradients of the
    outgoing state::

        g_z  = grad_z + g_v' (v_reset - v_d)          # the reset depends on z
        g_vd = g_z sg(v_d - v_th) + (1 - z) g_v'
        g_i1 = g_vd a_m + g_i' (1 - a_s)  -> grad_x[t] and g_i
        g_v  = g_vd (1 - a_m)
    """
    T, N = grad_z.shape
    M = a_m.shape[0]
    nchunk = (M + CHUNK - 1) // CHUNK
    for job in prange((N // M) * nchunk):
        base, m0, m1 = _job_range(job, nchunk, M)
        for t in range(T - 1, -1, -1):
            for m in range(m0, m1):
                k = base + m
                vd = v_dec[t, k]
                u = vd - v_th[m]
                gvn = grad_v[k]
                gz = grad_z[t, k] + gvn * (v_reset[m] - vd)
                gvd = gz * _surrogate(u, code, alpha) + (0 if u > 0 else gvn)
                gi1 = gvd * a_m[m] + (grad_i[k] + grad_i[k] * neg_a_s[m])
                grad_x[t, k] = gi1
                grad_i[k] = gi1
                grad_v[k] = gvd - gvd * a_m[m]


def set_threads(n: int) -> None:
    """Use ``n`` numba threads (capped at numba's pool size)."""
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


_DUMMY: dict[np.dtype, np.ndarray] = {}


def dummy(dtype: np.dtype) -> np.ndarray:
    """A 1x1 placeholder for an output the kernel is told not to write."""
    if dtype not in _DUMMY:
        _DUMMY[dtype] = np.zeros((1, 1), dtype=dtype)
    return _DUMMY[dtype]
