"""Render the README's benchmark tables from ``benchmarks/results/*.json``.

    python benchmarks/report.py            # print the tables (markdown)
    python benchmarks/report.py --readme   # rewrite the block between the BENCH markers in README.md

Every number in the README table comes from a committed results file; a missing file is listed
as not run rather than silently left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
START, END = "<!-- BENCH:START -->", "<!-- BENCH:END -->"


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.is_file() else None


def lif_table(d: dict) -> list[str]:
    rows = [
        "**LIF throughput** (`make bench`; CPU, 2 threads, batch 16, T = 100; medians of "
        f"{d['cases'][0]['repeats']} interleaved rounds after warm-up and compilation, each sample at least 20 ms of back-to-back calls; "
        "a cold torch.compile cache). Times in ms; "
        "`Gsteps/s` = LIF alone without grad; `first s` = the first call of each of the four measurements, compilation included, summed.",
        "",
        "| n | contender | model fwd | model fwd+bwd | LIF fwd | Gsteps/s | LIF fwd+bwd | first s | spike fraction |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in d["cases"]:
        rows.append(f"| {case['n']} | *Linear alone (floor)* | | {1e3 * case['linear_fwd_bwd']:.1f} | | | | | |")
        for name, c in case["contenders"].items():
            label = f"**{name}**" if name == "spikelab" else name
            rows.append(
                f"| {case['n']} | {label} | {1e3 * c['model_fwd']:.1f} | {1e3 * c['model_fwd_bwd']:.1f} | "
                f"{1e3 * c['lif_fwd']:.2f} | {c['lif_neuron_steps_per_s'] / 1e9:.2f} | {1e3 * c['lif_fwd_bwd']:.2f} | "
                f"{sum(c['first_call_s'].values()):.1f} | {c['spike_fraction']:.3f} |"
            )
    rows += ["", "| n | LIF no-grad vs best peer | LIF fwd+bwd vs Norse eager | LIF fwd+bwd vs best peer "
             "| model fwd+bwd / Linear floor | model fwd+bwd vs best peer | spikes equal Norse |",
             "|---:|---:|---:|---:|---:|---:|---|"]
    for case in d["cases"]:
        s = case["spikelab_summary"]
        rows.append(
            f"| {case['n']} | {s['lif_speedup_vs_best_peer']:.2f}x | {s['lif_fwd_bwd_speedup_vs_norse_eager']:.1f}x | "
            f"{s['lif_fwd_bwd_speedup_vs_best_peer']:.2f}x | {s['model_fwd_bwd_over_linear_floor']:.3f} | "
            f"{s['model_fwd_bwd_speedup_vs_best_peer']:.2f}x | {case['spikes_equal_norse']} |"
        )
    return rows


def continual_table(d: dict) -> list[str]:
    rows = [
        "**Continual learning, 10-task permuted MNIST** (`make bench-continual`; the HLOP paper's "
        "protocol: spiking MLP 784-800-800-10, shared head, T = 20, 1 epoch per task, SGD lr 0.1; "
        f"seed 0, 2-core CPU). Paper: HLOP ACC {d['paper']['hlop']['acc']} / BWT {d['paper']['hlop']['bwt']}.",
        "",
        "| method | ACC % | BWT % | CPU s |",
        "|---|---:|---:|---:|",
    ]
    order = [m for m in ("hlop", "gpm", "ewc", "finetune", "multitask") if m in d["methods"]]
    for m in order + [m for m in d["methods"] if m not in order]:
        r = d["methods"][m]
        rows.append(f"| {m} | {r['acc']:.2f} | {r['bwt']:.2f} | {r['cpu_seconds']:.0f} |")
    return rows


def vpr_table(d: dict) -> list[str]:
    rows = [
        "**Place recognition, Nordland 64x32** (`make bench-vpr`; summer reference, winter query, "
        "low-texture frames dropped, 25 places per module, 20 % of queries calibrate removal).",
        "",
        "| places | method | R@1 | R@5 | AUC | train s | queries/s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for size, a in d["accuracy"].items():
        for key, label in (("ensemble", "ensemble + removal"), ("ensemble_no_removal", "ensemble, no removal"), ("sad", "SAD baseline")):
            m = a[key]
            timing = (f"{a['train_seconds']:.0f} | {a['queries_per_second']:.1f}") if key == "ensemble" else " | "
            rows.append(f"| {size} | {label} | {m['R@1']:.3f} | {m['R@5']:.3f} | {m['AUC']:.3f} | {timing} |")
    s = d["speed"]["speedup_vs_brian2"]
    rows += ["", f"Training speed vs Brian2 (Cython) per module-presentation: {s['one_module']:.0f}x for one "
             f"module, {s['ensemble_batched']:.0f}x for the batched ensemble of {d['speed']['ensemble_modules']} modules."]
    return rows


def loihi_table(d: dict) -> list[str]:
    return [
        "**Loihi 2 export** (`make bench-loihi`; " + d["model"].split(" (")[0] + f", T = {d['T']}).",
        "",
        "| float acc % | fixed-point acc % (emulator) | drop (points) | Lava acc % (subset) | emulator = Lava | same-step spikes | emulator steps/s | Lava steps/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {100 * d['float_accuracy']:.2f} | {100 * d['emulator_accuracy']:.2f} | {d['accuracy_drop_points']:.2f} | "
        f"{100 * d['lava_accuracy']:.1f} ({d['lava_samples']}) | {100 * d['emulator_vs_lava_match_rate']:.0f} % | "
        f"{100 * d['same_step_fraction']:.1f} % | {d['emulator_steps_per_second_batch1']:.0f} | {d['lava_steps_per_second']:.0f} |",
    ]


def sweep_table(d: dict) -> list[str]:
    med = d["median_seconds"]
    return [
        "**Sweep scaling on Ray** (`make bench-sweep`; "
        f"{d['runs_per_sweep']} identical small runs, 1 vs 2 workers on 2 cores): "
        f"{med['1']:.1f} s vs {med['2']:.1f} s, **{d['speedup_2_vs_1']:.2f}x**.",
    ]


SECTIONS = [
    ("lif_throughput.json", lif_table),
    ("continual_pmnist.json", continual_table),
    ("place_recognition.json", vpr_table),
    ("loihi_export.json", loihi_table),
    ("sweep_scaling.json", sweep_table),
]


def render() -> str:
    """All tables as markdown, one block per results file."""
    blocks = []
    for name, table in SECTIONS:
        data = _load(name)
        blocks.append("\n".join(table(data)) if data else f"*{name}: not run yet.*")
    return "\n\n".join(blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the benchmark tables from benchmarks/results/*.json.")
    parser.add_argument("--readme", action="store_true", help="rewrite the BENCH block of README.md")
    args = parser.parse_args(argv)
    text = render()
    if not args.readme:
        print(text)
        return 0
    readme = REPO / "README.md"
    s = readme.read_text()
    if START not in s or END not in s:
        print(f"error: README.md has no {START} ... {END} block", file=sys.stderr)
        return 2
    head, rest = s.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    print("updated README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
