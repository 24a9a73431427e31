"""Trace-based STDP as in Diehl & Cook (2015), adaptive thresholds and input-weight normalisation.

The rule (Brian2 notation of the reference code, every synapse ``(i, j)``)::

    on presynaptic arrival:   pre = 1;  w = clip(w + nu_pre * post1, w_min, w_max)
    on postsynaptic spike:    w = clip(w + nu_post * pre * post2, w_min, w_max); post1 = post2 = 1

with traces decaying exponentially between events (``pre``: ``tau_pre``, ``post1``:
``tau_post1``, ``post2``: ``tau_post2``; ``post2`` is read *before* it is reset). When an
arrival and a postsynaptic spike fall in the same step the arrival is processed first (Brian2's
default order). ``nu_pre`` is signed: the ICRA 2023 place-recognition code adds
``+1e-4 * post1`` (the default here); Diehl & Cook 2015 subtract it (``nu_pre = -1e-4``).

Everything is *event-driven*: no trace and no weight is touched at steps without a spike.
A trace is never stored as a decaying value; the step of the last event is, and the trace is
``exp(-lag * dt / tau)`` evaluated (from a table) when an event needs it, which is exactly what
Brian2's ``(event-driven)`` variables compute. Times are integer steps; ``dt`` and every time
constant are in milliseconds.

Homeostasis: each excitatory neuron's threshold is raised by ``theta`` (mV), which jumps by
``theta_plus`` per spike and decays with ``tau_theta`` (1e7 ms in the reference: no decay in
practice). Normalisation: before every training example each neuron's input weights are
rescaled to sum to ``total`` (78 for 784 inputs).

The numba helpers (``pre_update``, ``on_post``, ``trace``) are shared with the network kernel in
:mod:`spikelab.ensembles.kernel`; :func:`stdp_sequence` and :class:`STDP` apply the rule to
given spike trains.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from numba import njit, prange
from torch import nn

#: Step of an event that never happened: every trace evaluated from it is exactly 0.
NEVER = -(2**62)


class STDPParameters(NamedTuple):
    """Trace-based STDP (times in ms). Defaults: the ICRA 2023 code (Diehl & Cook with ``+nu_pre``)."""

    tau_pre: float = 20.0
    tau_post1: float = 20.0
    tau_post2: float = 40.0
    nu_pre: float = 1e-4
    nu_post: float = 1e-2
    w_min: float = 0.0
    w_max: float = 1.0


class ThresholdParameters(NamedTuple):
    """Adaptive threshold: ``theta += theta_plus`` (mV) per spike, decay time constant ``tau_theta`` (ms)."""

    theta_plus: float = 0.05
    tau_theta: float = 1e7


class STDPState(NamedTuple):
    """Event times (integer steps) that define the traces.

    ``last_pre`` (B, N_in, N_out): last presynaptic *arrival* per synapse (per synapse because
    every synapse has its own delay); ``last_post`` (B, N_out): last postsynaptic spike;
    ``clock``: the step the next call starts at.
    """

    last_pre: np.ndarray
    last_post: np.ndarray
    clock: int


#: Length of the precomputed trace tables; longer lags fall back to ``math.exp``.
TABLE_LENGTH = 8192


def trace_table(tau: float, dt: float, length: int = TABLE_LENGTH) -> np.ndarray:
    """``exp(-k * dt / tau)`` for lags ``k = 0 .. length-1`` (float64)."""
    return np.exp(-np.arange(length, dtype=np.float64) * (dt / tau))


@njit(inline="always", cache=True)
def trace(table, lag, dt, tau):
    """Value of a trace set to 1 ``lag >= 0`` steps ago (0 for :data:`NEVER`)."""
    if lag < table.shape[0]:
        return table[lag]
    x = lag * (dt / tau)
    return math.exp(-x) if x < 746.0 else 0.0  # exp underflows to exactly 0 beyond 745.2


@njit(inline="always", cache=True)
def clip(x, lo, hi):
    return min(max(x, lo), hi)


@njit(inline="always", cache=True)
def pre_update(w, post1_j, nu_pre, w_min, w_max):
    """Weight after a presynaptic arrival; ``post1_j`` is the postsynaptic trace before this
    step's postsynaptic spike. (The caller records the arrival time, which sets ``pre = 1``.)"""
    return clip(w + nu_pre * post1_j, w_min, w_max)


@njit(inline="always", cache=True)
def on_post(w, pos, last, slot, j, s, post2_j, pre_table, dt, tau_pre, nu_post, w_min, w_max):
    """Postsynaptic spike of neuron ``j`` at step ``s`` (arrivals of step ``s`` already applied).

    Synapse ``(i, j)`` is stored at ``w[i, pos[i, j]]`` and its last arrival time at
    ``last[i, slot[i, j]]`` (``pos[i, j] = slot[i, j] = j`` for plain (N_in, N_out) matrices).
    """
    for i in range(w.shape[0]):
        pre = trace(pre_table, s - last[i, slot[i, j]], dt, tau_pre)
        k = pos[i, j]
        w[i, k] = clip(w[i, k] + nu_post * pre * post2_j, w_min, w_max)


