"""Compact Diehl & Cook module, batched: the module index is the leading dimension of every array.

A module is the unsupervised network of Diehl & Cook (2015) as the ICRA 2023 place-recognition
code configures it: 784 Poisson inputs -> 400 excitatory conductance LIF neurons (adaptive
threshold, STDP on the input weights, random input delays of 0-10 ms) -> 400 inhibitory
neurons (one-to-one excitation), which inhibit every other excitatory neuron.

:class:`DiehlCookBatch` holds M such modules and advances them together through
:func:`spikelab.ensembles.kernel.run_batch`. Randomness never comes from a shared stream:
module ``k`` draws its initial weights and delays from a generator seeded with
``(seed, k)`` and its input spikes from ``(seed, k, stream, epoch)``, so any subset of modules
reproduces exactly what the same modules compute inside a larger batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from spikelab.ensembles.kernel import KernelConstants, build_targets, run_batch
from spikelab.errors import ConfigError
from spikelab.plasticity.stdp import NEVER, STDPParameters, ThresholdParameters, trace_table

# Independent random streams of a module (the third seed word).
STREAM_INIT, STREAM_TRAIN, STREAM_RECORD, STREAM_QUERY, STREAM_ORDER = range(5)
#: "No arrival yet" in the 32-bit arrival times.
NEVER32 = np.iinfo(np.int32).min
#: Images per call when recording or querying (each chunk has its own input seed).
RESPOND_CHUNK = 50


class DiehlCookParameters(NamedTuple):
    """Network parameters (ms, mV, Hz). Defaults: the ICRA 2023 code (``snn_model.py``).

    ``dt = 0.1`` ms is Brian2's default, which the reference code keeps. Diehl & Cook 2015 used
    0.5 ms: five times fewer steps, but place recognition on Nordland is clearly worse with it
    (the inhibitory conductance, ``tc_gi = 0.5`` ms, then lasts a single step).
    """

    n_neurons: int = 400
    dt: float = 0.1
    t_present: float = 350.0
    t_rest: float = 150.0
    t_initial_rest: float = 500.0
    f_max: float = 63.75  # input rate for intensity 1 (pixel 255 / intensity 4 in the reference)
    v_rest_e: float = -65.0
    v_reset_e: float = -65.0
    v_thresh_e: float = -52.0
    refrac_e: float = 5.0
    tc_e: float = 100.0
    e_inh_e: float = -100.0
    v_rest_i: float = -60.0
    v_reset_i: float = -45.0
    v_thresh_i: float = -40.0
    refrac_i: float = 2.0
    tc_i: float = 10.0
    tc_ge: float = 1.0
    tc_gi: float = 0.5
    w_ei: float = 10.4
    w_ie: float = 17.0
    w_input: float = 0.3  # initial input weights (U[0, 1) + 0.01) * w_input
    max_delay: float = 10.0  # input delays U[0, max_delay) ms ...
    delay_step: float = 0.5  # ... rounded to multiples of delay_step ms (dt: Brian2's rounding)
    theta_init: float = 20.0
    offset: float = 20.0
    timer_rate: float = 0.1  # the reference's `dtimer/dt = 0.1`: a 5 ms "timer" refractory lasts 50 ms
    timer_refrac: float = 5.0
    norm_total: float = 78.0
    stdp: STDPParameters = STDPParameters()
    threshold: ThresholdParameters = ThresholdParameters()


def steps(duration: float, dt: float) -> int:
    """Number of steps of ``duration`` ms (Brian2's ``timestep``: floor with a 1e-3 step tolerance)."""
    return int(math.floor(duration / dt + 1e-3))


def check_parameters(p: DiehlCookParameters) -> None:
    """``ConfigError`` naming the first out-of-range parameter."""
    positive = ("n_neurons", "dt", "t_present", "tc_e", "tc_i", "tc_ge", "tc_gi", "f_max", "norm_total")
    for name in positive:
        if not getattr(p, name) > 0:
            raise ConfigError(f"network.{name} must be > 0, got {getattr(p, name)!r}")
    if p.n_neurons > 32767:
        raise ConfigError(f"network.n_neurons must be at most 32767, got {p.n_neurons}")
    for name in ("t_rest", "t_initial_rest", "max_delay", "refrac_e", "refrac_i", "w_input", "timer_rate"):
        if getattr(p, name) < 0:
            raise ConfigError(f"network.{name} must be >= 0, got {getattr(p, name)!r}")
    for name in ("tc_ge", "tc_gi", "tc_e", "tc_i"):
        if p.dt > getattr(p, name):
            raise ConfigError(f"network.dt ({p.dt} ms) must not exceed network.{name} ({getattr(p, name)} ms): "
                              "forward Euler would overshoot")
    if p.f_max * p.dt / 1000.0 > 1.0:
        raise ConfigError(f"network.f_max * dt must not exceed 1 spike per step, got {p.f_max} Hz at {p.dt} ms")
    if not p.delay_step > 0 or abs(p.delay_step / p.dt - round(p.delay_step / p.dt)) > 1e-6 or p.delay_step < p.dt:
        raise ConfigError(f"network.delay_step ({p.delay_step} ms) must be a positive multiple of dt ({p.dt} ms)")
    if steps(p.t_rest, p.dt) < steps(p.max_delay, p.dt):
        raise ConfigError("network.t_rest must be at least network.max_delay (delayed input would spill over)")
    for name in ("tau_pre", "tau_post1", "tau_post2"):
        if not getattr(p.stdp, name) > 0:
            raise ConfigError(f"stdp.{name} must be > 0, got {getattr(p.stdp, name)!r}")
    if p.stdp.w_min > p.stdp.w_max:
        raise ConfigError(f"stdp.w_min ({p.stdp.w_min}) exceeds stdp.w_max ({p.stdp.w_max})")
    if not p.threshold.tau_theta > 0:
        raise ConfigError(f"threshold.tau_theta must be > 0, got {p.threshold.tau_theta!r}")


def kernel_constants(p: DiehlCookParameters) -> KernelConstants:
    """Flatten parameters into the kernel's constants (step counts, per-Hz spike probability)."""
    return KernelConstants(
        dt=float(p.dt), n_present=steps(p.t_present, p.dt), n_rest=steps(p.t_rest, p.dt),
        n_initial=steps(p.t_initial_rest, p.dt), p_per_hz=p.dt / 1000.0,
        v_rest_e=p.v_rest_e, v_reset_e=p.v_reset_e, v_thresh_e=p.v_thresh_e, tc_e=p.tc_e, e_inh_e=p.e_inh_e,
        ref_e=steps(p.refrac_e, p.dt), timer_rate=p.timer_rate, timer_refrac=p.timer_refrac, offset=p.offset,
        v_rest_i=p.v_rest_i, v_reset_i=p.v_reset_i, v_thresh_i=p.v_thresh_i, tc_i=p.tc_i,
        ref_i=steps(p.refrac_i, p.dt), tc_ge=p.tc_ge, tc_gi=p.tc_gi, w_ei=p.w_ei, w_ie=p.w_ie,
        theta_plus=p.threshold.theta_plus, tau_theta=p.threshold.tau_theta, norm_total=p.norm_total,
        tau_pre=p.stdp.tau_pre, tau_post1=p.stdp.tau_post1, tau_post2=p.stdp.tau_post2,
        nu_pre=p.stdp.nu_pre, nu_post=p.stdp.nu_post, w_min=p.stdp.w_min, w_max=p.stdp.w_max,
    )


def delay_grid(p: DiehlCookParameters) -> np.ndarray:
    """Possible input delays in steps: multiples of ``delay_step`` up to ``max_delay`` (rounded)."""
    n = int(np.floor(p.max_delay / p.delay_step + 0.5))
    return np.arange(n + 1, dtype=np.int64) * int(round(p.delay_step / p.dt))


def module_seed(seed: int, module: int, stream: int, epoch: int = 0) -> int:
    """32-bit seed of one module's random stream (independent of every other module)."""
    return int(np.random.SeedSequence([seed, module, stream, epoch]).generate_state(1, np.uint32)[0])


@dataclass
class NeuronState:
    """Neuron state of M modules, each array (M, N); ``clock`` (M,) is the next absolute step."""

    v_e: np.ndarray
    ge_e: np.ndarray
    gi_e: np.ndarray
    timer: np.ndarray
    last_e: np.ndarray
    v_i: np.ndarray
    ge_i: np.ndarray
    last_i: np.ndarray
    clock: np.ndarray

    @classmethod
    def initial(cls, p: DiehlCookParameters, n_modules: int) -> "NeuronState":
        """A freshly built network: voltages 40 mV below rest, no conductance, no spike yet."""
        shape = (n_modules, p.n_neurons)
        return cls(
            v_e=np.full(shape, p.v_rest_e - 40.0), ge_e=np.zeros(shape), gi_e=np.zeros(shape),
            timer=np.zeros(shape), last_e=np.full(shape, NEVER, np.int64),
            v_i=np.full(shape, p.v_rest_i - 40.0), ge_i=np.zeros(shape),
            last_i=np.full(shape, NEVER, np.int64), clock=np.zeros(n_modules, np.int64),
        )

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class DiehlCookBatch:
    """M Diehl & Cook modules (module indices ``modules``) advanced together.

    Arrays: ``w`` (M, N_in, N) input weights, ``delays`` (M, N_in, N) input delays in steps,
    ``theta`` (M, N) adaptive thresholds (mV), ``neurons`` the training-time
    :class:`NeuronState`, ``last_arrival`` (M, N_in, L) step of the last arrival of every input
    through each of the L delays of the grid (STDP's presynaptic traces; all synapses of an input
    with the same delay share it; int32, so training is limited to 2^31 steps). Internally the
    synapses of every input are sorted by delay (the kernel's "synapse order"); ``w`` returns an
    (M, N_in, N) copy.
    """

    def __init__(self, p: DiehlCookParameters, seed: int, modules: np.ndarray, w: np.ndarray,
                 delays: np.ndarray, theta: np.ndarray, last_arrival: np.ndarray | None = None,
                 neurons: NeuronState | None = None) -> None:
        check_parameters(p)
        self.p, self.seed = p, int(seed)
        self.modules = np.asarray(modules, np.int64)
        self.delays = np.ascontiguousarray(delays, np.int16)
        self.theta = np.ascontiguousarray(theta, np.float64)
        self.neurons = NeuronState.initial(p, len(self.modules)) if neurons is None else neurons
        self._c = kernel_constants(p)
        self._tables = tuple(trace_table(tau, p.dt) for tau in (p.stdp.tau_pre, p.stdp.tau_post1, p.stdp.tau_post2))
        self._lags = delay_grid(p)
        try:
            parts = [build_targets(d.astype(np.int64), self._lags) for d in self.delays]
        except ValueError:
            raise ConfigError("module delays do not lie on the delay grid of network.max_delay / delay_step") from None
        self._targets, self._lag_ptr, self._pos, self._cls = (np.stack([part[k] for part in parts]) for k in range(4))
        self._w = np.ascontiguousarray(np.take_along_axis(np.asarray(w, np.float64), self._targets, axis=2))
        shape = (len(self.modules), self._w.shape[1], len(self._lags))
        self.last_arrival = (np.full(shape, NEVER32, np.int32) if last_arrival is None
                             else np.ascontiguousarray(last_arrival, np.int32))
        if self.last_arrival.shape != shape:
            raise ValueError(f"last_arrival must have shape {shape}, got {self.last_arrival.shape}")

    @property
    def w(self) -> np.ndarray:
        """Input weights (M, N_in, N) (a copy)."""
        out = np.empty_like(self._w)
        np.put_along_axis(out, self._targets.astype(np.int64), self._w, axis=2)
        return out

    @classmethod
    def initialise(cls, p: DiehlCookParameters, seed: int, modules, n_input: int) -> "DiehlCookBatch":
        """Fresh modules: weights ``(U[0,1) + 0.01) * w_input`` and delays ``U[0, max_delay)`` rounded
        to the delay grid, from each module's own generator."""
        modules = np.asarray(modules, np.int64)
        grid = delay_grid(p)
        if grid[-1] > np.iinfo(np.int16).max:
            raise ConfigError(f"network.max_delay / dt is too large ({grid[-1]} steps)")
        w = np.empty((len(modules), n_input, p.n_neurons))
        delays = np.empty(w.shape, np.int16)
        for b, k in enumerate(modules):
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, int(k), STREAM_INIT])))
            w[b] = (rng.random((n_input, p.n_neurons)) + 0.01) * p.w_input
            slot = np.floor(rng.random((n_input, p.n_neurons)) * (len(grid) - 1) + 0.5).astype(np.int64)
            delays[b] = grid[slot]
        theta = np.full((len(modules), p.n_neurons), p.theta_init)
        return cls(p, seed, modules, w, delays, theta)

    @property
    def n_modules(self) -> int:
        return len(self.modules)

    @property
    def n_input(self) -> int:
        return self._w.shape[1]

    def run(self, rates: np.ndarray, order: np.ndarray, stream: int, epoch: int, learn: bool,
            neurons: NeuronState, initial_rest: bool) -> np.ndarray:
        """Advance every module through images ``order`` (M, P) (indices into ``rates`` (n, N_in) Hz, -1 skips).

        Input spikes come from the seed ``(seed, module, stream, epoch)``; ``neurons`` is updated
        in place. Returns spike counts (M, P, N) of the presentation windows.
        """
        if learn and neurons is not self.neurons:
            raise ValueError("training continues the modules' own neuron state (STDP traces refer to its clock)")
        rates = np.ascontiguousarray(rates, np.float64)
        order = np.ascontiguousarray(order, np.int64)
        if rates.ndim != 2 or rates.shape[1] != self.n_input:
            raise ValueError(f"rates must have shape (n_images, {self.n_input}), got {rates.shape}")
        if order.ndim != 2 or order.shape[0] != self.n_modules or (order.size and order.max() >= len(rates)):
            raise ValueError(f"order must be (M={self.n_modules}, P) indices into {len(rates)} images")
        if learn and neurons.clock.max(initial=0) + (order.shape[1] + 1) * (self._c.n_present + self._c.n_rest) \
                + self._c.n_initial >= np.iinfo(np.int32).max:
            raise ValueError("training beyond 2^31 steps is not supported (32-bit STDP arrival times)")
        seeds = np.array([module_seed(self.seed, int(k), stream, epoch) for k in self.modules], np.uint32)
        counts = np.zeros((self.n_modules, max(order.shape[1], 1), self.p.n_neurons), np.int32)
        n = neurons
        run_batch(self._w, self.last_arrival, self._targets, self._lags, self._lag_ptr, self._pos, self._cls, self.theta,
                  n.v_e, n.ge_e, n.gi_e, n.timer, n.last_e, n.v_i, n.ge_i, n.last_i, n.clock, rates, order, seeds,
                  counts, learn, initial_rest, self._c, *self._tables)
        return counts[:, : order.shape[1]]

    def train(self, rates: np.ndarray, order: np.ndarray, epoch: int) -> np.ndarray:
        """One training epoch: module ``b`` sees images ``order[b]`` (-1 = skip) with plasticity on.

        Returns the spike counts (M, P, N). Epoch 0 starts with the initial rest period.
        """
        return self.run(rates, order, STREAM_TRAIN, epoch, True, self.neurons, epoch == 0)

    def respond(self, rates: np.ndarray, stream: int = STREAM_QUERY, progress: bool = False, desc: str = "") -> np.ndarray:
        """Spike counts (M, n_images, N) of every module to every image, shown in order, plasticity off.

        As the reference code's test mode: a freshly built network (initial rest), then every
        image followed by the rest period, the state carrying over; thresholds stay at their
        trained values. Images go in chunks of :data:`RESPOND_CHUNK` (one random seed each).
        """
        neurons = NeuronState.initial(self.p, self.n_modules)
        out = np.zeros((self.n_modules, len(rates), self.p.n_neurons), np.int32)
        starts = range(0, len(rates), RESPOND_CHUNK)
        for chunk, a in enumerate(tqdm(starts, desc=desc, unit="chunk", disable=not progress)):
            idx = np.arange(a, min(a + RESPOND_CHUNK, len(rates)))
            out[:, idx] = self.run(rates, np.broadcast_to(idx, (self.n_modules, len(idx))), stream, chunk, False,
                                   neurons, chunk == 0)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to resume training exactly (see :meth:`from_arrays`)."""
        out = {"modules": self.modules, "w": self.w, "delays": self.delays, "theta": self.theta,
               "last_arrival": self.last_arrival}
        out.update({f"neurons.{k}": v for k, v in self.neurons.arrays().items()})
        return out

    @classmethod
    def from_arrays(cls, p: DiehlCookParameters, seed: int, a: dict[str, np.ndarray]) -> "DiehlCookBatch":
        neurons = None
        if "neurons.v_e" in a:
            neurons = NeuronState(**{f.name: np.array(a[f"neurons.{f.name}"]) for f in fields(NeuronState)})
        return cls(p, seed, a["modules"], np.array(a["w"]), np.array(a["delays"]), np.array(a["theta"]),
                   np.array(a["last_arrival"]) if "last_arrival" in a else None, neurons)

    @classmethod
    def concatenate(cls, batches: list["DiehlCookBatch"]) -> "DiehlCookBatch":
        """One batch holding the modules of ``batches`` in the given order (same parameters and seed)."""
        first = batches[0]
        if any(b.p != first.p or b.seed != first.seed for b in batches):
            raise ValueError("cannot concatenate module batches with different parameters or seeds")
        cat = {k: np.concatenate([b.arrays()[k] for b in batches]) for k in first.arrays()}
        return cls.from_arrays(first.p, first.seed, cat)
