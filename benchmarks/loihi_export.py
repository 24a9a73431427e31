"""Benchmark: export an MNIST spiking MLP to Loihi 2 fixed point and compare float, emulator and Lava.

Model: the permuted-MNIST network of the continual benchmark
(``benchmarks/results/continual_pmnist_hlop.pt``) if it exists and loads, else a same-shaped
MLP (784-800-800-10, LIF, T=20) trained here on MNIST with surrogate gradients (cached in
``benchmarks/results/loihi_mlp_mnist.pt``; ``--retrain`` trains it again).

Measured on the MNIST test set with Poisson input (seeded): float accuracy, Loihi fixed-point
accuracy (bit-accurate emulator), the fraction of spikes in the same step float vs fixed point,
Lava accuracy and the bit-exact match rate emulator vs Lava on a subset, and emulator and Lava
simulation speed (median of repeats). Writes ``benchmarks/results/loihi_export.json``.

    python benchmarks/loihi_export.py [--data-root ../shared/datasets/mnist] [--lava-samples 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from spikelab.atomic import atomic_path, write_json
from spikelab.data.mnist import load_mnist
from spikelab.encoding import PoissonEncoder
from spikelab.hardware import compare, emulator
from spikelab.hardware.deploy import load_model
from spikelab.hardware.extract import extract, stage_spikes
from spikelab.hardware.lava_env import LavaUnavailable, run_lava
from spikelab.hardware.quantize import quantization_report, quantize
from spikelab.layers import SequentialState, SpikingLinear

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
CONTINUAL_MODEL = RESULTS / "continual_pmnist_hlop.pt"
CACHED_MODEL = RESULTS / "loihi_mlp_mnist.pt"


def train_mlp(x_train: torch.Tensor, y_train: torch.Tensor, epochs: int, T: int, f_max: float, seed: int) -> nn.Module:
    """784-800-800-10 LIF MLP trained with surrogate gradients on spike counts (Adam)."""
    torch.manual_seed(seed)
    model = SequentialState(SpikingLinear(784, 800), SpikingLinear(800, 800), SpikingLinear(800, 10))
    encoder = PoissonEncoder(T, f_max=f_max)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        order = torch.randperm(len(x_train), generator=gen)
        bar = tqdm(range(0, len(order), 128), desc=f"training epoch {epoch + 1}/{epochs}", unit="batch")
        for b in bar:
            idx = order[b : b + 128]
            out, _ = model(encoder(x_train[idx], generator=gen))
            loss = nn.functional.cross_entropy(out.sum(0) * 0.5, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


def get_model(args, x_train, y_train) -> tuple[nn.Module, str]:
    """The model to export and a description of where it came from (and why, for a fallback)."""
    why = f"{CONTINUAL_MODEL.name} not found"
    if CONTINUAL_MODEL.is_file() and not args.retrain:
        saved = torch.load(CONTINUAL_MODEL, map_location="cpu", weights_only=False)
        model_cfg = saved.get("config", {}).get("model", {}) if isinstance(saved, dict) else {}
        encoding = saved.get("config", {}).get("encoding", {}).get("name") if isinstance(saved, dict) else None
        if model_cfg.get("readout") == "linear" or encoding == "direct":
            # The paper's HLOP network reads analog pixels and sums a non-spiking readout layer:
            # neither is a spiking layer that Loihi's LIF processes (or the NIR/Lava export) express.
            why = (f"{CONTINUAL_MODEL.name} is the HLOP paper's network with analog (direct) input and a "
                   "non-spiking linear readout, which the Loihi export (spike input, LIF layers) cannot express")
        else:
            try:
                model, _ = load_model(CONTINUAL_MODEL, None)
                return model, f"continual benchmark model {CONTINUAL_MODEL.name}"
            except (ValueError, FileNotFoundError) as exc:
                why = f"{CONTINUAL_MODEL.name} is not usable ({exc})"
        print(f"note: {why}; using the same-shaped MLP trained on MNIST", file=sys.stderr)
    if CACHED_MODEL.is_file() and not args.retrain:
        model = torch.load(CACHED_MODEL, weights_only=False).eval()
        return model, f"same-shaped MLP trained on MNIST, cached in {CACHED_MODEL.name} ({why})"
    model = train_mlp(x_train, y_train, args.epochs, args.steps, args.f_max, args.seed)
    with atomic_path(CACHED_MODEL) as tmp:
        torch.save(model, tmp)
    return model, f"MLP 784-800-800-10 trained here ({args.epochs} epoch(s)), cached in {CACHED_MODEL.name} ({why})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "datasets" / "mnist")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs of the fallback MLP (default 1)")
    parser.add_argument("--steps", type=int, default=20, help="time steps T (default 20)")
    parser.add_argument("--f-max", type=float, default=500.0, help="Poisson rate of a white pixel in Hz (default 500)")
    parser.add_argument("--eval-samples", type=int, default=10000, help="test samples for float and emulator (default all)")
    parser.add_argument("--lava-samples", type=int, default=200, help="test samples run in Lava (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="timing repeats (median) (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retrain", action="store_true", help="train the fallback MLP even if a model file exists")
    parser.add_argument("--output", type=Path, default=RESULTS / "loihi_export.json")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = load_mnist(args.data_root)
    x_train = x_train.reshape(len(x_train), -1).float() / 255.0
    x_test = x_test.reshape(len(x_test), -1).float() / 255.0
    RESULTS.mkdir(parents=True, exist_ok=True)
    model, source = get_model(args, x_train, y_train)
    net = quantize(extract(model))
    n_eval = min(args.eval_samples, len(x_test))
    encoder = PoissonEncoder(args.steps, f_max=args.f_max)
    gen = torch.Generator().manual_seed(args.seed + 1)

    correct_float = correct_fixed = 0
    both = count_float = count_fixed = 0
    wraps = np.zeros(len(net.stages), int)
    sats = np.zeros(len(net.stages), int)
    lava_x = lava_emu = None
    for b in tqdm(range(0, n_eval, 1000), desc="float vs emulator", unit="batch"):
        xb = encoder(x_test[b : b + 1000], generator=gen)
        yb = y_test[b : b + 1000].numpy()
        fl = stage_spikes(model, net, xb)
        em = emulator.run(net, xb.numpy())
        correct_float += int((compare.predictions(fl[-1]) == yb).sum())
        correct_fixed += int((compare.predictions(em.output) == yb).sum())
        for f, q in zip(fl, em.spikes):
            f, q = f.astype(bool), q.astype(bool)
            both += int((f & q).sum())
            count_float += int(f.sum())
            count_fixed += int(q.sum())
        wraps += em.u_wraps
        sats += em.v_saturations
        if lava_x is None:
            lava_x = xb[:, : args.lava_samples].numpy().astype(np.uint8)
            lava_emu = [s[:, : args.lava_samples] for s in em.spikes]
            lava_y = yb[: args.lava_samples]

    # speed: emulator at batch 1 (Lava's workload) and at batch 1000, median of repeats
    one = lava_x[:, :1]
    emu_b1 = statistics.median(emulator.run(net, one).steps_per_second for _ in range(args.repeats))
    big = encoder(x_test[:1000], generator=gen).numpy()
    emu_b1000 = statistics.median(emulator.run(net, big).steps_per_second for _ in range(args.repeats))

    result = {
        "model": source, "architecture": [s.synapse.n_in for s in net.stages[:1]] + [s.synapse.n_out for s in net.stages],
        "T": args.steps, "f_max_hz": args.f_max, "seed": args.seed, "eval_samples": n_eval,
        "float_accuracy": correct_float / n_eval, "emulator_accuracy": correct_fixed / n_eval,
        "accuracy_drop_points": 100 * (correct_float - correct_fixed) / n_eval,
        "same_step_fraction": 2 * both / (count_float + count_fixed) if count_float + count_fixed else 1.0,
        "spikes_float": count_float, "spikes_fixed": count_fixed,
        "u_wraps": wraps.tolist(), "v_saturations": sats.tolist(),
        "quantization": quantization_report(net),
        "emulator_steps_per_second_batch1": emu_b1, "emulator_sample_steps_per_second_batch1000": 1000 * emu_b1000,
        "lava_samples": int(lava_x.shape[1]),
    }
    try:
        runs = [run_lava(net, lava_x, create=True) for _ in range(max(1, min(args.repeats, 2)))]
        lava = runs[0]
        result.update(
            lava_accuracy=compare.accuracy(lava.spikes[-1], lava_y),
            emulator_accuracy_on_lava_subset=compare.accuracy(lava_emu[-1], lava_y),
            emulator_vs_lava_match_rate=compare.pooled(lava.spikes, lava_emu, compare.match_rate),
            emulator_vs_lava_identical=all(np.array_equal(a, b) for a, b in zip(lava.spikes, lava_emu)),
            lava_steps_per_second=statistics.median(r.info["steps_per_second"] for r in runs),
            lava_run_config=lava.info["run_config"], lava_protocol=lava.info["protocol"],
            lava_version=lava.info["lava_version"],
        )
        result["emulator_vs_lava_speedup_batch1"] = emu_b1 / result["lava_steps_per_second"]
    except LavaUnavailable as exc:
        result["lava_unavailable"] = str(exc)
        print(f"Lava not run: {exc}", file=sys.stderr)
    result.update(
        command="python benchmarks/loihi_export.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        machine={"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                 "torch_threads": torch.get_num_threads()},
        date=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    write_json(args.output, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("quantization", "machine")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
