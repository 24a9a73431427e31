"""Projection maths shared by HLOP and GPM, checked against direct computations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikelab.continual.gpm import extend_basis
from spikelab.continual.models import build_mlp, synaptic_layers
from spikelab.continual.subspace import activity_rows, energy_rank, project_gradient
from spikelab.layers import SequentialState, SpikingConv2d, TimeDistributed
from spikelab.plasticity.hebbian import orthonormal_rows


def test_projected_linear_update_leaves_old_inputs_unchanged():
    torch.manual_seed(0)
    lin = nn.Linear(12, 5, bias=False)
    basis = orthonormal_rows(4, 12, torch.Generator().manual_seed(1))
    old_inputs = torch.randn(30, 4) @ basis  # activity inside the protected subspace
    lin(torch.randn(8, 12)).pow(2).sum().backward()
    raw = lin.weight.grad.clone()
    project_gradient(lin, basis)
    assert torch.allclose(lin.weight.grad, raw @ (torch.eye(12) - basis.T @ basis), atol=1e-6)
    before = lin(old_inputs).detach()
    with torch.no_grad():
        lin.weight -= 0.5 * lin.weight.grad
    assert torch.allclose(lin(old_inputs), before, atol=1e-5)
    # an unprojected step would have changed them (the check can fail)
    assert not torch.allclose(old_inputs @ (lin.weight + 0.5 * lin.weight.grad - 0.5 * raw).T, before, atol=1e-3)


def test_conv_gradient_projection_equals_projecting_every_patch():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1, stride=2, bias=False)
    x = torch.randn(2, 3, 7, 7)
    out = conv(x)
    g_out = torch.randn_like(out)
    out.backward(g_out)
    basis = orthonormal_rows(10, 27, torch.Generator().manual_seed(2))
    project_gradient(conv, basis)
    # independent: weight gradient = sum over patches of g_p (p - B^T B p)^T
    patches = F.unfold(x, 3, padding=1, stride=2).transpose(1, 2).reshape(-1, 27)
    patches = patches - patches @ basis.T @ basis
    g = g_out.permute(0, 2, 3, 1).reshape(-1, 4)
    assert torch.allclose(conv.weight.grad.reshape(4, 27), g.T @ patches, atol=1e-5)


def test_activity_rows_rate_spikes_and_conv():
    x = torch.rand(5, 3, 8)
    lin = nn.Linear(8, 2)
    assert torch.allclose(activity_rows(x, lin, "rate"), x.mean(0))
    assert torch.equal(activity_rows(x, lin, "spikes"), x.reshape(15, 8))
    assert activity_rows(x, lin, "spikes", max_rows=4, generator=torch.Generator().manual_seed(0)).shape == (4, 8)
    conv = nn.Conv2d(2, 3, 3)
    xc = torch.rand(4, 2, 2, 5, 5)
    rows = activity_rows(xc, conv, "rate")
    assert rows.shape == (2 * 9, 18)
    assert torch.allclose(rows[:9], F.unfold(xc.mean(0), 3)[0].T)
    with pytest.raises(ValueError, match="signal"):
        activity_rows(x, lin, "voltage")


def _gpm_rank_loop(s2, captured, total, threshold):
    """GPM's reference loop (Saha et al. 2021, tasks after the first)."""
    ratio, acc, r = s2 / total, captured / total, 0
    for v in ratio:
        if acc < threshold:
            acc += v
            r += 1
        else:
            break
    return r


@pytest.mark.parametrize("captured", [0.0, 3.0, 9.5])
@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.97, 1.0])
def test_energy_rank_matches_gpm_loop(captured, threshold):
    s2 = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.25, 0.25])
    total = captured + float(s2.sum())
    assert energy_rank(s2, captured, total, threshold) == _gpm_rank_loop(s2.numpy(), captured, total, threshold)


def test_extend_basis_finds_low_rank_structure():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((20, 20)))
    a = torch.tensor(rng.standard_normal((200, 3)) @ q[:, :3].T * 3 + 0.01 * rng.standard_normal((200, 20)), dtype=torch.float64)
    basis = extend_basis(torch.zeros(0, 20, dtype=torch.float64), a, 0.99)
    assert basis.shape == (3, 20)
    assert torch.allclose(basis @ basis.T, torch.eye(3, dtype=torch.float64), atol=1e-8)
    b = torch.tensor(rng.standard_normal((200, 2)) @ q[:, 3:5].T * 3, dtype=torch.float64)
    grown = extend_basis(basis, torch.cat([a, b]), 0.99)
    assert grown.shape == (5, 20) and torch.equal(grown[:3], basis)
    residual = torch.tensor(q[:, :5].T) - torch.tensor(q[:, :5].T) @ grown.T @ grown
    assert residual.abs().max() < 1e-2  # the span is the true 5-dimensional subspace


def test_synaptic_layers_find_linear_conv_and_shared_heads():
    mlp = build_mlp(10, [6, 5], 3)
    assert [l.name for l in synaptic_layers(mlp)] == ["body.0", "body.1", "heads.0"]
    multi = build_mlp(10, [6], 3, n_heads=2)
    assert [l.name for l in synaptic_layers(multi)] == ["body.0"]
    cnn = SequentialState(SpikingConv2d(2, 4, 3), TimeDistributed(nn.Flatten()), TimeDistributed(nn.Linear(4 * 36, 3)))
    layers = synaptic_layers(cnn)
    assert [l.in_features for l in layers] == [18, 144]
