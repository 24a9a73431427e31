"""The reference implementation's network in Brian2, for checking the kernel and for speed comparisons.

Equations, resets and STDP statements are those of the ICRA 2023 code (``snn_model.py``,
itself Diehl & Cook 2015's), with the parameter values of a :class:`DiehlCookParameters`.
Brian2 is an optional dependency (``pip install brian2``; with numpy < 2.4 for Brian2 2.9).
"""

from __future__ import annotations

import numpy as np

from spikelab.ensembles.network import DiehlCookParameters

EXC = """
dv/dt = ((v_rest_e - v) + (I_synE + I_synI) / nS) / tc_e : volt (unless refractory)
I_synE = ge * nS * -v : amp
I_synI = gi * nS * (e_inh_e - v) : amp
dge/dt = -ge / tc_ge : 1
dgi/dt = -gi / tc_gi : 1
dtimer/dt = timer_rate : second
"""
INH = """
dv/dt = ((v_rest_i - v) + (I_synE + I_synI) / nS) / tc_i : volt (unless refractory)
I_synE = ge * nS * -v : amp
I_synI = gi * nS * (e_inh_i - v) : amp
dge/dt = -ge / tc_ge : 1
dgi/dt = -gi / tc_gi : 1
"""
STDP_MODEL = """
w : 1
post2before : 1
dprees/dt = -prees / tau_pre : 1 (event-driven)
dpost1/dt = -post1 / tau_post1 : 1 (event-driven)
dpost2/dt = -post2 / tau_post2 : 1 (event-driven)
"""
STDP_PRE = "ge_post += w\nprees = 1.0\nw = clip(w + nu_pre * post1, w_min, w_max)"
STDP_POST = "post2before = post2\nw = clip(w + nu_post * prees * post2before, w_min, w_max)\npost1 = 1.0\npost2 = 1.0"


def build_network(p: DiehlCookParameters, w0: np.ndarray, delays: np.ndarray, inputs, learn: bool = True,
                  target: str = "numpy", theta0: np.ndarray | None = None) -> dict:
    """One module as a Brian2 ``Network``.

    Args:
        p: parameters; w0 (N_in, N) initial input weights; delays (N_in, N) in steps of ``p.dt``.
        inputs: ``"poisson"`` (a ``PoissonGroup`` whose ``rates`` the caller sets) or
            ``(indices, steps)`` of given input spikes (a ``SpikeGeneratorGroup``).
        learn: STDP and the adaptive threshold on (training) or off (the reference's test mode).
        target: Brian2 code generation target (``"numpy"``, ``"cython"``).
        theta0: initial adaptive thresholds (mV); default ``p.theta_init``.
    Returns: dict with ``net``, ``exc``, ``inh``, ``input``, ``synapses`` (input -> exc), ``monitor``.
    """
    import brian2 as b2

    b2.prefs.codegen.target = target
    b2.defaultclock.dt = p.dt * b2.ms
    mV, ms = b2.mV, b2.ms
    s = p.stdp
    ns = {
        "v_rest_e": p.v_rest_e * mV, "v_reset_e": p.v_reset_e * mV, "v_thresh_e": p.v_thresh_e * mV,
        "refrac_e": p.refrac_e * ms, "tc_e": p.tc_e * ms, "e_inh_e": p.e_inh_e * mV,
        "v_rest_i": p.v_rest_i * mV, "v_reset_i": p.v_reset_i * mV, "v_thresh_i": p.v_thresh_i * mV,
        "refrac_i": p.refrac_i * ms, "tc_i": p.tc_i * ms,
        "e_inh_i": -85.0 * mV,  # as the reference; unused, nothing inhibits the inhibitory neurons
        "tc_ge": p.tc_ge * ms, "tc_gi": p.tc_gi * ms, "timer_rate": p.timer_rate,
        "timer_refrac": p.timer_refrac * ms, "offset": p.offset * mV,
        "tau_theta": p.threshold.tau_theta * ms, "theta_plus": p.threshold.theta_plus * mV,
        "tau_pre": s.tau_pre * ms, "tau_post1": s.tau_post1 * ms, "tau_post2": s.tau_post2 * ms,
        "nu_pre": s.nu_pre, "nu_post": s.nu_post, "w_min": s.w_min, "w_max": s.w_max,
    }
    n_in, n = w0.shape
    exc = b2.NeuronGroup(
        n, EXC + ("dtheta/dt = -theta / tau_theta : volt" if learn else "theta : volt"),
        threshold="(v > (theta - offset + v_thresh_e)) and (timer > timer_refrac)", refractory="refrac_e",
        reset="v = v_reset_e; timer = 0*ms" + ("; theta += theta_plus" if learn else ""),
        method="euler", namespace=ns, name="e")
    inh = b2.NeuronGroup(n, INH, threshold="v > v_thresh_i", refractory="refrac_i", reset="v = v_reset_i",
                         method="euler", namespace=ns, name="i")
    exc.v, inh.v = (p.v_rest_e - 40.0) * mV, (p.v_rest_i - 40.0) * mV
    exc.theta = (np.full(n, p.theta_init) if theta0 is None else np.asarray(theta0)) * mV
    if isinstance(inputs, str) and inputs == "poisson":
        source = b2.PoissonGroup(n_in, 0 * b2.Hz, name="x")
    else:
        indices, steps = inputs
        source = b2.SpikeGeneratorGroup(n_in, np.asarray(indices), np.asarray(steps) * p.dt * ms, name="x")
    e_to_i = b2.Synapses(exc, inh, "w : 1", on_pre="ge_post += w", name="ei")
    e_to_i.connect(j="i")
    e_to_i.w = p.w_ei
    i_to_e = b2.Synapses(inh, exc, "w : 1", on_pre="gi_post += w", name="ie")
    i_to_e.connect(condition="i != j")
    i_to_e.w = p.w_ie
    syn = b2.Synapses(source, exc, STDP_MODEL if learn else "w : 1", on_pre=STDP_PRE if learn else "ge_post += w",
                      on_post=STDP_POST if learn else "", namespace=ns, name="xe")
    syn.connect(True)
    syn.w = w0[syn.i[:], syn.j[:]]
    syn.delay = np.asarray(delays)[syn.i[:], syn.j[:]] * p.dt * ms
    monitor = b2.SpikeMonitor(exc, name="spikes")
    net = b2.Network(exc, inh, source, e_to_i, i_to_e, syn, monitor)
    return {"net": net, "exc": exc, "inh": inh, "input": source, "synapses": syn, "monitor": monitor}


def weight_matrix(syn, shape: tuple[int, int]) -> np.ndarray:
    """The (N_in, N) weights of a Brian2 input ``Synapses`` object."""
    w = np.zeros(shape)
    w[syn.i[:], syn.j[:]] = syn.w[:]
    return w


def normalise(syn, shape: tuple[int, int], total: float) -> None:
    """The reference code's ``normalize_weights``: every neuron's input weights sum to ``total``."""
    w = weight_matrix(syn, shape)
    w *= total / w.sum(axis=0)
    syn.w = w[syn.i[:], syn.j[:]]
