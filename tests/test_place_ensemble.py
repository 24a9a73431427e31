"""A small ensemble trained on real Nordland places recognises them far above chance."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from spikelab.data.traverse import contrast_mask, identity_ground_truth, load_traverse
from spikelab.ensembles import merge, train_modules
from spikelab.metrics.retrieval import evaluate

NORDLAND = Path(__file__).parents[1].parent / "shared" / "datasets" / "nordland_64x32"


@pytest.fixture(scope="module")
def forty_places(tmp_path_factory):
    """The first 40 high-contrast places of the route, summer and winter (from copies of 60 frames)."""
    out = []
    for season in ("summer", "winter"):
        folder = tmp_path_factory.mktemp(season)
        for f in sorted((NORDLAND / season).iterdir())[:60]:
            shutil.copy(f, folder / f.name)
        out.append(load_traverse(folder))
    idx = np.nonzero(contrast_mask(out[0].raw, 5) & contrast_mask(out[1].raw, 5))[0][:40]
    assert len(idx) == 40
    return out[0].images[idx], out[1].images[idx]


def test_small_ensemble_recognises_places_far_above_chance(forty_places):
    summer, winter = forty_places
    cfg = {"places_per_module": 10, "epochs": 15, "seed": 0, "network": {"n_neurons": 100}}
    ensemble = merge([train_modules(cfg, summer, progress=False)])
    assert ensemble.n_modules == 4
    gt = identity_ground_truth(40, 40)
    # the reference places again, through new Poisson spike trains: chance R@1 is 1/40
    again = evaluate(ensemble.scores(ensemble.respond(summer)), gt, (1, 5))
    assert again["R@1"] >= 0.9
    # winter queries (snow): chance R@5 is 5/40 = 0.125
    winter_m = evaluate(ensemble.scores(ensemble.respond(winter)), gt, (1, 5))
    assert winter_m["R@5"] >= 0.25
