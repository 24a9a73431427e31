"""Loihi 2 quantisation and the numpy emulator (no Lava needed): ranges, errors, integer semantics."""

import numpy as np
import pytest
import torch
from torch import nn

from spikelab.hardware import compare, emulator
from spikelab.hardware.extract import extract, stage_spikes
from spikelab.hardware.network import (
    STATE_MAX, VTH_MAX, WEIGHT_EXP_MAX, RangeError, UnsupportedLayerError, check_fixed,
)
from spikelab.hardware.quantize import _peak_input, quantize, quantize_model, quantize_stage
from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.neurons import LIF, AdaptiveLIF, LIFBox


def _mlp(*sizes, gain=6.0, neuron=LIF, seed=0):
    torch.manual_seed(seed)
    model = SequentialState(*(SpikingLinear(a, b, neuron=neuron()) for a, b in zip(sizes[:-1], sizes[1:])))
    with torch.no_grad():
        for layer in model:
            layer.synapse.weight.mul_(gain)
    return model


def test_constants_follow_the_design_mapping():
    """du = round(4096 a_syn) - 1, dv = round(4096 a_mem), vth = S (v_th - v_reset) / 64 (DESIGN.md 6)."""
    model = _mlp(20, 10, neuron=lambda: LIF(tau_syn_inv=250.0, tau_mem_inv=80.0, v_th=1.5, v_reset=0.25))
    stage = quantize(extract(model)).stages[0]
    f = stage.fixed
    assert (f.du, f.dv) == (round(4096 * 0.25) - 1, round(4096 * 0.08))
    assert f.vth == round(f.scale * (1.5 - 0.25) / 64)
    # integer weight units per volt of synaptic drive: W_int 2^(e+6) = S a_mem W
    w = stage.synapse.weight
    np.testing.assert_allclose(f.weight * 2.0 ** (f.weight_exp + 6), f.scale * 0.08 * w, atol=2.0 ** (f.weight_exp + 6))


def test_weight_exponent_is_the_largest_that_fits():
    stage = extract(_mlp(30, 8)).stages[0]
    f = quantize_stage(stage)
    check_fixed(type(stage)(stage.name, stage.synapse, stage.neuron, f))
    assert f.sign_mode == "mixed" and np.all(f.weight % 2 == 0) and np.abs(f.weight).max() == 254
    assert f.vth <= VTH_MAX
    u_bound = (_peak_input(stage, f.weight, f.bias) * 2.0**f.weight_exp + 2) * 64 * 4096 / (f.du + 1)
    assert u_bound < STATE_MAX
    if f.weight_exp < WEIGHT_EXP_MAX:   # one more exponent would break a range
        vth_next = round(2 * f.scale * (stage.neuron.v_th - stage.neuron.v_reset) / 64)
        assert vth_next > VTH_MAX or 2 * u_bound >= STATE_MAX


def test_large_fan_in_gets_a_negative_exponent_and_never_wraps():
    model = SequentialState(SpikingLinear(3000, 4, bias=False))
    with torch.no_grad():
        model[0].synapse.weight.fill_(0.01)
    net = quantize_model(model)
    f = net.stages[0].fixed
    assert f.sign_mode == "excitatory" and f.weight_exp < 0
    every_step = np.ones((50, 1, 3000), np.uint8)          # the worst case: all inputs, every step
    res = emulator.run(net, every_step)
    assert res.u_wraps == [0]


@pytest.mark.parametrize(
    "neuron, message",
    [
        (lambda: LIF(tau_mem_inv=1000.0), "dv = 4096"),                    # a_mem = 1: no memory
        (lambda: LIF(tau_syn_inv=0.1), "du = -1"),                         # a_syn below 1/8192
        (lambda: LIF(v_th=0.5, v_reset=0.5), "must exceed v_reset"),
        (lambda: LIF(v_leak=-1e6), "leak bias|v_init"),                    # rest far outside 24 bits
    ],
)
def test_out_of_range_parameters_name_layer_and_value(neuron, message):
    model = _mlp(8, 4, neuron=neuron)
    with pytest.raises(RangeError, match=message) as err:
        quantize_model(model)
    assert "'0.neuron'" in str(err.value)


def test_per_neuron_threshold_is_rejected():
    model = _mlp(8, 4, neuron=lambda: LIF(v_th=torch.linspace(1, 2, 4)))
    with pytest.raises(UnsupportedLayerError, match="v_th varies across neurons"):
        quantize_model(model)


@pytest.mark.parametrize(
    "layer, message",
    [
        (TimeDistributed(nn.MaxPool2d(2)), "MaxPool2d"),
        (TimeDistributed(nn.ReLU()), "ReLU"),
        (AdaptiveLIF(), "adaptive threshold"),
    ],
)
def test_layers_loihi_cannot_express_are_named(layer, message):
    model = SequentialState(SpikingConv2d(1, 2, 3, padding=1), layer, TimeDistributed(nn.Flatten()),
                            SpikingLinear(2 * 4 * 4, 3))
    with pytest.raises(UnsupportedLayerError, match=message) as err:
        quantize_model(model, (1, 8, 8) if isinstance(layer, AdaptiveLIF) else (1, 4, 4))
    assert "'1" in str(err.value)


