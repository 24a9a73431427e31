"""LIF throughput: spikelab against Norse, snnTorch and SpikingJelly, eager and compiled.

Run with ``make bench`` (installs snnTorch and SpikingJelly) or
``python benchmarks/lif_throughput.py [--quick] [--device cpu|cuda]``.

Measured in one process on the same inputs (time-major, T = 100, batch 16), at n = 1024 and
4096 neurons, as medians of ``--repeats`` rounds after warm-up (and after compilation); the
contenders are interleaved within each round so that machine noise hits them alike:

* ``model_fwd`` / ``model_fwd_bwd``: the Open Neuromorphic benchmark model, ``Linear(n, n)``
  then LIF, forward (no grad) and forward + backward of ``output.sum()``;
* ``linear_fwd_bwd``: the bare ``Linear(n, n)`` forward + backward, the matrix-product floor;
* ``lif_fwd``: the LIF alone on precomputed currents, no grad (also as neuron-steps per second);
* ``lif_fwd_bwd``: the LIF alone, forward + backward with the currents requiring grad;
* ``first_call_s``: the first call of each measurement, compilation included (torch.compile's
  on-disk cache is pointed at a fresh folder, so this is a cold compile, as a new user sees it).

A sample is the mean of as many back-to-back calls as fill about 20 ms (one call for slower
measurements), so that sub-millisecond kernels are not timed by thread wake-ups alone.

Every contender is set to the closest equivalent of Norse's default LIF (tau_mem = 10 ms,
dt = 1 ms, threshold 1, reset to 0); snnTorch's ``Leaky`` and SpikingJelly's ``LIFNode`` have
no synaptic current, so their spike fractions (reported) differ. spikelab must reproduce Norse's
spikes exactly; the benchmark checks it and records ``spikes_equal_norse``.

Writes ``benchmarks/results/lif_throughput.json`` (see ``docs`` in README.md for the fields).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

# A cold torch.compile cache for honest first-call times (set before torch is imported).
os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", tempfile.mkdtemp(prefix="lif_bench_inductor_"))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from spikelab.atomic import write_json  # noqa: E402

SAMPLE_S = 0.02  # target duration of one timing sample

RESULTS = Path(__file__).resolve().parent / "results" / "lif_throughput.json"
DT, TAU_MEM_INV = 1e-3, 100.0


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class Contender:
    """One framework's model (Linear then LIF) and bare LIF, as callables on (T, B, n) input."""

    def __init__(self, name: str, linear: nn.Linear, lif: Callable[[torch.Tensor], torch.Tensor]):
        self.name = name
        self.linear = linear
        self.lif = lif

    def model(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(self.linear(x))


def _spikelab(linear, compiled):
    from spikelab.neurons import LIF

    lif = LIF().to(linear.weight.device)
    return lambda x: lif(x)[0]


def _norse(linear, compiled):
    import norse.torch as norse

    lif = norse.LIF().to(linear.weight.device)
    fn = lambda x: lif(x)[0]  # noqa: E731
    return torch.compile(fn) if compiled else fn


def _snntorch(linear, compiled):
    import snntorch

    leaky = snntorch.Leaky(beta=1 - DT * TAU_MEM_INV, threshold=1.0, reset_mechanism="zero")

    def run(x):
        mem = torch.zeros_like(x[0])
        out = []
        for x_t in x:
            spk, mem = leaky(x_t, mem)
            out.append(spk)
        return torch.stack(out)

    return torch.compile(run) if compiled else run


def _spikingjelly(linear, compiled):
    from spikingjelly.activation_based import neuron

    node = neuron.LIFNode(tau=1.0 / (DT * TAU_MEM_INV), v_threshold=1.0, v_reset=0.0, step_mode="m")

    def run(x):
        node.reset()
        return node(x)

    return torch.compile(run) if compiled else run


BUILDERS = {
    "spikelab": (_spikelab, False),
    "norse_eager": (_norse, False),
    "norse_compiled": (_norse, True),
    "snntorch_eager": (_snntorch, False),
    "snntorch_compiled": (_snntorch, True),
    "spikingjelly_eager": (_spikingjelly, False),
    "spikingjelly_compiled": (_spikingjelly, True),
}


def _measures(c: Contender, x: torch.Tensor, currents: torch.Tensor, device: str) -> dict[str, Callable[[], None]]:
    def model_fwd():
        with torch.no_grad():
            c.model(x)

    def model_fwd_bwd():
        c.linear.zero_grad(set_to_none=True)
        c.model(x).sum().backward()

    def lif_fwd():
        with torch.no_grad():
            c.lif(currents)

    def lif_fwd_bwd():
        cur = currents.detach().requires_grad_()
        c.lif(cur).sum().backward()

    return {"model_fwd": model_fwd, "model_fwd_bwd": model_fwd_bwd, "lif_fwd": lif_fwd, "lif_fwd_bwd": lif_fwd_bwd}


def _timed(fn: Callable[[], None], device: str, number: int = 1) -> float:
    """Mean seconds per call of ``number`` back-to-back calls."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(number):
        fn()
    _sync(device)
    return (time.perf_counter() - start) / number


def run_case(n: int, T: int, batch: int, repeats: int, device: str, names: list[str]) -> dict:
    """Benchmark every contender in ``names`` at size ``n``; returns one result case."""
    # Fresh compiled graphs per size: without this, the peers' compiled functions exhaust
    # dynamo's recompile limit at the second size and silently run eagerly.
    torch._dynamo.reset()
    torch._dynamo.config.recompile_limit = 64
    torch.manual_seed(0)
    x = torch.rand(T, batch, n, device=device)
    base = nn.Linear(n, n).to(device)
    with torch.no_grad():
        currents = base(x) * 1.5  # LIF-alone input: about a third of the neurons fire
    contenders = []
    for name in names:
        builder, compiled = BUILDERS[name]
        linear = nn.Linear(n, n).to(device)
        linear.load_state_dict(base.state_dict())
        contenders.append(Contender(name, linear, builder(linear, compiled)))

    results: dict[str, dict] = {}
    for c in contenders:  # first calls (compilation) and warm-up, one contender at a time
        measures = _measures(c, x, currents, device)
        first = {k: _timed(fn, device) for k, fn in measures.items()}
        calls = {k: max(1, math.ceil(SAMPLE_S / _timed(fn, device))) for k, fn in measures.items()}  # warm-up too
        with torch.no_grad():
            spikes = c.lif(currents)
        results[c.name] = {"first_call_s": first, "spike_fraction": spikes.float().mean().item(), "_t": {k: [] for k in measures}, "_n": calls}
        print(f"  n={n} {c.name}: first calls {sum(first.values()):.1f} s, spike fraction {results[c.name]['spike_fraction']:.3f}", flush=True)

    floor_linear = nn.Linear(n, n).to(device)

    def linear_fwd_bwd():
        floor_linear.zero_grad(set_to_none=True)
        floor_linear(x).sum().backward()

    floor_calls = max(1, math.ceil(SAMPLE_S / _timed(linear_fwd_bwd, device)))
    floor_times = []
    for _ in range(repeats):  # interleaved rounds
        floor_times.append(_timed(linear_fwd_bwd, device, floor_calls))
        for c in contenders:
            for k, fn in _measures(c, x, currents, device).items():
                results[c.name]["_t"][k].append(_timed(fn, device, results[c.name]["_n"][k]))

    neuron_steps = T * batch * n
    for name, r in results.items():
        times = r.pop("_t")
        r["calls_per_sample"] = r.pop("_n")
        r.update({k: statistics.median(v) for k, v in times.items()})
        r["lif_neuron_steps_per_s"] = neuron_steps / r["lif_fwd"]
    case = {"n": n, "T": T, "batch": batch, "device": device, "repeats": repeats,
            "linear_fwd_bwd": statistics.median(floor_times), "contenders": results}

    if "spikelab" in results and "norse_eager" in results:
        from spikelab.neurons import LIF
        import norse.torch as norse

        with torch.no_grad():
            case["spikes_equal_norse"] = bool(torch.equal(LIF().to(device)(currents)[0], norse.LIF().to(device)(currents)[0]))
    if "spikelab" in results:
        s = results["spikelab"]
        peers = {k: v for k, v in results.items() if k != "spikelab"}
        summary = {"model_fwd_bwd_over_linear_floor": s["model_fwd_bwd"] / case["linear_fwd_bwd"]}
        if peers:
            summary["lif_speedup_vs_best_peer"] = s["lif_neuron_steps_per_s"] / max(p["lif_neuron_steps_per_s"] for p in peers.values())
            summary["lif_fwd_bwd_speedup_vs_best_peer"] = min(p["lif_fwd_bwd"] for p in peers.values()) / s["lif_fwd_bwd"]
            summary["model_fwd_bwd_speedup_vs_best_peer"] = min(p["model_fwd_bwd"] for p in peers.values()) / s["model_fwd_bwd"]
            summary["best_peer_lif_fwd"] = max(peers, key=lambda k: peers[k]["lif_neuron_steps_per_s"])
        if "norse_eager" in results:
            summary["lif_fwd_bwd_speedup_vs_norse_eager"] = results["norse_eager"]["lif_fwd_bwd"] / s["lif_fwd_bwd"]
        if device == "cuda":
            summary["lif_fwd_fraction_of_copy_bandwidth"] = _roofline_fraction(currents, s["lif_fwd"])
        case["spikelab_summary"] = summary
    return case


def _roofline_fraction(currents: torch.Tensor, lif_fwd_s: float) -> float:
    """Achieved bytes/s of the no-grad LIF (read input, write spikes) over a measured device copy."""
    dst = torch.empty_like(currents)
    dst.copy_(currents)
    times = [_timed(lambda: dst.copy_(currents), "cuda") for _ in range(20)]
    copy_bw = 2 * currents.numel() * currents.element_size() / statistics.median(times)
    lif_bw = 2 * currents.numel() * currents.element_size() / lif_fwd_s
    return lif_bw / copy_bw


def available(names: list[str]) -> list[str]:
    """Contenders whose framework imports; missing ones are reported and skipped."""
    ok = []
    for name in names:
        module = {"norse": "norse", "snntorch": "snntorch", "spikingjelly": "spikingjelly"}.get(name.split("_")[0])
        if module:
            try:
                __import__(module)
            except ImportError:
                print(f"skipping {name}: {module} is not installed (make bench installs it)", file=sys.stderr)
                continue
        ok.append(name)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only n = 1024, 3 repeats")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--contenders", nargs="+", default=list(BUILDERS), choices=list(BUILDERS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats = [1024], 3
    names = available(args.contenders)
    cases = []
    for n in args.sizes:
        print(f"n = {n}: {', '.join(names)}", flush=True)
        cases.append(run_case(n, T=100, batch=16, repeats=args.repeats, device=args.device, names=names))
        _print_case(cases[-1])
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "platform": platform.platform(),
            "command": "python benchmarks/lif_throughput.py" + (" --quick" if args.quick else "")}
    write_json(args.out, {"meta": meta, "cases": cases})
    print(f"wrote {args.out}")
    return 0


def _print_case(case: dict) -> None:
    print(f"\nn={case['n']} T={case['T']} B={case['batch']} {case['device']}: linear floor fwd+bwd {case['linear_fwd_bwd'] * 1e3:.1f} ms")
    print(f"{'contender':24s} {'model fwd':>10s} {'model f+b':>10s} {'LIF fwd':>9s} {'Gsteps/s':>9s} {'LIF f+b':>9s} {'first s':>8s} {'spikes':>7s}")
    for name, r in case["contenders"].items():
        print(f"{name:24s} {r['model_fwd'] * 1e3:9.1f}m {r['model_fwd_bwd'] * 1e3:9.1f}m {r['lif_fwd'] * 1e3:8.2f}m "
              f"{r['lif_neuron_steps_per_s'] / 1e9:9.2f} {r['lif_fwd_bwd'] * 1e3:8.2f}m {sum(r['first_call_s'].values()):8.1f} {r['spike_fraction']:7.3f}")
    for k, v in case.get("spikelab_summary", {}).items():
        print(f"  {k}: {v if isinstance(v, str) else round(v, 3)}")
    if "spikes_equal_norse" in case:
        print(f"  spikes_equal_norse: {case['spikes_equal_norse']}")


if __name__ == "__main__":
    sys.exit(main())
