"""The Diehl & Cook module kernel against Brian2 running the reference code's equations, and
the sharding guarantee of the batched ensemble (any module subset gives identical tensors)."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from spikelab.data.traverse import contrast_mask, load_traverse
from spikelab.ensembles import kernel
from spikelab.ensembles.ensemble import EnsembleConfig, RegionalEnsemble, merge, partition, train_modules
from spikelab.ensembles.network import DiehlCookBatch, DiehlCookParameters, NeuronState, delay_grid, kernel_constants
from spikelab.errors import ConfigError, DataError
from spikelab.plasticity.stdp import trace_table

NORDLAND = Path(__file__).parents[1].parent / "shared" / "datasets" / "nordland_64x32"
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Brian2's use of pyparsing


def brian2_reference(p, w0, delays, spikes, learn):
    """The ICRA 2023 code's network (snn_model.py) simulated by Brian2 on given input spikes."""
    pytest.importorskip("brian2")
    import brian2 as b2

    from spikelab.ensembles.brian2_reference import build_network, weight_matrix

    steps, indices = np.nonzero(spikes)
    net = build_network(p, w0, delays, (indices, steps), learn=learn, target="numpy")
    net["net"].run(len(spikes) * p.dt * b2.ms)
    return {"counts": np.bincount(net["monitor"].i[:], minlength=w0.shape[1]),
            "w": weight_matrix(net["synapses"], w0.shape), "theta": np.asarray(net["exc"].theta / b2.mV),
            "v_e": np.asarray(net["exc"].v / b2.mV), "v_i": np.asarray(net["inh"].v / b2.mV),
            "ge_e": np.asarray(net["exc"].ge)}


@pytest.mark.parametrize("learn", [True, False])
def test_module_matches_brian2_reference_network(learn):
    n_in, n_e, T = 40, 10, 4000  # 400 ms at the default dt = 0.1 ms
    p = DiehlCookParameters(n_neurons=n_e)
    batch = DiehlCookBatch.initialise(p, seed=3, modules=[0], n_input=n_in)
    w0 = batch.w[0]
    delays = batch.delays[0].astype(np.int64)
    spikes = np.random.default_rng(1).random((T, n_in)) < 0.015  # 150 Hz inputs: every neuron fires and competes
    ptr = np.r_[0, np.cumsum(spikes.sum(axis=1))].astype(np.int64)
    idx = np.nonzero(spikes)[1].astype(np.int32)
    n = NeuronState.initial(p, 1)
    w, theta, last = w0.copy(), batch.theta[0].copy(), batch.last_arrival[0].copy()
    counts = np.zeros(n_e, np.int32)
    lags = delay_grid(p)
    targets, lag_ptr, pos, cls = kernel.build_targets(delays, lags)
    tables = [trace_table(tau, p.dt) for tau in (p.stdp.tau_pre, p.stdp.tau_post1, p.stdp.tau_post2)]
    w = np.take_along_axis(w, targets, 1)  # synapse order
    kernel.advance(w, last, targets, lags, lag_ptr, pos, cls, theta, n.v_e[0], n.ge_e[0], n.gi_e[0], n.timer[0],
                   n.last_e[0], n.v_i[0], n.ge_i[0], n.last_i[0], 0, T, ptr, idx, counts, learn, kernel_constants(p),
                   *tables)
    np.put_along_axis(w, targets, w.copy(), 1)
    ref = brian2_reference(p, w0, delays, spikes, learn)
    assert counts.sum() > 2 * n_e and len(np.unique(counts)) > 2  # neurons fired, differently
    np.testing.assert_array_equal(counts, ref["counts"])
    np.testing.assert_allclose(w, ref["w"], rtol=0, atol=1e-13)
    assert (np.abs(w - w0).max() > 1e-3) == learn
    np.testing.assert_allclose(theta, ref["theta"], rtol=0, atol=1e-10)
    for name in ("v_e", "v_i", "ge_e"):
        np.testing.assert_allclose(getattr(n, name)[0], ref[name], rtol=0, atol=1e-10)


