"""``spikelab sweep``: a grid of configs x seeds, each run a Ray task, summarised with mean +- std.

Ray is the engine (a local cluster on one machine, or a real one given ``--address``); this
module only plans the grid, validates it before anything is launched, submits one task per
run with declared resources, shows a live view, and writes the summary.

Output folder layout (``--out``)::

    sweep.json                  the plan: config, task, grid, seeds, resources
    runs/<run_id>/              each run's own results folder (the task's usual output)
    runs/<run_id>/run.json      status ("ok" or "failed"), overrides, seed, metrics or error, seconds
    summary.csv, summary.json   one row per run, and per grid point n / mean / std of every metric
    summary_<metric>.png        mean +- std per grid point for the task's headline metrics

Re-launching the same command skips runs whose ``run.json`` says "ok" (resumable); failed
runs are retried. A run that raises, or whose worker process dies, is recorded with its error
and does not stop the others.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib
import inspect
import itertools
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spikelab.atomic import atomic_path, write_json
from spikelab.distributed import check_resources, connect, limit_threads
from spikelab.errors import SpikelabError

# task name -> (module with load_config/run_experiment, headline metrics for plots)
TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "continual": ("spikelab.tasks.continual", ("acc", "bwt")),
    "place-recognition": ("spikelab.tasks.place_recognition", ("r_at_1",)),
}


class SweepError(SpikelabError):
    """A sweep that cannot be launched (bad grid, cluster unreachable, unsatisfiable resources)."""


@dataclass(frozen=True)
class Run:
    """One point of the grid with one seed."""

    point: tuple[tuple[str, Any], ...]
    seed: int

    @property
    def overrides(self) -> dict[str, Any]:
        return {**dict(self.point), "seed": self.seed}

    @property
    def run_id(self) -> str:
        """Readable, filesystem-safe and unique: ``key=value__...__seed=N-<hash>``."""
        text = "__".join(f"{k}={v}" for k, v in self.point) + f"__seed={self.seed}"
        slug = re.sub(r"[^A-Za-z0-9_.=-]+", "-", text).strip("_")[:120]
        digest = hashlib.sha1(json.dumps(self.overrides, sort_keys=True, default=str).encode()).hexdigest()[:8]
        return f"{slug}-{digest}"


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["a.b=1,2", "c=x"]`` -> ``{"a.b": [1, 2], "c": ["x"]}``; values are parsed as YAML scalars."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SweepError(f"--set expects KEY=V1,V2,...; got {item!r}")
        parsed = [yaml.safe_load(v) for v in values.split(",") if v.strip() != ""]
        if not parsed:
            raise SweepError(f"--set {key}= has no values: the grid would be empty")
        if key in grid:
            raise SweepError(f"--set {key} given twice")
        grid[key] = parsed
    return grid


def parse_seeds(spec: str) -> list[int]:
    """``"0-4"`` -> [0..4]; ``"1,3,7"`` -> [1, 3, 7]; mixed forms allowed."""
    seeds: list[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)-(\d+)", part)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise SweepError(f"--seeds range {part} is empty")
            seeds += list(range(lo, hi + 1))
        elif part.isdigit():
            seeds.append(int(part))
        else:
            raise SweepError(f"--seeds expects forms like 0-4 or 0,2,5; got {spec!r}")
    if not seeds:
        raise SweepError("--seeds selects no seeds: the grid would be empty")
    return sorted(set(seeds))


def task_module(task: str):
    """The runner module of ``task`` (``load_config``, ``run_experiment``)."""
    if task not in TASKS:
        raise SweepError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    return importlib.import_module(TASKS[task][0])


def detect_task(config_path: Path) -> str:
    """The one task whose ``load_config`` accepts the file."""
    accepted, reasons = [], []
    for task in TASKS:
        try:
            task_module(task).load_config(config_path)
            accepted.append(task)
        except (ValueError, KeyError, TypeError) as exc:
            reasons.append(f"{task}: {exc}")
    if len(accepted) != 1:
        raise SweepError(f"cannot tell which task {config_path} is for; pass --task. ({'; '.join(reasons)})")
    return accepted[0]


def plan(config_path: Path, task: str, grid: dict[str, list[Any]], seeds: list[int]) -> list[Run]:
    """All runs of the grid, each validated by the task's config loader before any launch."""
    keys = list(grid)
    runs = [Run(tuple(zip(keys, values)), seed) for values in itertools.product(*grid.values()) for seed in seeds]
    if not runs:
        raise SweepError("the grid is empty: nothing to run")
    module = task_module(task)
    for run in runs:
        try:
            module.load_config(config_path, run.overrides)
        except (ValueError, KeyError, TypeError) as exc:
            raise SweepError(f"grid point {run.overrides} is invalid: {exc}") from exc
    return runs


