"""Sweeps and sharded ensembles on a local Ray cluster of 2 CPUs (real Ray, real tiny runs)."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from spikelab.distributed import DistributedError, connect
from spikelab.tasks import continual, place_recognition
from spikelab.tasks.sweep import Run, SweepError, parse_grid, parse_seeds, run_sweep

from conftest import DATASETS

TINY = {
    "name": "tiny", "seed": 0,
    "scenario": {"name": "permuted_digits", "n_tasks": 2, "train_per_task": 300, "test_per_task": 100},
    "model": {"hidden": [32], "readout": "spikes", "readout_scale": 10.0, "init_gain": 3.0},
    "encoding": {"name": "poisson", "T": 6, "f_max": 500.0},
    "training": {"mode": "bptt", "epochs": 1, "batch_size": 32, "lr": 0.05, "momentum": 0.9},
    "method": {"name": "finetune", "hlop": {"sizes": [8, 8], "max_rows": 128}},
    "evaluation": {"fwt": False},
}


@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    connect(None, num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture
def tiny_config(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_grid_and_seed_parsing():
    assert parse_grid(["method.name=hlop,ewc", "training.lr=0.1"]) == {"method.name": ["hlop", "ewc"], "training.lr": [0.1]}
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    with pytest.raises(SweepError, match="empty"):
        parse_grid(["training.lr="])
    with pytest.raises(SweepError, match="seeds"):
        parse_seeds("a-b")
    a, b = Run((("method.name", "hlop"),), 0), Run((("method.name", "hlop"),), 1)
    assert a.run_id != b.run_id and a.run_id == Run((("method.name", "hlop"),), 0).run_id


def test_sweep_table_means_and_resume(ray_cluster, tiny_config, tmp_path):
    out = tmp_path / "sweep"
    grid = {"method.name": ["finetune", "hlop"]}
    summary = run_sweep(tiny_config, grid, [0, 1], out, progress=False)
    assert summary["n_ok"] == 4 and summary["n_failed"] == 0
    # every run's metrics are what the runner gives in-process for the same overrides
    one = next(r for r in summary["runs"] if r["point"]["method.name"] == "hlop" and r["seed"] == 1)
    direct = continual.run_experiment(continual.load_config(tiny_config, one["overrides"]), tmp_path / "direct", progress=False)
    assert one["metrics"]["acc"] == pytest.approx(direct["acc"], abs=1e-9)
    # per-point mean and sample std, recomputed with numpy from the runs' own records
    for point in summary["points"]:
        runs = [json.loads((out / "runs" / r["run_id"] / "run.json").read_text())
                for r in summary["runs"] if r["point"] == point["point"]]
        accs = np.array([r["metrics"]["acc"] for r in runs])
        assert point["n_ok"] == 2
        assert point["acc"]["mean"] == pytest.approx(accs.mean()) and point["acc"]["std"] == pytest.approx(accs.std(ddof=1))
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sorted((r["method.name"], r["seed"]) for r in rows) == [("finetune", "0"), ("finetune", "1"), ("hlop", "0"), ("hlop", "1")]
    assert (out / "summary_acc.png").stat().st_size > 0
    # re-launch: finished runs are skipped, not recomputed
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/run.json")}
    again = run_sweep(tiny_config, grid, [0, 1], out, progress=False)
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/run.json")} == stamps
    assert [r["metrics"] for r in again["runs"]] == [r["metrics"] for r in summary["runs"]]


def test_raising_and_killed_runs_are_reported_while_others_finish(ray_cluster, tiny_config, tmp_path):
    out = tmp_path / "sweep"
    grid = {"training.epochs": [1, 500], "scenario.name": ["permuted_digits", "permuted_mnist"]}
    victim = out / "runs" / Run((("training.epochs", 500), ("scenario.name", "permuted_digits")), 0).run_id / "worker.pid"

    def kill_victim():
        deadline = time.time() + 300
        while time.time() < deadline:
            if victim.exists() and victim.read_text().strip():
                time.sleep(1.0)
                os.kill(int(victim.read_text()), signal.SIGKILL)
                return
            time.sleep(0.2)

    killer = threading.Thread(target=kill_victim, daemon=True)
    killer.start()
    summary = run_sweep(tiny_config, grid, [0], out, progress=False)  # no data root: MNIST runs raise
    killer.join()
    by_point = {(r["point"]["training.epochs"], r["point"]["scenario.name"]): r for r in summary["runs"]}
    assert by_point[(1, "permuted_digits")]["status"] == "ok"
    assert by_point[(1, "permuted_mnist")]["status"] == "failed"
    assert "DataError" in by_point[(1, "permuted_mnist")]["error"] and "MNIST" in by_point[(1, "permuted_mnist")]["error"]
    killed = by_point[(500, "permuted_digits")]
    assert killed["status"] == "failed" and "Worker" in killed["error"]
    assert summary["n_ok"] == 1 and summary["n_failed"] == 3


def test_bad_sweeps_fail_before_launch(ray_cluster, tiny_config, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(SweepError, match="training.lrr"):
        run_sweep(tiny_config, {"training.lrr": [0.1]}, [0], out, progress=False)
    with pytest.raises(SweepError, match="empty"):
        run_sweep(tiny_config, parse_grid(["training.lr="]), [0], out, progress=False)
    with pytest.raises(DistributedError, match="64 CPUs"):
        run_sweep(tiny_config, {}, [0], out, cpus_per_run=64, progress=False)
    assert not (out / "runs").exists()


def test_unreachable_cluster_is_a_one_line_error(tiny_config):
    res = subprocess.run([sys.executable, "-m", "spikelab.cli", "sweep", str(tiny_config), "--address", "127.0.0.1:1"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "cannot reach the Ray cluster" in res.stderr and "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def nordland_subset(tmp_path_factory):
    """The first 60 frames of both Nordland seasons, copied (the runner takes any folders)."""
    folders = {}
    for season in ("summer", "winter"):
        folder = tmp_path_factory.mktemp(season)
        for f in sorted((DATASETS / "nordland_64x32" / season).iterdir())[:60]:
            shutil.copy(f, folder / f.name)
        folders[season] = folder
    return folders


def test_sharded_ensemble_equals_single_process(ray_cluster, nordland_subset, tmp_path):
    cfg = {
        "seed": 3,
        "data": {"reference": str(nordland_subset["summer"]), "query": str(nordland_subset["winter"]), "min_std": 5.0, "first": 16},
        "ensemble": {"places_per_module": 4, "epochs": 2},
        "network": {"n_neurons": 20, "t_present": 100.0, "t_rest": 30.0, "t_initial_rest": 50.0},
    }
    single = place_recognition.run_experiment(place_recognition.load_config(cfg), tmp_path / "single", progress=False)
    sharded_cfg = place_recognition.load_config(cfg, {"distributed.shards": 2})
    sharded = place_recognition.run_experiment(sharded_cfg, tmp_path / "sharded", progress=False)
    assert single["n_modules"] == sharded["n_modules"] == 4
    assert single["metrics"] == sharded["metrics"]
    a, b = np.load(tmp_path / "single" / "ensemble.npz"), np.load(tmp_path / "sharded" / "ensemble.npz")
    assert set(a.files) == set(b.files)
    for name in set(a.files) - {"meta"}:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    meta_a, meta_b = (json.loads(str(f["meta"])) for f in (a, b))
    assert {k: v for k, v in meta_a.items() if k != "seconds"} == {k: v for k, v in meta_b.items() if k != "seconds"}
    scores = np.load(tmp_path / "single" / "scores.npy")
    np.testing.assert_array_equal(scores, np.load(tmp_path / "sharded" / "scores.npy"))
    assert np.ptp(scores) > 0, "the modules must respond for the comparison to mean anything"
