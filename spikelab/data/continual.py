"""Continual-learning scenarios: a train stream and a test stream of experiences (Avalanche's terms).

An :class:`Experience` is one task: its training or test samples, its task label and the
classes it contains. A :class:`Scenario` holds ``train_stream`` and ``test_stream`` (one
experience per task, in order) and says how outputs are organised:

* ``"domain"`` (domain-incremental): one shared head; every task uses the same labels.
* ``"class"`` (class-incremental): one shared head over the classes of all tasks; labels are
  unique across tasks (permuted tasks get labels ``10 t + digit``).
* ``"task"`` (task-incremental): one head per task (multi-head), chosen by the task label;
  labels are renumbered ``0 .. classes_per_task - 1`` within each task.

Builders (inputs are flattened and scaled to [0, 1]; pixels are permuted lazily per batch, so
ten permuted copies of MNIST cost no extra memory):

* :func:`permuted_mnist`: every task (the first too) permutes the pixels with a seeded permutation.
* :func:`split_mnist`: the ten digits split into ``n_tasks`` groups of classes.
* :func:`permuted_digits`: permuted tasks on scikit-learn's bundled 8x8 digits (no download).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from spikelab.errors import ConfigError

SETTINGS = ("domain", "class", "task")


@dataclass
class Experience:
    """One task of a stream.

    Attributes:
        current_experience: position in the stream (0-based).
        task_label: the task identity (used to pick a head in the task-incremental setting).
        inputs: samples (N, D) of any dtype; :meth:`batch` scales them by ``scale`` to [0, 1].
        targets: labels (N,) as seen by the model (already remapped for the setting).
        classes_in_this_experience: the original classes (digits) in this experience.
        permutation: optional pixel permutation (D,) applied per batch.
    """

    current_experience: int
    task_label: int
    inputs: torch.Tensor
    targets: torch.Tensor
    classes_in_this_experience: tuple[int, ...]
    scale: float = 1.0
    permutation: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.targets)

    def batch(self, index: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)``: float inputs (b, D) in [0, 1] and labels (b,) for the given sample indices."""
        x = self.inputs[index].to(torch.get_default_dtype()) * self.scale
        if self.permutation is not None:
            x = x[:, self.permutation]
        return x, self.targets[index]


@dataclass
class Scenario:
    """A continual-learning benchmark: ordered train and test streams and the output layout."""

    name: str
    setting: str
    train_stream: list[Experience]
    test_stream: list[Experience]
    n_outputs: int  # outputs per head
    input_size: int

    @property
    def n_tasks(self) -> int:
        return len(self.train_stream)

    @property
    def n_heads(self) -> int:
        return self.n_tasks if self.setting == "task" else 1


def _check_setting(setting: str) -> None:
    if setting not in SETTINGS:
        raise ConfigError(f"scenario setting {setting!r} is not one of {SETTINGS}")


def _subset(n: int, size: int | None, generator: torch.Generator, what: str) -> torch.Tensor:
    """A seeded random subset of ``range(n)`` of ``size`` samples (all, in order, when None)."""
    if size is None:
        return torch.arange(n)
    if not 0 < size <= n:
        raise ConfigError(f"{what}={size} must be between 1 and the {n} samples available")
    return torch.randperm(n, generator=generator)[:size].sort().values


def _permutations(n_tasks: int, dim: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randperm(dim, generator=gen) for _ in range(n_tasks)]