def flatten_metrics(result: dict, prefix: str = "") -> dict[str, float]:
    """Numeric scalars of a (nested) result dict, keyed by dotted path; lists and text dropped."""
    out: dict[str, float] = {}
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten_metrics(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out


def execute_run(task: str, config_path: str, overrides: dict, run_dir: str, run_kwargs: dict, threads: int) -> dict:
    """Body of one Ray task: run the experiment, return its flattened metrics (raises on failure)."""
    limit_threads(threads)
    run_dir_path = Path(run_dir)
    run_dir_path.mkdir(parents=True, exist_ok=True)
    (run_dir_path / "worker.pid").write_text(str(os.getpid()))
    module = task_module(task)
    config = module.load_config(Path(config_path), overrides)
    accepted = inspect.signature(module.run_experiment).parameters
    kwargs = {k: v for k, v in run_kwargs.items() if k in accepted and v is not None}
    result = module.run_experiment(config, run_dir_path, progress=False, **kwargs)
    return flatten_metrics(result)


@dataclass
class SweepStatus:
    """Counts shown by the live view."""

    total: int
    skipped: int = 0
    done: int = 0
    failed: int = 0
    running: set = field(default_factory=set)

    def line(self) -> str:
        pending = self.total - self.skipped - self.done - self.failed - len(self.running)
        return (f"done {self.done + self.skipped}/{self.total} (skipped {self.skipped}) | running {len(self.running)} | "
                f"pending {pending} | failed {self.failed}")


def run_sweep(
    config_path: Path,
    grid: dict[str, list[Any]],
    seeds: list[int],
    out_dir: Path,
    task: str | None = None,
    address: str | None = None,
    cpus_per_run: float = 1,
    gpus_per_run: float = 0,
    num_cpus: int | None = None,
    run_kwargs: dict | None = None,
    progress: bool = True,
) -> dict:
    """Plan, validate, launch and summarise a sweep; returns the summary (also written to ``out_dir``)."""
    config_path = Path(config_path)
    if not config_path.is_file():
        raise SweepError(f"config file not found: {config_path}")
    task = task or detect_task(config_path)
    runs = plan(config_path, task, grid, seeds)
    connect(address, num_cpus)
    check_resources(cpus_per_run, gpus_per_run)

    import ray

    out_dir = Path(out_dir)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "sweep.json", {
        "config": str(config_path.resolve()), "task": task, "grid": grid, "seeds": seeds,
        "cpus_per_run": cpus_per_run, "gpus_per_run": gpus_per_run, "address": address,
    }, default=str)
    remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run, max_retries=0)(execute_run)
    status = SweepStatus(total=len(runs))
    records: dict[str, dict] = {}
    pending: dict[Any, tuple[Run, float]] = {}
    run_kwargs = {k: (str(v) if v is not None else None) for k, v in (run_kwargs or {}).items()}
    for run in runs:
        run_dir = out_dir / "runs" / run.run_id
        previous = _read_record(run_dir / "run.json")
        if previous and previous.get("status") == "ok":
            records[run.run_id] = previous
            status.skipped += 1
            continue
        ref = remote.remote(task, str(config_path.resolve()), run.overrides, str(run_dir), run_kwargs,
                            int(max(1, cpus_per_run)))
        pending[ref] = (run, time.time())

    view = _LiveView(status, progress)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        status.running = {r.run_id for r, _ in pending.values() if (out_dir / "runs" / r.run_id / "worker.pid").exists()}
        for ref in ready:
            run, started = pending.pop(ref)
            record = {"run_id": run.run_id, "overrides": run.overrides, "point": dict(run.point), "seed": run.seed}
            try:
                record.update(status="ok", metrics=ray.get(ref))
                status.done += 1
            except Exception as exc:  # a raising run or a dead worker: record it, keep going
                record.update(status="failed", error=f"{type(exc).__name__}: {_first_line(exc)}")
                status.failed += 1
            record["seconds"] = round(time.time() - started, 3)
            run_dir = out_dir / "runs" / run.run_id
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(run_dir / "run.json", record, default=str)
            records[run.run_id] = record
        view.update()
    view.close()
    return summarise(out_dir, [records[r.run_id] for r in runs], TASKS[task][1])


