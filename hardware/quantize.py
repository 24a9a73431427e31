"""Quantise a float network to Loihi 2 fixed point (numpy only).

Mapping of one stage (DESIGN.md section 6). With ``a_syn``, ``a_mem`` the per-step decay
fractions of the float LIF::

    du = round(4096 a_syn) - 1        dv = round(4096 a_mem)
    Loihi's u = S a_mem i_jump,  Loihi's v = S (v - v_reset)       (S: integer units per volt)
    weights  W_int = round(q W)  with  W_int 2^(weight_exp + 6) = S a_mem W
    vth      = round(S (v_th - v_reset) / 64)
    bias     = bias_mant 2^bias_exp = round(S a_mem (v_leak - v_reset))   (leak toward v_leak)
    v_init   ~ S (v_leak - v_reset), the integer rest state (see :func:`rest_voltage`)

Scaling strategy, per layer:

1. Weight mantissas use the full 8 bits: ``q = 254 / max|W|`` for mixed-sign layers (Loihi
   keeps mixed-sign weights as even numbers), ``255 / max|W|`` for single-sign layers; the
   synaptic bias (sent from an always-on input) shares the weights' scale.
2. The weight exponent (which sets ``S = q 2^(weight_exp + 6) / a_mem``) is the largest in
   [-8, 7] for which every range holds: vth fits 17 bits (and is >= 1), bias mantissas fit
   13 bits with exponents 0-7, v_init fits 24 bits, and the worst-case current -- every input
   spiking at every step, ``max_n sum_j |W_int| 2^(weight_exp+6) 4096 / (du + 1)`` -- stays
   below 2^23, so ``u`` can never wrap. Convolutions keep ``weight_exp = 0`` (Lava's Conv model
   ignores it) and halve ``q`` instead while a range is violated.
3. If no scale works, :class:`~spikelab.hardware.network.RangeError` names the layer and the
   range that fails.

Drift from the float model comes from rounding the weights to 8 bits, du/dv to 1/4096, vth,
and truncating the decays; ``v`` can still saturate at -(2^23 - 1) under strong inhibition
(the emulator counts it). :func:`quantization_report` lists the per-layer errors.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from spikelab.hardware.network import (
    BIAS_EXP_MAX, BIAS_MANT_MAX, BIAS_MANT_MIN, DECAY_MAX, STATE_MAX, VTH_MAX, VTH_SHIFT,
    WEIGHT_EXP_MAX, WEIGHT_EXP_MIN, FixedStage, Network, RangeError, Stage, UnsupportedLayerError,
    check_fixed,
)


def decay_constants(stage: Stage) -> tuple[int, int]:
    """``(du, dv)`` of a stage; :class:`RangeError` if they do not fit 12 bits."""
    n, name = stage.neuron, stage.name
    du = int(round(4096 * n.a_syn)) - 1
    dv = int(round(4096 * n.a_mem))
    if not 0 <= du <= DECAY_MAX:
        raise RangeError(
            f"layer {name!r}: current decay a_syn = dt * tau_syn_inv = {n.a_syn:g} gives du = {du}, outside "
            f"[0, {DECAY_MAX}]; Loihi needs 1/8192 <= a_syn <= 1"
        )
    if not 0 <= dv <= DECAY_MAX:
        raise RangeError(
            f"layer {name!r}: voltage decay a_mem = dt * tau_mem_inv = {n.a_mem:g} gives dv = {dv}, outside "
            f"[0, {DECAY_MAX}]; Loihi needs a_mem < 4095.5/4096 (a neuron that forgets its voltage every "
            "step cannot be expressed)"
        )
    return du, dv


def sign_mode(weight: np.ndarray, bias: np.ndarray | None) -> str:
    """``"excitatory"``, ``"inhibitory"`` or ``"mixed"`` for the weights and bias of a stage."""
    values = np.concatenate([weight.ravel(), np.zeros(0) if bias is None else np.ravel(bias)])
    if values.size == 0 or values.min() >= 0:
        return "excitatory"
    if values.max() <= 0:
        return "inhibitory"
    return "mixed"


def _round_weights(w: np.ndarray | None, q: float, mode: str) -> np.ndarray | None:
    if w is None:
        return None
    if mode == "mixed":
        return (2 * np.rint(w * q / 2)).astype(np.int32)
    return np.rint(w * q).astype(np.int32)


def _bias(values: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-neuron ``(mantissa, exponent)`` with the smallest exponent that fits 13 bits, or None."""
    mant = np.zeros(values.shape, np.int64)
    exp = np.zeros(values.shape, np.int64)
    done = np.zeros(values.shape, bool)
    for e in range(BIAS_EXP_MAX + 1):
        m = np.rint(values / 2**e).astype(np.int64)
        take = ~done & (m >= BIAS_MANT_MIN) & (m <= BIAS_MANT_MAX)
        mant, exp, done = np.where(take, m, mant), np.where(take, e, exp), done | take
    if not done.all():
        return None
    return mant.astype(np.int32), exp.astype(np.int32)