def _permuted(
    name: str,
    train: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    n_tasks: int,
    setting: str,
    seed: int,
    scale: float,
    n_classes: int,
    train_per_task: int | None,
    test_per_task: int | None,
) -> Scenario:
    _check_setting(setting)
    if n_tasks < 1:
        raise ConfigError(f"a permuted scenario needs n_tasks >= 1, got {n_tasks}")
    dim = train[0].shape[1]
    perms = _permutations(n_tasks, dim, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    streams = []
    for (x, y), size, what in ((train, train_per_task, "train_per_task"), (test, test_per_task, "test_per_task")):
        stream = []
        for t in range(n_tasks):
            idx = _subset(len(y), size, gen, what)
            targets = y[idx] + (n_classes * t if setting == "class" else 0)
            stream.append(
                Experience(t, t, x[idx], targets, tuple(range(n_classes)), scale=scale, permutation=perms[t])
            )
        streams.append(stream)
    n_outputs = n_classes * n_tasks if setting == "class" else n_classes
    return Scenario(name, setting, streams[0], streams[1], n_outputs, dim)


def permuted_mnist(
    root,
    n_tasks: int = 10,
    *,
    setting: str = "domain",
    seed: int = 0,
    train_per_task: int | None = None,
    test_per_task: int | None = None,
) -> Scenario:
    """Permuted MNIST: ``n_tasks`` tasks, each a seeded random pixel permutation (the first too).

    Inputs (784,) in [0, 1]; ``train_per_task`` / ``test_per_task`` take a seeded random subset.
    """
    from spikelab.data.mnist import load_mnist

    (xtr, ytr), (xte, yte) = load_mnist(root)
    return _permuted(
        "permuted_mnist", (xtr.reshape(len(xtr), -1), ytr), (xte.reshape(len(xte), -1), yte),
        n_tasks=n_tasks, setting=setting, seed=seed, scale=1 / 255, n_classes=10,
        train_per_task=train_per_task, test_per_task=test_per_task,
    )


def digits_arrays(test_fraction: float = 0.25, seed: int = 0):
    """scikit-learn's bundled 8x8 digits: ``((x_train, y_train), (x_test, y_test))``, x in [0, 16].

    A seeded stratified split; 1,797 samples in all, 64 features each.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    xtr, xte, ytr, yte = train_test_split(
        data.data.astype(np.float32), data.target, test_size=test_fraction, random_state=seed, stratify=data.target
    )
    as_t = lambda a, dt: torch.as_tensor(a, dtype=dt)  # noqa: E731
    return (as_t(xtr, torch.float32), as_t(ytr, torch.long)), (as_t(xte, torch.float32), as_t(yte, torch.long))


def permuted_digits(
    n_tasks: int = 5,
    *,
    setting: str = "domain",
    seed: int = 0,
    train_per_task: int | None = None,
    test_per_task: int | None = None,
) -> Scenario:
    """Permuted tasks on scikit-learn's 8x8 digits (built in, no download); inputs (64,) in [0, 1]."""
    train, test = digits_arrays(seed=seed)
    return _permuted(
        "permuted_digits", train, test, n_tasks=n_tasks, setting=setting, seed=seed, scale=1 / 16,
        n_classes=10, train_per_task=train_per_task, test_per_task=test_per_task,
    )


def split_mnist(
    root,
    n_tasks: int = 5,
    *,
    setting: str = "class",
    seed: int = 0,
    class_order: list[int] | None = None,
    train_per_task: int | None = None,
    test_per_task: int | None = None,
) -> Scenario:
    """Split MNIST: the digits in ``class_order`` (default 0..9) split into ``n_tasks`` equal groups.

    Class-incremental keeps the digit labels (one head of 10); domain- and task-incremental
    renumber them within each task (one head, or one head per task, of 10 / n_tasks outputs).
    """
    from spikelab.data.mnist import load_mnist

    _check_setting(setting)
    order = list(range(10)) if class_order is None else [int(c) for c in class_order]
    if sorted(order) != list(range(10)):
        raise ConfigError(f"class_order must be a permutation of the digits 0-9, got {order}")
    if n_tasks < 1 or 10 % n_tasks:
        raise ConfigError(f"split MNIST divides 10 digits into equal tasks: n_tasks must be 1, 2, 5 or 10, got {n_tasks}")
    per = 10 // n_tasks
    (xtr, ytr), (xte, yte) = load_mnist(root)
    gen = torch.Generator().manual_seed(seed)
    streams = []
    for (x, y), size, what in ((xtr, ytr), train_per_task, "train_per_task"), ((xte, yte), test_per_task, "test_per_task"):
        stream = []
        for t in range(n_tasks):
            classes = order[t * per : (t + 1) * per]
            mask = torch.zeros(len(y), dtype=torch.bool)
            for c in classes:
                mask |= y == c
            pool = torch.nonzero(mask).squeeze(1)
            pool = pool[_subset(len(pool), size, gen, what)]
            targets = y[pool]
            if setting != "class":
                lookup = torch.full((10,), -1, dtype=torch.long)
                lookup[torch.tensor(classes)] = torch.arange(per)
                targets = lookup[targets]
            stream.append(Experience(t, t, x[pool].reshape(len(pool), -1), targets, tuple(classes), scale=1 / 255))
        streams.append(stream)
    n_outputs = 10 if setting == "class" else per
    return Scenario("split_mnist", setting, streams[0], streams[1], n_outputs, 784)

