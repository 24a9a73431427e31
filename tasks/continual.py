"""``spikelab continual CONFIG.yaml``: run a continual-learning experiment from a YAML config.

The config names a scenario (permuted MNIST, split MNIST, permuted 8x8 digits), a spiking
network, an input encoding, the training protocol and a method (HLOP, fine-tuning, EWC,
experience replay, GPM, multitask). :func:`load_config` validates it against :data:`DEFAULTS`
(an unknown key is an error naming the key) and fills in defaults; :func:`run_experiment` trains
task after task, fills the accuracy matrix ``R[i, j]`` (accuracy on task j after training task
i, percent) and writes the results folder:

    config.yaml     the resolved config
    matrix.json     R, the random-init accuracies, ACC / BWT / FWT (written after every task)
    matrix.csv      R as a table (tasks never evaluated are empty)
    metrics.json    ACC, BWT, FWT, subspace sizes, wall and CPU seconds per task and in total
    heatmap.png     R as a picture
    checkpoint.pt   model, method state and random state after the last finished task

Every file is written atomically (temporary file, then rename). Problems with the config or
the data are reported before the folder is created. ``resume=True`` continues from the
checkpoint without redoing finished tasks and gives the same numbers as an uninterrupted run.

Multitask (joint training) trains once on all tasks together; its matrix has a single row
(the final accuracies) and its BWT is 0 by definition.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from spikelab.tasks.overrides import parse_set
from spikelab.atomic import atomic_path, write_bytes
from spikelab.errors import ConfigError, DataError
from spikelab.metrics.continual import average_accuracy, backward_transfer, forward_transfer

METHODS = ("hlop", "finetune", "ewc", "replay", "gpm", "multitask")
SCENARIOS = ("permuted_mnist", "split_mnist", "permuted_digits")
CHECKPOINT_VERSION = 1

# The full config with its defaults. A leaf is (type, default, allowed values or None).
# Types: "int", "float", "bool", "str", "list", or "a|b" for alternatives; "none" allows null.
ANY = None  # no restriction on the value
DEFAULTS: dict = {
    "name": ("str", "continual", ANY),
    "seed": ("int", 0, ANY),
    "scenario": {
        "name": ("str", "permuted_digits", SCENARIOS),
        "n_tasks": ("int", 5, ANY),
        "setting": ("str", "domain", ("domain", "class", "task")),
        "train_per_task": ("int|none", None, ANY),
        "test_per_task": ("int|none", None, ANY),
        "class_order": ("list|none", None, ANY),
        "data_root": ("str|none", None, ANY),
    },
    "model": {
        "hidden": ("list", [800, 800], ANY),
        "bias": ("bool", False, ANY),
        "readout": ("str", "linear", ("linear", "spikes")),
        "readout_scale": ("float", 1.0, ANY),
        "init_gain": ("float", 1.0, ANY),
        "neuron": {
            "tau_syn_inv": ("float", 200.0, ANY),
            "tau_mem_inv": ("float", 100.0, ANY),
            "v_th": ("float", 1.0, ANY),
            "v_reset": ("float", 0.0, ANY),
            "v_leak": ("float", 0.0, ANY),
            "dt": ("float", 1e-3, ANY),
            "method": ("str", "super", ("super", "triangle", "sigmoid", "atan")),
            "alpha": ("float|none", None, ANY),
            "integration": ("str", "euler", ("euler", "exact")),
        },
    },
    "encoding": {
        "name": ("str", "direct", ("direct", "poisson", "current")),
        "T": ("int", 20, ANY),
        "mean": ("float", 0.0, ANY),
        "std": ("float", 1.0, ANY),
        "f_max": ("float", 500.0, ANY),
        "dt": ("float", 1e-3, ANY),
        "gain": ("float", 3.0, ANY),
    },
    "training": {
        "mode": ("str", "rate", ("rate", "bptt")),
        "epochs": ("int", 1, ANY),
        "batch_size": ("int", 64, ANY),
        "optimizer": ("str", "sgd", ("sgd", "adam")),
        "lr": ("float", 0.1, ANY),
        "momentum": ("float", 0.0, ANY),
        "weight_decay": ("float", 0.0, ANY),
        "eval_batch_size": ("int", 1000, ANY),
    },
    "method": {
        "name": ("str", "hlop", METHODS),
        "hlop": {
            "sizes": ("list|str", "energy", ANY),
            "energy_threshold": ("float|list", 0.99, ANY),
            "max_new": ("int|list|none", None, ANY),
            "lr": ("float|list", 0.01, ANY),
            "iterations": ("int", 5, ANY),
            "momentum": ("float", 0.9, ANY),
            "clamp": ("float|none", 10.0, ANY),
            "signal": ("str", "auto", ("auto", "rate", "spikes")),
            "max_rows": ("int|none", None, ANY),
            "energy_samples": ("int", 1000, ANY),
        },
        "ewc": {
            "lambda": ("float", 1000.0, ANY),
            "mode": ("str", "separate", ("separate", "online")),
            "decay": ("float", 1.0, ANY),
            "n_samples": ("int", 500, ANY),
        },
        "replay": {
            "memory_per_task": ("int", 200, ANY),
            "batch_size": ("int", 64, ANY),
        },
        "gpm": {
            "threshold": ("float|list", 0.97, ANY),
            "n_samples": ("int", 300, ANY),
            "signal": ("str", "auto", ("auto", "rate", "spikes")),
            "max_rows": ("int|none", None, ANY),
        },
    },
    "evaluation": {
        "fwt": ("bool", True, ANY),
    },
}

_POSITIVE = {
    "scenario.n_tasks", "scenario.train_per_task", "scenario.test_per_task", "encoding.T", "training.epochs",
    "training.batch_size", "training.eval_batch_size", "model.readout_scale", "model.init_gain", "encoding.std",
    "encoding.f_max", "encoding.dt", "training.lr", "model.neuron.dt", "model.neuron.tau_syn_inv",
    "model.neuron.tau_mem_inv", "method.hlop.iterations", "method.hlop.energy_samples", "method.hlop.max_rows",
    "method.ewc.n_samples", "method.replay.memory_per_task", "method.replay.batch_size", "method.gpm.n_samples",
    "method.gpm.max_rows",
}
_NON_NEGATIVE = {"training.momentum", "training.weight_decay", "method.ewc.lambda", "method.ewc.decay", "method.hlop.momentum"}


# ----------------------------------------------------------------------------- config


def _is_leaf(spec) -> bool:
    return isinstance(spec, tuple)


def _defaults(schema: dict) -> dict:
    return {k: (copy.deepcopy(v[1]) if _is_leaf(v) else _defaults(v)) for k, v in schema.items()}


def _check_type(key: str, value, kinds: str):
    for kind in kinds.split("|"):
        if kind == "none" and value is None:
            return value
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "list" and isinstance(value, list):
            return value
    raise ConfigError(f"config key {key}: expected {kinds.replace('|', ' or ').replace('none', 'null')}, got {value!r}")


def _merge(schema: dict, base: dict, given: dict, prefix: str = "") -> None:
    if not isinstance(given, dict):
        raise ConfigError(f"config section {prefix.rstrip('.') or '(top level)'} must be a mapping, got {given!r}")
    for key, value in given.items():
        name = f"{prefix}{key}"
        if key not in schema:
            raise ConfigError(f"unknown config key {name!r}; known keys here: {sorted(schema)}")
        if _is_leaf(schema[key]):
            kinds, _, allowed = schema[key]
            value = _check_type(name, value, kinds)
            if allowed is not None and value not in allowed:
                raise ConfigError(f"config key {name}: {value!r} is not one of {list(allowed)}")
            base[key] = value
        else:
            _merge(schema[key], base[key], value, name + ".")


def _set_dotted(schema: dict, config: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    nested: dict = value
    for p in reversed(parts):
        nested = {p: nested}
    node = schema
    for i, p in enumerate(parts):
        if not isinstance(node, dict) or p not in node:
            raise ConfigError(f"unknown config key {dotted!r} in overrides ({'.'.join(parts[: i + 1])} does not exist)")
        node = node[p]
    if not _is_leaf(node):
        raise ConfigError(f"override {dotted!r} names a section; set its keys one by one")
    _merge(schema, config, nested)


def _validate(config: dict) -> None:
    def get(dotted):
        node = config
        for p in dotted.split("."):
            node = node[p]
        return node

    for key in _POSITIVE:
        v = get(key)
        if v is not None and v <= 0:
            raise ConfigError(f"config key {key} must be positive, got {v}")
    for key in _NON_NEGATIVE:
        if get(key) < 0:
            raise ConfigError(f"config key {key} must be >= 0, got {get(key)}")
    hidden = config["model"]["hidden"]
    if not hidden or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
        raise ConfigError(f"config key model.hidden must be a non-empty list of positive integers, got {hidden}")
    hl = config["method"]["hlop"]
    if isinstance(hl["sizes"], str) and hl["sizes"] != "energy":
        raise ConfigError(f"config key method.hlop.sizes must be 'energy' or a list of per-task lists, got {hl['sizes']!r}")
    method = config["method"]["name"]
    if method in ("hlop", "gpm") and config["training"]["optimizer"] != "sgd":
        raise ConfigError(
            f"training.optimizer must be sgd with {method}: Adam rescales the projected gradients out of the allowed subspace"
        )
    if method in ("hlop", "gpm") and config["training"]["weight_decay"] > 0:
        raise ConfigError(
            f"training.weight_decay must be 0 with {method}: decay moves weights inside the protected subspace"
        )
    sc = config["scenario"]
    if sc["name"] == "split_mnist" and 10 % sc["n_tasks"]:
        raise ConfigError(f"scenario.n_tasks={sc['n_tasks']}: split_mnist needs 1, 2, 5 or 10 tasks")
    if sc["class_order"] is not None and sc["name"] != "split_mnist":
        raise ConfigError("scenario.class_order applies to split_mnist only")
    if config["encoding"]["name"] == "poisson" and config["encoding"]["f_max"] * config["encoding"]["dt"] > 1:
        raise ConfigError("encoding.f_max * encoding.dt must be <= 1 (at most one spike per step)")


def _read_yaml(path: Path, seen: tuple = ()) -> dict:
    """A config file as a dict; a top-level ``base: other.yaml`` (relative to the file) is read
    first and this file's values are merged over it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    if path.resolve() in seen:
        raise ConfigError(f"config file {path} includes itself through 'base'")
    try:
        given = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(given, dict):
        raise ConfigError(f"config file {path} must hold a mapping of config keys")
    base = given.pop("base", None)
    if base is None:
        return given
    merged = _read_yaml(path.parent / base, (*seen, path.resolve()))
    _deep_update(merged, given)
    return merged


