"""``spikelab place-recognition``: train a regional ensemble on reference traverses, query it, report.

Usage::

    spikelab place-recognition configs/nordland_ensemble.yaml [--reference DIR] [--query DIR] [--out DIR]
        [--set ensemble.epochs=30 ...] [--resume] [--no-progress]

Steps: load and preprocess the traverses, drop low-contrast frames, build the ground truth,
split the queries into calibration and test queries, score the sum-of-absolute-differences
baseline, train the ensemble (checkpointed every epoch), record its response to the reference
set, query it, choose the hyperactive-neuron threshold on the calibration queries, and write
the results folder (see docs/place_recognition.md).
"""

from __future__ import annotations

import argparse
import copy
import csv
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from spikelab.tasks.overrides import parse_set
from spikelab.atomic import atomic_path, write_json
from spikelab.data import traverse
from spikelab.ensembles.ensemble import EnsembleConfig, RegionalEnsemble, merge, partition, train_modules
from spikelab.ensembles.network import DiehlCookParameters
from spikelab.ensembles.sad import sad_scores
from spikelab.errors import ConfigError, DataError
from spikelab.metrics.retrieval import best_matches, evaluate, pr_curve
from spikelab.plasticity.stdp import STDPParameters, ThresholdParameters

#: Every accepted key with its default. ``None`` marks keys without a default value.
DEFAULTS: dict = {
    "seed": 0,
    "data": {
        "reference": None,  # folder, or list of folders of aligned traverses (same places, same order)
        "query": None,  # folder
        "ground_truth": None,  # None: frame identity; or a .csv of query,reference pairs / a .npy boolean matrix
        "tolerance": 0,  # frames either side that still count as the same place
        "min_std": 0.0,  # drop frames whose raw grayscale pixel std is below this (tunnels, stations)
        "first": None,  # keep only the first N places (after filtering)
        "image_size": [28, 28],  # height, width after resizing
        "patch_size": 7,  # patch-normalisation window (0: none)
    },
    # ensemble, network, stdp and homeostasis defaults come from the library (one source of truth)
    "ensemble": {k: v for k, v in asdict(EnsembleConfig()).items() if k not in ("seed", "network")},
    "network": {k: v for k, v in DiehlCookParameters()._asdict().items() if k not in ("stdp", "threshold")},
    "stdp": STDPParameters()._asdict(),
    "homeostasis": ThresholdParameters()._asdict(),
    "calibration": {
        "fraction": 0.2,  # share of the queries used to choose the hyperactivity threshold
        "split": "first",  # "first" (a separate stretch of the route, as the reference) or "random"
        "thresholds": "auto",  # "auto" (0 and every activity level) or a list of integers (0 = no removal)
    },
    "evaluation": {"recall_at": [1, 5, 10]},
    # shards > 1 trains groups of modules in parallel Ray tasks (spikelab.ensembles.sharded)
    "distributed": {"shards": 1, "address": None, "cpus_per_shard": 1, "gpus_per_shard": 0},
}

