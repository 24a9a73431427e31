"""The place-recognition runner: config validation, the CLI end to end, bad input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from spikelab.cli import main
from spikelab.errors import ConfigError
from spikelab.tasks.place_recognition import DEFAULTS, load_config, run_experiment

NORDLAND = Path(__file__).parents[1].parent / "shared" / "datasets" / "nordland_64x32"
REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The first 30 summer and winter frames (13 of them with enough contrast) and a small config."""
    root = tmp_path_factory.mktemp("traverses")
    for season in ("summer", "winter"):
        (root / season).mkdir()
        for f in sorted((NORDLAND / season).iterdir())[:30]:
            shutil.copy(f, root / season / f.name)
    cfg = {
        "seed": 1,
        "data": {"reference": str(root / "summer"), "query": str(root / "winter"), "min_std": 5.0},
        "ensemble": {"places_per_module": 4, "epochs": 2},
        "network": {"n_neurons": 20, "t_present": 100.0, "t_rest": 20.0, "t_initial_rest": 50.0},
        "calibration": {"fraction": 0.25},
        "evaluation": {"recall_at": [1, 5]},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return root, path, cfg


def test_load_config_merges_defaults_and_names_bad_keys(tiny):
    _, path, _ = tiny
    cfg = load_config(path, {"ensemble.epochs": 3, "stdp.nu_pre": -1e-4})
    assert cfg["ensemble"]["epochs"] == 3 and cfg["stdp"]["nu_pre"] == -1e-4
    assert cfg["network"]["tc_gi"] == DEFAULTS["network"]["tc_gi"] and cfg["data"]["min_std"] == 5.0
    with pytest.raises(ConfigError, match="'ensemble.epoch'"):
        load_config(path, {"ensemble.epoch": 3})
    with pytest.raises(ConfigError, match="'network.tau'"):
        load_config({"network": {"tau": 1.0}})
    with pytest.raises(ConfigError, match="ensemble.epochs must be an integer"):
        load_config({"ensemble": {"epochs": "many"}})
    with pytest.raises(ConfigError, match="network.dt"):
        load_config({"network": {"dt": 2.0}})
    with pytest.raises(ConfigError, match="calibration.fraction"):
        load_config({"calibration": {"fraction": 1.5}})
    shipped = load_config(REPO / "configs" / "nordland_ensemble.yaml")
    assert shipped["ensemble"]["places_per_module"] == 25 and shipped["data"]["min_std"] == 5.0


def test_cli_runs_end_to_end_and_resumes(tiny, tmp_path, capsys):
    _, path, _ = tiny
    out = tmp_path / "run"
    assert main(["place-recognition", str(path), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "sad" in printed and "queries/s" in printed
    for name in ("metrics.json", "pr_curve.png", "similarity.png", "modules.csv", "calibration.csv",
                 "ensemble.npz", "config.yaml", "scores.npy"):
        assert (out / name).is_file(), name
    assert not (out / "checkpoint.npz").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_places"] == 13 and metrics["n_modules"] == 4  # the last module has one place
    assert metrics["n_queries"] == {"calibration": 3, "test": 10}
    for method in ("ensemble", "ensemble_no_removal", "sad", "sad_all_queries"):
        assert set(metrics["metrics"][method]) == {"R@1", "R@5", "AUC", "P@100%R", "R@100%P"}
    assert metrics["timings"]["train_seconds"] > 0 and metrics["timings"]["queries_per_second"] > 0
    # resuming reuses the trained ensemble (same training time) and reproduces every metric
    again = run_experiment(load_config(path), out, progress=False, resume=True)
    assert again["metrics"] == metrics["metrics"]
    assert again["timings"]["train_seconds"] == metrics["timings"]["train_seconds"]


def _fails(args, capsys) -> str:
    assert main(["place-recognition", *args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_cli_bad_input_gives_one_line_errors(tiny, tmp_path, capsys):
    root, path, _ = tiny
    short = tmp_path / "short"
    short.mkdir()
    for f in sorted((root / "winter").iterdir())[:20]:
        shutil.copy(f, short / f.name)
    assert "differ in length" in _fails([str(path), "--query", str(short), "--out", str(tmp_path / "a")], capsys)
    (tmp_path / "empty").mkdir()
    assert "contains no images" in _fails([str(path), "--query", str(tmp_path / "empty")], capsys)
    assert "exceeds the number of reference places" in _fails(
        [str(path), "--set", "ensemble.places_per_module=25", "--out", str(tmp_path / "b")], capsys)
    broken = tmp_path / "broken"
    shutil.copytree(root / "winter", broken)
    (broken / "images-00050.png").write_bytes(b"\x89PNG garbage")
    assert "cannot read image" in _fails([str(path), "--query", str(broken), "--out", str(tmp_path / "c")], capsys)
    mixed = tmp_path / "mixed"
    shutil.copytree(root / "winter", mixed)
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(mixed / "images-00040.png")
    assert "differ in size" in _fails([str(path), "--query", str(mixed), "--out", str(tmp_path / "d")], capsys)
    assert "unknown config key 'ensemble.modules'" in _fails([str(path), "--set", "ensemble.modules=3"], capsys)
    assert "does not exist" in _fails([str(tmp_path / "nope.yaml")], capsys)
