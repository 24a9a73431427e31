"""The exported network: float stages, their Loihi 2 fixed-point form, and Loihi's ranges.

numpy (+ scipy) only, so that the Lava side (Python 3.10, no torch) can use it.

A network is a chain of *stages*. A stage is one synaptic transform (dense or 2-D convolution,
any flatten or average pooling before it already folded in) followed by a population of
current-based LIF neurons. Everything is stored in PyTorch's layout: dense weights
``(N_out, N_in)`` acting on the C-order flattened presynaptic population, convolution kernels
``(C_out, C_in / groups, kH, kW)`` applied as a cross-correlation on ``(C, H, W)`` populations.
The Lava runner converts to Lava's ``(W, H, C)`` layout and true convolution.

Float neuron (Norse semantics, per step, input ``x``)::

    i_jump = i + x;  v_d = v + a_mem ((v_leak - v) + i_jump);  i' = (1 - a_syn) i_jump
    z = v_d > v_th;  v' = v_reset where z else v_d

Fixed-point neuron (Lava ``PyLifModelBitAcc``, integers, per step, input ``a_in``)::

    u' = wrap24(sign(u (4095 - du)) (|u (4095 - du)| >> 12) + (a_in << 6))
    v_d = clip(sign(v (4096 - dv)) (|v (4096 - dv)| >> 12) + u' + (bias_mant << bias_exp), +-(2^23 - 1))
    z = v_d > (vth << 6);  v' = 0 where z else v_d
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spikelab.errors import SpikelabError

# Loihi 2 ranges (DESIGN.md section 6; Lava's PyLifModelBitAcc documents the same widths).
DECAY_BITS = 12                 # du, dv: unsigned 12 bit
DECAY_MAX = 2**DECAY_BITS - 1   # 4095
VTH_MAX = 2**17 - 1             # vth: unsigned 17 bit
BIAS_MANT_MAX = 2**12 - 1       # bias mantissa: signed 13 bit
BIAS_MANT_MIN = -(2**12)
BIAS_EXP_MAX = 7                # bias exponent: unsigned 3 bit
STATE_MAX = 2**23               # u, v: signed 24 bit; u wraps above STATE_MAX, v saturates at +-(STATE_MAX - 1)
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -8, 7   # shared weight exponent of a synapse block
VTH_SHIFT = 6                   # vth and synaptic input are MSB-aligned by 6 bits
SIGN_MODES = ("mixed", "excitatory", "inhibitory")
# Weight range as the bit-accurate Dense model applies it (lava.utils.weightutils.clip_weights and
# truncate_weights with 8 weight bits): mixed-sign weights are 8-bit mantissas times 2.
WEIGHT_RANGE = {"mixed": (-256, 254), "excitatory": (0, 255), "inhibitory": (-255, 0)}


class RangeError(SpikelabError, ValueError):
    """A parameter cannot be represented on Loihi 2 (the message names the layer and value)."""


class UnsupportedLayerError(SpikelabError, ValueError):
    """A layer type or option that Loihi 2 (or the chosen target) cannot express."""


def pair(value) -> tuple[int, int]:
    """``(a, b)`` from an int or a pair of ints."""
    if np.isscalar(value):
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


@dataclass
class Synapse:
    """Synaptic transform of one stage in PyTorch layout (float or integer weights).

    kind: ``"dense"`` (weight (N_out, N_in)) or ``"conv"`` (weight (C_out, C_in/groups, kH, kW),
    cross-correlation). bias: per output neuron (dense) or per output channel (conv), or None.
    input_shape / output_shape: population shapes without batch, e.g. (64,) or (C, H, W).
    """

    kind: str
    weight: np.ndarray
    bias: np.ndarray | None
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        self.output_shape = tuple(int(s) for s in self.output_shape)
        self.stride, self.padding, self.dilation = pair(self.stride), pair(self.padding), pair(self.dilation)
        self.groups = int(self.groups)

    @property
    def n_in(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.output_shape))

    def matrix(self, weight: np.ndarray | None = None):
        """The transform as a matrix (N_out, N_in) on C-order flattened populations.

        Dense: the weight itself. Conv: a ``scipy.sparse.csr_matrix`` with one entry per kernel
        tap and output position (zero padding taps are dropped).
        """
        weight = self.weight if weight is None else weight
        if self.kind == "dense":
            return weight
        return conv_matrix(weight, self.input_shape, self.output_shape, self.stride, self.padding,
                           self.dilation, self.groups)

    def bias_vector(self, bias: np.ndarray | None = None) -> np.ndarray | None:
        """The bias per output neuron (N_out,), channel biases broadcast over positions."""
        bias = self.bias if bias is None else bias
        if bias is None:
            return None
        if self.kind == "dense":
            return np.asarray(bias)
        return np.repeat(np.asarray(bias), int(np.prod(self.output_shape[1:])))


def conv_output_hw(in_hw, kernel_hw, stride, padding, dilation) -> tuple[int, int]:
    """Output height and width of a 2-D convolution (PyTorch's formula)."""
    return tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, k, s, p, d in zip(in_hw, kernel_hw, stride, padding, dilation)
    )


