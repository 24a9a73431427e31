"""Retrieval metrics against scikit-learn and brute-force numpy loops."""

import numpy as np
import pytest
from sklearn.metrics import auc as sk_auc
from sklearn.metrics import precision_recall_curve, top_k_accuracy_score

from spikelab.data.traverse import dilate, identity_ground_truth
from spikelab.metrics.retrieval import best_matches, evaluate, pr_curve, recall_at_n, true_match_rank


def test_recall_at_n_matches_sklearn_top_k_accuracy():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 80))
    gt = np.zeros((60, 80), bool)
    truth = rng.integers(0, 80, 60)
    gt[np.arange(60), truth] = True
    got = recall_at_n(scores, gt, (1, 5, 10))
    for n in (1, 5, 10):
        assert got[n] == pytest.approx(top_k_accuracy_score(truth, scores, k=n, labels=np.arange(80)))


def test_recall_with_tolerance_matches_loop():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(50, 50))
    gt = identity_ground_truth(50, 50, tolerance=2)
    gt[7] = False  # a query without a true match is not counted
    got = recall_at_n(scores, gt, (1, 3, 20))
    for n in (1, 3, 20):
        hits = [gt[q, np.argsort(-scores[q])[:n]].any() for q in range(50) if gt[q].any()]
        assert got[n] == pytest.approx(np.mean(hits))


def test_ties_count_against_the_method():
    scores = np.zeros((3, 4))
    scores[1, 1] = 1.0
    gt = np.eye(3, 4, dtype=bool)
    assert true_match_rank(scores, gt).tolist() == [3, 0, 3]  # a constant row never counts as a hit
    assert recall_at_n(scores, gt, (1,))[1] == pytest.approx(1 / 3)


def test_pr_curve_matches_sklearn():
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(70, 90))
    gt = dilate(np.eye(70, 90, dtype=bool), 1)
    for q in range(0, 70, 3):  # make a third of the queries right with varying confidence
        scores[q, q] = scores[q].max() + rng.random()
    gt[5] = False  # one query has no true match: accepting it is always a false positive
    best, correct = best_matches(scores, gt)
    n_positive = int(gt.any(axis=1).sum())
    precision, recall, thresholds = pr_curve(best, correct, n_positive)
    sk_p, sk_r, sk_t = precision_recall_curve(correct, best)
    # scikit-learn orders by decreasing recall and divides recall by the correct queries only
    np.testing.assert_allclose(precision[1:], sk_p[::-1][1:])
    np.testing.assert_allclose(recall[1:], sk_r[::-1][1:] * correct.sum() / n_positive)
    np.testing.assert_allclose(thresholds[1:], sk_t[::-1])
    m = evaluate(scores, gt)
    assert m["AUC"] == pytest.approx(sk_auc(recall, precision))
    assert m["P@100%R"] == pytest.approx(correct.sum() / len(correct))
    # recall at 100 % precision by brute force over thresholds
    best_r = max([correct[best >= t].sum() / n_positive for t in best if correct[best >= t].all()], default=0.0)
    assert m["R@100%P"] == pytest.approx(best_r)
    assert m["R@1"] == pytest.approx(correct[gt.any(axis=1)].mean())


def test_p_at_full_recall_is_r_at_1_when_every_query_has_a_match():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(40, 40)) + 3 * np.eye(40) * (rng.random(40) < 0.5)
    m = evaluate(scores, identity_ground_truth(40, 40))
    assert m["P@100%R"] == pytest.approx(m["R@1"])
    assert 0 < m["R@1"] < 1 and 0 < m["AUC"] <= 1


def test_metric_input_errors():
    with pytest.raises(ValueError, match="must both be"):
        evaluate(np.zeros((3, 4)), np.zeros((4, 3), bool))
    with pytest.raises(ValueError, match="NaN"):
        evaluate(np.full((2, 2), np.nan), np.eye(2, dtype=bool))
    with pytest.raises(ValueError, match="no query has a true match"):
        evaluate(np.zeros((2, 2)), np.zeros((2, 2), bool))
