"""Numba kernel of a batch of Diehl & Cook modules (the module index is the batch dimension).

One call advances every module of the batch through a sequence of image presentations
(``n_present`` steps of Poisson input, then ``n_rest`` steps without), in parallel over modules
(``prange``). Each module's work depends only on its own arrays and its own seed, so a module
gives bit-identical results whichever other modules share the batch.

Per step, in Brian2's schedule (state update, thresholds, synapses, resets):

1. conductance LIF update (forward Euler) of the 400 excitatory and 400 inhibitory neurons,
   refractory neurons keep their voltage; adaptive-threshold decay; the excitatory "timer";
2. spikes: input (pre-drawn), excitatory ``v > theta - offset + v_thresh_e`` and
   ``timer > timer_refrac`` and not refractory, inhibitory ``v > v_thresh_i``;
3. input spikes arriving this step (every synapse has its own delay) add ``w`` to ``ge`` and,
   when learning, run STDP's presynaptic update; then the excitatory spikes run STDP's
   postsynaptic update, excite their inhibitory partner (one-to-one ``w_ei``) and the
   inhibitory spikes inhibit every other excitatory neuron (``w_ie``);
4. resets (``v``, ``timer``, ``theta += theta_plus`` when learning).

Input is event-driven: an input spike touches only its 400 outgoing synapses, grouped by
delay (``targets``/``lag_ptr``), and STDP touches a weight column only when its neuron
spikes. Poisson input spike times are drawn as geometric inter-spike intervals (identical in
law to one Bernoulli draw per input and step, with one draw per spike instead).

Units: ms and mV; conductances are dimensionless as in the reference code.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from spikelab.plasticity.stdp import normalise_columns_, on_post, pre_update, theta_decay, trace


class KernelConstants(NamedTuple):
    """Flat numeric constants of the network, as the kernel reads them (see ``DiehlCookParameters``)."""

    dt: float
    n_present: int
    n_rest: int
    n_initial: int
    p_per_hz: float
    v_rest_e: float
    v_reset_e: float
    v_thresh_e: float
    tc_e: float
    e_inh_e: float
    ref_e: int
    timer_rate: float
    timer_refrac: float
    offset: float
    v_rest_i: float
    v_reset_i: float
    v_thresh_i: float
    tc_i: float
    ref_i: int
    tc_ge: float
    tc_gi: float
    w_ei: float
    w_ie: float
    theta_plus: float
    tau_theta: float
    norm_total: float
    tau_pre: float
    tau_post1: float
    tau_post2: float
    nu_pre: float
    nu_post: float
    w_min: float
    w_max: float


@njit(cache=True)
def build_targets(delays, lags):
    """Synapse order: each input's synapses grouped by delay.

    ``lags`` (L,) are the possible delays in steps (ascending). ``targets[i, a]`` is the
    postsynaptic neuron of the synapse stored at ``[i, a]``, ``lag_ptr[i, k] : lag_ptr[i, k + 1]``
    are the positions with delay ``lags[k]``, ``pos[i, j]`` is where synapse ``(i, j)`` is
    stored and ``cls[i, j]`` its delay class ``k``. Arrivals of one input and one delay then
    read contiguous weights, and share one arrival time ``last[i, k]``.
    """
    n_in, n_out = delays.shape
    n_lags = lags.shape[0]
    slot = np.full(lags[-1] + 1, -1, np.int64)
    for k in range(n_lags):
        slot[lags[k]] = k
    targets = np.empty((n_in, n_out), np.int16)  # at most 32767 neurons per module
    pos = np.empty((n_in, n_out), np.int16)
    cls = np.empty((n_in, n_out), np.int16)
    lag_ptr = np.zeros((n_in, n_lags + 1), np.int32)
    for i in range(n_in):
        for j in range(n_out):
            d = delays[i, j]
            if d < 0 or d > lags[-1] or slot[d] < 0:
                raise ValueError("a synaptic delay is not on the delay grid")
            lag_ptr[i, slot[d] + 1] += 1
        for k in range(n_lags):
            lag_ptr[i, k + 1] += lag_ptr[i, k]
        fill = lag_ptr[i, :n_lags].copy()
        for j in range(n_out):
            k = slot[delays[i, j]]
            targets[i, fill[k]] = j
            pos[i, j] = fill[k]
            cls[i, j] = k
            fill[k] += 1
    return targets, lag_ptr, pos, cls


@njit(cache=True)
def poisson_events(rates, n_steps, p_per_hz):
    """Input spikes for one presentation as CSR over steps: inputs of step ``t`` are
    ``idx[ptr[t]:ptr[t + 1]]`` (ascending). Uses numba's per-thread generator (seed it first)."""
    n_in = rates.shape[0]
    expected = 0.0
    for i in range(n_in):
        expected += min(rates[i] * p_per_hz, 1.0) * n_steps
    cap = int(expected + 8.0 * np.sqrt(expected) + 64.0)
    ev_t = np.empty(cap, np.int32)
    ev_i = np.empty(cap, np.int32)
    n = 0
    for i in range(n_in):
        p = rates[i] * p_per_hz
        if p <= 0.0:
            continue
        t = np.random.geometric(min(p, 1.0)) - 1
        while t < n_steps:
            if n == cap:
                cap *= 2
                grown_t = np.empty(cap, np.int32)
                grown_i = np.empty(cap, np.int32)
                grown_t[:n] = ev_t[:n]
                grown_i[:n] = ev_i[:n]
                ev_t, ev_i = grown_t, grown_i
            ev_t[n] = t
            ev_i[n] = i
            n += 1
            t += np.random.geometric(min(p, 1.0))
    ptr = np.zeros(n_steps + 1, np.int64)
    for k in range(n):
        ptr[ev_t[k] + 1] += 1
    for t in range(n_steps):
        ptr[t + 1] += ptr[t]
    fill = ptr[:n_steps].copy()
    idx = np.empty(n, np.int32)
    for k in range(n):
        idx[fill[ev_t[k]]] = ev_i[k]
        fill[ev_t[k]] += 1
    return ptr, idx