def _deep_update(base: dict, given: dict) -> None:
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value


def load_config(path_or_dict, overrides: dict | None = None) -> dict:
    """The validated config with defaults filled in.

    Args:
        path_or_dict: a YAML file path or a dict (partial configs are completed from
            :data:`DEFAULTS`). A file may start from another with ``base: other.yaml``.
        overrides: dotted keys and values applied on top, e.g. ``{"method.name": "ewc", "seed": 3}``.

    Raises :class:`ConfigError` naming an unknown key, a wrong type or an out-of-range value.
    """
    given = copy.deepcopy(path_or_dict) if isinstance(path_or_dict, dict) else _read_yaml(Path(path_or_dict))
    config = _defaults(DEFAULTS)
    _merge(DEFAULTS, config, given)
    for key, value in (overrides or {}).items():
        _set_dotted(DEFAULTS, config, key, value)
    _validate(config)
    return config


# ----------------------------------------------------------------------------- building blocks


def build_scenario(config: dict, data_root=None):
    """The scenario of ``config`` (loads data; :class:`DataError` if it is missing)."""
    from spikelab.data import continual as scenarios

    sc = config["scenario"]
    common = dict(setting=sc["setting"], seed=config["seed"], train_per_task=sc["train_per_task"], test_per_task=sc["test_per_task"])
    if sc["name"] == "permuted_digits":
        return scenarios.permuted_digits(sc["n_tasks"], **common)
    root = data_root if data_root is not None else sc["data_root"]
    if root is None:
        raise DataError(f"scenario {sc['name']} needs MNIST: pass --data-root (or set scenario.data_root)")
    if sc["name"] == "permuted_mnist":
        return scenarios.permuted_mnist(root, sc["n_tasks"], **common)
    return scenarios.split_mnist(root, sc["n_tasks"], class_order=sc["class_order"], **common)