def rest_voltage(target: np.ndarray, bias: np.ndarray, dv: int) -> np.ndarray:
    """Integer rest voltage nearest ``target`` that Loihi's update keeps exactly (no input).

    With no input, ``v' = v - ceil(|v| dv / 4096) sign(v) + bias``; rest needs
    ``ceil(|v| dv / 4096) = |bias|`` (same sign), i.e. ``v`` in ``((|bias| - 1) 4096/dv, |bias| 4096/dv]``.
    A stationary rest keeps every stage at rest until its first input arrives (the per-stage delay).
    """
    b = np.abs(bias)
    if dv == 0:
        if np.any(b):
            raise RangeError("a leak bias needs a voltage decay, but dv = 0 (a_mem < 1/8192)")
        return np.rint(target).astype(np.int64)
    lo = np.where(b > 0, (b - 1) * 4096 // dv + 1, 0)
    hi = b * 4096 // dv
    return np.sign(bias) * np.clip(np.rint(np.abs(target)).astype(np.int64), lo, hi)


def _peak_input(stage: Stage, w: np.ndarray, b: np.ndarray | None) -> float:
    """Largest |synaptic input| of any neuron in one step (every input spiking), in weight units."""
    syn = stage.synapse
    mat = syn.matrix(w.astype(np.int64))
    if syn.kind == "dense":
        pos, neg = np.maximum(mat, 0).sum(axis=1), np.maximum(-mat, 0).sum(axis=1)
    else:
        pos = np.asarray(mat.maximum(0).sum(axis=1)).ravel()
        neg = np.asarray((-mat).maximum(0).sum(axis=1)).ravel()
    bvec = syn.bias_vector(None if b is None else b.astype(np.int64))
    if bvec is not None:
        pos, neg = pos + np.maximum(bvec, 0), neg + np.maximum(-bvec, 0)
    return float(max(pos.max(initial=0), neg.max(initial=0)))


def _try_scale(stage: Stage, q: float, weight_exp: int, du: int, dv: int, mode: str):
    """A FixedStage for this weight scale and exponent, or the name of the range that fails."""
    syn, n = stage.synapse, stage.neuron
    w = _round_weights(syn.weight, q, mode)
    b = _round_weights(syn.bias, q, mode)
    scale = q * 2.0 ** (weight_exp + VTH_SHIFT) / n.a_mem
    vth = int(round(scale * (n.v_th - n.v_reset) / 2**VTH_SHIFT))
    if vth > VTH_MAX:
        return f"vth = {vth} > {VTH_MAX} (17 bit)"
    if vth < 1:
        return f"vth = {vth} < 1 (threshold below one integer step of the weights)"
    offset = np.asarray(n.v_leak, np.float64) - n.v_reset
    bias = _bias(scale * n.a_mem * offset)
    if bias is None:
        return f"leak bias {float(np.abs(scale * n.a_mem * offset).max()):.4g} > {BIAS_MANT_MAX} * 2^{BIAS_EXP_MAX}"
    v_init = rest_voltage(scale * offset, bias[0].astype(np.int64) << bias[1], dv)
    if np.abs(v_init).max(initial=0) > STATE_MAX - 1:
        return f"v_init = {int(np.abs(v_init).max())} > {STATE_MAX - 1} (24 bit)"
    # +2: floor shifts of the weight and bias blocks may each add one unit for negative exponents
    peak = math.ceil(_peak_input(stage, w, b) * 2.0**weight_exp) + 2
    u_bound = peak * 2**VTH_SHIFT * 4096 / (du + 1)
    if u_bound >= STATE_MAX:
        return f"worst-case |u| = {u_bound:.4g} >= 2^23 (every input spiking every step)"
    return FixedStage(
        weight=w, bias=b, weight_exp=weight_exp, sign_mode=mode, du=du, dv=dv, vth=vth,
        bias_mant=bias[0], bias_exp=bias[1], v_init=v_init.astype(np.int32), scale=scale, weight_scale=q,
    )


def quantize_stage(stage: Stage) -> FixedStage:
    """Loihi 2 fixed-point form of one float stage (the scaling strategy of this module)."""
    du, dv = decay_constants(stage)
    n, syn = stage.neuron, stage.synapse
    if not n.v_th > n.v_reset:
        raise RangeError(
            f"layer {stage.name!r}: v_th = {n.v_th:g} must exceed v_reset = {n.v_reset:g} (Loihi's threshold is unsigned)"
        )
    if n.a_mem <= 0:
        raise RangeError(f"layer {stage.name!r}: a_mem = {n.a_mem:g} must be positive")
    if np.max(n.v_leak) > n.v_th:
        raise UnsupportedLayerError(
            f"layer {stage.name!r}: v_leak = {float(np.max(n.v_leak)):g} > v_th = {n.v_th:g}: the neuron fires "
            "without input, so Loihi's staged pipeline (one step of delay per layer) would start it early"
        )
    mode = sign_mode(syn.weight, syn.bias)
    w_max = max(float(np.abs(syn.weight).max(initial=0)),
                0.0 if syn.bias is None else float(np.abs(syn.bias).max(initial=0)))
    q0 = (254.0 if mode == "mixed" else 255.0) / w_max if w_max > 0 else 1.0
    if syn.kind == "dense":
        candidates = [(q0, e) for e in range(WEIGHT_EXP_MAX, WEIGHT_EXP_MIN - 1, -1)]
    else:
        candidates = [(q0 / 2**j, 0) for j in range(24)]
    failure = ""
    for q, e in candidates:
        result = _try_scale(stage, q, e, du, dv, mode)
        if isinstance(result, FixedStage):
            if np.max(result.v_init) >= result.vth << VTH_SHIFT:
                raise UnsupportedLayerError(
                    f"layer {stage.name!r}: the rest voltage reaches the threshold in fixed point "
                    f"(v_init {int(np.max(result.v_init))} >= vth << 6 = {result.vth << VTH_SHIFT}); lower v_leak"
                )
            return result
        failure = result
    raise RangeError(f"layer {stage.name!r} cannot be represented on Loihi 2 at any weight scale: {failure}")


def quantize(net: Network) -> Network:
    """A copy of ``net`` with every stage's Loihi 2 fixed-point form filled in (and range-checked)."""
    net.check_chain()
    stages = []
    for stage in net.stages:
        q = replace(stage, fixed=quantize_stage(stage))
        check_fixed(q)
        stages.append(q)
    return replace(net, stages=stages, meta={**net.meta, "quantised": True})


def quantize_model(model, input_shape: tuple[int, ...] | None = None) -> Network:
    """Extract a trained spikelab model (torch) and quantise it: ``quantize(extract(model))``."""
    from spikelab.hardware.extract import extract

    return quantize(extract(model, input_shape))


def quantization_report(net: Network) -> list[dict]:
    """Per-layer summary: scale, exponent, constants and the relative errors of the rounding."""
    rows = []
    for s in net.stages:
        f, n, syn = s.fixed, s.neuron, s.synapse
        w_err = np.abs(f.weight / f.weight_scale - syn.weight).max(initial=0)
        w_max = np.abs(syn.weight).max(initial=0)
        rows.append({
            "layer": s.name, "kind": syn.kind, "neurons": syn.n_out, "sign_mode": f.sign_mode,
            "weight_exp": f.weight_exp, "weight_scale": f.weight_scale, "scale": f.scale,
            "du": f.du, "dv": f.dv, "vth": f.vth,
            "a_syn_error": (f.du + 1) / 4096 - n.a_syn, "a_mem_error": f.dv / 4096 - n.a_mem,
            "vth_rel_error": (f.vth * 2**VTH_SHIFT / f.scale) / (n.v_th - n.v_reset) - 1,
            "weight_max_rel_error": float(w_err / w_max) if w_max else 0.0,
        })
    return rows
