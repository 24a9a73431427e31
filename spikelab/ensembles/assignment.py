"""Neuron-to-place assignment, hyperactive-neuron removal and place scores of an ensemble.

* Assignment: a neuron is labelled with the place for which its mean spike count (over the
  presentations of that place) is highest, ties to the first place; a neuron that never fired
  stays unassigned (-1) and never votes.
* Score of a place for a query: the summed spike count of the neurons assigned to that place
  divided by how many neurons are assigned to it (removed neurons still count in the divisor:
  their votes are zeroed, as in the reference code). Places without neurons score 0.
* Hyperactive neurons: a neuron that fires for at least ``T`` of the reference images is
  removed (``T = 0``: no removal). ``T`` is chosen on a calibration split of the queries.
"""

from __future__ import annotations

import numpy as np

from spikelab.metrics.retrieval import true_match_rank


def assign_neurons(counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Place label (N,) of every neuron from spike counts (P, N) of presentations labelled ``labels`` (P,)."""
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels)
    places = np.unique(labels)
    mean = np.stack([counts[labels == k].mean(axis=0) for k in places])  # (n_places, N)
    best = mean.argmax(axis=0)
    return np.where(mean.max(axis=0) > 0, places[best], -1)


def activity(counts: np.ndarray) -> np.ndarray:
    """Number of images (axis -2) for which each neuron fired at least once: (..., N)."""
    return (np.asarray(counts) > 0).sum(axis=-2)


def keep_mask(active: np.ndarray, threshold: int) -> np.ndarray:
    """True for neurons that keep their vote: ``active < threshold`` (all when ``threshold`` is 0)."""
    if threshold < 0:
        raise ValueError(f"hyperactivity threshold must be >= 0, got {threshold}")
    return np.ones(active.shape, bool) if threshold == 0 else active < threshold


def place_scores(counts: np.ndarray, assignments: np.ndarray, places: np.ndarray, keep: np.ndarray,
                 n_places: int) -> np.ndarray:
    """Scores (Q, n_places) from module responses ``counts`` (M, Q, N).

    ``assignments`` (M, N) global place per neuron (-1 none); ``places`` (M, K) the global places
    of every module (-1 padding); ``keep`` (M, N) neurons whose votes count.
    """
    M, Q, N = counts.shape
    out = np.zeros((Q, n_places))
    for m in range(M):
        valid = places[m] >= 0
        onehot = (assignments[m][:, None] == places[m][None, valid]).astype(np.float64)  # (N, K)
        n_assigned = onehot.sum(axis=0)
        weights = onehot * keep[m][:, None] / np.maximum(n_assigned, 1.0)
        out[:, places[m, valid]] = counts[m].astype(np.float64) @ weights
    return out


def calibrate(counts: np.ndarray, gt: np.ndarray, assignments: np.ndarray, places: np.ndarray,
              active: np.ndarray, n_places: int, candidates=None) -> tuple[int, list[dict]]:
    """Choose the hyperactivity threshold on calibration queries.

    ``counts`` (M, Qc, N) and ``gt`` (Qc, n_places) of the calibration queries. Candidates
    default to 0 (no removal) and every distinct activity level. The threshold with the highest
    R@1 wins; ties go to the higher mean reciprocal rank of the true match, then to the mildest
    removal. Returns the threshold and a table of every candidate's R@1, MRR and neurons removed.
    """
    if candidates is None:
        candidates = [0, *np.unique(active[active > 0]).tolist()]
    table = []
    for t in candidates:
        keep = keep_mask(active, int(t))
        rank = true_match_rank(place_scores(counts, assignments, places, keep, n_places), gt)
        valid = rank >= 0
        table.append({
            "threshold": int(t),
            "R@1": float(np.mean(rank[valid] == 0)) if valid.any() else 0.0,
            "MRR": float(np.mean(1.0 / (rank[valid] + 1))) if valid.any() else 0.0,
            "removed": int((~keep).sum()),
        })
    best = max(table, key=lambda r: (r["R@1"], r["MRR"], -r["removed"]))
    return best["threshold"], table
