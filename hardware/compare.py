"""Comparing spike trains of different backends (numpy only).

* :func:`match_rate`: fraction of (step, sample, neuron) entries that are identical -- 1.0 means
  bit-exact; the measure for emulator vs Lava.
* :func:`same_step_fraction`: ``2 |A and B| / (|A| + |B|)`` over spike events, the fraction of
  spikes that occur in the same step in both (1.0 iff identical, insensitive to the many silent
  entries); the measure for float vs fixed point.
* :func:`accuracy`: spike-count readout (argmax over output neurons, first index on ties).
"""

from __future__ import annotations

import numpy as np


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a).astype(bool), np.asarray(b).astype(bool)
    if a.shape != b.shape:
        raise ValueError(f"spike arrays have different shapes {a.shape} and {b.shape}")
    return a, b


def match_rate(a, b) -> float:
    """Fraction of entries where the two spike arrays agree."""
    a, b = _pair(a, b)
    return float((a == b).mean()) if a.size else 1.0


def same_step_fraction(a, b) -> float:
    """``2 |A and B| / (|A| + |B|)``: fraction of spikes at the same step and neuron in both."""
    a, b = _pair(a, b)
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else 1.0


def predictions(output_spikes) -> np.ndarray:
    """Predicted class per sample: argmax of the spike counts of (T, B, classes) output spikes."""
    return np.asarray(output_spikes).sum(axis=0).argmax(axis=1)


def accuracy(output_spikes, labels) -> float:
    """Classification accuracy of the spike-count readout."""
    labels = np.asarray(labels)
    return float((predictions(output_spikes) == labels).mean()) if labels.size else float("nan")


def layer_report(a: list, b: list, names: list[str]) -> list[dict]:
    """Per-layer spike counts, match rate and same-step fraction of two backends."""
    return [
        {"layer": n, "spikes_a": int(np.asarray(x).sum()), "spikes_b": int(np.asarray(y).sum()),
         "match_rate": match_rate(x, y), "same_step_fraction": same_step_fraction(x, y)}
        for n, x, y in zip(names, a, b)
    ]


def pooled(a: list, b: list, measure) -> float:
    """A measure over all layers at once (the layers' spikes concatenated)."""
    flat_a = np.concatenate([np.asarray(x).astype(bool).ravel() for x in a])
    flat_b = np.concatenate([np.asarray(y).astype(bool).ravel() for y in b])
    return measure(flat_a, flat_b)
