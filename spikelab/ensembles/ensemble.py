"""Regional ensemble: many compact modules, each trained on one region of the reference route.

Pipeline (Hussaini, Milford & Fischer, ICRA 2023):

1. :func:`partition` splits the reference places into regions of ``places_per_module``
   (contiguous stretches of the route, or a seeded shuffle).
2. :func:`train_modules` trains any subset of modules (all of them by default) as one batch:
   every module sees its places from every reference traverse for ``epochs`` epochs, then
   neurons are assigned to places from the last epoch's responses, and every module is shown
   the whole reference set (all traverses) to measure each neuron's activity (how many
   reference images make it fire).
3. :func:`merge` joins trained subsets into a :class:`RegionalEnsemble`, which scores queries
   across all modules, removes hyperactive neurons with a threshold chosen on calibration
   queries, and saves/loads itself.

Sharding: a module's arrays depend only on ``(config, reference, module index)``; training
modules ``[0, 1]`` and ``[2, 3]`` separately and merging gives exactly the ensemble trained as
``[0, 1, 2, 3]``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from spikelab.atomic import atomic_path
from spikelab.ensembles import assignment
from spikelab.ensembles.network import (
    STREAM_ORDER, STREAM_QUERY, STREAM_RECORD, DiehlCookBatch, DiehlCookParameters, check_parameters, module_seed,
)
from spikelab.errors import ConfigError, DataError
from spikelab.plasticity.stdp import STDPParameters, ThresholdParameters

REGIONS = ("contiguous", "shuffled")
FORMAT = "spikelab.regional_ensemble/1"


@dataclass(frozen=True)
class EnsembleConfig:
    """How an ensemble is built and trained (see docs/place_recognition.md)."""

    places_per_module: int = 25
    regions: str = "contiguous"
    epochs: int = 60
    shuffle_presentations: bool = False
    seed: int = 0
    network: DiehlCookParameters = field(default_factory=DiehlCookParameters)

    def __post_init__(self) -> None:
        if not (isinstance(self.places_per_module, int) and self.places_per_module >= 1):
            raise ConfigError(f"ensemble.places_per_module must be a positive integer, got {self.places_per_module!r}")
        if self.regions not in REGIONS:
            raise ConfigError(f"ensemble.regions must be one of {REGIONS}, got {self.regions!r}")
        if not (isinstance(self.epochs, int) and self.epochs >= 1):
            raise ConfigError(f"ensemble.epochs must be a positive integer, got {self.epochs!r}")
        check_parameters(self.network)

    def to_dict(self) -> dict:
        d = asdict(self)
        net = dict(self.network._asdict())
        net["stdp"], net["threshold"] = dict(self.network.stdp._asdict()), dict(self.network.threshold._asdict())
        d["network"] = net
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EnsembleConfig":
        d = dict(d)
        net = dict(d.pop("network", {}))
        stdp = STDPParameters(**net.pop("stdp", {}))
        threshold = ThresholdParameters(**net.pop("threshold", {}))
        return cls(**d, network=DiehlCookParameters(**net, stdp=stdp, threshold=threshold))


def partition(n_places: int, places_per_module: int, regions: str = "contiguous", seed: int = 0) -> np.ndarray:
    """Places of every module (M, places_per_module), -1 padding in the last module if needed."""
    if places_per_module > n_places:
        raise DataError(
            f"places_per_module ({places_per_module}) exceeds the number of reference places ({n_places})"
        )
    order = np.arange(n_places)
    if regions == "shuffled":
        order = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 2**31 - 1]))).permutation(n_places)
    n_modules = -(-n_places // places_per_module)
    out = np.full(n_modules * places_per_module, -1, np.int64)
    out[:n_places] = order
    return out.reshape(n_modules, places_per_module)


def _reference_rates(reference: np.ndarray, p: DiehlCookParameters) -> tuple[np.ndarray, int, int]:
    """(n_traverses * n_places, n_input) rates of reference images (T, P, ...) or (P, ...) in [0, 1]."""
    ref = np.asarray(reference, np.float64)
    if ref.ndim == 3:
        ref = ref[None]
    if ref.ndim != 4 or 0 in ref.shape:
        raise DataError(f"reference images must have shape (places, H, W) or (traverses, places, H, W), got {ref.shape}")
    if ref.min() < 0 or ref.max() > 1:
        raise DataError("reference images must be preprocessed to [0, 1]")
    n_trav, n_places = ref.shape[:2]
    return ref.reshape(n_trav * n_places, -1) * p.f_max, n_trav, n_places


@dataclass
class ModuleStates:
    """Trained and recorded modules ``batch.modules`` (a shard or the whole ensemble).

    ``places`` (m, K) global places per module; ``assignments`` (m, N) place per neuron (-1
    none); ``activity`` (m, N) reference images that made each neuron fire; ``train_counts``
    (m, P, N) last-epoch responses.
    """

    config: EnsembleConfig
    n_places: int
    n_traverses: int
    batch: DiehlCookBatch
    places: np.ndarray
    assignments: np.ndarray
    activity: np.ndarray
    train_counts: np.ndarray
    seconds: dict = field(default_factory=dict)


def _presentation_order(config: EnsembleConfig, places: np.ndarray, modules: np.ndarray, n_trav: int,
                        n_places: int, epoch: int) -> np.ndarray:
    """Image index (m, P) of every presentation: each traverse's images of the module's places."""
    order = np.stack([np.concatenate([t * n_places + np.where(pl >= 0, pl, -n_places * n_trav - 1)
                                      for t in range(n_trav)]) for pl in places])
    order[order < 0] = -1
    if config.shuffle_presentations:
        for b, k in enumerate(modules):
            rng = np.random.default_rng(module_seed(config.seed, int(k), STREAM_ORDER, epoch))
            order[b] = order[b, rng.permutation(order.shape[1])]
    return order


def _save_atomic(path: Path, arrays: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _without_epochs(config: dict) -> dict:
    return {k: v for k, v in config.items() if k != "epochs"}


def train_modules(config: EnsembleConfig | dict, reference: np.ndarray, module_indices=None, progress: bool = True,
                  checkpoint: str | Path | None = None) -> ModuleStates:
    """Train and record the modules ``module_indices`` (default: all) together as one batch.

    Args:
        config: :class:`EnsembleConfig` (or its dict form).
        reference: preprocessed reference images in [0, 1], (places, H, W) or (traverses, places, H, W).
        module_indices: which modules of :func:`partition` to train.
        progress: tqdm bars.
        checkpoint: file updated after every epoch; if it exists, training resumes from it
            (with identical results to an uninterrupted run), also to train for more epochs.
    """
    config = config if isinstance(config, EnsembleConfig) else EnsembleConfig.from_dict(config)
    p = config.network
    rates, n_trav, n_places = _reference_rates(reference, p)
    all_places = partition(n_places, config.places_per_module, config.regions, config.seed)
    modules = np.arange(len(all_places)) if module_indices is None else np.asarray(module_indices, np.int64).ravel()
    if modules.size == 0 or len(np.unique(modules)) != modules.size or modules.min() < 0 or modules.max() >= len(all_places):
        raise ValueError(f"module_indices must be distinct indices in [0, {len(all_places)}), got {modules.tolist()}")
    places = all_places[modules]
    batch = DiehlCookBatch.initialise(p, config.seed, modules, rates.shape[1])
    start, counts, seconds = 0, None, {"train": 0.0, "record": 0.0}
    checkpoint = Path(checkpoint) if checkpoint else None
    if checkpoint and checkpoint.exists():
        with np.load(checkpoint) as ck:
            meta = json.loads(str(ck["meta"]))
            if (_without_epochs(meta["config"]) != _without_epochs(config.to_dict()) or meta["modules"] != modules.tolist()
                    or meta["n_images"] != len(rates) or meta["epochs_done"] > config.epochs):
                raise ConfigError(f"checkpoint {checkpoint} belongs to a different configuration; delete it or change --out")
            batch = DiehlCookBatch.from_arrays(p, config.seed, {k[6:]: ck[k] for k in ck.files if k.startswith("batch.")})
            start, counts, seconds["train"] = meta["epochs_done"], ck["counts"], meta["train_seconds"]
    bar = tqdm(range(start, config.epochs), desc=f"train {len(modules)} modules", unit="epoch",
               disable=not progress, initial=start, total=config.epochs)
    for epoch in bar:
        t0 = time.perf_counter()
        order = _presentation_order(config, places, modules, n_trav, n_places, epoch)
        counts = batch.train(rates, order, epoch)
        seconds["train"] += time.perf_counter() - t0
        bar.set_postfix(spikes_per_image=f"{counts.sum(-1).mean():.1f}")
        if checkpoint:
            meta = {"config": config.to_dict(), "modules": modules.tolist(), "n_images": len(rates),
                    "epochs_done": epoch + 1, "train_seconds": seconds["train"]}
            arrays = {f"batch.{k}": v for k, v in batch.arrays().items()}
            _save_atomic(checkpoint, {"meta": np.array(json.dumps(meta)), "counts": counts, **arrays})
    order = _presentation_order(config, places, modules, n_trav, n_places, config.epochs - 1)
    labels = np.where(order >= 0, order % n_places, -1)
    assignments = np.stack([
        assignment.assign_neurons(counts[b][labels[b] >= 0], labels[b][labels[b] >= 0]) for b in range(len(modules))
    ])
    t0 = time.perf_counter()
    record = batch.respond(rates, STREAM_RECORD, progress, "record reference")
    seconds["record"] = time.perf_counter() - t0
    return ModuleStates(config, n_places, n_trav, batch, places, assignments, assignment.activity(record), counts, seconds)


def merge(states: list[ModuleStates]) -> "RegionalEnsemble":
    """Join trained shards into one ensemble (modules sorted by index; all must be present once)."""
    if not states:
        raise ValueError("merge() needs at least one trained shard")
    first = states[0]
    for s in states[1:]:
        if s.config != first.config or (s.n_places, s.n_traverses) != (first.n_places, first.n_traverses):
            raise ValueError("shards were trained with different configurations or reference data")
    modules = np.concatenate([s.batch.modules for s in states])
    n_modules = len(partition(first.n_places, first.config.places_per_module, first.config.regions, first.config.seed))
    if sorted(modules.tolist()) != list(range(n_modules)):
        raise ValueError(f"shards must cover modules 0..{n_modules - 1} exactly once, got {sorted(modules.tolist())}")
    order = np.argsort(modules)

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(s, name) for s in states])[order]

    batch = DiehlCookBatch.concatenate([s.batch for s in states])
    batch = DiehlCookBatch.from_arrays(batch.p, batch.seed, {k: v[order] for k, v in batch.arrays().items()})
    seconds = {k: sum(s.seconds.get(k, 0.0) for s in states) for k in ("train", "record")}
    return RegionalEnsemble(first.config, first.n_places, batch, cat("places"), cat("assignments"), cat("activity"),
                            seconds=seconds)


class RegionalEnsemble:
    """A trained ensemble: query it, calibrate hyperactive-neuron removal, save and load it."""

    def __init__(self, config: EnsembleConfig, n_places: int, batch: DiehlCookBatch, places: np.ndarray,
                 assignments: np.ndarray, activity: np.ndarray, threshold: int = 0, seconds: dict | None = None) -> None:
        self.config, self.n_places, self.batch = config, int(n_places), batch
        self.places, self.assignments, self.activity = places, assignments, activity
        self.threshold = int(threshold)
        self.seconds = dict(seconds or {})

    @property
    def n_modules(self) -> int:
        return self.batch.n_modules

    def respond(self, images: np.ndarray, progress: bool = False) -> np.ndarray:
        """Spike counts (M, Q, N) of every module to query images (Q, H, W) in [0, 1]."""
        images = np.asarray(images, np.float64)
        if images.ndim != 3 or images[0].size != self.batch.n_input:
            raise DataError(f"query images must be (Q, H, W) with H*W = {self.batch.n_input}, got {images.shape}")
        if images.min() < 0 or images.max() > 1:
            raise DataError("query images must be preprocessed to [0, 1]")
        rates = images.reshape(len(images), -1) * self.config.network.f_max
        return self.batch.respond(rates, STREAM_QUERY, progress, "query")

    def scores(self, counts: np.ndarray, threshold: int | None = None) -> np.ndarray:
        """Place scores (Q, n_places) from :meth:`respond`'s counts; ``threshold`` defaults to the calibrated one."""
        t = self.threshold if threshold is None else threshold
        keep = assignment.keep_mask(self.activity, t)
        return assignment.place_scores(counts, self.assignments, self.places, keep, self.n_places)

    def calibrate(self, counts: np.ndarray, gt: np.ndarray, candidates=None) -> list[dict]:
        """Set :attr:`threshold` from calibration queries' counts (M, Qc, N) and ground truth (Qc, n_places)."""
        self.threshold, table = assignment.calibrate(
            counts, gt, self.assignments, self.places, self.activity, self.n_places, candidates)
        return table

    def module_stats(self) -> list[dict]:
        """Per module: its places, assigned neurons, places without neurons, neurons removed."""
        keep = assignment.keep_mask(self.activity, self.threshold)
        rows = []
        for m in range(self.n_modules):
            pl = self.places[m][self.places[m] >= 0]
            assigned = self.assignments[m] >= 0
            rows.append({
                "module": m, "first_place": int(pl.min()), "n_places": len(pl),
                "neurons_assigned": int(assigned.sum()),
                "places_without_neurons": int(len(np.setdiff1d(pl, self.assignments[m]))),
                "hyperactive_removed": int((~keep[m] & assigned).sum()),
                "mean_activity": float(self.activity[m].mean()),
            })
        return rows

    def save(self, path: str | Path) -> None:
        """Write everything needed to query the ensemble to one ``.npz`` file (atomically)."""
        meta = {"format": FORMAT, "config": self.config.to_dict(), "n_places": self.n_places,
                "threshold": self.threshold, "seconds": self.seconds}
        arrays = {"meta": np.array(json.dumps(meta)), "places": self.places, "assignments": self.assignments,
                  "activity": self.activity, "modules": self.batch.modules, "w": self.batch.w,
                  "delays": self.batch.delays, "theta": self.batch.theta}
        _save_atomic(Path(path), arrays)

    @classmethod
    def load(cls, path: str | Path) -> "RegionalEnsemble":
        path = Path(path)
        if not path.is_file():
            raise DataError(f"ensemble file {path} does not exist")
        try:
            with np.load(path) as f:
                meta = json.loads(str(f["meta"]))
                a = {k: f[k] for k in f.files}
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path} is not a saved spikelab ensemble: {exc}") from None
        if meta.get("format") != FORMAT:
            raise DataError(f"{path} is not a saved spikelab ensemble (format {meta.get('format')!r})")
        config = EnsembleConfig.from_dict(meta["config"])
        batch = DiehlCookBatch(config.network, config.seed, a["modules"], a["w"], a["delays"], a["theta"])
        return cls(config, meta["n_places"], batch, a["places"], a["assignments"], a["activity"],
                   meta["threshold"], meta["seconds"])
