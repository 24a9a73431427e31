"""``spikelab deploy MODEL --backend {emulator,lava,nir,brian2}``: export a trained model and compare.

MODEL is a model saved with ``torch.save(model, path)`` (``.pt``/``.pth``; a dict holding the
model under ``"model"`` works too), a NIR graph (``.nir``) or an export artifact (``.npz``).
The command runs the float model and the chosen backend on the same input spikes and reports
accuracy and spike agreement; everything goes to ``--output`` (``report.json``, plus
``network.npz`` -- the export artifact -- or ``model.nir``):

* ``emulator``: quantise to Loihi 2 fixed point and run the bit-accurate numpy emulator.
* ``lava``: as ``emulator``, then run the artifact in Lava (``Loihi2SimCfg`` fixed point, in the
  Python 3.10 Lava environment, as a subprocess) and check it against the emulator spike for
  spike; ``--mode float`` runs Lava's floating-point models against the float model instead.
* ``nir``: write the NIR graph, read it back and check that the re-imported model spikes identically.
* ``brian2``: simulate the float network in Brian2 and compare with spikelab.

Inputs: ``--data digits`` (scikit-learn's 8x8 digits, 64 inputs), ``--data mnist --data-root
DIR`` (784 inputs), or ``--data random`` (Poisson spikes at ``--rate``, no labels); the default
``auto`` picks digits or MNIST from the model's input size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from spikelab.atomic import write_json
from spikelab.errors import ConfigError, DataError
from spikelab.hardware import artifact, compare, emulator
from spikelab.hardware.extract import extract, stage_spikes, to_model
from spikelab.hardware.quantize import quantization_report, quantize

BACKENDS = ("emulator", "lava", "nir", "brian2")
DATASETS = ("auto", "digits", "mnist", "random")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path,
                        help="trained model: torch.save'd module (.pt), NIR graph (.nir) or artifact (.npz)")
    parser.add_argument("--backend", choices=BACKENDS, default="emulator", help="target backend (default emulator)")
    parser.add_argument("--mode", choices=("fixed", "float"), default="fixed",
                        help="lava backend only: bit-accurate fixed point (default) or Lava's floating point")
    parser.add_argument("--input-shape", default=None,
                        help="input shape C,H,W (needed for models that start with a convolution)")
    parser.add_argument("--data", choices=DATASETS, default="auto", help="input samples (default: from the input size)")
    parser.add_argument("--data-root", type=Path, default=None, help="folder of the MNIST IDX files (for --data mnist)")
    parser.add_argument("--samples", type=int, default=200, help="number of test samples (default 200)")
    parser.add_argument("--steps", type=int, default=20, help="time steps per sample T (default 20)")
    parser.add_argument("--f-max", type=float, default=500.0,
                        help="Poisson rate in Hz of a full-intensity input (default 500)")
    parser.add_argument("--rate", type=float, default=0.1, help="spike probability per step for --data random (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the input spikes (default 0)")
    parser.add_argument("--output", type=Path, default=None, help="output folder (default runs/deploy/<model name>)")
    parser.add_argument("--create-lava-env", action="store_true", help="build the Lava environment if it is missing")


def load_model(path: Path, input_shape: tuple[int, ...] | None):
    """``(float model, network)`` from a torch file, a NIR file or an export artifact."""
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        net = artifact.load(path)
        return to_model(net), net
    if suffix == ".nir":
        from spikelab.hardware.nir_io import from_nir

        model = from_nir(path)
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # pickle/zip errors of many kinds
            raise DataError(f"cannot read {path} as a torch file: {type(exc).__name__}: {exc}") from exc
        model = obj.get("model") if isinstance(obj, dict) else obj
        if not isinstance(model, torch.nn.Module):
            keys = f" (keys: {sorted(obj)[:8]})" if isinstance(obj, dict) else ""
            raise DataError(
                f"{path} holds a {type(obj).__name__}{keys}, not a model: save the module itself with "
                "torch.save(model, path) (a state_dict has no architecture), or a dict with it under 'model'"
            )
    model = model.eval().float()
    return model, extract(model, input_shape)


def _parse_shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise ConfigError(f"--input-shape must be integers separated by commas, e.g. 1,28,28; got {text!r}") from None
    if not shape or min(shape) < 1:
        raise ConfigError(f"--input-shape must be positive integers, got {text!r}")
    return shape


def make_inputs(args: argparse.Namespace, input_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Input spikes (T, B, *input_shape) uint8, labels or None, and a description."""
    from spikelab.encoding import PoissonEncoder

    if args.samples < 1 or args.steps < 1:
        raise ConfigError(f"--samples and --steps must be positive, got {args.samples} and {args.steps}")
    gen = torch.Generator().manual_seed(args.seed)
    data = args.data
    n_in = int(np.prod(input_shape))
    if data == "auto":
        data = {64: "digits", 784: "mnist"}.get(n_in, "random")
        if data == "mnist" and args.data_root is None:
            data = "random"
    if data == "random":
        if not 0 < args.rate <= 1:
            raise ConfigError(f"--rate must be in (0, 1], got {args.rate}")
        x = (torch.rand((args.steps, args.samples, *input_shape), generator=gen) < args.rate).to(torch.uint8)
        return x.numpy(), None, f"random Poisson spikes (p={args.rate} per step)"
    if data == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        images, labels, expected = torch.tensor(d.data, dtype=torch.float32) / 16.0, d.target, 64
    else:
        from spikelab.data.mnist import load_mnist

        if args.data_root is None:
            raise ConfigError("--data mnist needs --data-root (the folder with the four MNIST IDX files)")
        _, (xt, yt) = load_mnist(args.data_root)
        images, labels, expected = xt.reshape(len(xt), -1).float() / 255.0, yt.numpy(), 784
    if n_in != expected:
        raise ConfigError(f"--data {data} has {expected} inputs per sample but the model takes shape {input_shape}")
    order = torch.randperm(len(images), generator=gen)[: args.samples]
    x = PoissonEncoder(args.steps, f_max=args.f_max)(images[order], generator=gen)
    return x.reshape(args.steps, len(order), *input_shape).to(torch.uint8).numpy(), np.asarray(labels)[order.numpy()], data


