"""Lava (lava-nc 0.10, run in .venv-lava as a subprocess) against the numpy emulator and spikelab.

These tests need the Lava environment that ``make test`` builds (``make lava-env``); without it
they fail with the reason (no Python 3.10, broken environment), they are never skipped.
"""

import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from spikelab.hardware import artifact, emulator
from spikelab.hardware.extract import extract, stage_spikes
from spikelab.hardware.lava_env import env_python, run_lava
from spikelab.hardware.quantize import quantize, quantize_model
from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.neurons import LIF, LIFBox


def _spikes(shape, p, seed):
    return (np.random.default_rng(seed).random(shape) < p).astype(np.uint8)


def _assert_identical(a_list, b_list):
    for k, (a, b) in enumerate(zip(a_list, b_list)):
        assert a.shape == b.shape, f"stage {k}: shapes {a.shape} vs {b.shape}"
        diff = np.argwhere(a != b)
        assert diff.size == 0, f"stage {k}: {len(diff)} entries differ, first at {tuple(diff[0])}"


def _concatenated(x):
    """Input columns of Lava's concatenated protocol: samples back to back, then L idle steps."""
    T, B = x.shape[:2]
    return np.concatenate([x.transpose(1, 0, *range(2, x.ndim)).reshape(B * T, -1)]), T


def test_dense_network_is_bit_identical_every_neuron_every_step():
    torch.manual_seed(1)
    model = SequentialState(SpikingLinear(1500, 40, bias=False), SpikingLinear(40, 30), SpikingLinear(30, 10))
    with torch.no_grad():
        model[0].synapse.weight.uniform_(0.0, 0.02)                  # excitatory, huge fan-in
        model[1].synapse.weight.mul_(10)
        model[2].synapse.weight.mul_(10)
        model[2].synapse.bias.fill_(0.05)
    net = quantize_model(model)
    assert [s.fixed.sign_mode for s in net.stages] == ["excitatory", "mixed", "mixed"]
    assert net.stages[0].fixed.weight_exp < 0                       # the arithmetic right shift path
    x = _spikes((25, 4, 1500), 0.1, seed=0)
    emu = emulator.run(net, x)
    lava = run_lava(net, x, raw=True)
    assert lava.info["run_config"] == "Loihi2SimCfg(select_tag='fixed_pt')"
    assert all(s.sum() > 20 for s in emu.spikes)                    # every layer is active
    _assert_identical(emu.spikes, lava.spikes)
    # the raw Lava run (samples concatenated, LIFReset between them) step for step
    cols, T = _concatenated(x)
    L = len(net.stages)
    raw = emulator.simulate(net, np.concatenate([cols, np.zeros((L, cols.shape[1]), np.uint8)])[:, None], reset_period=T)
    _assert_identical([r[:, 0] for r in raw.spikes], lava.raw)


def test_conv_network_is_bit_identical():
    torch.manual_seed(2)
    model = SequentialState(
        SpikingConv2d(2, 4, 3, stride=2, padding=1, groups=2), TimeDistributed(nn.AvgPool2d(2)),
        SpikingConv2d(4, 6, 3, padding=1, bias=False), SpikingConv2d(6, 4, 2, dilation=2),
        TimeDistributed(nn.Flatten()), SpikingLinear(4 * 2 * 1, 7),
    )
    with torch.no_grad():
        for layer in (model[0], model[2], model[3], model[5]):
            layer.synapse.weight.mul_(20)
    net = quantize_model(model, (2, 16, 12))
    assert [s.synapse.kind for s in net.stages] == ["conv", "conv", "conv", "dense"]
    x = _spikes((15, 3, 2, 16, 12), 0.3, seed=1)
    emu = emulator.run(net, x)
    assert all(s.sum() > 5 for s in emu.spikes)
    _assert_identical(emu.spikes, run_lava(net, x).spikes)


def test_rest_above_reset_runs_per_sample_and_is_identical():
    """v_leak != v_reset: nonzero rest state, so Lava runs each sample separately."""
    torch.manual_seed(3)
    model = SequentialState(
        SpikingLinear(20, 12, neuron=LIF(v_leak=0.4, v_reset=-0.1)),
        SpikingLinear(12, 6, neuron=LIFBox(v_leak=0.9)),               # rests just below threshold
    )
    with torch.no_grad():
        model[0].synapse.weight.mul_(8)
        model[1].synapse.weight.mul_(3)
    net = quantize_model(model)
    assert all(np.any(s.fixed.v_init) for s in net.stages)
    x = _spikes((12, 3, 20), 0.3, seed=2)
    emu = emulator.run(net, x)
    lava = run_lava(net, x)
    assert lava.info["protocol"] == "per-sample"
    assert emu.spikes[1].sum() > 5
    _assert_identical(emu.spikes, lava.spikes)


def test_lava_floating_point_reproduces_spikelab_spike_for_spike():
    """Exactly representable parameters (dyadic decays and weights): float results are exact in both."""
    dt = 2.0**-10

    def neuron():
        return LIF(tau_syn_inv=512.0, tau_mem_inv=512.0, v_th=1.0, dt=dt)

    torch.manual_seed(4)
    model = SequentialState(
        SpikingConv2d(2, 3, 3, padding=1, neuron=neuron()), TimeDistributed(nn.Flatten()),
        SpikingLinear(3 * 5 * 5, 8, neuron=neuron()), SpikingLinear(8, 4, neuron=neuron()),
    ).double()
    with torch.no_grad():
        for layer in (model[0], model[2], model[3]):
            layer.synapse.weight.copy_(torch.randint(-64, 64, layer.synapse.weight.shape) / 32.0)
            layer.synapse.bias.copy_(torch.randint(-8, 8, layer.synapse.bias.shape) / 64.0)
    net = extract(model, (2, 5, 5))
    x = _spikes((24, 3, 2, 5, 5), 0.3, seed=3)
    reference = stage_spikes(model, net, torch.from_numpy(x).double())
    lava = run_lava(net, x, mode="float")
    assert lava.info["run_config"] == "Loihi2SimCfg(select_tag='floating_pt')"
    assert all(r.sum() > 20 for r in reference)
    _assert_identical(reference, lava.spikes)


def test_lava_runner_rejects_a_corrupt_artifact(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    np.savez(tmp_path / "in.npz", spikes=np.zeros((2, 1, 3), np.uint8))
    proc = subprocess.run([str(env_python()), "-m", "spikelab.hardware.lava_runner", str(bad), str(tmp_path / "in.npz"),
                           str(tmp_path / "out.npz")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "not a readable spikelab Loihi artifact" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_artifact_file_runs_in_lava(tmp_path):
    """The Lava side reads the artifact written by the main environment (the deployment path)."""
    model = SequentialState(SpikingLinear(10, 8), SpikingLinear(8, 3))
    with torch.no_grad():
        model[0].synapse.weight.mul_(10)
        model[1].synapse.weight.mul_(10)
    net = quantize(extract(model))
    path = artifact.save(net, tmp_path / "net.npz")
    x = _spikes((10, 2, 10), 0.4, seed=5)
    _assert_identical(emulator.run(net, x).spikes, run_lava(path, x).spikes)
    with pytest.raises(Exception, match="Lava run failed"):
        run_lava(path, np.full((10, 2, 10), 3, np.uint8))   # not binary: the runner refuses
