"""Tests for zslab.metrics: small cases worked out by hand, brute-force cross-checks, and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zslab.metrics import (
    accuracy,
    across_seeds,
    auroc,
    bootstrap_ci,
    bootstrap_mean_ci,
    calibrated_stacking,
    classification_metrics,
    fpr_at_tpr,
    gzsl_metrics,
    mean_per_class_accuracy,
    ood_metrics,
    recall_at_k,
    student_t_ppf,
    topk_accuracy,
)

# --------------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------------

# 3 classes, 5 samples. Rankings (best first) and where the true class lands:
#   s0 [0.7, 0.2, 0.1] -> 0,1,2   label 0: rank 1
#   s1 [0.1, 0.3, 0.6] -> 2,1,0   label 1: rank 2
#   s2 [0.2, 0.5, 0.3] -> 1,2,0   label 1: rank 1
#   s3 [0.5, 0.4, 0.1] -> 0,1,2   label 2: rank 3
#   s4 [0.1, 0.1, 0.8] -> 2,0,1   label 2: rank 1
# top-1 = 3/5, top-2 = 4/5, top-3 = 5/5, top-5 = NaN (only 3 classes).
# top-1 predictions [0, 2, 1, 0, 2]; per class: c0 1/1, c1 1/2, c2 1/2 -> mean (1 + .5 + .5)/3 = 2/3.
SCORES = np.array([[0.7, 0.2, 0.1],
                   [0.1, 0.3, 0.6],
                   [0.2, 0.5, 0.3],
                   [0.5, 0.4, 0.1],
                   [0.1, 0.1, 0.8]])
LABELS = np.array([0, 1, 1, 2, 2])
PREDS = np.array([0, 2, 1, 0, 2])


def test_topk_accuracy_hand_example():
    out = topk_accuracy(SCORES, LABELS, ks=(1, 2, 3, 5))
    assert list(out) == ["acc1", "acc2", "acc3", "acc5"]
    assert out["acc1"] == pytest.approx(3 / 5)
    assert out["acc2"] == pytest.approx(4 / 5)
    assert out["acc3"] == pytest.approx(1.0)
    assert math.isnan(out["acc5"])
    assert all(type(v) is float for v in out.values())


def test_topk_default_keys_and_accuracy():
    assert set(topk_accuracy(SCORES, LABELS)) == {"acc1", "acc5"}
    assert accuracy(SCORES, LABELS) == pytest.approx(0.6)
    assert type(accuracy(SCORES, LABELS)) is float


def test_topk_accepts_torch_tensors():
    out = topk_accuracy(torch.tensor(SCORES, dtype=torch.float32, requires_grad=True), torch.tensor(LABELS),
                        ks=(1, 2))
    assert out == {"acc1": pytest.approx(0.6), "acc2": pytest.approx(0.8)}
    assert accuracy(torch.tensor(SCORES, dtype=torch.bfloat16), torch.tensor(LABELS)) == pytest.approx(0.6)


def test_ties_go_to_lower_class_index():
    scores = np.zeros((4, 3))
    labels = np.array([0, 1, 2, 0])
    assert accuracy(scores, labels) == pytest.approx(0.5)  # always predicts class 0
    assert topk_accuracy(scores, labels, ks=(2,))["acc2"] == pytest.approx(0.75)  # classes 0, 1


def test_mean_per_class_accuracy_hand_example():
    assert mean_per_class_accuracy(PREDS, LABELS) == pytest.approx(2 / 3)
    # only classes 1 and 2: (1/2 + 1/2) / 2
    assert mean_per_class_accuracy(PREDS, LABELS, classes=[1, 2]) == pytest.approx(0.5)
    assert mean_per_class_accuracy(torch.tensor(PREDS), torch.tensor(LABELS, dtype=torch.float32)) == \
        pytest.approx(2 / 3)


def test_mean_per_class_differs_from_plain_accuracy_when_imbalanced():
    labels = np.array([0] * 9 + [1])
    preds = np.zeros(10, dtype=int)
    assert np.mean(preds == labels) == pytest.approx(0.9)
    assert mean_per_class_accuracy(preds, labels) == pytest.approx(0.5)


def test_classification_metrics_keys():
    out = classification_metrics(SCORES, LABELS)
    assert set(out) == {"acc1", "acc5", "mean_per_class_recall"}
    assert out["acc1"] == pytest.approx(0.6)
    assert math.isnan(out["acc5"])
    assert out["mean_per_class_recall"] == pytest.approx(2 / 3)


def test_classification_bad_input():
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        topk_accuracy(SCORES, LABELS[:4])
    with pytest.raises(ValueError, match=r"\[3\]"):
        accuracy(SCORES, np.array([0, 1, 3, 2, 2]))
    with pytest.raises(ValueError, match="2-D"):
        accuracy(SCORES[0], LABELS[:1])
    with pytest.raises(ValueError, match="NaN"):
        accuracy(np.array([[np.nan, 1.0]]), np.array([0]))
    with pytest.raises(ValueError, match="0"):
        topk_accuracy(SCORES, LABELS, ks=(0,))
    with pytest.raises(ValueError, match="integer"):
        accuracy(SCORES, np.array([0.5, 1, 1, 2, 2]))
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        mean_per_class_accuracy(PREDS, LABELS[:4])
    with pytest.raises(ValueError, match=r"\[7\]"):
        mean_per_class_accuracy(PREDS, LABELS, classes=[1, 7])


# --------------------------------------------------------------------------------------------------
# GZSL
# --------------------------------------------------------------------------------------------------

def test_gzsl_hand_example():
    # seen {0, 1}, unseen {2, 3}; predictions over all four classes.
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 3, 3])
    preds = np.array([0, 0, 0, 2, 1, 0, 2, 0, 1, 1, 1, 3])
    # seen:   class 0: 3/4, class 1: 1/2        -> S = 0.625
    # unseen: class 2: 1/2, class 3: 1/4        -> U = 0.375
    # H = 2 * .625 * .375 / (.625 + .375) = 0.46875
    out = gzsl_metrics(preds, labels, seen_classes=[0, 1], unseen_classes=[2, 3])
    assert out == {"seen": pytest.approx(0.625), "unseen": pytest.approx(0.375),
                   "harmonic": pytest.approx(0.46875)}
    assert list(out) == ["seen", "unseen", "harmonic"]


def test_gzsl_harmonic_zero_and_nan():
    labels = np.array([0, 1])
    out = gzsl_metrics(np.array([1, 0]), labels, [0], [1])
    assert out == {"seen": 0.0, "unseen": 0.0, "harmonic": 0.0}
    # no unseen samples in the test set: U and H undefined
    out = gzsl_metrics(np.array([0, 0]), np.array([0, 0]), [0], [1])
    assert out["seen"] == 1.0 and math.isnan(out["unseen"]) and math.isnan(out["harmonic"])


def test_gzsl_bad_input():
    with pytest.raises(ValueError, match=r"disjoint.*\[1\]"):
        gzsl_metrics(np.array([0, 1]), np.array([0, 1]), [0, 1], [1, 2])
    with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
        gzsl_metrics(np.array([0, 1, 1]), np.array([0, 1]), [0], [1])
    with pytest.raises(ValueError, match=r"neither seen nor unseen.*\[5\]"):
        gzsl_metrics(np.array([0, 5]), np.array([0, 5]), [0], [1])


def test_calibrated_stacking():
    scores = np.array([[0.6, 0.5, 0.4],
                       [0.9, 0.1, 0.85]])
    unseen = np.array([False, True, True])
    out = calibrated_stacking(scores, unseen, gamma=0.2)
    np.testing.assert_allclose(out, [[0.4, 0.5, 0.4], [0.7, 0.1, 0.85]])
    # the seen bias flips both predictions to unseen classes
    assert out.argmax(axis=1).tolist() == [1, 2]
    np.testing.assert_allclose(calibrated_stacking(scores, unseen, 0.0), scores)

    t = torch.tensor(scores, requires_grad=True)
    out_t = calibrated_stacking(t, torch.tensor(unseen), 0.2)
    assert isinstance(out_t, torch.Tensor) and out_t.requires_grad
    np.testing.assert_allclose(out_t.detach().numpy(), out)


def test_calibrated_stacking_bad_input():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2,\)"):
        calibrated_stacking(np.zeros((2, 3)), np.array([True, False]), 0.1)
    with pytest.raises(ValueError, match="boolean"):
        calibrated_stacking(np.zeros((2, 3)), np.array([1, 2]), 0.1)
    with pytest.raises(ValueError, match="nan"):
        calibrated_stacking(np.zeros((2, 3)), np.array([True, False, True]), float("nan"))


# --------------------------------------------------------------------------------------------------
# OOD
# --------------------------------------------------------------------------------------------------

def _auroc_brute(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a[:, None] - b[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


def test_auroc_extremes():
    assert auroc([2.0, 3.0, 4.0], [0.0, 1.0]) == 1.0
    assert auroc([0.0, 1.0], [2.0, 3.0, 4.0]) == 0.0
    assert auroc(np.ones(5), np.ones(7)) == 0.5
    # one tie out of 4 pairs: (1 + 1 + 1 + 0.5) / 4
    assert auroc([1.0, 2.0], [0.0, 1.0]) == pytest.approx(0.875)


def test_auroc_matches_pairwise_count_on_random_data():
    rng = np.random.default_rng(0)
    a = np.round(rng.normal(0.5, 1.0, 300), 1)  # rounding creates many ties
    b = np.round(rng.normal(0.0, 1.0, 200), 1)
    assert auroc(a, b) == pytest.approx(_auroc_brute(a, b), abs=1e-12)
    assert auroc(torch.tensor(a), torch.tensor(b)) == pytest.approx(_auroc_brute(a, b), abs=1e-12)


def test_fpr_at_tpr_constructed_case():
    scores_in = np.arange(1, 21, dtype=float)  # 1..20; keeping 95% = 19 of 20 -> threshold 2
    scores_out = np.array([0.0, 1.0, 1.5, 2.0, 2.5, 30.0, -5.0, 1.9, 0.5, 10.0])
    # OOD >= 2: 2.0, 2.5, 30.0, 10.0 -> 4/10 (the tie at the threshold counts)
    assert fpr_at_tpr(scores_in, scores_out) == pytest.approx(0.4)
    # tpr 0.5 keeps 10 of 20 -> threshold 11: only 30.0 -> 1/10
    assert fpr_at_tpr(scores_in, scores_out, tpr=0.5) == pytest.approx(0.1)
    # tpr 1.0 -> threshold 1: 1.0, 1.5, 2.0, 2.5, 30.0, 1.9, 10.0 -> 7/10
    assert fpr_at_tpr(scores_in, scores_out, tpr=1.0) == pytest.approx(0.7)
    assert fpr_at_tpr([5.0, 6.0], [1.0, 2.0]) == 0.0  # perfectly separated


def test_ood_metrics_keys():
    out = ood_metrics([2.0, 3.0, 4.0], [0.0, 1.0])
    assert out == {"auroc": 1.0, "fpr95": 0.0}


def test_ood_bad_input():
    with pytest.raises(ValueError, match="scores_out.*empty"):
        auroc([1.0], [])
    with pytest.raises(ValueError, match=r"scores_in.*1-D.*\(2, 2\)"):
        auroc(np.zeros((2, 2)), [1.0])
    with pytest.raises(ValueError, match="1.5"):
        fpr_at_tpr([1.0], [0.0], tpr=1.5)
    with pytest.raises(ValueError, match="NaN"):
        auroc([np.nan, 1.0], [0.0])


# --------------------------------------------------------------------------------------------------
# retrieval
# --------------------------------------------------------------------------------------------------

# 3 queries x 4 gallery items; rankings (best first):
#   q0 [0.9, 0.1, 0.5, 0.3] -> 0, 2, 3, 1
#   q1 [0.2, 0.4, 0.8, 0.6] -> 2, 3, 1, 0
#   q2 [0.5, 0.5, 0.1, 0.7] -> 3, 0, 1, 2   (tie 0/1: lower index first)
SIM = np.array([[0.9, 0.1, 0.5, 0.3],
                [0.2, 0.4, 0.8, 0.6],
                [0.5, 0.5, 0.1, 0.7]])


def test_recall_at_k_single_positive():
    # positives 0 (rank 1), 1 (rank 3), 1 (rank 3): R@1 1/3, R@2 1/3, R@3 1, R@10 NaN (4 items)
    out = recall_at_k(SIM, np.array([0, 1, 1]), ks=(1, 2, 3, 10))
    assert list(out) == ["R@1", "R@2", "R@3", "R@10"]
    assert out["R@1"] == pytest.approx(1 / 3)
    assert out["R@2"] == pytest.approx(1 / 3)
    assert out["R@3"] == pytest.approx(1.0)
    assert math.isnan(out["R@10"])
    assert recall_at_k(SIM, [0, 1, 1], ks=(1, 2)) == {"R@1": pytest.approx(1 / 3), "R@2": pytest.approx(1 / 3)}
    assert recall_at_k(torch.tensor(SIM), torch.tensor([0, 1, 1]), ks=(3,)) == {"R@3": 1.0}


def test_recall_at_k_multiple_positives():
    # q0 {1, 3}: best rank 3; q1 {3}: rank 2; q2 {2, 0}: rank 2 -> R@1 0, R@2 2/3, R@3 1
    positives = [[1, 3], {3}, (2, 0)]
    out = recall_at_k(SIM, positives, ks=(1, 2, 3))
    assert out == {"R@1": 0.0, "R@2": pytest.approx(2 / 3), "R@3": 1.0}
    # mixed: a bare int among iterables is one positive
    assert recall_at_k(SIM, [0, [3], [3, 2]], ks=(1,)) == {"R@1": pytest.approx(2 / 3)}


def test_recall_at_k_bad_input():
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2,\)"):
        recall_at_k(SIM, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"\(3, 4\).*2 entries"):
        recall_at_k(SIM, [[0], [1, 2]])
    with pytest.raises(ValueError, match=r"positives\[1\] is empty"):
        recall_at_k(SIM, [[0], [], [1]])
    with pytest.raises(ValueError, match=r"\[4\]"):
        recall_at_k(SIM, np.array([0, 4, 1]))


# --------------------------------------------------------------------------------------------------
# intervals
# --------------------------------------------------------------------------------------------------

def test_bootstrap_mean_ci_covers_mean_and_shrinks():
    rng = np.random.default_rng(123)
    big = rng.normal(2.0, 1.0, 20_000)
    small = big[:200]
    lo, hi = bootstrap_mean_ci(big, n_resamples=500)
    assert lo < 2.0 < hi
    lo_s, hi_s = bootstrap_mean_ci(small, n_resamples=500)
    assert (hi - lo) < (hi_s - lo_s) / 5  # width ~ 1/sqrt(n): 100x the data, ~10x narrower
    # the 95% normal-theory half-width for n=20000, sd=1 is 1.96/sqrt(20000) ~ 0.0139
    assert (hi - lo) / 2 == pytest.approx(1.96 / math.sqrt(big.size), rel=0.15)


def test_bootstrap_deterministic_and_consistent():
    v = (np.random.default_rng(5).random(300) < 0.7).astype(float)  # 0/1 correctness vector
    a = bootstrap_mean_ci(v, seed=7)
    assert a == bootstrap_mean_ci(v, seed=7)
    assert a != bootstrap_mean_ci(v, seed=8)
    assert a[0] < v.mean() < a[1]
    # the vectorised fast path draws the same resamples as the generic one
    b = bootstrap_ci(np.mean, v, n_resamples=2000, seed=7)
    assert b == pytest.approx(a, rel=1e-12)
    assert bootstrap_ci(np.mean, v, n_resamples=200, seed=1) == bootstrap_ci(np.mean, v, n_resamples=200, seed=1)


def test_bootstrap_ci_resamples_rows_jointly():
    labels = np.repeat(np.arange(3), 50)
    preds = labels.copy()
    # perfect predictions stay perfect only if preds and labels are resampled with the same indices
    assert bootstrap_ci(mean_per_class_accuracy, preds, labels, n_resamples=50) == (1.0, 1.0)
    preds[::5] = (preds[::5] + 1) % 3
    lo, hi = bootstrap_ci(mean_per_class_accuracy, preds, labels, n_resamples=200, level=0.9)
    assert lo < mean_per_class_accuracy(preds, labels) < hi
    assert bootstrap_ci(mean_per_class_accuracy, torch.tensor(preds), torch.tensor(labels), n_resamples=200,
                        level=0.9) == (lo, hi)


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="1.5"):
        bootstrap_mean_ci(np.ones(5), level=1.5)
    with pytest.raises(ValueError, match="0"):
        bootstrap_ci(np.mean, np.ones(5), level=0)
    with pytest.raises(ValueError, match=r"\(5,\).*\(4,\)"):
        bootstrap_ci(lambda a, b: 0.0, np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="n_resamples.*0"):
        bootstrap_mean_ci(np.ones(5), n_resamples=0)
    with pytest.raises(ValueError, match="not finite"):
        bootstrap_ci(lambda a: float("nan"), np.ones(5), n_resamples=10)


def test_student_t_ppf_known_values():
    # two-sided 95% / 90% critical values from standard tables
    for df, expected in [(1, 12.706), (2, 4.303), (3, 3.182), (4, 2.776), (9, 2.262), (30, 2.042)]:
        assert student_t_ppf(0.975, df) == pytest.approx(expected, abs=5e-4)
    for df, expected in [(1, 6.314), (2, 2.920), (5, 2.015), (20, 1.725)]:
        assert student_t_ppf(0.95, df) == pytest.approx(expected, abs=5e-4)
    assert student_t_ppf(0.995, 3) == pytest.approx(5.841, abs=5e-4)
    assert student_t_ppf(0.975, 1_000_000) == pytest.approx(1.95996, abs=1e-4)  # -> normal
    assert student_t_ppf(0.5, 3) == 0.0
    assert student_t_ppf(0.025, 4) == pytest.approx(-student_t_ppf(0.975, 4))
    # df = 1 is the Cauchy distribution: ppf(q) = tan(pi (q - 1/2))
    assert student_t_ppf(0.9, 1) == pytest.approx(math.tan(math.pi * 0.4), rel=1e-9)


def test_across_seeds_hand_computation():
    out = across_seeds([0.71, 0.73, 0.72])
    # mean 0.72, sd 0.01, sem 0.01/sqrt(3), t(0.975, 2) = 4.3027 -> half-width 0.024841
    assert set(out) == {"mean", "low", "high", "half_width", "n"}
    assert out["n"] == 3 and out["half_width"] == pytest.approx(0.024841, abs=1e-5)
    assert out["mean"] == pytest.approx(0.72)
    assert out["low"] == pytest.approx(0.72 - 0.024841, abs=1e-5)
    assert out["high"] == pytest.approx(0.72 + 0.024841, abs=1e-5)
    out90 = across_seeds(np.array([0.71, 0.73, 0.72]), level=0.9)
    assert out90["high"] - out90["mean"] == pytest.approx(2.920 * 0.01 / math.sqrt(3), abs=1e-5)
    assert across_seeds(torch.tensor([1.0, 3.0]))["high"] == pytest.approx(2 + 12.7062, abs=1e-3)


def test_across_seeds_single_value_has_no_interval():
    """One seed says nothing about the spread between seeds: no interval, never a zero-width one."""
    out = across_seeds([0.8])
    assert out["mean"] == 0.8 and out["n"] == 1
    assert math.isnan(out["low"]) and math.isnan(out["high"]) and math.isnan(out["half_width"])


def test_across_seeds_bad_input():
    with pytest.raises(ValueError, match="1.2"):
        across_seeds([0.1, 0.2], level=1.2)
    with pytest.raises(ValueError, match="empty"):
        across_seeds([])
    with pytest.raises(ValueError, match="finite"):
        across_seeds([0.1, float("inf")])


def test_base_new_harmonic_by_hand():
    from zslab.metrics import base_new_harmonic

    assert base_new_harmonic(0.8, 0.6) == pytest.approx(2 * 0.8 * 0.6 / 1.4)
    assert base_new_harmonic(0.0, 0.0) == 0.0 and base_new_harmonic(1.0, 0.0) == 0.0
    with pytest.raises(ValueError, match="new_accuracy must be a fraction"):
        base_new_harmonic(0.5, 60.0)


def test_normalized_mutual_information_by_hand():
    from zslab.metrics import normalized_mutual_information

    assert normalized_mutual_information([0, 0, 1, 1], [5, 5, 7, 7]) == pytest.approx(1.0)   # a relabelling
    assert normalized_mutual_information([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)   # independent
    # 2 classes, 3 clusters: H(Y) = ln 2, H(C) = 1.5 ln 2, I = ln 2 -> 1 / sqrt(1.5)
    assert normalized_mutual_information([0, 0, 1, 1], [0, 0, 1, 2]) == pytest.approx(1 / 1.5 ** 0.5)
    with pytest.raises(ValueError, match="equal"):
        normalized_mutual_information([0, 1], [0])
