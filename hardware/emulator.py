"""Bit-accurate Loihi 2 emulator in numpy: Lava's integer semantics, step by step.

It reproduces what Lava's ``Loihi2SimCfg(select_tag="fixed_pt")`` computes for the process
graph that :mod:`spikelab.hardware.lava_runner` builds, bit for bit:

* Dense (``PyDenseModelBitAcc``): ``a = (sum of weights of spiking inputs) << weight_exp``
  (arithmetic ``>>`` for negative exponents). Conv (``PyConvModelFixed``): the integer
  convolution, wrapped to 24 bits; its ``weight_exp`` is ignored by Lava, so it is always 0.
* Every synapse stage delivers at step ``t + 1`` what it received at step ``t`` (the
  ``a_buff`` of Lava's models), so stage ``k`` (0-based) sees the input of step ``t`` at step
  ``t + k + 1``. A synaptic bias is a weight from an always-on source that is switched on at
  step ``k`` so that it arrives together with the first input.
* LIF (``PyLifModelBitAcc``), see :mod:`spikelab.hardware.network` for the equations; ``u``
  wraps modulo 2^24 and ``v`` saturates at +-(2^23 - 1), as in Lava; both are counted.

The functional core (:func:`lif_step`, :func:`synapse_step`) works on explicit integer state;
:func:`simulate` runs raw Lava time, :func:`run` runs a batch of spike trains from rest and
returns every layer's spikes aligned to the input's time steps (what spikelab's float model
computes at the same step). numpy and scipy only: no torch.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from spikelab.hardware.network import STATE_MAX, VTH_SHIFT, Network, RangeError, Stage

_DECAY_UNITY = 4096
_INT32 = np.int32


def _wrap32(x: np.ndarray) -> np.ndarray:
    """Cast int64 to int32 with two's-complement wrap (what numpy does when Lava casts)."""
    return x.astype(np.int64).astype(np.int32).astype(np.int64)


def _decay(x: np.ndarray, factor: int) -> np.ndarray:
    """``sign(x * factor) * (|x * factor| >> 12)`` in int64, as Lava decays u and v."""
    prod = x * np.int64(factor)
    return np.sign(prod) * (np.abs(prod) >> 12)


