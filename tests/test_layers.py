"""Layers, the state container, monitors and encoders against Norse and closed forms."""

import norse.torch as norse
import pytest
import torch
from torch import nn

from spikelab.encoding import ConstantCurrentEncoder, LatencyEncoder, PoissonEncoder
from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.monitor import Monitor
from spikelab.neurons import LIF, AdaptiveLIF, lif_sequence_reference


def _norse_lif():
    return norse.LIF(norse.LIFParameters(tau_syn_inv=torch.tensor(200.0), tau_mem_inv=torch.tensor(100.0)))


def test_spiking_mlp_matches_norse_sequential_state():
    torch.manual_seed(0)
    ours = SequentialState(SpikingLinear(20, 30), SpikingLinear(30, 10))
    ref = norse.SequentialState(nn.Linear(20, 30), _norse_lif(), nn.Linear(30, 10), _norse_lif())
    ref[0].load_state_dict(ours[0].synapse.state_dict())
    ref[2].load_state_dict(ours[1].synapse.state_dict())
    x = (torch.rand(50, 4, 20) < 0.3).float() * 3
    z, states = ours(x)
    z_ref, _ = ref(x)
    assert torch.equal(z, z_ref) and z.sum() > 0
    loss, loss_ref = z.sum(), z_ref.sum()
    g = torch.autograd.grad(loss, ours[0].synapse.weight)[0]
    g_ref = torch.autograd.grad(loss_ref, ref[0].weight)[0]
    assert torch.allclose(g, g_ref, rtol=1e-5, atol=1e-6)
    assert len(states) == 2 and states[0].v.shape == (4, 30)


def test_spiking_conv_matches_norse_lift():
    torch.manual_seed(1)
    ours = SpikingConv2d(2, 4, 3, padding=1)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    conv.load_state_dict(ours.synapse.state_dict())
    ref = norse.SequentialState(norse.Lift(conv), _norse_lif())
    x = (torch.rand(30, 3, 2, 8, 8) < 0.4).float() * 2
    z, s = ours(x)
    z_ref, _ = ref(x)
    assert z.shape == (30, 3, 4, 8, 8)
    assert torch.equal(z, z_ref) and z.sum() > 0


def test_layers_reject_wrong_shapes():
    with pytest.raises(ValueError, match="SpikingLinear expects"):
        SpikingLinear(5, 3)(torch.rand(4, 2, 6))
    with pytest.raises(ValueError, match="SpikingConv2d expects"):
        SpikingConv2d(2, 3, 3)(torch.rand(4, 2, 1, 8, 8))
    with pytest.raises(ValueError, match="state has 1 entries"):
        SequentialState(SpikingLinear(5, 3), SpikingLinear(3, 2))(torch.rand(4, 2, 5), [None])


def test_time_distributed_flatten_and_pool():
    x = torch.rand(6, 2, 3, 8, 8)
    y = TimeDistributed(nn.Sequential(nn.MaxPool2d(2), nn.Flatten()))(x)
    assert y.shape == (6, 2, 3 * 4 * 4)
    assert torch.equal(y[4, 1], nn.functional.max_pool2d(x[4, 1], 2).flatten())


def test_monitor_records_reference_traces_without_changing_outputs():
    torch.manual_seed(2)
    model = SequentialState(SpikingLinear(12, 9), SpikingLinear(9, 4, neuron=AdaptiveLIF(beta=0.1)))
    x = torch.rand(40, 3, 12) * 2
    out_plain, _ = model(x)
    with Monitor(model) as mon:
        out, _ = model(x)
        out2, _ = model(x[:10])
    assert torch.equal(out, out_plain)
    rec = mon["0.neuron"]
    assert rec["v"].shape == (50, 3, 9) and set(rec) == {"z", "v", "i"}
    # independent check: the reference loop on the layer's input currents
    currents = model[0].synapse(x)
    lif = model[0].neuron
    z_ref, _, trace = lif_sequence_reference(currents, lif.initial_state(currents[0]), lif.p, lif.dt, record=True)
    assert torch.equal(rec["z"][:40], z_ref) and torch.equal(rec["v"][:40], trace.v)
    assert set(mon["1.neuron"]) == {"z", "v", "i", "b"}
    model(x)  # detached: nothing more is recorded
    assert mon["0.neuron"]["z"].shape[0] == 50
    with pytest.raises(ValueError, match="no neuron layers named"):
        Monitor(model, layers=["nope"])


def test_poisson_encoder_rate_and_reproducibility():
    x = torch.tensor([0.0, 0.25, 1.0])
    enc = PoissonEncoder(4000, f_max=200.0, dt=1e-3)
    z = enc(x.expand(5, 3), generator=torch.Generator().manual_seed(0))
    rate = z.mean(dim=(0, 1))
    p = 200.0 * 1e-3 * x
    sd = torch.sqrt(p * (1 - p) / (4000 * 5))
    assert torch.all((rate - p).abs() <= 4 * sd + 1e-12)
    z2 = enc(x.expand(5, 3), generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, z2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc(torch.tensor([1.5]))


def test_constant_current_encoder_matches_norse():
    x = torch.rand(4, 7, dtype=torch.float64) * 3
    z = ConstantCurrentEncoder(60).double()(x)
    z_ref = norse.ConstantCurrentLIFEncoder(60)(x)
    assert torch.equal(z, z_ref.to(z.dtype)) and z.sum() > 0


def test_latency_encoder_closed_form():
    x = torch.tensor([1.0, 0.5, 0.0, 0.75])
    z = LatencyEncoder(9)(x)
    assert torch.equal(z.sum(0), torch.tensor([1.0, 1.0, 0.0, 1.0]))
    assert z[:, 0].argmax() == 0 and z[:, 1].argmax() == 4 and z[:, 3].argmax() == 2
