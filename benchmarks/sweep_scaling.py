"""Sweep throughput on 1 vs 2 Ray workers: the same grid of identical small runs, twice.

Run with ``make bench-sweep`` or ``python benchmarks/sweep_scaling.py [--runs 8] [--repeats 3]``.
Each run is a small continual-learning experiment on permuted 8x8 digits (one CPU, one thread,
about 3 s); the sweep runs them on a local Ray cluster of 1 CPU, then of 2 CPUs, and reports
runs per second and the ratio (target on this 2-core machine: >= 1.6x). Cluster start-up and
each worker's first import of the library are excluded (one warm-up task per worker). The two
settings alternate for ``--repeats`` rounds; medians are reported. Writes ``benchmarks/results/sweep_scaling.json``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

from spikelab.atomic import write_json

RESULTS = Path(__file__).resolve().parent / "results" / "sweep_scaling.json"
RUN = {
    "name": "sweep_scaling", "seed": 0,
    "scenario": {"name": "permuted_digits", "n_tasks": 2, "train_per_task": 1200, "test_per_task": 300},
    "model": {"hidden": [64], "readout": "spikes", "readout_scale": 10.0, "init_gain": 3.0},
    "encoding": {"name": "poisson", "T": 20, "f_max": 500.0},
    "training": {"mode": "bptt", "epochs": 20, "batch_size": 32, "lr": 0.05, "momentum": 0.9},
    "method": {"name": "finetune"},
    "evaluation": {"fwt": False},
}


def _warm_up() -> None:
    import spikelab.tasks.continual  # noqa: F401  (torch, numba, the runner)

    time.sleep(1.0)  # hold the CPU so that the next warm-up task starts another worker


def sweep_seconds(workers: int, runs: int, config: Path, out: Path) -> float:
    """Wall seconds of a sweep of ``runs`` seeds on a fresh local cluster of ``workers`` CPUs."""
    import ray

    from spikelab.distributed import connect
    from spikelab.tasks.sweep import run_sweep

    connect(None, num_cpus=workers)
    try:
        # Start every worker process and import the library there first: a sweep of real runs
        # (minutes each) pays this once per worker; the measurement is the sweep's throughput.
        warm_up = ray.remote(num_cpus=1)(_warm_up)
        ray.get([warm_up.remote() for _ in range(workers)])
        start = time.perf_counter()
        summary = run_sweep(config, {}, list(range(runs)), out, progress=False)
        seconds = time.perf_counter() - start
    finally:
        ray.shutdown()
    if summary["n_failed"]:
        raise RuntimeError(f"{summary['n_failed']} runs failed: {[r.get('error') for r in summary['runs']]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8, help="identical runs per sweep (default 8)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of (1 worker, 2 workers) (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    times: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "run.yaml"
        config.write_text(yaml.safe_dump(RUN))
        for r in range(args.repeats):
            for workers in (1, 2):
                seconds = sweep_seconds(workers, args.runs, config, Path(tmp) / f"sweep_{r}_{workers}")
                times[workers].append(seconds)
                print(f"round {r + 1}: {workers} worker(s): {args.runs} runs in {seconds:.1f} s", flush=True)
    med = {w: statistics.median(t) for w, t in times.items()}
    result = {
        "runs_per_sweep": args.runs,
        "seconds": {str(w): t for w, t in times.items()},
        "median_seconds": {str(w): s for w, s in med.items()},
        "runs_per_second": {str(w): args.runs / s for w, s in med.items()},
        "speedup_2_vs_1": med[1] / med[2],
        "meta": {"platform": platform.platform(), "command": "python benchmarks/sweep_scaling.py"},
    }
    print(f"speedup 2 vs 1 workers: {result['speedup_2_vs_1']:.2f}x")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