@pytest.fixture(scope="module")
def small_places(tmp_path_factory):
    """Twelve high-contrast Nordland places, summer (reference) and winter (query), loaded from
    copies of the first 30 frames (the loader takes any data root)."""
    traverses = []
    for season in ("summer", "winter"):
        folder = tmp_path_factory.mktemp(season)
        for f in sorted((NORDLAND / season).iterdir())[:30]:
            shutil.copy(f, folder / f.name)
        traverses.append(load_traverse(folder))
    idx = np.nonzero(contrast_mask(traverses[0].raw, 5) & contrast_mask(traverses[1].raw, 5))[0][:12]
    assert len(idx) == 12
    return traverses[0].images[idx], traverses[1].images[idx]


SMALL = {"places_per_module": 3, "epochs": 2, "seed": 5,
         "network": {"n_neurons": 24, "t_present": 120.0, "t_rest": 30.0, "t_initial_rest": 50.0}}


def test_sharded_training_equals_one_batch_exactly(small_places, tmp_path):
    ref, query = small_places
    whole = merge([train_modules(SMALL, ref, progress=False)])
    shards = merge([train_modules(SMALL, ref, [3, 0], progress=False), train_modules(SMALL, ref, [2, 1], progress=False)])
    assert whole.n_modules == shards.n_modules == 4
    for name in ("w", "delays", "theta", "modules"):
        np.testing.assert_array_equal(getattr(whole.batch, name), getattr(shards.batch, name))
    for name in ("places", "assignments", "activity"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(shards, name))
    assert whole.activity.sum() > 0 and (whole.assignments >= 0).any()
    counts = whole.respond(query)
    np.testing.assert_array_equal(counts, shards.respond(query))
    alone = train_modules(SMALL, ref, [1], progress=False)  # a module trained on its own
    np.testing.assert_array_equal(alone.batch.w[0], whole.batch.w[1])
    rates = query.reshape(len(query), -1) * alone.config.network.f_max
    np.testing.assert_array_equal(alone.batch.respond(rates), counts[1:2])
    whole.save(tmp_path / "e.npz")
    loaded = RegionalEnsemble.load(tmp_path / "e.npz")
    np.testing.assert_array_equal(loaded.respond(query), counts)
    np.testing.assert_array_equal(loaded.scores(counts, 3), whole.scores(counts, 3))


def test_checkpoint_resume_gives_identical_training(small_places, tmp_path):
    ref, _ = small_places
    full = train_modules(dict(SMALL, epochs=3), ref, [0, 1], progress=False)
    # stopped after one epoch, then resumed from its checkpoint for the remaining two
    train_modules(dict(SMALL, epochs=1), ref, [0, 1], progress=False, checkpoint=tmp_path / "ck.npz")
    resumed = train_modules(dict(SMALL, epochs=3), ref, [0, 1], progress=False, checkpoint=tmp_path / "ck.npz")
    np.testing.assert_array_equal(resumed.batch.w, full.batch.w)
    np.testing.assert_array_equal(resumed.batch.theta, full.batch.theta)
    np.testing.assert_array_equal(resumed.assignments, full.assignments)
    with pytest.raises(ConfigError, match="different configuration"):
        train_modules(dict(SMALL, epochs=3, seed=6), ref, [0, 1], progress=False, checkpoint=tmp_path / "ck.npz")


def test_partition_and_bad_sizes():
    np.testing.assert_array_equal(partition(7, 3), [[0, 1, 2], [3, 4, 5], [6, -1, -1]])
    shuffled = partition(10, 5, "shuffled", seed=1)
    assert sorted(shuffled.ravel().tolist()) == list(range(10)) and not np.array_equal(shuffled.ravel(), np.arange(10))
    with pytest.raises(DataError, match="exceeds the number of reference places"):
        partition(10, 25)
    with pytest.raises(ConfigError, match="regions"):
        EnsembleConfig(regions="random")
    with pytest.raises(ConfigError, match="network.dt"):
        EnsembleConfig.from_dict({"network": {"dt": 0}})
