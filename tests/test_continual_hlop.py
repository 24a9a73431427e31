"""The HLOP plugin on convolutional and linear spiking layers (8x8 digits, seconds each)."""

import torch
from torch import nn

from spikelab.continual import HLOP, DirectEncoder, Strategy, build_mlp
from spikelab.continual.models import ContinualSNN
from spikelab.continual.subspace import collect_activity
from spikelab.data.continual import permuted_digits
from spikelab.layers import SequentialState, SpikingConv2d, TimeDistributed
from spikelab.neurons import LIF
from spikelab.plasticity.hebbian import orthonormal_rows

NEURON = dict(tau_syn_inv=1000.0, tau_mem_inv=50.0, v_th=0.015, v_reset=-0.035)


def _captured(x: torch.Tensor, basis: torch.Tensor) -> float:
    return float((x @ basis.T).pow(2).sum() / x.pow(2).sum())


def test_conv_hlop_learns_patch_subspace_and_protects_it():
    torch.manual_seed(0)
    scenario = permuted_digits(2, seed=0, train_per_task=600, test_per_task=200)
    body = SequentialState(
        TimeDistributed(nn.Unflatten(1, (1, 8, 8))),
        SpikingConv2d(1, 6, 3, LIF(**NEURON), bias=False),
        TimeDistributed(nn.Flatten()),
    )
    model = ContinualSNN(body, [TimeDistributed(nn.Linear(6 * 36, 10, bias=False))], readout="linear", readout_scale=6.0)
    hlop = HLOP(model, sizes=[[4, 40], [2, 20]], lr=[0.1, 0.05], clamp=None, max_rows=2000)
    conv = hlop.layers[0]
    assert conv.in_features == 9 and hlop.layers[1].in_features == 216
    strategy = Strategy(model, DirectEncoder(8), training="rate", epochs=2, batch_size=32, plugins=[hlop], progress=False)
    strategy.train(scenario.train_stream[0])
    basis = hlop.subspaces[0].frozen
    assert torch.allclose(basis @ basis.T, torch.eye(4), atol=0.05)
    patches = collect_activity(strategy, scenario.train_stream[0], [conv], 300)[0]
    assert patches.shape[1] == 9
    best = torch.linalg.svdvals(patches).pow(2)
    optimum = float(best[:4].sum() / best.sum())  # the top-4 principal subspace of the patches
    random = orthonormal_rows(4, 9, torch.Generator().manual_seed(0))
    assert _captured(patches, basis) > optimum - 0.04
    assert _captured(patches, random) < optimum - 0.1
    w0 = conv.synapse.weight.detach().clone()
    strategy.train(scenario.train_stream[1])
    delta = (conv.synapse.weight.detach() - w0).reshape(6, 9)
    assert delta.abs().max() > 1e-4  # the layer still learns
    # orthogonal to the frozen subspace up to the Hebbian rows' deviation from orthonormality
    # (a direction drawn at random would keep about sqrt(4/9) = 0.67 of its norm)
    assert torch.linalg.norm(delta @ basis.T) < 0.05 * torch.linalg.norm(delta)


def test_energy_sizing_and_freezing_after_first_task():
    torch.manual_seed(0)
    scenario = permuted_digits(2, seed=1, train_per_task=600, test_per_task=200)
    model = build_mlp(64, [48], 10, bias=True, readout="linear", readout_scale=6.0,
                      neuron=dict(NEURON, learnable=("v_th",)))
    hlop = HLOP(model, energy_threshold=[0.8, 0.9], max_new=[20, 30], lr=[0.05, 2.0], clamp=None)
    strategy = Strategy(model, DirectEncoder(8), training="rate", epochs=3, batch_size=32, plugins=[hlop], progress=False)
    strategy.train(scenario.train_stream[0])
    sizes = hlop.block_sizes()
    assert 0 < sizes[0] < 20 and 0 < sizes[1] < 30  # energy sizing shrank the learning blocks
    activity = collect_activity(strategy, scenario.train_stream[0], hlop.layers, 600, "rate")
    for x, sub, threshold in zip(activity, hlop.subspaces, [0.8, 0.9]):
        assert torch.allclose(sub.frozen @ sub.frozen.T, torch.eye(sub.n_rows), atol=0.05)
        assert _captured(x, sub.frozen) > threshold - 0.03
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if p.dim() <= 1}
    assert "body.0.neuron.v_th" in frozen and "body.0.synapse.bias" in frozen
    strategy.train(scenario.train_stream[1])
    for n, p in model.named_parameters():
        if n in frozen:  # biases and thresholds are frozen from the second task on
            assert not p.requires_grad and torch.equal(p.detach(), frozen[n])


def test_hlop_state_roundtrip_keeps_subspaces():
    model = build_mlp(64, [16], 10, neuron=NEURON)
    hlop = HLOP(model, sizes=[[5, 4], [3, 2]])
    hlop.subspaces[0].add_rows(5)
    hlop.subspaces[0].freeze()
    other = HLOP(build_mlp(64, [16], 10, neuron=NEURON), sizes=[[5, 4], [3, 2]])
    other.load_state_dict(hlop.state_dict())
    assert torch.equal(other.subspaces[0].frozen, hlop.subspaces[0].frozen)
    assert other.subspaces[0].n_frozen == 5 and other.subspaces[1].n_rows == 0
