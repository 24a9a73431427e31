"""NIR export/import: exact round trip, files other readers accept (nir.read, Norse), errors."""

import nir
import numpy as np
import pytest
import torch
from torch import nn

from spikelab.hardware.extract import extract, stage_spikes
from spikelab.hardware.network import UnsupportedLayerError
from spikelab.hardware.nir_io import export_nir, from_nir, to_nir
from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.neurons import LIF, LIFBox


def _convnet():
    torch.manual_seed(0)
    model = SequentialState(
        SpikingConv2d(2, 4, 3, padding=1, neuron=LIF(tau_syn_inv=300.0, v_leak=0.1, v_reset=-0.2)),
        TimeDistributed(nn.AvgPool2d(2)), SpikingConv2d(4, 4, 3, padding=1, bias=False),
        TimeDistributed(nn.AvgPool2d(2, divisor_override=1)), TimeDistributed(nn.Flatten()),
        SpikingLinear(4 * 2 * 2, 12, neuron=LIFBox(tau_mem_inv=150.0)),
        SpikingLinear(12, 5, bias=False, neuron=LIF(integration="exact", v_th=0.8)),
    )
    with torch.no_grad():
        for layer in (model[0], model[2], model[5], model[6]):
            layer.synapse.weight.mul_(12)
    return model


def test_round_trip_is_exact(tmp_path):
    model = _convnet()
    path = export_nir(model, tmp_path / "net.nir", (2, 8, 8))
    back = from_nir(path)
    sd, sd_back = model.state_dict(), back.state_dict()
    assert sorted(sd) == sorted(sd_back)
    for key in sd:
        assert sd[key].dtype == sd_back[key].dtype and torch.equal(sd[key], sd_back[key]), key
    assert back[6].neuron.integration == "exact" and isinstance(back[5].neuron, LIFBox)
    x = (torch.rand(30, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    ours = stage_spikes(model, extract(model, (2, 8, 8)), x)
    theirs = stage_spikes(back, extract(back, (2, 8, 8)), x)
    assert min(int(z.sum()) for z in ours) > 0
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


def test_file_follows_the_nir_conventions(tmp_path):
    """Time constants in seconds, v_reset kept, w_in = tau_syn / dt, unbatched Flatten; nir.read type-checks."""
    model = _convnet()
    graph = nir.read(export_nir(model, tmp_path / "net.nir", (2, 8, 8)))   # type_check=True by default
    nodes = graph.nodes
    lif = nodes["0_neuron"]
    assert isinstance(lif, nir.CubaLIF)
    np.testing.assert_allclose(lif.tau_syn, 1 / 300.0)
    np.testing.assert_allclose(lif.tau_mem, 1 / 100.0)
    np.testing.assert_allclose(lif.v_reset, -0.2)
    np.testing.assert_allclose(lif.w_in, (1 / 300.0) / 1e-3)
    assert isinstance(nodes["5_neuron"], nir.LIF) and isinstance(nodes["3"], nir.SumPool2d)
    assert isinstance(nodes["1"], nir.AvgPool2d) and isinstance(nodes["6_synapse"], nir.Linear)
    flat = nodes["4"]
    assert isinstance(flat, nir.Flatten) and flat.start_dim == 0
    assert list(flat.output_type["output"]) == [16]
    assert float(graph.metadata["dt"]) == 1e-3
    assert [e for e in graph.edges if e[0] == "input"] == [("input", "0_synapse")]


def test_norse_reads_the_file_and_reproduces_the_spikes(tmp_path):
    """An independent reader: Norse's NIR importer gives spike-identical dynamics.

    Dyadic parameters make every operation exact in float32 in both implementations (Norse's
    reader ignores v_reset and lets the synapse leak toward v_leak, so both are 0 here).
    """
    import norse.torch as norse

    dt = 2.0**-10
    torch.manual_seed(2)
    model = SequentialState(
        SpikingLinear(20, 30, neuron=LIF(tau_syn_inv=512.0, tau_mem_inv=256.0, dt=dt)),
        SpikingLinear(30, 6, neuron=LIF(tau_syn_inv=512.0, tau_mem_inv=256.0, dt=dt)),
    )
    with torch.no_grad():
        for layer in model:
            layer.synapse.weight.copy_(torch.randint(-64, 64, layer.synapse.weight.shape) / 16.0)
            layer.synapse.bias.copy_(torch.randint(-8, 8, layer.synapse.bias.shape) / 64.0)
    graph = nir.read(export_nir(model, tmp_path / "net.nir"))
    executor = norse.from_nir(graph, dt=dt)
    x = (torch.rand(40, 4, 20, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    state, steps = None, []
    with torch.no_grad():
        for x_t in x:
            z, state = executor(x_t, state)
            steps.append(z)
        ours, _ = model(x)
    assert ours.sum() > 20 and torch.equal(torch.stack(steps), ours)


def test_foreign_scaling_is_folded_into_the_weights():
    """A CubaLIF with r = 2 (and w_in = tau_syn/dt) drives the neuron twice as hard: weights x 2."""
    torch.manual_seed(4)
    w = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    graph = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type=np.array([5])),
            "fc": nir.Linear(weight=w),
            "lif": nir.CubaLIF(tau_syn=np.full(3, 0.005), tau_mem=np.full(3, 0.01), r=np.full(3, 2.0),
                               v_leak=np.zeros(3), v_threshold=np.ones(3), w_in=np.full(3, 5.0)),
            "output": nir.Output(output_type=np.array([3])),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    model = from_nir(graph, dt=1e-3)
    np.testing.assert_allclose(model[0].synapse.weight.detach().numpy(), 2 * w, rtol=1e-6)
    assert model[0].neuron.tau_syn_inv.item() == pytest.approx(200.0)


def test_unsupported_nodes_and_graphs_are_named():
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([3])), "thr": nir.Threshold(threshold=np.ones(3)),
               "output": nir.Output(output_type=np.array([3]))},
        edges=[("input", "thr"), ("thr", "output")],
    )
    with pytest.raises(UnsupportedLayerError, match="'thr' of type Threshold"):
        from_nir(graph)
    model = SequentialState(SpikingLinear(4, 4), TimeDistributed(nn.MaxPool2d(2)))
    with pytest.raises(UnsupportedLayerError, match="MaxPool2d"):
        to_nir(model)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        from_nir(tmp_path / "nope.nir")
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable NIR file"):
        from_nir(bad)
