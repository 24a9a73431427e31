"""Continual-learning metrics on an accuracy matrix (Lopez-Paz & Ranzato 2017, GEM).

``R[i, j]`` is the accuracy on task ``j`` after training tasks ``0..i`` (T x T; entries never
measured are NaN). With ``T`` tasks:

* ACC = mean_j R[T-1, j]: average accuracy at the end.
* BWT = mean_{j < T-1} (R[T-1, j] - R[j, j]): backward transfer, negative when old tasks are
  forgotten.
* FWT = mean_{j > 0} (R[j-1, j] - b[j]): forward transfer, where ``b[j]`` is the accuracy of
  the randomly initialised model on task ``j``.

The functions keep the unit of ``R`` (fractions or percent); :func:`percent` converts.
"""

from __future__ import annotations

import numpy as np


def _square(matrix) -> np.ndarray:
    r = np.asarray(matrix, dtype=float)
    if r.ndim != 2 or r.shape[0] != r.shape[1] or r.shape[0] == 0:
        raise ValueError(f"the accuracy matrix must be square (T, T); got shape {r.shape}")
    return r


def average_accuracy(matrix) -> float:
    """ACC: mean accuracy over all tasks after the last one was trained."""
    r = _square(matrix)
    last = r[-1]
    if np.isnan(last).any():
        raise ValueError("the last row of the accuracy matrix must be fully evaluated")
    return float(last.mean())


def backward_transfer(matrix) -> float:
    """BWT: mean change of each earlier task's accuracy from just after it was learned to the end (0.0 for one task)."""
    r = _square(matrix)
    t = r.shape[0]
    if t == 1:
        return 0.0
    diff = r[-1, : t - 1] - np.diag(r)[: t - 1]
    if np.isnan(diff).any():
        raise ValueError("BWT needs R[T-1, j] and R[j, j] for every j < T-1")
    return float(diff.mean())


def forward_transfer(matrix, random_init) -> float | None:
    """FWT: mean of ``R[j-1, j] - b[j]`` over ``j > 0``; None if those entries were not measured."""
    r = _square(matrix)
    b = np.asarray(random_init, dtype=float)
    if b.shape != (r.shape[0],):
        raise ValueError(f"random_init needs one accuracy per task ({r.shape[0]}), got shape {b.shape}")
    if r.shape[0] == 1:
        return None
    before = np.array([r[j - 1, j] for j in range(1, r.shape[0])])
    if np.isnan(before).any() or np.isnan(b[1:]).any():
        return None
    return float((before - b[1:]).mean())


def percent(value: float | None) -> float | None:
    """Fraction -> percent (None stays None)."""
    return None if value is None else 100.0 * value
