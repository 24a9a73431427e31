"""The continual runner: configs, bad input, results folder, resume and the CLI."""

import json

import numpy as np
import pytest
import torch
import yaml

from spikelab.cli import main
from spikelab.continual.strategy import Strategy
from spikelab.errors import ConfigError, DataError
from spikelab.tasks.continual import CONFIGS, load_config, run_experiment

TINY = {
    "name": "tiny",
    "scenario": {"name": "permuted_digits", "n_tasks": 3, "train_per_task": 300, "test_per_task": 100},
    "model": {"hidden": [24], "readout": "spikes", "readout_scale": 10.0, "init_gain": 3.0},
    "encoding": {"name": "poisson", "T": 20},
    "training": {"mode": "bptt", "batch_size": 32, "epochs": 2, "lr": 0.05, "momentum": 0.9},
    "method": {"name": "hlop", "hlop": {"sizes": "energy", "max_new": [8, 8]}},
}


def test_config_defaults_overrides_and_errors(tmp_path):
    cfg = load_config(TINY, {"method.name": "ewc", "seed": 3, "method.ewc.lambda": 50})
    assert cfg["method"]["name"] == "ewc" and cfg["seed"] == 3 and cfg["method"]["ewc"]["lambda"] == 50.0
    assert cfg["training"]["optimizer"] == "sgd" and cfg["scenario"]["train_per_task"] == 300  # default, given
    with pytest.raises(ConfigError, match="unknown config key 'training.lr_decay'"):
        load_config({"training": {"lr_decay": 0.5}})
    with pytest.raises(ConfigError, match="unknown config key 'method.hlop.size'"):
        load_config(TINY, {"method.hlop.size": [1]})
    with pytest.raises(ConfigError, match="training.batch_size: expected int"):
        load_config({"training": {"batch_size": "big"}})
    with pytest.raises(ConfigError, match="method.name: 'si' is not one of"):
        load_config({"method": {"name": "si"}})
    with pytest.raises(ConfigError, match="encoding.T must be positive"):
        load_config({"encoding": {"T": 0}})
    with pytest.raises(ConfigError, match="optimizer must be sgd with gpm"):
        load_config({"training": {"optimizer": "adam"}, "method": {"name": "gpm"}})
    with pytest.raises(ConfigError, match="weight_decay must be 0 with hlop"):
        load_config({"training": {"weight_decay": 1e-4}})
    with pytest.raises(ConfigError, match="split_mnist needs 1, 2, 5 or 10 tasks"):
        load_config({"scenario": {"name": "split_mnist", "n_tasks": 3}})
    path = tmp_path / "c.yaml"
    path.write_text("training: [1, 2]\n")
    with pytest.raises(ConfigError, match="section training must be a mapping"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    shipped = sorted(CONFIGS.glob("pmnist_*.yaml")) + sorted(CONFIGS.glob("digits_*.yaml"))
    assert len(shipped) >= 6
    for path in shipped:  # every shipped continual config is valid
        load_config(path)


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        ({"method.hlop.sizes": [[4, 30]] * 3}, ConfigError, "layer heads.0, more than its input dimension 24"),
        ({"method.hlop.sizes": [[4, 4]] * 2}, ConfigError, "sizes list 2 tasks but the scenario has 3"),
        ({"method.hlop.max_new": [100, 4]}, ConfigError, "max_new=100 .* must be in 1..64"),
        ({"scenario.name": "permuted_mnist"}, DataError, "needs MNIST"),
        ({"scenario.name": "permuted_mnist", "scenario.data_root": "/nonexistent/mnist"}, DataError, "does not exist"),
        ({"scenario.train_per_task": 5000}, ConfigError, "train_per_task=5000"),
    ],
)
def test_bad_input_writes_nothing(tmp_path, overrides, error, match):
    out = tmp_path / "run"
    with pytest.raises(error, match=match):
        run_experiment(load_config(TINY, overrides), out, progress=False)
    assert not out.exists()


