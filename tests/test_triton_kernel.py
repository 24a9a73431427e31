"""The CUDA (Triton) LIF kernels, executed on the CPU by Triton's interpreter.

No GPU is needed: ``TRITON_INTERPRET=1`` runs the kernels through numpy. This checks their
arithmetic (spikes bit-identical to the reference loop, gradients equal); speed only counts on
a real GPU (benchmarks/lif_throughput.py).
"""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import torch
    from spikelab.neurons import fused
    from spikelab.neurons.functional import LIFParameters, LIFState
    from spikelab.neurons.kernels.gpu import TritonBackend

    fused._backend = lambda x: TritonBackend          # route the fused path to Triton
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        for method, alpha in (("super", None), ("triangle", 0.5), ("sigmoid", 4.0), ("atan", 2.0)):
            T, B, N = 25, 3, 300                       # N spans two Triton blocks, with a ragged tail
            x = (torch.randn(T, B, N, dtype=dtype) * 4).requires_grad_()
            vals = [torch.tensor(v, dtype=dtype) for v in (250.0, 90.0, 0.05, 0.9, -0.1)]
            vals[3] = torch.rand(N, dtype=dtype) * 0.5 + 0.7   # per-neuron thresholds
            p = LIFParameters(*vals, method=method, alpha=alpha)
            s0 = LIFState(torch.zeros(B, N, dtype=dtype), torch.zeros(B, N, dtype=dtype))
            z, s, tr = fused.lif_sequence(x, s0, p, record=True, fused=True)
            zr, sr, trr = fused.lif_sequence_reference(x, s0, p, 1e-3, record=True)
            assert torch.equal(z, zr) and torch.equal(tr.v, trr.v) and torch.equal(s.i, sr.i), (dtype, method)
            assert 0 < z.mean() < 1
            w = torch.randn_like(x)
            g = torch.autograd.grad((z * w).sum() + s.v.sum(), x)[0]
            gr = torch.autograd.grad((zr * w).sum() + sr.v.sum(), x)[0]
            err = ((g - gr).abs().max() / gr.abs().max()).item()
            assert err < (1e-5 if dtype == torch.float32 else 1e-12), (dtype, method, err)
    bad = torch.randn(5, 2, 7)
    bad[2, 1, 3] = float("nan")
    try:
        fused.lif_sequence(bad, LIFState(torch.zeros(2, 7), torch.zeros(2, 7)), LIFParameters(), fused=True)
    except ValueError as exc:
        assert "NaN" in str(exc)
    else:
        raise AssertionError("NaN input was not reported")
    print("TRITON-OK")
    """
)


def test_triton_kernels_match_reference_in_interpreter():
    pytest.importorskip("triton", reason="triton is part of the test extra; install .[test]")
    env = dict(os.environ, TRITON_INTERPRET="1")
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "TRITON-OK" in res.stdout