@njit(cache=True)
def _update_excitatory(s, v_e, ge_e, gi_e, theta, timer, last_e, spk_e, learn, c, a_e, k_ge, k_gi, timer_step):
    """Euler step and threshold of the excitatory neurons at step ``s``; returns the spike count.
    Branch-free (selects instead of ifs) so that the loop vectorises."""
    n_spk = 0
    for j in range(v_e.shape[0]):
        active = s - last_e[j] >= c.ref_e
        v = v_e[j]
        v_new = v + a_e * ((c.v_rest_e - v) - ge_e[j] * v + gi_e[j] * (c.e_inh_e - v))
        v = v_new if active else v
        v_e[j] = v
        ge_e[j] *= k_ge
        gi_e[j] *= k_gi
        th = theta_decay(theta[j], c.dt, c.tau_theta) if learn else theta[j]
        theta[j] = th
        tm = timer[j] + timer_step
        timer[j] = tm
        spike = active & (v > th - c.offset + c.v_thresh_e) & (tm > c.timer_refrac)
        spk_e[j] = spike
        n_spk += spike
    return n_spk


@njit(cache=True)
def _update_inhibitory(s, v_i, ge_i, last_i, spk_i, c, a_i, k_ge):
    """Euler step and threshold of the inhibitory neurons (no inhibitory input); returns the spike count."""
    n_spk = 0
    for k in range(v_i.shape[0]):
        active = s - last_i[k] >= c.ref_i
        v = v_i[k]
        v_new = v + a_i * ((c.v_rest_i - v) - ge_i[k] * v)
        v = v_new if active else v
        v_i[k] = v
        ge_i[k] *= k_ge
        spike = active & (v > c.v_thresh_i)
        spk_i[k] = spike
        n_spk += spike
    return n_spk