_PATH_KEYS = {"data.reference", "data.query", "data.ground_truth"}
_OPTIONAL_INT = {"data.first"}
_OPTIONAL_STR = {"distributed.address"}


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _check_value(key: str, value, default):
    """Value coerced to the default's type, or ``ConfigError`` naming ``key``."""
    if key in _PATH_KEYS:
        if value is None:
            return None
        if key == "data.reference" and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return value
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a path{' or a list of paths' if key == 'data.reference' else ''}, got {value!r}")
    if key in _OPTIONAL_INT:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ConfigError(f"{key} must be a positive integer or null, got {value!r}")
    if key in _OPTIONAL_STR:
        if value is None or isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string or null, got {value!r}")
    if key == "calibration.thresholds":
        if value == "auto" or (isinstance(value, list) and value and all(isinstance(v, int) and v >= 0 for v in value)):
            return value
        raise ConfigError(f"{key} must be 'auto' or a list of non-negative integers, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
            return float(value)
        raise ConfigError(f"{key} must be a number, got {value!r}")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if isinstance(default, list):
        if isinstance(value, list) and len(value) > 0 and all(isinstance(v, int) and v > 0 for v in value):
            return value
        raise ConfigError(f"{key} must be a non-empty list of positive integers, got {value!r}")
    raise ConfigError(f"{key}: unsupported value {value!r}")


def _set(d: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d[p]
    d[leaf] = value


def load_config(path_or_dict, overrides: dict | None = None) -> dict:
    """Validated configuration: the file (or dict) merged over :data:`DEFAULTS`, then ``overrides``.

    ``overrides`` maps dotted keys (``"ensemble.epochs"``) to values. Unknown keys, in the file
    or in ``overrides``, and values of the wrong type raise :class:`ConfigError` naming the key.
    Relative data paths of a config file are resolved against the current directory, then
    against the file's folder.
    """
    base = None
    if isinstance(path_or_dict, dict):
        user = copy.deepcopy(path_or_dict)
    else:
        path = Path(path_or_dict)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            user = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        base = path.resolve().parent
    if not isinstance(user, dict):
        raise ConfigError("a config must be a mapping of sections (data, ensemble, network, ...)")
    defaults = _flatten(DEFAULTS)
    cfg = copy.deepcopy(DEFAULTS)
    for key, value in list(_flatten(user).items()) + list((overrides or {}).items()):
        if key not in defaults:
            raise ConfigError(f"unknown config key '{key}'")
        _set(cfg, key, _check_value(key, value, defaults[key]))
    for key in ("data.reference", "data.query", "data.ground_truth"):
        value = _get(cfg, key)
        if value is not None and base is not None:
            _set(cfg, key, [_resolve(v, base) for v in value] if isinstance(value, list) else _resolve(value, base))
    _validate(cfg)
    return cfg


def _get(cfg: dict, dotted: str):
    for p in dotted.split("."):
        cfg = cfg[p]
    return cfg


def _resolve(value: str, base: Path) -> str:
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists() or not (base / p).exists():
        return str(p)
    return str(base / p)


def _validate(cfg: dict) -> None:
    d, c = cfg["data"], cfg["calibration"]
    if d["tolerance"] < 0:
        raise ConfigError(f"data.tolerance must be >= 0 frames, got {d['tolerance']}")
    if d["min_std"] < 0:
        raise ConfigError(f"data.min_std must be >= 0, got {d['min_std']}")
    if len(d["image_size"]) != 2:
        raise ConfigError(f"data.image_size must be [height, width], got {d['image_size']}")
    if d["patch_size"] < 0 or (d["patch_size"] and d["patch_size"] % 2 == 0):
        raise ConfigError(f"data.patch_size must be 0 or a positive odd number, got {d['patch_size']}")
    if not 0 <= c["fraction"] < 1:
        raise ConfigError(f"calibration.fraction must be in [0, 1), got {c['fraction']}")
    if c["split"] not in ("first", "random"):
        raise ConfigError(f"calibration.split must be 'first' or 'random', got {c['split']!r}")
    dist = cfg["distributed"]
    if dist["shards"] < 1 or dist["cpus_per_shard"] < 1 or dist["gpus_per_shard"] < 0:
        raise ConfigError(f"distributed needs shards >= 1, cpus_per_shard >= 1, gpus_per_shard >= 0; got {dist}")
    ensemble_config(cfg)  # network / stdp / ensemble ranges


def ensemble_config(cfg: dict) -> EnsembleConfig:
    """The :class:`~spikelab.ensembles.ensemble.EnsembleConfig` of a validated config."""
    network = dict(cfg["network"], stdp=cfg["stdp"], threshold=cfg["homeostasis"])
    return EnsembleConfig.from_dict(dict(cfg["ensemble"], seed=cfg["seed"], network=network))


# --------------------------------------------------------------------------------------- data


def load_data(cfg: dict) -> dict:
    """Traverses, filtering, ground truth and calibration split of a validated config."""
    d = cfg["data"]
    if not d["reference"] or not d["query"]:
        raise ConfigError("data.reference and data.query must be set (in the config or with --reference/--query)")
    ref_dirs = d["reference"] if isinstance(d["reference"], list) else [d["reference"]]
    size, patch = tuple(d["image_size"]), d["patch_size"]
    refs = [traverse.load_traverse(f, size, patch) for f in ref_dirs]
    query = traverse.load_traverse(d["query"], size, patch)
    if len({len(r) for r in refs}) > 1:
        raise DataError(
            "reference traverses must be frame-aligned (same places in the same order) but have "
            + ", ".join(f"{r.folder}: {len(r)} images" for r in refs)
        )
    if d["ground_truth"]:
        gt = traverse.load_ground_truth(d["ground_truth"], len(query), len(refs[0]), d["tolerance"])
    else:
        gt = traverse.identity_ground_truth(len(query), len(refs[0]), d["tolerance"])
    ref_keep = np.logical_and.reduce([traverse.contrast_mask(r.raw, d["min_std"]) for r in refs])
    query_keep = traverse.contrast_mask(query.raw, d["min_std"])
    if not d["ground_truth"]:  # aligned traverses: a frame goes if it is uniform in any of them
        ref_keep = query_keep = ref_keep & query_keep
    ref_idx, query_idx = np.nonzero(ref_keep)[0], np.nonzero(query_keep)[0]
    if d["first"]:
        ref_idx, query_idx = ref_idx[: d["first"]], query_idx[: d["first"]]
    if len(ref_idx) == 0 or len(query_idx) == 0:
        raise DataError(f"no frames left after dropping those with pixel std < {d['min_std']}")
    gt = gt[np.ix_(query_idx, ref_idx)]
    if not gt.any(axis=1).any():
        raise DataError("no query has a true match among the kept reference frames")
    rng = np.random.default_rng(np.random.SeedSequence([cfg["seed"], 7]))
    n_cal = int(round(cfg["calibration"]["fraction"] * len(query_idx)))
    order = np.arange(len(query_idx)) if cfg["calibration"]["split"] == "first" else rng.permutation(len(query_idx))
    cal, test = np.sort(order[:n_cal]), np.sort(order[n_cal:])
    return {
        "reference": np.stack([r.images[ref_idx] for r in refs]),
        "query": query.images[query_idx],
        "gt": gt,
        "calibration": cal,
        "test": test,
        "reference_names": [refs[0].names[i] for i in ref_idx],
        "query_names": [query.names[i] for i in query_idx],
        "dropped": {"reference": int((~ref_keep).sum()), "query": int((~query_keep).sum())},
    }


# ------------------------------------------------------------------------------------ outputs


def _write_csv(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _plots(out: Path, curves: dict, scores: np.ndarray, gt: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, (s, g) in curves.items():
        best, correct = best_matches(s, g)
        p, r, _ = pr_curve(best, correct, int(g.any(axis=1).sum()))
        ax.plot(r, p, label=name)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall (test queries)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "pr_curve.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    im = ax.imshow(scores, aspect="auto", cmap="viridis", interpolation="nearest")
    q, r = np.nonzero(gt)
    ax.scatter(r, q, s=4, facecolors="none", edgecolors="red", linewidths=0.3, label="ground truth")
    ax.set(xlabel="reference place", ylabel="query", title="Ensemble place scores")
    fig.colorbar(im, ax=ax, label="mean spike count of assigned neurons")
    fig.tight_layout()
    fig.savefig(out / "similarity.png", dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------- the experiment


def run_experiment(config: dict, out_dir, reference=None, query=None, progress: bool = True,
                   resume: bool = False) -> dict:
    """Run one place-recognition experiment and write its results folder.

    Args:
        config: a config dict (validated by :func:`load_config` if it is not already).
        out_dir: results folder (created).
        reference: folder (or list of folders) replacing ``data.reference``; query: replaces ``data.query``.
        progress: tqdm bars; resume: continue an interrupted run from ``out_dir``'s checkpoint
            (or reuse its trained ensemble) instead of starting over.
    Returns: the contents of ``metrics.json``: metrics of the ensemble with and without
    hyperactive-neuron removal and of SAD on the test queries (``R@N``, ``AUC``, ``P@100%R``,
    ``R@100%P``), SAD on all queries, the chosen threshold, data sizes and timings.
    """
    overrides = {}
    if reference is not None:
        overrides["data.reference"] = [str(r) for r in reference] if isinstance(reference, (list, tuple)) else str(reference)
    if query is not None:
        overrides["data.query"] = str(query)
    cfg = load_config(config, overrides)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    data = load_data(cfg)
    ens_cfg = ensemble_config(cfg)
    partition(data["reference"].shape[1], ens_cfg.places_per_module)  # clear error before any work
    ns = cfg["evaluation"]["recall_at"]
    gt, cal, test = data["gt"], data["calibration"], data["test"]
    if len(test) == 0 or not gt[test].any():
        raise DataError("no test query with a true match is left after the calibration split")

    sad = np.max([sad_scores(r, data["query"]) for r in data["reference"]], axis=0)
    ensemble_file, checkpoint = out / "ensemble.npz", out / "checkpoint.npz"
    if not resume:
        for f in (ensemble_file, checkpoint):
            f.unlink(missing_ok=True)
    if ensemble_file.exists():
        ensemble = RegionalEnsemble.load(ensemble_file)
        if ensemble.config != ens_cfg or ensemble.n_places != data["reference"].shape[1]:
            raise ConfigError(f"{ensemble_file} was trained with another configuration; run without --resume")
    elif cfg["distributed"]["shards"] > 1:
        from spikelab.ensembles.sharded import train_sharded

        dist = cfg["distributed"]
        ensemble = train_sharded(ens_cfg, data["reference"], dist["shards"], dist["address"],
                                 dist["cpus_per_shard"], dist["gpus_per_shard"])
        ensemble.save(ensemble_file)
    else:
        ensemble = merge([train_modules(ens_cfg, data["reference"], None, progress, checkpoint)])
        ensemble.save(ensemble_file)
        checkpoint.unlink(missing_ok=True)
    t0 = time.perf_counter()
    counts = ensemble.respond(data["query"], progress)
    query_seconds = time.perf_counter() - t0
    candidates = None if cfg["calibration"]["thresholds"] == "auto" else cfg["calibration"]["thresholds"]
    if len(cal) and gt[cal].any():
        table = ensemble.calibrate(counts[:, cal], gt[cal], candidates)
        _write_csv(out / "calibration.csv", table)
    ensemble.save(ensemble_file)

    scores, scores_plain = ensemble.scores(counts), ensemble.scores(counts, 0)
    metrics = {
        "ensemble": evaluate(scores[test], gt[test], ns),
        "ensemble_no_removal": evaluate(scores_plain[test], gt[test], ns),
        "sad": evaluate(sad[test], gt[test], ns),
        "sad_all_queries": evaluate(sad, gt, ns),
    }
    stats = ensemble.module_stats()
    _write_csv(out / "modules.csv", stats)
    np.save(out / "scores.npy", scores)
    _plots(out, {"ensemble": (scores[test], gt[test]), "ensemble, no removal": (scores_plain[test], gt[test]),
                 "SAD": (sad[test], gt[test])}, scores, gt)
    result = {
        "metrics": metrics,
        "hyperactive_threshold": ensemble.threshold,
        "neurons_removed": int(sum(s["hyperactive_removed"] for s in stats)),
        "n_places": int(data["reference"].shape[1]),
        "n_reference_traverses": int(data["reference"].shape[0]),
        "n_modules": ensemble.n_modules,
        "n_queries": {"calibration": int(len(cal)), "test": int(len(test))},
        "frames_dropped": data["dropped"],
        "timings": {
            "train_seconds": ensemble.seconds.get("train", 0.0),
            "record_seconds": ensemble.seconds.get("record", 0.0),
            "query_seconds": query_seconds,
            "queries_per_second": len(data["query"]) / query_seconds,
        },
    }
    write_json(out / "metrics.json", result)
    return result


# ------------------------------------------------------------------------------------------ CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML experiment config (see configs/nordland_ensemble.yaml)")
    parser.add_argument("--reference", action="append", metavar="DIR",
                        help="reference traverse folder (repeat for several aligned traverses)")
    parser.add_argument("--query", metavar="DIR", help="query traverse folder")
    parser.add_argument("--out", metavar="DIR", help="results folder (default: runs/place_recognition/<config name>)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override a config value, e.g. --set ensemble.epochs=20 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, parse_set(args.set))
    out = Path(args.out) if args.out else Path("runs") / "place_recognition" / Path(args.config).stem
    r = run_experiment(cfg, out, args.reference, args.query, progress=not args.no_progress, resume=args.resume)
    print(f"{r['n_places']} places, {r['n_modules']} modules, {r['n_queries']['test']} test queries "
          f"(+{r['n_queries']['calibration']} calibration); hyperactivity threshold {r['hyperactive_threshold']} "
          f"({r['neurons_removed']} neurons removed)")
    keys = [k for k in r["metrics"]["sad"]]
    print(f"{'method':24s}" + "".join(f"{k:>9s}" for k in keys))
    for name, m in r["metrics"].items():
        print(f"{name:24s}" + "".join(f"{m[k]:9.3f}" for k in keys))
    t = r["timings"]
    print(f"train {t['train_seconds']:.1f} s, record {t['record_seconds']:.1f} s, query {t['query_seconds']:.1f} s "
          f"({t['queries_per_second']:.1f} queries/s); results in {out}")
    return 0
