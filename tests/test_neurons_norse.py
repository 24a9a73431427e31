"""spikelab's neurons against Norse 1.1.0, the reference dynamics.

Spikes must be identical (float64 and float32); gradients must match autograd through Norse's
step functions to 1e-6 relative, for the fused kernel and the reference loop alike.
"""

import norse.torch as norse
import pytest
import torch

from spikelab.neurons import LIF, AdaptiveLIF, LIFBox
from spikelab.neurons.functional import LIFState

PARAM_SETS = [
    dict(tau_syn_inv=200.0, tau_mem_inv=100.0, v_leak=0.0, v_th=1.0, v_reset=0.0),
    dict(tau_syn_inv=50.0, tau_mem_inv=20.0, v_leak=0.1, v_th=0.5, v_reset=-0.2),
    dict(tau_syn_inv=900.0, tau_mem_inv=300.0, v_leak=-0.3, v_th=0.8, v_reset=0.1),
]
SHAPES = [(1, 1, 1), (40, 3, 17), (64, 5, 2, 3, 4), (7, 2, 1030)]


def _norse_twin(lif: LIF):
    """Norse's LIF with exactly the same parameter tensors as the spikelab module ``lif``."""
    p = norse.LIFParameters(
        **{k: getattr(lif, k) for k in LIF.parameter_names},
        method=lif.method, alpha=torch.tensor(lif.alpha),
    )
    return norse.LIF(p, dt=lif.dt)


def _inputs(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=dtype) * 3 + 1).requires_grad_()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("params", PARAM_SETS)
@pytest.mark.parametrize("fused", [None, False])
def test_lif_spikes_equal_norse(params, shape, dtype, fused):
    x = _inputs(shape, dtype, seed=len(shape))
    lif = LIF(**params, fused=fused).to(dtype)
    # Norse builds its default initial state in float32 whatever the input dtype; start both
    # from the same explicit rest state (v = v_leak in the input's dtype, i = 0).
    rest = lif.initial_state(x[0])
    z_ref, s_ref = _norse_twin(lif)(x, norse.LIFFeedForwardState(v=rest.v, i=rest.i))
    z, s = lif(x)
    assert z.dtype == dtype
    assert torch.equal(z, z_ref)
    if shape[0] > 5:  # long enough to fire: the comparison must include spikes and resets
        assert 0 < z.mean() < 0.9
    assert torch.equal(s.v, s_ref.v) and torch.equal(s.i, s_ref.i)


def _rel_err(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


@pytest.mark.parametrize("method,alpha", [("super", 100.0), ("triangle", 0.7), ("triangle", 3.0)])
@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("params", PARAM_SETS)
def test_lif_gradients_match_autograd_through_norse(params, shape, method, alpha):
    dtype = torch.float64
    x = _inputs(shape, dtype, seed=3)
    w = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(5))
    ref = LIF(**params, method=method, alpha=alpha).to(dtype)
    rest = ref.initial_state(x[0])
    z_ref, s_ref = _norse_twin(ref)(x, norse.LIFFeedForwardState(v=rest.v, i=rest.i))
    # a loss that touches the spikes at every step and the final state
    g_ref = torch.autograd.grad((z_ref * w).sum() + s_ref.v.pow(2).sum() + s_ref.i.sum(), x)[0]
    for fused in (None, False):
        z, s = LIF(**params, method=method, alpha=alpha, fused=fused).to(dtype)(x)
        g = torch.autograd.grad((z * w).sum() + s.v.pow(2).sum() + s.i.sum(), x)[0]
        assert _rel_err(g, g_ref) < 1e-6, f"fused={fused}"
    assert g_ref.abs().sum() > 0


def test_lif_float32_gradients_close_to_norse():
    params = PARAM_SETS[1]
    x = _inputs((50, 4, 300), torch.float32, seed=9)
    lif = LIF(**params)
    rest = lif.initial_state(x[0])
    z_ref, _ = _norse_twin(lif)(x, norse.LIFFeedForwardState(v=rest.v, i=rest.i))
    g_ref = torch.autograd.grad(z_ref.sum(), x)[0]
    z, _ = lif(x)
    g = torch.autograd.grad(z.sum(), x)[0]
    assert torch.equal(z, z_ref)
    assert _rel_err(g, g_ref) < 1e-5


