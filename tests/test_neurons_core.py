"""Neuron core: surrogate formulas, integration schemes, module plumbing and input checks."""

import math

import pytest
import torch

from spikelab.neurons import LIF, AdaptiveLIF, LIFBox, lif_sequence, lif_sequence_reference, surrogate_derivative
from spikelab.neurons.functional import LIFParameters, LIFState
from spikelab.neurons.surrogate import spike_fn

SMOOTH_STEP = {
    # surrogate name -> (alpha, smooth function whose derivative the surrogate is)
    "sigmoid": (4.0, lambda x, a: torch.sigmoid(a * x)),
    "atan": (2.0, lambda x, a: torch.atan(math.pi / 2 * a * x) / math.pi + 0.5),
    "super": (100.0, lambda x, a: x / (1 + x.abs())),  # d/dx = 1/(|x|+1)^2
}


@pytest.mark.parametrize("method", sorted(SMOOTH_STEP))
def test_surrogate_is_derivative_of_its_smooth_step(method):
    alpha, smooth = SMOOTH_STEP[method]
    x = torch.linspace(-3, 3, 601, dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(smooth(x, alpha).sum(), x)
    assert torch.allclose(surrogate_derivative(x.detach(), method, alpha), expected, rtol=1e-10, atol=1e-12)
    z = spike_fn(x, method)
    assert torch.equal(z, (x > 0).double())
    (g,) = torch.autograd.grad(z.sum(), x)
    assert torch.allclose(g, expected, rtol=1e-10, atol=1e-12)


def test_triangle_surrogate_closed_form():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 3.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.0, 0.5, 1.0, 0.75, 0.0, 0.0], dtype=torch.float64) * 3.0
    assert torch.equal(surrogate_derivative(x, "triangle", 3.0), expected)


@pytest.mark.parametrize("method", ["sigmoid", "atan", "triangle", "super", "heaviside"])
@pytest.mark.parametrize("integration", ["euler", "exact"])
def test_fused_kernel_equals_reference_loop(method, integration):
    torch.manual_seed(0)
    x = (torch.randn(35, 4, 21, dtype=torch.float64) * 4).requires_grad_()
    p = LIFParameters(*(torch.tensor(v, dtype=torch.float64) for v in (300.0, 80.0, 0.1, 0.9, -0.1)),
                      method=method, alpha=None, integration=integration)
    s0 = LIFState(torch.rand(4, 21, dtype=torch.float64), torch.zeros(4, 21, dtype=torch.float64))
    z, s, tr = lif_sequence(x, s0, p, 1e-3, record=True)
    zr, sr, trr = lif_sequence_reference(x, s0, p, 1e-3, record=True)
    assert torch.equal(z, zr) and torch.equal(tr.v, trr.v) and torch.equal(tr.i, trr.i)
    assert torch.equal(s.v, sr.v) and 0 < z.mean() < 1
    if method != "heaviside":
        w = torch.randn_like(x)
        g = torch.autograd.grad((z * w).sum() + s.v.sum(), x)[0]
        gr = torch.autograd.grad((zr * w).sum() + sr.v.sum(), x)[0]
        assert ((g - gr).abs().max() / gr.abs().max()) < 1e-10


def test_exact_integration_matches_closed_form():
    # Sub-threshold LIFBox with constant drive c: v(t) = c + (v0 - c) exp(-t tau_inv).
    tau_inv, dt, c, v0 = 50.0, 1e-3, 0.6, 0.1
    box = LIFBox(tau_mem_inv=tau_inv, v_th=10.0, integration="exact", dt=dt).double()
    steps = 200
    x = torch.full((steps, 1, 1), c, dtype=torch.float64)
    v_trace = []
    state = box.initial_state(x[0])._replace(v=torch.full((1, 1), v0, dtype=torch.float64))
    for x_t in x:
        _, state = box.step(x_t, state)
        v_trace.append(state.v.item())
    t = torch.arange(1, steps + 1, dtype=torch.float64) * dt
    expected = c + (v0 - c) * torch.exp(-t * tau_inv)
    assert torch.allclose(torch.tensor(v_trace, dtype=torch.float64), expected, rtol=0, atol=1e-12)
    # forward Euler differs from the exact solution by O(dt): the option matters
    euler = LIFBox(tau_mem_inv=tau_inv, v_th=10.0, dt=dt).double()
    _, s = euler(x, state._replace(v=torch.full((1, 1), v0, dtype=torch.float64)))
    assert abs(s.v.item() - expected[-1].item()) > 1e-6