def _acc(spikes, labels):
    return None if labels is None else compare.accuracy(spikes, labels)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f} %"


def run(args: argparse.Namespace) -> int:
    model, net = load_model(args.model, _parse_shape(args.input_shape))
    out = args.output or Path("runs") / "deploy" / args.model.stem
    out.mkdir(parents=True, exist_ok=True)
    x, y, described = make_inputs(args, net.input_shape)
    float_spikes = stage_spikes(model, net, torch.from_numpy(x).float())
    names = [s.name for s in net.stages]
    report: dict = {
        "model": str(args.model), "backend": args.backend, "inputs": described, "samples": int(x.shape[1]),
        "steps": int(x.shape[0]), "float_accuracy": _acc(float_spikes[-1], y),
    }
    print(f"spikelab deploy: {args.model} ({len(net.stages)} stages, input {net.input_shape}) on {x.shape[1]} "
          f"samples of {described}, T={x.shape[0]}; float accuracy {_pct(report['float_accuracy'])}")
    if args.backend in ("emulator", "lava"):
        qnet = quantize(net)
        artifact.save(qnet, out / "network.npz")
        report["quantization"] = quantization_report(qnet)
        emu = emulator.run(qnet, x)
        report.update(
            fixed_accuracy=_acc(emu.output, y),
            same_step_fraction=compare.pooled(float_spikes, emu.spikes, compare.same_step_fraction),
            layers_float_vs_fixed=compare.layer_report(float_spikes, emu.spikes, names),
            u_wraps=emu.u_wraps, v_saturations=emu.v_saturations, emulator_steps_per_second=emu.steps_per_second,
        )
        print(f"  Loihi 2 fixed point (emulator): accuracy {_pct(report['fixed_accuracy'])}, "
              f"{_pct(report['same_step_fraction'])} of spikes in the same step as float; artifact {out / 'network.npz'}")
        if any(emu.v_saturations):
            print(f"  note: v saturated at -(2^23 - 1) {emu.v_saturations} times per layer (strong inhibition)")
        if args.backend == "lava" and not _lava(args, qnet, x, y, emu, float_spikes, names, report):
            return 2
    elif args.backend == "nir":
        from spikelab.hardware.nir_io import export_nir, from_nir

        path = export_nir(model, out / "model.nir", net.input_shape)
        again = from_nir(path)
        back = stage_spikes(again, extract(again, net.input_shape), torch.from_numpy(x).float())
        report.update(nir_file=str(path), round_trip_match_rate=compare.pooled(float_spikes, back, compare.match_rate),
                      round_trip_accuracy=_acc(back[-1], y))
        exact = "exact" if report["round_trip_match_rate"] == 1.0 else "NOT exact"
        print(f"  NIR graph written to {path}; re-imported model spikes {_pct(report['round_trip_match_rate'])} "
              f"identical ({exact})")
    else:
        from spikelab.hardware import brian2_backend

        start = time.perf_counter()
        b2 = brian2_backend.run(net, x)
        report.update(
            brian2_seconds=time.perf_counter() - start, brian2_accuracy=_acc(b2[-1], y),
            brian2_match_rate=compare.pooled(float_spikes, b2, compare.match_rate),
            layers_float_vs_brian2=compare.layer_report(float_spikes, b2, names),
        )
        print(f"  Brian2: accuracy {_pct(report['brian2_accuracy'])}, "
              f"{_pct(report['brian2_match_rate'])} of spike entries equal to spikelab")
    write_json(out / "report.json", report, default=float)
    print(f"  report: {out / 'report.json'}")
    return 0


def _lava(args, qnet, x, y, emu, float_spikes, names, report) -> bool:
    """Run Lava and add its results to the report; False (after saying why) if Lava is unavailable."""
    from spikelab.hardware.lava_env import LavaUnavailable, run_lava

    try:
        lava = run_lava(qnet, x, mode=args.mode, create=args.create_lava_env)
    except LavaUnavailable as exc:
        print(f"spikelab deploy: error: Lava is not available: {exc}", file=sys.stderr)
        return False
    report["lava"] = lava.info
    report["lava_accuracy"] = _acc(lava.spikes[-1], y)
    if args.mode == "fixed":
        report["lava_match_rate"] = compare.pooled(lava.spikes, emu.spikes, compare.match_rate)
        report["layers_emulator_vs_lava"] = compare.layer_report(emu.spikes, lava.spikes, names)
        exact = "bit-exact" if report["lava_match_rate"] == 1.0 else "NOT bit-exact"
        print(f"  Lava ({lava.info['run_config']}): accuracy {_pct(report['lava_accuracy'])}, "
              f"{_pct(report['lava_match_rate'])} of spike entries equal to the emulator ({exact}); "
              f"{lava.info['steps_per_second']:.0f} steps/s")
    else:
        report["lava_float_match_rate"] = compare.pooled(lava.spikes, float_spikes, compare.match_rate)
        print(f"  Lava floating point: accuracy {_pct(report['lava_accuracy'])}, "
              f"{_pct(report['lava_float_match_rate'])} of spike entries equal to spikelab's float model")
    return True