def build_model(config: dict, scenario) -> torch.nn.Module:
    """The spiking network of ``config`` for ``scenario`` (weights from the config's seed)."""
    from spikelab.continual import build_mlp

    m = config["model"]
    with torch.random.fork_rng(devices=[]):  # the global CPU generator is restored afterwards
        torch.default_generator.manual_seed(config["seed"])
        return build_mlp(
            scenario.input_size, m["hidden"], scenario.n_outputs, n_heads=scenario.n_heads, bias=m["bias"],
            readout=m["readout"], readout_scale=m["readout_scale"], neuron=dict(m["neuron"]), init_gain=m["init_gain"],
        )


def build_encoder(config: dict) -> torch.nn.Module:
    from spikelab.continual import CurrentEncoder, DirectEncoder
    from spikelab.encoding import PoissonEncoder

    e = config["encoding"]
    if e["name"] == "direct":
        return DirectEncoder(e["T"], e["mean"], e["std"])
    if e["name"] == "current":
        return CurrentEncoder(e["T"], e["gain"], e["dt"])
    return PoissonEncoder(e["T"], f_max=e["f_max"], dt=e["dt"])


def _signal(config: dict, key: str) -> str:
    chosen = config["method"][key]["signal"]
    if chosen != "auto":
        return chosen
    return "rate" if config["training"]["mode"] == "rate" else "spikes"