def test_exact_lif_synaptic_current_decays_exponentially():
    lif = LIF(tau_syn_inv=200.0, v_th=1e6, integration="exact").double()
    x = torch.zeros(50, 1, 1, dtype=torch.float64)
    x[0] = 2.0
    _, s = lif(x)
    # i after n steps: 2 * exp(-n * dt * tau_syn_inv) (the input enters before the first decay)
    assert math.isclose(s.i.item(), 2.0 * math.exp(-50 * 1e-3 * 200.0), rel_tol=1e-12)


def test_parameters_are_buffers_moved_and_saved():
    lif = LIF(v_th=0.5)
    sd = lif.state_dict()
    assert set(sd) == set(LIF.parameter_names) and sd["v_th"].item() == 0.5
    assert list(lif.parameters()) == []
    lif64 = lif.double()
    assert lif64.tau_mem_inv.dtype == torch.float64
    other = LIF()
    other.load_state_dict(sd)
    assert other.v_th.item() == 0.5


def test_learnable_parameters_are_trained_by_an_optimiser():
    lif = LIF(v_th=1.0, learnable=("v_th", "tau_mem_inv"))
    names = {n for n, _ in lif.named_parameters()}
    assert names == {"v_th", "tau_mem_inv"}
    opt = torch.optim.SGD(lif.parameters(), lr=0.1)
    x = torch.rand(30, 8, 5) * 3
    z, _ = lif(x)
    (-z.sum()).backward()  # more spikes wanted: the threshold must go down
    before = lif.v_th.item()
    opt.step()
    assert lif.v_th.item() < before


def test_state_continuation_equals_one_long_run():
    lif = LIF()
    x = torch.rand(40, 3, 7) * 4
    z_full, s_full = lif(x)
    z1, s1 = lif(x[:17])
    z2, s2 = lif(x[17:], s1)
    assert torch.equal(torch.cat([z1, z2]), z_full) and torch.equal(s2.v, s_full.v)
    # state=None starts from rest again: the second half alone differs from its continuation
    z2_reset, _ = lif(x[17:])
    assert not torch.equal(z2_reset, z2)


def test_step_matches_sequence():
    for neuron in (LIF(), LIFBox(), AdaptiveLIF(tau_adapt_inv=20.0, beta=0.2)):
        x = torch.rand(25, 2, 6) * 3
        z_seq, _ = neuron(x)
        state, zs = None, []
        for x_t in x:
            z_t, state = neuron.step(x_t, state)
            zs.append(z_t)
        assert torch.equal(torch.stack(zs), z_seq)


@pytest.mark.parametrize(
    "kwargs,needle",
    [
        (dict(tau_mem_inv=0.0), "tau_mem_inv"),
        (dict(tau_syn_inv=-5.0), "tau_syn_inv"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-1e-3), "dt"),
        (dict(tau_mem_inv=2000.0), "unstable"),
        (dict(method="relu"), "surrogate"),
        (dict(integration="rk4"), "integration"),
        (dict(v_th=float("nan")), "v_th"),
        (dict(learnable=("gain",)), "gain"),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        LIF(**kwargs)


def test_bad_inputs_raise_value_error_before_output():
    lif = LIF()
    with pytest.raises(ValueError, match=r"\(T, B, \.\.\.\)"):
        lif(torch.rand(5))
    with pytest.raises(ValueError, match="state.v"):
        lif(torch.rand(5, 2, 3), LIFState(v=torch.zeros(2, 4), i=torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="floating"):
        lif(torch.ones(5, 2, 3, dtype=torch.long))
    bad = torch.rand(5, 2, 3)
    bad[3, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lif(bad)
    with pytest.raises(ValueError, match="NaN"):
        LIF(fused=False)(bad)
    with pytest.raises(ValueError, match="NaN"):
        AdaptiveLIF()(bad)
    with pytest.raises(ValueError, match="v_th"):
        LIF(v_th=torch.ones(4))(torch.rand(5, 2, 3))