def conv_matrix(weight, input_shape, output_shape, stride, padding, dilation, groups):
    """Sparse (N_out, N_in) matrix of a PyTorch-layout cross-correlation on (C, H, W) populations."""
    from scipy import sparse

    c_out, c_in_g, kh, kw = weight.shape
    c_in, h, w = input_shape
    _, ho, wo = output_shape
    co, oy, ox, ci, ky, kx = np.meshgrid(
        np.arange(c_out), np.arange(ho), np.arange(wo), np.arange(c_in_g), np.arange(kh), np.arange(kw),
        indexing="ij",
    )
    y = oy * stride[0] - padding[0] + ky * dilation[0]
    x = ox * stride[1] - padding[1] + kx * dilation[1]
    c = (co // (c_out // groups)) * c_in_g + ci
    keep = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    rows = ((co * ho + oy) * wo + ox)[keep]
    cols = ((c * h + y) * w + x)[keep]
    vals = weight[co[keep], ci[keep], ky[keep], kx[keep]]
    return sparse.csr_matrix((vals, (rows, cols)), shape=(c_out * ho * wo, c_in * h * w))


@dataclass
class FloatNeuron:
    """Current-based LIF parameters of one stage (float, Norse semantics).

    a_syn, a_mem: per-step decay fractions (``dt * tau_inv`` for Euler); v_leak is per neuron
    (array of the population shape); the others are one value per population.
    """

    tau_syn_inv: float
    tau_mem_inv: float
    a_syn: float
    a_mem: float
    v_th: float
    v_reset: float
    v_leak: np.ndarray
    integration: str = "euler"
    model: str = "LIF"          # "LIF" (with synaptic current) or "LIFBox" (a_syn = 1)


@dataclass
class FixedStage:
    """Loihi 2 fixed-point form of a stage (every value as Lava's bit-accurate models take it).

    weight / bias: integer weights (the synapse layout; bias as a weight from an always-on
    input). weight_exp: shared exponent of the synaptic sum. du, dv, vth: neuron constants.
    bias_mant, bias_exp, v_init: per neuron (population shape). scale: integer voltage units
    (of v, before the 6-bit threshold shift) per volt; weight_scale: integer weight units per
    unit of float weight.
    """

    weight: np.ndarray
    bias: np.ndarray | None
    weight_exp: int
    sign_mode: str
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    v_init: np.ndarray
    scale: float
    weight_scale: float


@dataclass
class Stage:
    """One synapse + LIF population; ``fixed`` is None until the network is quantised."""

    name: str
    synapse: Synapse
    neuron: FloatNeuron
    fixed: FixedStage | None = None


@dataclass
class Network:
    """A chain of stages driven by input spikes of ``input_shape`` (no batch), time step dt (s)."""

    input_shape: tuple[int, ...]
    dt: float
    stages: list[Stage]
    meta: dict = field(default_factory=dict)

    @property
    def quantised(self) -> bool:
        return all(s.fixed is not None for s in self.stages)

    def check_chain(self) -> None:
        """Each stage's input shape equals the previous population's shape."""
        shape = tuple(self.input_shape)
        for s in self.stages:
            if int(np.prod(s.synapse.input_shape)) != int(np.prod(shape)) or (
                s.synapse.kind == "conv" and tuple(s.synapse.input_shape) != shape
            ):
                raise RangeError(
                    f"stage {s.name!r} expects input shape {s.synapse.input_shape} but the previous "
                    f"population has shape {shape}"
                )
            shape = s.synapse.output_shape


def check_fixed(stage: Stage) -> None:
    """Raise :class:`RangeError` naming the layer and value if ``stage.fixed`` is outside Loihi 2's ranges.

    Checks du, dv (12 bit), vth (17 bit), bias mantissa (13 bit signed) and exponent (3 bit),
    v_init (24 bit), the weight exponent, and that every weight is exactly what Lava's
    bit-accurate Dense model keeps (8-bit mantissa; mixed-sign weights even).
    """
    f, name = stage.fixed, stage.name

    def bad(what: str, value, allowed: str) -> RangeError:
        return RangeError(f"layer {name!r}: {what} = {value} is outside Loihi 2's range {allowed}")

    if f.sign_mode not in SIGN_MODES:
        raise bad("sign_mode", repr(f.sign_mode), str(SIGN_MODES))
    for what, value in (("du", f.du), ("dv", f.dv)):
        if not 0 <= value <= DECAY_MAX:
            raise bad(what, value, f"[0, {DECAY_MAX}] (12 bit unsigned)")
    if not 0 <= f.vth <= VTH_MAX:
        raise bad("vth", f.vth, f"[0, {VTH_MAX}] (17 bit unsigned)")
    if not WEIGHT_EXP_MIN <= f.weight_exp <= WEIGHT_EXP_MAX:
        raise bad("weight_exp", f.weight_exp, f"[{WEIGHT_EXP_MIN}, {WEIGHT_EXP_MAX}]")
    if stage.synapse.kind == "conv" and f.weight_exp != 0:
        raise bad("weight_exp of a convolution", f.weight_exp, "{0} (Lava's Conv model ignores weight_exp)")
    lo, hi = WEIGHT_RANGE[f.sign_mode]
    for what, w in (("weight", f.weight), ("bias weight", f.bias)):
        if w is None or w.size == 0:
            continue
        if w.min() < lo or w.max() > hi:
            value = w.min() if w.min() < lo else w.max()
            raise bad(f"{what} ({f.sign_mode} sign mode)", int(value), f"[{lo}, {hi}] (8-bit mantissa)")
        if f.sign_mode == "mixed" and np.any(w % 2):
            raise RangeError(
                f"layer {name!r}: mixed-sign {what}s must be even (Loihi drops their lowest bit); "
                f"found {int(w[w % 2 != 0].flat[0])}"
            )
    for what, arr, lo_, hi_ in (
        ("bias_mant", f.bias_mant, BIAS_MANT_MIN, BIAS_MANT_MAX),
        ("bias_exp", f.bias_exp, 0, BIAS_EXP_MAX),
        ("v_init", f.v_init, -(STATE_MAX - 1), STATE_MAX - 1),
    ):
        arr = np.asarray(arr)
        if arr.size and (arr.min() < lo_ or arr.max() > hi_):
            value = arr.min() if arr.min() < lo_ else arr.max()
            raise bad(what, int(value), f"[{lo_}, {hi_}]")
        if arr.shape not in ((), tuple(stage.synapse.output_shape)):
            raise RangeError(
                f"layer {name!r}: {what} has shape {arr.shape}, expected the population shape "
                f"{stage.synapse.output_shape}"
            )