@njit(cache=True)
def advance(w, last, targets, lags, lag_ptr, pos, cls, theta, v_e, ge_e, gi_e, timer, last_e, v_i, ge_i, last_i,
            s0, n_steps, sp_ptr, sp_idx, counts, learn, c, pre_tab, post1_tab, post2_tab):
    """Advance one module ``n_steps`` steps from absolute step ``s0``.

    ``w`` (N_in, N) is in synapse order, ``last`` (N_in, L) holds the last arrival step of
    every input and delay class (see :func:`build_targets`). The
    postsynaptic trace ``post1`` is evaluated exactly at the first step and then decays by one
    factor per step (400 multiplications instead of 400 exponentials per step).
    Input spikes of local step ``t < len(sp_ptr) - 1`` are ``sp_idx[sp_ptr[t]:sp_ptr[t + 1]]``.
    Excitatory spikes at local steps ``< len(sp_ptr) - 1`` are added to ``counts`` (N,).
    """
    n_e = v_e.shape[0]
    n_lags = lags.shape[0]
    n_input_steps = sp_ptr.shape[0] - 1
    spk_e = np.zeros(n_e, np.bool_)
    spk_i = np.zeros(n_e, np.bool_)
    post1 = np.zeros(n_e)
    for j in range(n_e):
        post1[j] = trace(post1_tab, s0 - 1 - last_e[j], c.dt, c.tau_post1)
    post1_decay = post1_tab[1]
    w_flat, tgt_flat = w.reshape(-1), targets.reshape(-1)
    dt = c.dt
    # forward-Euler coefficients (Brian2 "euler": x += dt * f(x), f linear)
    a_e, a_i = dt / c.tc_e, dt / c.tc_i
    k_ge, k_gi = 1.0 - dt / c.tc_ge, 1.0 - dt / c.tc_gi
    timer_step = c.timer_rate * dt
    for t in range(n_steps):
        s = s0 + t
        # 1-2. state update and thresholds
        n_spk_e = _update_excitatory(s, v_e, ge_e, gi_e, theta, timer, last_e, spk_e, learn, c, a_e, k_ge, k_gi,
                                     timer_step)
        n_spk_i = _update_inhibitory(s, v_i, ge_i, last_i, spk_i, c, a_i, k_ge)
        # 3a. input arrivals (delay lags[k] steps) with STDP's presynaptic update
        if learn:
            for j in range(n_e):
                post1[j] *= post1_decay
        for k in range(n_lags):
            ts = t - lags[k]
            if ts < 0:
                break
            if ts >= n_input_steps:
                continue
            for q in range(sp_ptr[ts], sp_ptr[ts + 1]):
                i = sp_idx[q]
                lo = np.uint64(i * n_e + lag_ptr[i, k])  # flat, unsigned indices: no wraparound checks
                hi = np.uint64(i * n_e + lag_ptr[i, k + 1])
                if learn:
                    last[i, k] = s  # every synapse of the segment arrives now: pre trace = 1
                    for a in range(lo, hi):
                        j = np.uint64(tgt_flat[a])
                        ge_e[j] += w_flat[a]
                        w_flat[a] = pre_update(w_flat[a], post1[j], c.nu_pre, c.w_min, c.w_max)
                else:
                    for a in range(lo, hi):
                        ge_e[np.uint64(tgt_flat[a])] += w_flat[a]
        # 3b. excitatory spikes: STDP's postsynaptic update, excitation of the inhibitory partner; 4. reset
        if n_spk_e > 0:
            for j in range(n_e):
                if spk_e[j]:
                    if learn:
                        post2 = trace(post2_tab, s - last_e[j], dt, c.tau_post2)
                        on_post(w, pos, last, cls, j, s, post2, pre_tab, dt, c.tau_pre, c.nu_post, c.w_min, c.w_max)
                        theta[j] += c.theta_plus
                        post1[j] = 1.0
                    ge_i[j] += c.w_ei
                    v_e[j] = c.v_reset_e
                    timer[j] = 0.0
                    last_e[j] = s
                    if t < n_input_steps:
                        counts[j] += 1
        # 3c. lateral inhibition (all-to-all except self); 4. reset
        if n_spk_i > 0:
            for j in range(n_e):
                gi_e[j] += c.w_ie * (n_spk_i - spk_i[j])
            for k in range(n_e):
                if spk_i[k]:
                    v_i[k] = c.v_reset_i
                    last_i[k] = s


@njit(parallel=True, cache=True)
def run_batch(w, last, targets, lags, lag_ptr, pos, cls, theta, v_e, ge_e, gi_e, timer, last_e, v_i, ge_i, last_i, clock,
              rates, order, seeds, counts, learn, initial_rest, c, pre_tab, post1_tab, post2_tab):
    """Present images to every module of a batch, in parallel over modules.

    ``w`` (M, N_in, N) in synapse order, ``last`` (M, N_in, L) arrival steps per delay class; ``rates`` (n_images, N_in) Hz; ``order``
    (M, P) image index per presentation (-1: none); ``seeds`` (M,) seed of each module's input
    spikes; ``counts`` (M, P, N) receives the excitatory spike counts of each presentation window. With ``learn``, weights are normalised
    before every presentation and STDP and the adaptive threshold are on. ``initial_rest`` runs
    ``n_initial`` input-free steps first (as a freshly built Brian2 network does).
    """
    empty_ptr = np.zeros(1, np.int64)
    empty_idx = np.zeros(0, np.int32)
    for m in prange(w.shape[0]):
        np.random.seed(seeds[m])
        if initial_rest:
            advance(w[m], last[m], targets[m], lags, lag_ptr[m], pos[m], cls[m], theta[m], v_e[m], ge_e[m], gi_e[m], timer[m],
                    last_e[m], v_i[m], ge_i[m], last_i[m], clock[m], c.n_initial, empty_ptr, empty_idx,
                    counts[m, 0], False, c, pre_tab, post1_tab, post2_tab)
            clock[m] += c.n_initial
        for p in range(order.shape[1]):
            img = order[m, p]
            if img < 0:
                continue
            if learn:
                normalise_columns_(w[m], targets[m], c.norm_total)
            sp_ptr, sp_idx = poisson_events(rates[img], c.n_present, c.p_per_hz)
            advance(w[m], last[m], targets[m], lags, lag_ptr[m], pos[m], cls[m], theta[m], v_e[m], ge_e[m], gi_e[m], timer[m],
                    last_e[m], v_i[m], ge_i[m], last_i[m], clock[m], c.n_present + c.n_rest, sp_ptr, sp_idx,
                    counts[m, p], learn, c, pre_tab, post1_tab, post2_tab)
            clock[m] += c.n_present + c.n_rest