@njit(inline="always", cache=True)
def normalise_columns_(w, neuron, total):
    """In place: scale each neuron's input weights to sum to ``total`` (all-zero neurons stay zero).

    ``w[i, k]`` belongs to neuron ``neuron[i, k]`` (``neuron[i, k] = k`` for a plain (N_in, N_out) matrix).
    """
    n_col = w.shape[1]
    w_flat, neuron_flat = w.reshape(-1), neuron.reshape(-1)
    sums = np.zeros(n_col)
    for a in range(np.uint64(w_flat.shape[0])):
        sums[np.uint64(neuron_flat[a])] += w_flat[a]
    for j in range(n_col):
        sums[j] = total / sums[j] if sums[j] != 0.0 else 0.0
    for a in range(np.uint64(w_flat.shape[0])):
        w_flat[a] *= sums[np.uint64(neuron_flat[a])]


def plain_layout(n_in: int, n_out: int) -> np.ndarray:
    """``pos``/``neuron`` index of a plain (N_in, N_out) weight matrix: entry ``[i, j] = j``."""
    return np.ascontiguousarray(np.broadcast_to(np.arange(n_out, dtype=np.int32), (n_in, n_out)))


def normalise_input_weights(w: np.ndarray, total: float = 78.0) -> np.ndarray:
    """Copy of ``w`` (..., N_in, N_out) with every neuron's input weights summing to ``total``."""
    w = np.array(w, dtype=np.float64, copy=True)
    if w.ndim < 2:
        raise ValueError(f"w must have shape (..., N_in, N_out), got {w.shape}")
    flat = w.reshape(-1, *w.shape[-2:])
    neuron = plain_layout(*w.shape[-2:])
    for b in range(flat.shape[0]):
        normalise_columns_(flat[b], neuron, float(total))
    return w


@njit(inline="always", cache=True)
def theta_decay(theta, dt, tau_theta):
    """Forward-Euler decay of an adaptive threshold over one step (Brian2 ``euler``)."""
    return theta + dt * (-theta / tau_theta)


def adaptive_threshold(
    spikes: np.ndarray, theta0: np.ndarray, p: ThresholdParameters = ThresholdParameters(), dt: float = 0.5
) -> np.ndarray:
    """Threshold trajectory (T, ...) for spike trains ``spikes`` (T, ...) starting at ``theta0`` (mV).

    Per step: decay (state update), then ``+theta_plus`` where the neuron spiked (reset).
    """
    theta = np.array(theta0, dtype=np.float64, copy=True)
    out = np.empty((len(spikes), *theta.shape))
    for t, z in enumerate(np.asarray(spikes)):
        theta = theta_decay(theta, dt, p.tau_theta) + p.theta_plus * (z != 0)
        out[t] = theta
    return out


@njit(parallel=True, cache=True)
def _stdp_kernel(pre_t, pre_i, pre_ptr, post_t, post_j, post_ptr, delays, w, last_pre, last_post,
                 t0, n_steps, pre_tab, post1_tab, post2_tab, dt, p, pos):
    """Event-driven STDP for a batch; spikes are per-sample lists sorted by step (CSR over samples)."""
    n_out = w.shape[2]
    for b in prange(w.shape[0]):
        d = delays[b]
        wb, lp, lpost = w[b], last_pre[b], last_post[b]
        # arrivals (step, i, j) bucketed by step: input spike at t reaches j at t + d[i, j]
        arrive = np.zeros(n_steps + 1, np.int64)
        for q in range(pre_ptr[b], pre_ptr[b + 1]):
            for j in range(n_out):
                ta = pre_t[q] + d[pre_i[q], j]
                if ta < n_steps:
                    arrive[ta + 1] += 1
        for t in range(n_steps):
            arrive[t + 1] += arrive[t]
        fill = arrive[:-1].copy()
        arr_i = np.empty(arrive[-1], np.int64)
        arr_j = np.empty(arrive[-1], np.int64)
        for q in range(pre_ptr[b], pre_ptr[b + 1]):
            for j in range(n_out):
                ta = pre_t[q] + d[pre_i[q], j]
                if ta < n_steps:
                    arr_i[fill[ta]] = pre_i[q]
                    arr_j[fill[ta]] = j
                    fill[ta] += 1
        qpost = post_ptr[b]
        for t in range(n_steps):
            s = t0 + t
            for a in range(arrive[t], arrive[t + 1]):
                i, j = arr_i[a], arr_j[a]
                lp[i, j] = s
                wb[i, j] = pre_update(wb[i, j], trace(post1_tab, s - lpost[j], dt, p.tau_post1), p.nu_pre, p.w_min, p.w_max)
            while qpost < post_ptr[b + 1] and post_t[qpost] == t:
                j = post_j[qpost]
                post2 = trace(post2_tab, s - lpost[j], dt, p.tau_post2)
                on_post(wb, pos, lp, pos, j, s, post2, pre_tab, dt, p.tau_pre, p.nu_post, p.w_min, p.w_max)
                lpost[j] = s
                qpost += 1