def build_plugins(config: dict, model, n_tasks: int) -> list:
    """The method's plugins (empty for fine-tuning and multitask).

    HLOP draws its random numbers from its own generator, so that the first task trains
    exactly as with fine-tuning (same shuffling and encoding noise)."""
    from spikelab.continual import EWC, GPM, HLOP, Replay

    name = config["method"]["name"]
    try:
        if name == "hlop":
            h = config["method"]["hlop"]
            plugin = HLOP(
                model, sizes=None if h["sizes"] == "energy" else h["sizes"], energy_threshold=h["energy_threshold"],
                max_new=h["max_new"], lr=h["lr"], iterations=h["iterations"], momentum=h["momentum"], clamp=h["clamp"],
                signal=_signal(config, "hlop"), max_rows=h["max_rows"], energy_samples=h["energy_samples"],
                generator=torch.Generator().manual_seed(config["seed"] + 1),
            )
            plugin.check_tasks(n_tasks)
            return [plugin]
        if name == "ewc":
            e = config["method"]["ewc"]
            return [EWC(e["lambda"], mode=e["mode"], decay=e["decay"], n_samples=e["n_samples"])]
        if name == "replay":
            r = config["method"]["replay"]
            return [Replay(r["memory_per_task"], r["batch_size"])]
        if name == "gpm":
            g = config["method"]["gpm"]
            return [GPM(model, threshold=g["threshold"], n_samples=g["n_samples"], signal=_signal(config, "gpm"), max_rows=g["max_rows"])]
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"method.{name}: {exc}") from exc
    return []


def build_strategy(config: dict, model, plugins: list, generator: torch.Generator, progress: bool):
    from spikelab.continual import Strategy

    t = config["training"]
    return Strategy(
        model, build_encoder(config), training=t["mode"], lr=t["lr"], momentum=t["momentum"],
        weight_decay=t["weight_decay"], optimizer=t["optimizer"], batch_size=t["batch_size"], epochs=t["epochs"],
        eval_batch_size=t["eval_batch_size"], plugins=plugins, generator=generator, eval_seed=config["seed"],
        progress=progress,
    )


# ----------------------------------------------------------------------------- results folder


def _atomic_torch_save(path: Path, obj) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _matrix_payload(matrix: np.ndarray, random_init: np.ndarray | None, single_row: bool) -> dict:
    """ACC / BWT / FWT (percent) of a (partial) matrix: rows after each finished task."""
    done = int((~np.isnan(matrix)).any(axis=1).sum())
    out: dict = {"acc": None, "bwt": None, "fwt": None}
    if single_row and done:
        out.update(acc=float(np.nanmean(matrix[0])), bwt=0.0)
    elif done:
        square = matrix[:done, :done]
        out.update(acc=average_accuracy(square), bwt=backward_transfer(square))
        if random_init is not None:
            out["fwt"] = forward_transfer(matrix[:done, :done], random_init[:done])
    return out


def _jsonable(matrix: np.ndarray) -> list:
    return [[None if np.isnan(v) else round(float(v), 4) for v in row] for row in matrix]


def _write_matrix(out: Path, matrix: np.ndarray, random_init, summary: dict) -> None:
    payload = {"matrix": _jsonable(matrix), "random_init": None if random_init is None else _jsonable(random_init[None])[0]}
    payload.update(summary)
    payload["unit"] = "percent; matrix[i][j] = accuracy on task j after training task i (null: not evaluated)"
    write_bytes(out / "matrix.json", json.dumps(payload, indent=1).encode())
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["after_task"] + [f"task_{j}" for j in range(matrix.shape[1])])
    for i, row in enumerate(matrix):
        writer.writerow([i] + ["" if np.isnan(v) else f"{v:.4f}" for v in row])
    write_bytes(out / "matrix.csv", buf.getvalue().encode())


