"""Brian2 as an independent simulator of the exported float network: same spikes as spikelab."""

import numpy as np
import torch
from torch import nn

from spikelab.hardware import brian2_backend, compare
from spikelab.hardware.extract import extract, stage_spikes
from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.neurons import LIF, LIFBox


def _spikes(shape, p, seed):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.uint8)


def test_brian2_matches_spikelab_exactly_with_representable_parameters():
    """Dyadic decays and weights: both simulators compute exactly, so every spike must agree."""
    dt = 2.0**-10
    torch.manual_seed(0)
    model = SequentialState(
        SpikingConv2d(2, 3, 3, padding=1, neuron=LIF(tau_syn_inv=512.0, tau_mem_inv=256.0, dt=dt)),
        TimeDistributed(nn.Flatten()),
        SpikingLinear(3 * 5 * 5, 10, neuron=LIFBox(tau_mem_inv=512.0, v_leak=0.25, dt=dt)),
        SpikingLinear(10, 4, neuron=LIF(tau_syn_inv=1024.0, tau_mem_inv=512.0, v_reset=-0.5, dt=dt)),
    ).double()
    with torch.no_grad():
        for layer in (model[0], model[2], model[3]):
            layer.synapse.weight.copy_(torch.randint(-64, 64, layer.synapse.weight.shape) / 16.0)
            layer.synapse.bias.copy_(torch.randint(-8, 8, layer.synapse.bias.shape) / 64.0)
    net = extract(model, (2, 5, 5))
    x = _spikes((25, 3, 2, 5, 5), 0.3, seed=1)
    ours = stage_spikes(model, net, torch.from_numpy(x).double())
    theirs = brian2_backend.run(net, x)
    assert all(z.sum() > 10 for z in ours)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_brian2_agrees_on_a_generic_lif_network():
    """Default time constants (dt * tau_inv not exact in binary): agreement up to float rounding."""
    torch.manual_seed(1)
    model = SequentialState(
        SpikingLinear(30, 40, neuron=LIF(v_leak=0.1, v_reset=-0.1)),
        SpikingLinear(40, 8, neuron=LIF(integration="exact")),
    ).double()
    with torch.no_grad():
        for layer in model:
            layer.synapse.weight.mul_(10)
    net = extract(model)
    x = _spikes((40, 4, 30), 0.25, seed=2)
    ours = stage_spikes(model, net, torch.from_numpy(x).double())
    theirs = brian2_backend.run(net, x)
    assert ours[0].sum() > 200 and ours[1].sum() > 20
    assert compare.pooled(ours, theirs, compare.same_step_fraction) > 0.999