def _events(spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, B, N) spikes -> per-sample (step, index) lists sorted by step, with CSR offsets over B."""
    b, t, n = np.nonzero(np.asarray(spikes).transpose(1, 0, 2))
    ptr = np.zeros(spikes.shape[1] + 1, np.int64)
    np.cumsum(np.bincount(b, minlength=spikes.shape[1]), out=ptr[1:])
    return t.astype(np.int64), n.astype(np.int64), ptr


def stdp_sequence(
    pre: np.ndarray,
    post: np.ndarray,
    w: np.ndarray,
    p: STDPParameters = STDPParameters(),
    dt: float = 0.5,
    delays: np.ndarray | None = None,
    state: STDPState | None = None,
) -> tuple[np.ndarray, STDPState]:
    """Apply STDP to weights ``w`` (B, N_in, N_out) for given spike trains.

    Args:
        pre: presynaptic spikes (T, B, N_in) (nonzero = spike).
        post: postsynaptic spikes (T, B, N_out).
        w: initial weights (B, N_in, N_out); not modified.
        p: rule parameters; dt: step in ms.
        delays: integer synaptic delays in steps, (N_in, N_out) or (B, N_in, N_out); default 0.
            Arrivals falling beyond the last step are dropped.
        state: event times from a previous call (continues the traces), or None (no events yet).
    Returns: new weights (B, N_in, N_out) and the state to continue from.
    """
    pre, post = np.asarray(pre), np.asarray(post)
    w = np.array(w, dtype=np.float64, copy=True)
    if pre.ndim != 3 or post.ndim != 3 or w.ndim != 3:
        raise ValueError("pre (T, B, N_in), post (T, B, N_out) and w (B, N_in, N_out) must be 3-D")
    T, B, n_in = pre.shape
    if post.shape[:2] != (T, B) or w.shape != (B, n_in, post.shape[2]):
        raise ValueError(f"shapes do not agree: pre {pre.shape}, post {post.shape}, w {w.shape}")
    d = np.zeros((1, n_in, post.shape[2]), np.int64) if delays is None else np.asarray(delays, np.int64)
    if d.ndim == 2:
        d = d[None]
    if d.shape[1:] != w.shape[1:] or d.shape[0] not in (1, B) or (d.size and d.min() < 0):
        raise ValueError(f"delays must be non-negative integers of shape (N_in, N_out) or (B, N_in, N_out), got {d.shape}")
    d = np.ascontiguousarray(np.broadcast_to(d, (B, *d.shape[1:])))
    if state is None:
        state = STDPState(np.full(w.shape, NEVER, np.int64), np.full((B, w.shape[2]), NEVER, np.int64), 0)
    last_pre, last_post = state.last_pre.copy(), state.last_post.copy()
    pre_t, pre_i, pre_ptr = _events(pre)
    post_t, post_j, post_ptr = _events(post)
    tabs = [trace_table(tau, dt) for tau in (p.tau_pre, p.tau_post1, p.tau_post2)]
    p = STDPParameters(*(float(v) for v in p))
    _stdp_kernel(pre_t, pre_i, pre_ptr, post_t, post_j, post_ptr, d, w, last_pre, last_post,
                 np.int64(state.clock), T, *tabs, float(dt), p, plain_layout(n_in, w.shape[2]))
    return w, STDPState(last_pre, last_post, state.clock + T)


class STDP(nn.Module):
    """Trace-based STDP on given spike trains (thin wrapper of :func:`stdp_sequence`).

    ``forward(pre (T, B, N_in), post (T, B, N_out), w (B, N_in, N_out), state=None)`` returns
    ``(new_w, state)``; tensors in, tensors out (computed in float64 on the CPU).
    """

    def __init__(self, p: STDPParameters = STDPParameters(), dt: float = 0.5, delays: torch.Tensor | None = None) -> None:
        super().__init__()
        if dt <= 0 or any(tau <= 0 for tau in (p.tau_pre, p.tau_post1, p.tau_post2)) or p.w_min > p.w_max:
            raise ValueError(f"need dt > 0, positive time constants and w_min <= w_max; got dt={dt}, {p}")
        self.p, self.dt = p, float(dt)
        self.register_buffer("delays", None if delays is None else torch.as_tensor(delays, dtype=torch.long))

    def forward(
        self, pre: torch.Tensor, post: torch.Tensor, w: torch.Tensor, state: STDPState | None = None
    ) -> tuple[torch.Tensor, STDPState]:
        delays = None if self.delays is None else self.delays.cpu().numpy()
        new_w, state = stdp_sequence(
            pre.detach().cpu().numpy(), post.detach().cpu().numpy(), w.detach().cpu().numpy(),
            self.p, self.dt, delays, state,
        )
        return torch.as_tensor(new_w, dtype=w.dtype, device=w.device), state

    def extra_repr(self) -> str:
        return f"{self.p}, dt={self.dt} ms"