def _write_heatmap(out: Path, matrix: np.ndarray, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * matrix.shape[1], 1.0 + 0.6 * max(matrix.shape[0], 2)))
    im = ax.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=100, cmap="viridis")
    for (i, j), v in np.ndenumerate(matrix):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white" if v < 60 else "black")
    ax.set_xlabel("evaluated on task")
    ax.set_ylabel("after training task")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    write_bytes(out / "heatmap.png", buf.getvalue())


# ----------------------------------------------------------------------------- the experiment


def _prepare(config: dict, data_root, progress: bool):
    """Everything that can fail on bad input, before anything is written."""
    scenario = build_scenario(config, data_root)
    model = build_model(config, scenario)
    generator = torch.Generator().manual_seed(config["seed"])
    plugins = build_plugins(config, model, scenario.n_tasks)
    strategy = build_strategy(config, model, plugins, generator, progress)
    return scenario, model, plugins, strategy


def _comparable(config: dict) -> dict:
    c = copy.deepcopy(config)
    c["scenario"]["data_root"] = None  # the same data may live elsewhere when resuming
    return c


def run_experiment(config: dict, out_dir, data_root=None, resume: bool = False, progress: bool = True) -> dict:
    """Train the config's method task by task and write the results folder ``out_dir``.

    Returns ``{"acc", "bwt", "fwt", "matrix", "random_init", "seconds", "cpu_seconds", ...}``
    (accuracies in percent). Deterministic for a given config (seed included) and independent
    of global random state. ``resume=True`` continues from ``out_dir/checkpoint.pt``.
    """
    from tqdm.auto import tqdm

    config = load_config(config)
    out = Path(out_dir)
    ckpt_path = out / "checkpoint.pt"
    scenario, model, plugins, strategy = _prepare(config, data_root, progress)
    n_tasks = scenario.n_tasks
    joint = config["method"]["name"] == "multitask"
    rows = 1 if joint else n_tasks
    matrix = np.full((rows, n_tasks), np.nan)
    random_init = None
    timings: list[dict] = []
    start_task = 0

    if resume:
        if not ckpt_path.is_file():
            raise ConfigError(f"cannot resume: {ckpt_path} does not exist")
        state = torch.load(ckpt_path, weights_only=False)
        if state.get("version") != CHECKPOINT_VERSION or _comparable(load_config(state["config"])) != _comparable(config):
            raise ConfigError(f"cannot resume: {out} holds a run with a different config")
        model.load_state_dict(state["model"])
        for plugin, s in zip(plugins, state["plugins"]):
            plugin.load_state_dict(s)
        strategy.generator.set_state(state["generator"])
        strategy.training_exp_counter = state["tasks_done"]
        matrix, random_init, timings = state["matrix"], state["random_init"], state["timings"]
        start_task = state["tasks_done"]
    elif ckpt_path.exists():
        raise ConfigError(f"{out} already holds a run (checkpoint.pt); use --resume or another --out folder")

    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
    if random_init is None and config["evaluation"]["fwt"] and not joint:
        random_init = np.array([100 * strategy.evaluate(e) for e in scenario.test_stream])

    title = f"{config['name']}: {config['method']['name']} on {scenario.name} ({scenario.setting})"
    steps = [list(range(n_tasks))] if joint else [[t] for t in range(n_tasks)]
    bar = tqdm(total=len(steps), initial=start_task, disable=not progress, unit="task", desc=config["name"])
    for step in range(start_task, len(steps)):
        wall, cpu = time.perf_counter(), time.process_time()
        exps = [scenario.train_stream[t] for t in steps[step]]
        stats = strategy.train(exps if joint else exps[0], description=f"task {steps[step][-1] + 1}/{n_tasks}")
        train_s, train_cpu = time.perf_counter() - wall, time.process_time() - cpu
        last = steps[step][-1]
        evaluate = range(n_tasks) if joint else range(min(last + 2 if random_init is not None else last + 1, n_tasks))
        for j in evaluate:
            matrix[step, j] = 100 * strategy.evaluate(scenario.test_stream[j])
        timings.append({
            "task": last, "train_seconds": train_s, "train_cpu_seconds": train_cpu,
            "eval_seconds": time.perf_counter() - wall - train_s, "cpu_seconds": time.process_time() - cpu,
            "train_loss": stats["loss"], "train_accuracy": 100 * stats["accuracy"],
            "subspace": [p.block_sizes() for p in plugins if hasattr(p, "block_sizes")],
        })
        summary = _matrix_payload(matrix, random_init, joint)
        _atomic_torch_save(ckpt_path, {
            "version": CHECKPOINT_VERSION, "config": _comparable(config), "tasks_done": step + 1,
            "model": model.state_dict(), "plugins": [p.state_dict() for p in plugins],
            "generator": strategy.generator.get_state(), "matrix": matrix, "random_init": random_init,
            "timings": timings,
        })
        _write_matrix(out, matrix, random_init, summary)
        bar.update(1)
        bar.set_postfix(acc=f"{summary['acc']:.2f}", bwt=f"{summary['bwt']:.2f}")
    bar.close()

    summary = _matrix_payload(matrix, random_init, joint)
    result = {
        **summary,
        "matrix": _jsonable(matrix),
        "random_init": None if random_init is None else [float(v) for v in random_init],
        "seconds": float(sum(t["train_seconds"] + t["eval_seconds"] for t in timings)),
        "cpu_seconds": float(sum(t["cpu_seconds"] for t in timings)),
        "method": config["method"]["name"],
        "scenario": scenario.name,
        "setting": scenario.setting,
        "n_tasks": n_tasks,
        "timings": timings,
        "torch_threads": torch.get_num_threads(),
    }
    write_bytes(out / "metrics.json", json.dumps(result, indent=1).encode())
    _write_heatmap(out, matrix, f"{title}\nACC {summary['acc']:.2f} %, BWT {summary['bwt']:.2f} %")
    return result


