"""Place-recognition (retrieval) metrics from a similarity matrix and a ground-truth matrix.

Conventions: ``scores`` (Q, R), higher = more similar; ``gt`` (Q, R) boolean, ``gt[q, r]`` true
when reference ``r`` is a correct match for query ``q`` (frame tolerance already applied).

* Recall@N: fraction of queries that have a true match whose N best references contain one.
  Ties are counted against the method: the best true match's rank is the number of wrong
  references scoring at least as high (so a constant score row never counts as correct).
* PR curve (single best match per query, as in VPR): a query is *accepted* when its best score
  is at least a threshold; precision = correct accepted / accepted, recall = correct accepted /
  queries that have a true match. The curve runs over all distinct best scores and starts at
  (recall 0, precision 1), as scikit-learn's does; AUC is its trapezoidal area.
* P@100%R: precision when every query is accepted (equals R@1 when every query has a match).
* R@100%P: the largest recall reached with no false positive (0 if the most confident match
  is wrong).
"""

from __future__ import annotations

import numpy as np


def _check(scores: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    gt = np.asarray(gt, dtype=bool)
    if scores.ndim != 2 or scores.shape != gt.shape:
        raise ValueError(f"scores {scores.shape} and ground truth {gt.shape} must both be (queries, references)")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinite values")
    return scores, gt


def true_match_rank(scores: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Rank (0 = best) of each query's best true match, ties counted against it; -1 if none exists."""
    scores, gt = _check(scores, gt)
    best_true = np.where(gt, scores, -np.inf).max(axis=1)
    rank = ((scores >= best_true[:, None]) & ~gt).sum(axis=1)
    return np.where(gt.any(axis=1), rank, -1)


def recall_at_n(scores: np.ndarray, gt: np.ndarray, ns=(1, 5, 10)) -> dict[int, float]:
    """Recall@N for every N in ``ns`` over the queries that have a true match."""
    rank = true_match_rank(scores, gt)
    valid = rank >= 0
    if not valid.any():
        raise ValueError("no query has a true match in the ground truth")
    return {int(n): float(np.mean(rank[valid] < n)) for n in ns}


def best_matches(scores: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's best score (Q,) and whether its best match is correct (Q,), ties counted as wrong."""
    return _check(scores, gt)[0].max(axis=1), true_match_rank(scores, gt) == 0


def pr_curve(best_score: np.ndarray, correct: np.ndarray, n_positive: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) with recall increasing; the first point is (P=1, R=0, +inf)."""
    best_score = np.asarray(best_score, np.float64)
    correct = np.asarray(correct, bool)
    if n_positive <= 0:
        raise ValueError("n_positive must be positive (no query has a true match)")
    order = np.argsort(-best_score, kind="stable")
    s, c = best_score[order], correct[order]
    last = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last query of every distinct threshold
    tp = np.cumsum(c)[last]
    accepted = last + 1
    precision = np.r_[1.0, tp / accepted]
    recall = np.r_[0.0, tp / n_positive]
    return precision, recall, np.r_[np.inf, s[last]]


def auc(precision: np.ndarray, recall: np.ndarray) -> float:
    """Trapezoidal area under a PR curve given with increasing recall."""
    return float(np.sum(np.diff(recall) * (precision[1:] + precision[:-1]) / 2.0))


def recall_at_full_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """Largest recall whose precision is 1."""
    ok = precision >= 1.0
    return float(recall[ok].max()) if ok.any() else 0.0


def evaluate(scores: np.ndarray, gt: np.ndarray, ns=(1, 5, 10)) -> dict[str, float]:
    """All metrics: ``R@N`` for N in ``ns``, ``AUC``, ``P@100%R``, ``R@100%P``."""
    scores, gt = _check(scores, gt)
    out = {f"R@{n}": v for n, v in recall_at_n(scores, gt, ns).items()}
    best, correct = best_matches(scores, gt)
    precision, recall, _ = pr_curve(best, correct, int(gt.any(axis=1).sum()))
    out["AUC"] = auc(precision, recall)
    out["P@100%R"] = float(precision[-1])
    out["R@100%P"] = recall_at_full_precision(precision, recall)
    return out