def _pooled_convnet(size):
    torch.manual_seed(3)
    model = SequentialState(
        SpikingConv2d(2, 4, 3, padding=1), TimeDistributed(nn.AvgPool2d(2)),
        SpikingConv2d(4, 4, 3, padding=1), TimeDistributed(nn.AvgPool2d(2)),
        TimeDistributed(nn.Flatten()), SpikingLinear(4 * (size // 4) ** 2, 5),
    ).double()
    with torch.no_grad():
        for layer in (model[0], model[2], model[5]):
            layer.synapse.weight.mul_(5)
    return model


def test_folded_pooling_equals_the_pooled_model():
    """AvgPool before Conv2d and before Linear is folded into the synapse: same synaptic input."""
    model = _pooled_convnet(8)
    net = extract(model, (2, 8, 8))
    assert [s.synapse.kind for s in net.stages] == ["conv", "conv", "dense"]
    x = (torch.rand(4, 3, 2, 8, 8, dtype=torch.float64) < 0.5).double()
    with torch.no_grad():
        z1, _ = model[0](x)
        z2, _ = model[2](model[1](z1))
        refs = [model[2].synapse(model[1](z1).reshape(-1, 4, 4, 4)),
                model[5].synapse(model[4](model[3](z2)).reshape(12, -1))]
    for stage, pre, ref in zip(net.stages[1:], (z1, z2), refs):
        folded = stage.synapse.matrix() @ pre.reshape(12, -1).numpy().T
        np.testing.assert_allclose(folded.T + stage.synapse.bias_vector(), ref.reshape(12, -1).numpy(),
                                   rtol=1e-12, atol=1e-12)


def test_pooling_that_cannot_be_folded_exactly_is_refused():
    with pytest.raises(UnsupportedLayerError, match="multiples of the pool size"):
        extract(_pooled_convnet(9), (2, 9, 9))   # 9 rows: pooling drops one that the padded conv would see


def test_lif_step_wraps_u_and_saturates_v_as_specified():
    """u wraps modulo 2^24 and v saturates at +-(2^23 - 1) (DESIGN.md 6), checked on hand values."""
    zero = np.zeros((1, 3), np.int64)
    a_in = np.array([[2**17 + 3, -(2**17) - 2, 5]], np.int64)           # << 6: 2^23 + 192, -2^23 - 128
    z, u, v, wraps, sats = emulator.lif_step(a_in, zero, zero, du=4095, dv=0, vth=VTH_MAX, bias=np.zeros(3, np.int64))
    assert u.tolist() == [[2**23 + 192 - 2**24, -(2**23) - 128 + 2**24, 5 * 64]] and wraps == 2
    assert not z.any()
    big = np.array([[2**23 - 10, -(2**23) + 10, 0]], np.int64)
    z, u, v, wraps, sats = emulator.lif_step(np.zeros((1, 3), np.int64), zero, big, du=4095, dv=0, vth=VTH_MAX,
                                             bias=np.array([100, -100, 7], np.int64))
    assert v.tolist() == [[0, -(2**23 - 1), 7]] and z.tolist() == [[True, False, False]] and sats == 2
    # decay truncates toward zero: 1000 * (4096 - 2048) >> 12 = 500, -1001 -> -500
    z, u, v, *_ = emulator.lif_step(zero[:, :2], np.array([[1001, -1001]]), np.array([[1000, -1001]]),
                                    du=2047, dv=2048, vth=VTH_MAX, bias=np.zeros(2, np.int64))
    assert u.tolist() == [[500, -500]] and v.tolist() == [[500 + 500, -500 - 500]]


def test_emulator_tracks_the_float_model():
    """The quantised network spikes like the float one (the drift DESIGN.md 6 expects)."""
    model = _mlp(40, 60, 10, gain=12.0)
    net = quantize_model(model)
    x = (torch.rand(30, 16, 40, generator=torch.Generator().manual_seed(0)) < 0.25).float()
    fl = stage_spikes(model, net, x)
    em = emulator.run(net, x.numpy())
    assert fl[0].sum() > 3000 and fl[1].sum() > 300
    assert compare.same_step_fraction(fl[0], em.spikes[0]) > 0.95
    assert compare.pooled(fl, em.spikes, compare.same_step_fraction) > 0.9


def test_lifbox_maps_to_full_current_decay():
    model = _mlp(12, 6, neuron=lambda: LIFBox(tau_mem_inv=150.0))
    f = quantize_model(model).stages[0].fixed
    assert f.du == 4095 and f.dv == round(4096 * 0.15)


def test_input_spikes_must_be_binary_and_shaped():
    net = quantize_model(_mlp(5, 3))
    with pytest.raises(ValueError, match="binary"):
        emulator.run(net, np.full((4, 2, 5), 2))
    with pytest.raises(ValueError, match=r"shape \(T, B, 5\)"):
        emulator.run(net, np.zeros((4, 2, 6)))
