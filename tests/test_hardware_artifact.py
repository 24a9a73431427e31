"""The export artifact: exact round trip, and clear errors for missing, corrupt or out-of-range files."""

import json
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from spikelab.hardware import artifact, emulator
from spikelab.hardware.artifact import ArtifactError
from spikelab.hardware.quantize import quantize_model
from spikelab.layers import SequentialState, SpikingConv2d, SpikingLinear, TimeDistributed
from spikelab.neurons import LIF, LIFBox


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = SequentialState(
        SpikingConv2d(1, 3, 3, stride=2, padding=1, neuron=LIF(v_leak=0.2)), TimeDistributed(nn.Flatten()),
        SpikingLinear(3 * 4 * 4, 6, neuron=LIFBox()),
    )
    return quantize_model(model, (1, 8, 8))


def _rewrite(src, dst, edit):
    with np.load(src) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    np.savez(dst, **arrays)


def _header(arrays):
    return json.loads(arrays["__meta__"].tobytes())


def _set_header(arrays, header):
    arrays["__meta__"] = np.frombuffer(json.dumps(header).encode(), np.uint8)


def test_round_trip_is_exact(net, tmp_path):
    path = artifact.save(net, tmp_path / "net.npz")
    back = artifact.load(path)
    assert back.input_shape == net.input_shape and back.dt == net.dt and len(back.stages) == 2
    for a, b in zip(net.stages, back.stages):
        assert a.name == b.name and a.synapse.kind == b.synapse.kind
        np.testing.assert_array_equal(a.synapse.weight, b.synapse.weight)
        np.testing.assert_array_equal(a.fixed.weight, b.fixed.weight)
        for field in ("du", "dv", "vth", "weight_exp", "sign_mode"):
            assert getattr(a.fixed, field) == getattr(b.fixed, field)
        np.testing.assert_array_equal(np.broadcast_to(a.fixed.v_init, a.synapse.output_shape), b.fixed.v_init)
    x = (np.random.default_rng(0).random((10, 2, 1, 8, 8)) < 0.4).astype(np.uint8)
    for s1, s2 in zip(emulator.run(net, x).spikes, emulator.run(back, x).spikes):
        np.testing.assert_array_equal(s1, s2)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        artifact.load(tmp_path / "nope.npz")


def test_not_a_zip(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"this is not an artifact")
    with pytest.raises(ArtifactError, match="not a readable"):
        artifact.load(bad)


def test_truncated_file(net, tmp_path):
    path = artifact.save(net, tmp_path / "net.npz")
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError):
        artifact.load(tmp_path / "cut.npz")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a.pop("stage0.fixed_weight"), "'stage0.fixed_weight' is missing"),
        (lambda a: a.update({"stage1.fixed_weight": a["stage1.fixed_weight"].astype(np.float64)}), "must hold integers"),
        (lambda a: a.update({"stage1.weight": a["stage1.weight"][:, :-1]}), "dense weight shape"),
        (lambda a: a.update({"stage0.v_leak": np.full_like(a["stage0.v_leak"], np.nan)}), "NaN"),
        (lambda a: a.update({"__meta__": np.frombuffer(b"{not json", np.uint8)}), "not valid JSON"),
    ],
)
def test_corrupt_content_is_named(net, tmp_path, edit, message):
    path = artifact.save(net, tmp_path / "net.npz")
    _rewrite(path, tmp_path / "bad.npz", edit)
    with pytest.raises(ArtifactError, match=message):
        artifact.load(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("vth", 2**17, r"vth = 131072 is outside Loihi 2's range \[0, 131071\]"),
        ("du", 4096, "du = 4096"),
        ("weight_exp", 9, "weight_exp = 9"),
        ("sign_mode", "both", "sign_mode"),
    ],
)
def test_out_of_range_header_values_name_the_layer(net, tmp_path, field, value, message):
    path = artifact.save(net, tmp_path / "net.npz")

    def edit(arrays):
        header = _header(arrays)
        header["stages"][1]["fixed"][field] = value
        _set_header(arrays, header)

    _rewrite(path, tmp_path / "bad.npz", edit)
    with pytest.raises(ArtifactError, match=message) as err:
        artifact.load(tmp_path / "bad.npz")
    assert "stage 1" in str(err.value) or "'2.neuron'" in str(err.value)


def test_odd_mixed_sign_weight_is_refused(net, tmp_path):
    path = artifact.save(net, tmp_path / "net.npz")

    def edit(arrays):
        w = arrays["stage1.fixed_weight"].copy()
        w.flat[0] = 3
        arrays["stage1.fixed_weight"] = w

    _rewrite(path, tmp_path / "bad.npz", edit)
    with pytest.raises(ArtifactError, match="must be even"):
        artifact.load(tmp_path / "bad.npz")


def test_wrong_format_and_version(net, tmp_path):
    path = artifact.save(net, tmp_path / "net.npz")
    for key, value, message in (("format", "other", "format is 'other'"), ("version", 99, "version 99")):
        def edit(arrays, key=key, value=value):
            header = _header(arrays)
            header[key] = value
            _set_header(arrays, header)

        _rewrite(path, tmp_path / "bad.npz", edit)
        with pytest.raises(ArtifactError, match=message):
            artifact.load(tmp_path / "bad.npz")


def test_file_is_a_plain_npz_without_pickles(net, tmp_path):
    path = artifact.save(net, tmp_path / "net.npz")
    with zipfile.ZipFile(path) as z:
        assert "__meta__.npy" in z.namelist()
    with np.load(path, allow_pickle=False) as data:
        assert _header({"__meta__": data["__meta__"]})["format"] == "spikelab-loihi2"