def _read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _first_line(exc: BaseException) -> str:
    """The most informative single line of an exception (Ray wraps the original error)."""
    cause = getattr(exc, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {str(cause).strip().splitlines()[-1] if str(cause).strip() else ''}"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _LiveView:
    """One terminal line, rewritten as runs start, finish or fail."""

    def __init__(self, status: SweepStatus, enabled: bool) -> None:
        from tqdm import tqdm

        self.status = status
        self.bar = tqdm(total=status.total, initial=status.skipped, desc="sweep", disable=not enabled, dynamic_ncols=True)

    def update(self) -> None:
        s = self.status
        self.bar.n = s.skipped + s.done + s.failed
        self.bar.set_postfix_str(s.line(), refresh=True)

    def close(self) -> None:
        self.update()
        self.bar.close()


def summarise(out_dir: Path, records: list[dict], headline: tuple[str, ...]) -> dict:
    """Write summary.csv/json (per run and per grid point mean +- std) and headline plots."""
    metrics = sorted({m for r in records if r.get("status") == "ok" for m in r["metrics"]})
    points: dict[str, dict] = {}
    for r in records:
        key = json.dumps(r["point"], sort_keys=True, default=str)
        points.setdefault(key, {"point": r["point"], "runs": []})["runs"].append(r)
    aggregated = []
    for entry in points.values():
        ok = [r for r in entry["runs"] if r.get("status") == "ok"]
        row = {"point": entry["point"], "n_ok": len(ok), "n_failed": len(entry["runs"]) - len(ok)}
        for m in metrics:
            values = [r["metrics"][m] for r in ok if m in r["metrics"]]
            if values:
                mean = sum(values) / len(values)
                std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
                row[m] = {"mean": mean, "std": std, "n": len(values)}
        aggregated.append(row)
    summary = {"runs": records, "points": aggregated, "metrics": metrics,
               "n_ok": sum(r.get("status") == "ok" for r in records),
               "n_failed": sum(r.get("status") == "failed" for r in records)}
    write_json(out_dir / "summary.json", summary, default=str)
    _write_csv(out_dir / "summary.csv", records, metrics)
    for m in headline:
        if m in metrics:
            _plot(out_dir / f"summary_{m}.png", aggregated, m)
    return summary


def _write_csv(path: Path, records: list[dict], metrics: list[str]) -> None:
    keys = sorted({k for r in records for k in r["point"]})
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run_id", *keys, "seed", "status", "seconds", *metrics, "error"])
        for r in records:
            w.writerow([r["run_id"], *(r["point"].get(k, "") for k in keys), r["seed"], r.get("status"),
                        r.get("seconds", ""), *(r.get("metrics", {}).get(m, "") for m in metrics), r.get("error", "")])


def _plot(path: Path, rows: list[dict], metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if metric in r]
    labels = [", ".join(f"{k}={v}" for k, v in r["point"].items()) or "base" for r in rows]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(rows) + 2), 3.5))
    ax.bar(range(len(rows)), [r[metric]["mean"] for r in rows], yerr=[r[metric]["std"] for r in rows], capsize=4)
    ax.set_xticks(range(len(rows)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (mean +- std over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="base YAML config of a continual or place-recognition run")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=V1,V2",
                        help="grid over a config key (dotted), repeatable")
    parser.add_argument("--seeds", default="0", help="seeds, e.g. 0-4 or 0,2,5 (default 0)")
    parser.add_argument("--task", choices=sorted(TASKS), help="task of the config (detected when omitted)")
    parser.add_argument("--address", help="Ray cluster address (default: start a local cluster)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local cluster (default: all)")
    parser.add_argument("--cpus-per-run", type=float, default=1, help="CPUs declared per run (default 1)")
    parser.add_argument("--gpus-per-run", type=float, default=0, help="GPUs declared per run (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/sweep"), help="results folder (default runs/sweep)")
    parser.add_argument("--data-root", type=Path, help="dataset root passed to continual runs")
    parser.add_argument("--reference", type=Path, help="reference traverse for place-recognition runs")
    parser.add_argument("--query", type=Path, help="query traverse for place-recognition runs")
    parser.add_argument("--no-progress", action="store_true", help="no live view")


def run(args: argparse.Namespace) -> int:
    summary = run_sweep(
        args.config, parse_grid(args.sets), parse_seeds(args.seeds), args.out, task=args.task,
        address=args.address, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
        num_cpus=args.num_cpus, progress=not args.no_progress,
        run_kwargs={"data_root": args.data_root, "reference": args.reference, "query": args.query},
    )
    print(f"{summary['n_ok']} runs ok, {summary['n_failed']} failed; summary in {args.out / 'summary.csv'}")
    for r in summary["runs"]:
        if r.get("status") == "failed":
            print(f"  failed {r['run_id']}: {r['error']}")
    return 0 if summary["n_failed"] == 0 else 1
