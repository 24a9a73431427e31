"""``spikelab demo``: the main job on built-in defaults (no downloads), in three stages.

1. Simulate: train a small spiking network (64-128-10, LIF, surrogate gradients) on
   scikit-learn's bundled 8x8 digits with Poisson input; report accuracy and firing rates.
2. Learn continually: a sequence of permuted-digit tasks with HLOP and with fine-tuning;
   print ACC and BWT of both (:func:`spikelab.tasks.continual.demo_stage`).
3. Deploy: export the HLOP network to Loihi 2 fixed point; print float vs fixed-point accuracy
   and the spike agreement with Lava when its environment exists
   (:func:`spikelab.hardware.demo.demo_stage`).

The numbers are written to ``<out>/demo.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn


def digits_tensors(seed: int = 0):
    """scikit-learn's 8x8 digits as tensors in [0, 1], split 80/20 with a fixed seed."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    n_train = int(0.8 * len(x))
    return (x[:n_train], y[:n_train]), (x[n_train:], y[n_train:])


def simulate_stage(epochs: int = 10, T: int = 20, seed: int = 0, init_gain: float = 3.0) -> dict:
    """Train a 64-128-10 spiking MLP on digits; return accuracy, rates and timing.

    The synaptic weights start at ``init_gain`` times PyTorch's default scale so that the
    Poisson input drives every layer from the first step; the readout is the spike count.
    """
    from spikelab.encoding import PoissonEncoder
    from spikelab.layers import SequentialState, SpikingLinear
    from spikelab.monitor import Monitor

    torch.manual_seed(seed)
    (x_train, y_train), (x_test, y_test) = digits_tensors(seed)
    model = SequentialState(SpikingLinear(64, 128), SpikingLinear(128, 10))
    with torch.no_grad():
        for layer in model:
            layer.synapse.weight.mul_(init_gain)
    encoder = PoissonEncoder(T, f_max=500.0)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x_train), generator=gen)
        for b in range(0, len(order), 64):
            idx = order[b : b + 64]
            out, _ = model(encoder(x_train[idx], generator=gen))
            loss = loss_fn(out.sum(0), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - start
    with torch.no_grad(), Monitor(model) as mon:
        out, _ = model(encoder(x_test, generator=gen))
    acc = (out.sum(0).argmax(1) == y_test).float().mean().item()
    rates = {name: mon[name]["z"].mean().item() / model[0].neuron.dt for name in mon.layers()}
    return {"accuracy": acc, "train_seconds": train_s, "rates_hz": rates, "T": T, "epochs": epochs}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder for demo.json (default runs/demo)")


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {args.seed}")
    from spikelab.hardware.demo import demo_stage as deploy_stage
    from spikelab.tasks.continual import demo_stage as continual_stage

    print("spikelab demo 1/3: simulate -- a spiking MLP (64-128-10, LIF) on the bundled 8x8 digits")
    sim = simulate_stage(seed=args.seed)
    print(
        f"  trained {sim['epochs']} epochs, T={sim['T']} steps, in {sim['train_seconds']:.1f} s; "
        f"test accuracy {100 * sim['accuracy']:.1f} %"
    )
    for name, hz in sim["rates_hz"].items():
        print(f"  mean firing rate of layer {name}: {hz:.1f} Hz")
    print("spikelab demo 2/3: learn continually -- HLOP vs fine-tuning on permuted digits")
    cont = continual_stage(seed=args.seed)
    print("spikelab demo 3/3: deploy -- the HLOP network on Loihi 2 fixed point (emulator and Lava)")
    dep = deploy_stage(cont["hlop_model"], cont["test_inputs"], cont["test_labels"])
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {"simulate": sim, "continual": cont["table"], "deploy": dep}
    (args.out / "demo.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"results: {args.out / 'demo.json'}")
    return 0
