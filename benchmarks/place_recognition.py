"""Place-recognition benchmark: accuracy on Nordland and training speed against Brian2.

Accuracy: ``configs/nordland_ensemble.yaml`` (summer reference, winter query, exact match,
frames with pixel std < 5 in either season dropped) on the first 100 and the first 500 places,
25 places per module: R@1, R@5, AUC, P@100%R of the ensemble with and without hyperactive-neuron
removal and of the SAD baseline on the test queries (the first 20 % of the queries calibrate the
removal threshold), SAD on all queries (the published protocol numbers), training, recording
and query seconds, and query throughput.

Speed: the same presentations of real Nordland images (training mode: STDP, adaptive threshold,
normalisation) to one module in spikelab, to the whole 500-place ensemble batched in
spikelab, and to the reference network in Brian2 (Cython code generation, event-driven
synapses, same equations and dt). Reported per module-presentation, medians of repeats.

    python benchmarks/place_recognition.py              # full run (about an hour on 2 cores)
    python benchmarks/place_recognition.py --quick      # smoke run: 50 places, 3 epochs
Writes benchmarks/results/place_recognition.json (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from spikelab.atomic import write_json

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "datasets" / "nordland_64x32"


def accuracy(cfg_path: Path, sizes: list[int], overrides: dict, runs: Path, progress: bool) -> dict:
    from spikelab.tasks.place_recognition import load_config, run_experiment

    out = {}
    for n in sizes:
        cfg = load_config(cfg_path, {"data.reference": str(DATA / "summer"), "data.query": str(DATA / "winter"),
                                     "data.first": n, **overrides})
        r = run_experiment(cfg, runs / f"places_{n}", progress=progress)
        out[str(n)] = {
            **r["metrics"], "hyperactive_threshold": r["hyperactive_threshold"],
            "neurons_removed": r["neurons_removed"], "n_modules": r["n_modules"], "n_queries": r["n_queries"],
            **r["timings"],
        }
        m = r["metrics"]
        print(f"{n} places: R@1 ensemble {m['ensemble']['R@1']:.3f}, no removal {m['ensemble_no_removal']['R@1']:.3f}, "
              f"SAD {m['sad']['R@1']:.3f} (all queries {m['sad_all_queries']['R@1']:.3f}); "
              f"train {r['timings']['train_seconds']:.0f} s, {r['timings']['queries_per_second']:.1f} queries/s",
              flush=True)
    return out


def _images(n: int) -> np.ndarray:
    """The first ``n`` high-contrast summer images, preprocessed (n, 784)."""
    from spikelab.data.traverse import contrast_mask, load_traverse

    summer, winter = load_traverse(DATA / "summer"), load_traverse(DATA / "winter")
    idx = np.nonzero(contrast_mask(summer.raw, 5) & contrast_mask(winter.raw, 5))[0][:n]
    return summer.images[idx].reshape(n, -1)


def _spikelab_round(p, rates: np.ndarray, n_modules: int, presentations: int) -> float:
    """Wall seconds per module-presentation of ``n_modules`` fresh modules trained together."""
    from spikelab.ensembles.network import DiehlCookBatch

    order = np.stack([np.arange(presentations) % len(rates)] * n_modules)
    batch = DiehlCookBatch.initialise(p, 0, np.arange(n_modules), rates.shape[1])
    t0 = time.perf_counter()
    batch.train(rates, order, 1)
    return (time.perf_counter() - t0) / (n_modules * presentations)


def _brian2_module(p, n_input: int):
    """The reference network (Cython target), built and run through its initial rest; build seconds."""
    import brian2 as b2

    from spikelab.ensembles.brian2_reference import build_network
    from spikelab.ensembles.network import DiehlCookBatch

    init = DiehlCookBatch.initialise(p, 0, [0], n_input)
    net = build_network(p, init.w[0], init.delays[0], "poisson", learn=True, target="cython")
    t0 = time.perf_counter()
    net["net"].run(p.t_initial_rest * b2.ms)  # compiles every code object (cached on later runs)
    return net, time.perf_counter() - t0


def _brian2_round(p, net, rates: np.ndarray, presentations: int, start: int) -> float:
    """Wall seconds per presentation, reference-style: normalise, present, rest."""
    import brian2 as b2

    from spikelab.ensembles.brian2_reference import normalise

    t0 = time.perf_counter()
    for k in range(start, start + presentations):
        normalise(net["synapses"], (rates.shape[1], p.n_neurons), p.norm_total)
        net["input"].rates = rates[k % len(rates)] * b2.Hz
        net["net"].run(p.t_present * b2.ms)
        net["input"].rates = 0 * b2.Hz
        net["net"].run(p.t_rest * b2.ms)
    return (time.perf_counter() - t0) / presentations


def speed(cfg_path: Path, overrides: dict, presentations: int, brian2_presentations: int, ensemble_modules: int,
          rounds: int = 5) -> dict:
    """Interleaved rounds (spikelab one module, spikelab batched, Brian2) so that machine load hits all three."""
    from spikelab.tasks.place_recognition import ensemble_config, load_config

    p = ensemble_config(load_config(cfg_path, overrides)).network
    rates = _images(25) * p.f_max
    _spikelab_round(p, rates, 1, 1)  # compile / load the kernel
    net, build = _brian2_module(p, rates.shape[1])
    one, batched, brian = [], [], []
    for r in range(rounds):
        one.append(_spikelab_round(p, rates, 1, presentations))
        batched.append(_spikelab_round(p, rates, ensemble_modules, presentations))
        brian.append(_brian2_round(p, net, rates, brian2_presentations, r * brian2_presentations))
        print(f"  round {r}: Brian2 {brian[-1]:.3f} s, spikelab {one[-1] * 1e3:.1f} ms (one module), "
              f"{batched[-1] * 1e3:.1f} ms (per module, {ensemble_modules} batched) per presentation", flush=True)
    one, batched, b2_s = statistics.median(one), statistics.median(batched), statistics.median(brian)
    out = {
        "load_average_1min_after": os.getloadavg()[0],  # other jobs on the machine slow both sides
        "presentations": presentations, "brian2_presentations_per_round": brian2_presentations, "rounds": rounds,
        "dt_ms": p.dt, "n_neurons": p.n_neurons, "ensemble_modules": ensemble_modules,
        "spikelab_one_module_s_per_presentation": one,
        "spikelab_batched_s_per_module_presentation": batched,
        "brian2_cython_s_per_presentation": b2_s, "brian2_build_seconds": build,
        "speedup_vs_brian2": {"one_module": b2_s / one, "ensemble_batched": b2_s / batched},
    }
    print(f"speed: Brian2 {b2_s:.3f} s, spikelab {one * 1e3:.1f} ms (one module), {batched * 1e3:.1f} ms "
          f"(per module, {ensemble_modules} batched) per presentation: speedup {b2_s / one:.0f}x / {b2_s / batched:.0f}x",
          flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "nordland_ensemble.yaml"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--presentations", type=int, default=10, help="presentations per timed spikelab round")
    parser.add_argument("--brian2-presentations", type=int, default=3, help="presentations per timed Brian2 round")
    parser.add_argument("--quick", action="store_true", help="50 places, 3 epochs, few presentations")
    parser.add_argument("--only", choices=("accuracy", "speed"),
                        help="run one part and keep the other part of an existing results file")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "place_recognition.json"))
    parser.add_argument("--runs", default=str(REPO / "runs" / "bench_place_recognition"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    import yaml

    overrides = {k: yaml.safe_load(v) for k, _, v in (s.partition("=") for s in args.set)}
    if args.quick:
        args.sizes, args.presentations, args.brian2_presentations = [50], 4, 2
        overrides.setdefault("ensemble.epochs", 3)
    from spikelab.info import collect

    result = {
        "command": "python benchmarks/place_recognition.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": str(Path(args.config).relative_to(REPO)) if Path(args.config).is_relative_to(REPO) else args.config,
        "overrides": overrides,
        "protocol": "Nordland 64x32, summer reference, winter query, exact match; frames with grayscale "
                    "std < 5 in either season dropped; first N places; 25 places per module; metrics on the "
                    "test queries (first 20 % of the queries calibrate the hyperactivity threshold)",
        "machine": {k: v for k, v in collect().items() if k in ("python", "platform", "torch", "numpy", "numba", "brian2")},
        "cpu_count": os.cpu_count(),
    }
    out = Path(args.out)
    previous = json.loads(out.read_text()) if args.only and out.exists() else {}
    t0 = time.perf_counter()
    if args.only == "speed":
        result["accuracy"] = previous["accuracy"]
    else:
        result["accuracy"] = accuracy(Path(args.config), args.sizes, overrides, Path(args.runs), not args.no_progress)
    if args.only == "accuracy":
        result["speed"] = previous.get("speed")
    else:
        modules = -(-max(args.sizes) // 25)
        result["speed"] = speed(Path(args.config), overrides, args.presentations, args.brian2_presentations, modules)
    if result["speed"]:
        biggest = result["accuracy"][str(max(int(k) for k in result["accuracy"]))]
        result["speed"]["queries_per_second_whole_ensemble"] = biggest["queries_per_second"]
    result["benchmark_seconds"] = time.perf_counter() - t0
    write_json(out, result)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