def test_results_folder_and_resume_equal_uninterrupted(tmp_path, monkeypatch):
    cfg = load_config(TINY)
    rng = torch.random.get_rng_state()
    full = run_experiment(cfg, tmp_path / "full", progress=False)
    assert torch.equal(torch.random.get_rng_state(), rng)  # global random state untouched
    files = {p.name for p in (tmp_path / "full").iterdir()}
    assert {"config.yaml", "matrix.json", "matrix.csv", "metrics.json", "heatmap.png", "checkpoint.pt"} <= files
    assert not [f for f in files if ".tmp" in f]
    matrix = np.array([[np.nan if v is None else v for v in row] for row in full["matrix"]])
    assert full["acc"] == pytest.approx(np.mean(matrix[-1]))
    assert full["bwt"] == pytest.approx(np.mean([matrix[2, j] - matrix[j, j] for j in range(2)]))
    assert np.isnan(matrix[0, 2]) and not np.isnan(matrix[0, 1])  # next task evaluated for FWT only
    assert full["fwt"] == pytest.approx(np.mean([matrix[j - 1, j] - full["random_init"][j] for j in (1, 2)]))
    saved = json.loads((tmp_path / "full" / "matrix.json").read_text())
    assert saved["acc"] == pytest.approx(full["acc"]) and saved["matrix"] == full["matrix"]
    assert yaml.safe_load((tmp_path / "full" / "config.yaml").read_text()) == cfg
    rows = (tmp_path / "full" / "matrix.csv").read_text().splitlines()
    assert rows[0] == "after_task,task_0,task_1,task_2" and rows[1].endswith(",")
    sizes = [t["subspace"][0] for t in full["timings"]]  # rows per layer after each task
    grown = np.diff(np.array([[0, 0]] + sizes), axis=0)
    assert (grown >= 0).all() and (grown <= 8).all()  # energy sizing keeps at most max_new per task

    # interrupt during the third task, then resume: same numbers as the uninterrupted run
    calls = {"n": 0}
    original = Strategy.train

    def train_then_fail(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Strategy, "train", train_then_fail)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path / "cut", progress=False)
    monkeypatch.setattr(Strategy, "train", original)
    partial = json.loads((tmp_path / "cut" / "matrix.json").read_text())
    assert partial["matrix"][1][:2] == full["matrix"][1][:2] and partial["matrix"][2] == [None] * 3
    with pytest.raises(ConfigError, match="already holds a run"):
        run_experiment(cfg, tmp_path / "cut", progress=False)
    with pytest.raises(ConfigError, match="different config"):
        run_experiment(load_config(TINY, {"seed": 1}), tmp_path / "cut", resume=True, progress=False)
    resumed = run_experiment(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed["matrix"] == full["matrix"]
    assert len(resumed["timings"]) == 3


def test_cli_runs_and_reports_errors(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    assert main(["continual", str(cfg), "--out", str(tmp_path / "o"), "--no-progress",
                 "--set", "method.name=finetune", "--set", "scenario.n_tasks=2"]) == 0
    assert "ACC" in capsys.readouterr().out
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["method"] == "finetune"
    assert main(["continual", str(cfg), "--out", str(tmp_path / "p"), "--set", "training.bogus=1"]) == 2
    assert "unknown config key 'training.bogus'" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_multitask_and_task_incremental(tmp_path):
    multi = run_experiment(load_config(TINY, {"method.name": "multitask"}), tmp_path / "m", progress=False)
    assert len(multi["matrix"]) == 1 and multi["bwt"] == 0.0 and multi["fwt"] is None
    assert multi["acc"] == pytest.approx(np.mean(multi["matrix"][0]))
    ti = run_experiment(load_config(TINY, {"scenario.setting": "task", "method.name": "replay",
                                           "method.replay.memory_per_task": 20}), tmp_path / "t", progress=False)
    state = torch.load(tmp_path / "t" / "checkpoint.pt", weights_only=False)
    assert sum(k.startswith("heads.") and k.endswith("weight") for k in state["model"]) == 3
    assert ti["acc"] > 20.0  # well above chance (10 %) with per-task heads