def test_gradient_wrt_initial_state_matches_norse():
    dtype = torch.float64
    x = _inputs((30, 2, 11), dtype, seed=1)
    v0 = (torch.rand(2, 11, dtype=dtype) * 0.9).requires_grad_()
    i0 = torch.randn(2, 11, dtype=dtype).requires_grad_()
    lif = LIF(**PARAM_SETS[0]).to(dtype)
    z_ref, _ = _norse_twin(lif)(x, norse.LIFFeedForwardState(v=v0, i=i0))
    ref = torch.autograd.grad(z_ref.sum(), (x, v0, i0))
    z, _ = lif(x, LIFState(v=v0, i=i0))
    got = torch.autograd.grad(z.sum(), (x, v0, i0))
    for a, b in zip(got, ref):
        assert _rel_err(a, b) < 1e-6


def test_per_neuron_parameters_match_norse():
    dtype = torch.float64
    n = 23
    g = torch.Generator().manual_seed(0)
    params = dict(
        tau_syn_inv=torch.rand(n, generator=g, dtype=dtype) * 400 + 50,
        tau_mem_inv=torch.rand(n, generator=g, dtype=dtype) * 200 + 20,
        v_leak=torch.randn(n, generator=g, dtype=dtype) * 0.1,
        v_th=torch.rand(n, generator=g, dtype=dtype) + 0.5,
        v_reset=torch.zeros(n, dtype=dtype),
    )
    x = _inputs((60, 3, n), dtype, seed=2)
    lif = LIF(**params).to(dtype)
    rest = lif.initial_state(x[0])  # Norse cannot build a rest state for per-neuron v_leak
    z_ref, _ = _norse_twin(lif)(x, norse.LIFFeedForwardState(v=rest.v, i=rest.i))
    z, _ = lif(x)
    assert torch.equal(z, z_ref)
    g_ref = torch.autograd.grad(z_ref.sum(), x)[0]
    assert _rel_err(torch.autograd.grad(z.sum(), x)[0], g_ref) < 1e-6


def test_learnable_threshold_gradient_matches_norse():
    dtype = torch.float64
    x = _inputs((40, 3, 8), dtype, seed=4)
    v_th = torch.full((8,), 0.7, dtype=dtype, requires_grad=True)
    p = norse.LIFParameters(v_th=v_th, tau_syn_inv=torch.tensor(200.0, dtype=dtype),
                            tau_mem_inv=torch.tensor(100.0, dtype=dtype))
    z_ref, _ = norse.LIF(p)(x)
    g_ref = torch.autograd.grad(z_ref.sum(), v_th)[0]
    lif = LIF(v_th=torch.full((8,), 0.7), learnable=("v_th",)).to(dtype)
    assert isinstance(lif.v_th, torch.nn.Parameter)
    z, _ = lif(x)
    g = torch.autograd.grad(z.sum(), lif.v_th)[0]
    assert torch.equal(z, z_ref)
    assert _rel_err(g, g_ref) < 1e-6


def test_lif_box_matches_norse_cell():
    dtype = torch.float64
    x = _inputs((50, 4, 9), dtype, seed=6)
    box = LIFBox(tau_mem_inv=80.0, v_th=0.6, v_leak=0.05, v_reset=-0.1).to(dtype)
    cell = norse.LIFBoxCell(norse.LIFBoxParameters(**{k: getattr(box, k) for k in LIFBox.parameter_names}))
    state, zs = None, []
    for x_t in x:
        z_t, state = cell(x_t, state)
        zs.append(z_t)
    z_ref = torch.stack(zs)
    z, s = box(x)
    assert torch.equal(z, z_ref) and z.sum() > 0
    assert torch.equal(s.v, state.v)
    g_ref = torch.autograd.grad(z_ref.sum(), x)[0]
    assert _rel_err(torch.autograd.grad(z.sum(), x)[0], g_ref) < 1e-6


def test_adaptive_lif_matches_norse_lsnn():
    dtype = torch.float64
    x = _inputs((80, 3, 12), dtype, seed=7)
    vals = dict(tau_syn_inv=200.0, tau_mem_inv=100.0, tau_adapt_inv=5.0, v_leak=0.0, v_th=1.0, v_reset=0.0, beta=0.3)
    alif = AdaptiveLIF(**vals).to(dtype)
    p = norse.LSNNParameters(**{k: getattr(alif, k) for k in vals})
    z_ref, s_ref = norse.LSNN(p)(x)
    z, s = alif(x)
    assert torch.equal(z, z_ref) and z.sum() > 0
    assert torch.equal(s.b, s_ref.b)
    g_ref = torch.autograd.grad(z_ref.sum(), x)[0]
    assert _rel_err(torch.autograd.grad(z.sum(), x)[0], g_ref) < 1e-6