# ----------------------------------------------------------------------------- demo


CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def demo_stage(seed: int = 0, progress: bool = False) -> dict:
    """HLOP against fine-tuning on permuted 8x8 digits (built-in data, well under two minutes on CPU).

    Prints a table of ACC and BWT and returns ``{"table", "hlop_model", "test_inputs",
    "test_labels"}``: the trained HLOP network as a ``SequentialState`` of ``SpikingLinear`` +
    ``LIF`` layers, and Poisson spike trains (T, B, 64) of the first task's test set with labels.
    """
    import tempfile

    table = {}
    hlop_model = None
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("hlop", "finetune"):
            config = load_config(CONFIGS / f"digits_{method}.yaml", {"seed": seed})
            result = run_experiment(config, Path(tmp) / method, resume=False, progress=progress)
            table[method] = {"acc": result["acc"], "bwt": result["bwt"], "seconds": result["seconds"]}
            if method == "hlop":
                state = torch.load(Path(tmp) / method / "checkpoint.pt", weights_only=False)
                scenario = build_scenario(config)
                net = build_model(config, scenario)
                net.load_state_dict(state["model"])
                hlop_model = net.as_sequential(0)
                x, y = scenario.test_stream[0].batch(slice(None))
                test_inputs = build_encoder(config)(x, generator=torch.Generator().manual_seed(seed))
                test_labels = y
    print(f"  continual learning on {config['scenario']['n_tasks']} permuted-digits tasks (T={config['encoding']['T']}):")
    print(f"  {'method':<10} {'ACC %':>7} {'BWT %':>7} {'time s':>7}")
    for method, row in table.items():
        print(f"  {method:<10} {row['acc']:7.2f} {row['bwt']:7.2f} {row['seconds']:7.1f}")
    return {"table": table, "hlop_model": hlop_model, "test_inputs": test_inputs, "test_labels": test_labels}


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML experiment config (see configs/ and docs/continual.md)")
    parser.add_argument("--data-root", default=None, help="folder with the MNIST IDX files (MNIST scenarios)")
    parser.add_argument("--out", default=None, help="results folder (default: runs/<name>-seed<seed>)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in the results folder")
    parser.add_argument("--seed", type=int, default=None, help="override the config's seed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value by dotted key, e.g. --set method.name=ewc (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def run(args: argparse.Namespace) -> int:
    overrides = parse_set(args.set)
    if args.seed is not None:
        overrides["seed"] = args.seed
    config = load_config(args.config, overrides)
    out = Path(args.out) if args.out else Path("runs") / f"{config['name']}-seed{config['seed']}"
    result = run_experiment(config, out, data_root=args.data_root, resume=args.resume, progress=not args.no_progress)
    fwt = "n/a" if result["fwt"] is None else f"{result['fwt']:.2f} %"
    print(
        f"{config['name']} ({result['method']}, {result['n_tasks']} tasks): ACC {result['acc']:.2f} %, "
        f"BWT {result['bwt']:.2f} %, FWT {fwt}; {result['seconds']:.0f} s wall, "
        f"{result['cpu_seconds']:.0f} s CPU; results in {out}"
    )
    return 0