def lif_step(a_in: np.ndarray, u: np.ndarray, v: np.ndarray, du: int, dv: int, vth: int,
             bias: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """One step of Lava's bit-accurate LIF on int64 arrays (B, N).

    Returns ``(spikes (bool), u', v', number of u wraps, number of v saturations)``.
    """
    du_ = _wrap32(_decay(u, _DECAY_UNITY - (du + 1)))
    du_ = _wrap32(du_ + _wrap32(a_in << 6))
    wrapped = np.where(du_ > STATE_MAX, du_ - 2 * STATE_MAX, du_)
    wrapped = np.where(wrapped <= -STATE_MAX, du_ + 2 * STATE_MAX, wrapped)
    n_wrap = int(np.count_nonzero(wrapped != du_))
    u = wrapped
    dv_ = _wrap32(_decay(v, _DECAY_UNITY - dv))
    updated = _wrap32(dv_ + u + bias)
    v = np.clip(updated, -(STATE_MAX - 1), STATE_MAX - 1)
    n_sat = int(np.count_nonzero(v != updated))
    z = v > (vth << VTH_SHIFT)
    v = np.where(z, 0, v)
    return z, u, v, n_wrap, n_sat


class _Synapse:
    """Integer synaptic transform of one stage, prepared for fast exact evaluation."""

    def __init__(self, stage: Stage) -> None:
        f, syn = stage.fixed, stage.synapse
        self.kind = syn.kind
        self.weight_exp = int(f.weight_exp)
        mat = syn.matrix(np.asarray(f.weight, dtype=np.int64))
        bias = syn.bias_vector(None if f.bias is None else np.asarray(f.bias, dtype=np.int64))
        self.bias = bias
        if self.kind == "dense":
            # Integer sums are exact in floating point below 2^24 (float32) / 2^53 (float64):
            # use BLAS instead of numpy's slow integer matmul.
            bound = np.abs(mat).sum(axis=1).max(initial=0) + (0 if bias is None else np.abs(bias).max(initial=0))
            dtype = np.float32 if bound < 2**24 else np.float64
            if bound >= 2**53:
                raise RangeError(f"layer {stage.name!r}: synaptic sums reach {bound}, beyond exact evaluation")
            self.matT = np.ascontiguousarray(mat.T, dtype=dtype)
        else:
            self.matT = mat.T.tocsr()

    def _shift(self, acc: np.ndarray) -> np.ndarray:
        return acc << self.weight_exp if self.weight_exp > 0 else acc >> -self.weight_exp

    def __call__(self, spikes: np.ndarray, bias_on: bool) -> np.ndarray:
        """What the LIF's input port receives one step later (B, N_out), int64.

        Lava sums the int32 messages of the synapse block and of the bias block at the port.
        """
        if self.kind == "dense":
            acc = np.rint(spikes.astype(self.matT.dtype) @ self.matT).astype(np.int64)
            acc = _wrap32(self._shift(acc))
        else:
            acc = np.asarray((self.matT.T @ spikes.T.astype(np.int64)).T, dtype=np.int64)
            # Lava's Conv wraps its output to 24 bits (utils.signed_clamp); no weight exponent.
            base = 1 << 24
            acc = (acc + base // 2) % base - base // 2
        if bias_on and self.bias is not None:
            acc = _wrap32(acc + _wrap32(self._shift(self.bias)))
        return acc


@dataclass
class RawResult:
    """Raw Lava-time spikes of every stage, each (S, B, N_k) bool, and overflow counters."""

    spikes: list[np.ndarray]
    u_wraps: list[int]
    v_saturations: list[int]


def _check(net: Network) -> None:
    if not net.quantised:
        raise RangeError("the network is not quantised: run spikelab.hardware.quantize first")


def _blas_threads(batch: int):
    """One BLAS thread for small batches: per-step vector-matrix products are too small to split,
    and competing BLAS/OpenMP threads then cost more than they gain (10x on 2 cores)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas") if batch < 64 else contextlib.nullcontext()


def simulate(net: Network, columns: np.ndarray, reset_period: int | None = None) -> RawResult:
    """Run the quantised network in raw Lava time from rest.

    columns: input spikes (S, B, N_in), column ``t`` is what Lava's input source sends at step
    ``t`` (0-based). reset_period: emulate Lava's ``LIFReset`` (u = v = 0 before the step) at
    steps ``k + 1 + n * reset_period`` of stage ``k``, i.e. at the first step of every sample
    when samples of that length are concatenated.
    """
    _check(net)
    columns = np.asarray(columns)
    S, B = columns.shape[:2]
    syns = [_Synapse(s) for s in net.stages]
    shapes = [(B, s.synapse.n_out) for s in net.stages]
    u = [np.zeros(sh, np.int64) for sh in shapes]
    v = [np.broadcast_to(np.asarray(s.fixed.v_init, np.int64).reshape(-1), sh).copy()
         for s, sh in zip(net.stages, shapes)]
    buf = [np.zeros(sh, np.int64) for sh in shapes]
    bias = [
        (np.asarray(s.fixed.bias_mant, np.int64) << np.asarray(s.fixed.bias_exp, np.int64)).reshape(-1)
        for s in net.stages
    ]
    out = [np.zeros((S, *sh), bool) for sh in shapes]
    wraps = [0] * len(net.stages)
    sats = [0] * len(net.stages)
    with _blas_threads(B):
        for t in range(S):
            pre = columns[t].reshape(B, -1)
            for k, stage in enumerate(net.stages):
                f = stage.fixed
                a_in = buf[k]
                buf[k] = syns[k](pre, bias_on=t >= k)
                if reset_period is not None and t >= k + 1 and (t - k - 1) % reset_period == 0:
                    u[k][:] = 0
                    v[k][:] = 0
                z, u[k], v[k], nw, ns = lif_step(a_in, u[k], v[k], f.du, f.dv, f.vth, bias[k])
                wraps[k] += nw
                sats[k] += ns
                out[k][t] = z
                pre = z
    return RawResult(out, wraps, sats)


@dataclass
class EmulatorResult:
    """Spikes of every stage aligned to the input time steps, each (T, B, *population shape)."""

    spikes: list[np.ndarray]
    u_wraps: list[int]
    v_saturations: list[int]
    seconds: float
    steps: int

    @property
    def output(self) -> np.ndarray:
        """Spikes of the last stage (T, B, ...)."""
        return self.spikes[-1]

    @property
    def steps_per_second(self) -> float:
        """Simulated Lava time steps (the whole batch advancing one step) per wall-clock second."""
        return self.steps / self.seconds if self.seconds > 0 else float("inf")


def align(raw: np.ndarray, stage_index: int, T: int) -> np.ndarray:
    """Cut stage ``stage_index``'s raw spikes (S, ...) to the T steps that belong to the input."""
    return raw[stage_index + 1 : stage_index + 1 + T]


def check_spikes(spikes: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """Validate input spikes (T, B, *input_shape) holding only 0 and 1; returns them as bool."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 2 + len(input_shape) or tuple(spikes.shape[2:]) != tuple(input_shape):
        raise ValueError(
            f"input spikes must have shape (T, B, {', '.join(map(str, input_shape))}); got {spikes.shape}"
        )
    if spikes.size and not np.isin(spikes, (0, 1)).all():
        raise ValueError("input spikes must be binary (0 or 1); Loihi's input source sends single-bit spikes")
    return spikes.astype(bool)


def run(net: Network, spikes: np.ndarray) -> EmulatorResult:
    """Run a batch of input spike trains (T, B, *input_shape) through the quantised network.

    Every sample starts from rest; the run lasts ``T + len(stages)`` Lava steps so that the last
    stage sees all T input steps. Returns every stage's spikes aligned to the input steps.
    """
    spikes = check_spikes(spikes, net.input_shape)
    T, B = spikes.shape[:2]
    L = len(net.stages)
    columns = np.zeros((T + L, B, int(np.prod(net.input_shape))), bool)
    columns[:T] = spikes.reshape(T, B, -1)
    start = time.perf_counter()
    raw = simulate(net, columns)
    seconds = time.perf_counter() - start
    aligned = [
        align(r, k, T).reshape(T, B, *s.synapse.output_shape) for k, (r, s) in enumerate(zip(raw.spikes, net.stages))
    ]
    return EmulatorResult(aligned, raw.u_wraps, raw.v_saturations, seconds, T + L)
