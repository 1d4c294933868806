"""Loki's Fréchet-mean prediction (zslab.methods.loki) on a label space of three points on a line, where every
answer can be worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zslab.methods.loki import (LABEL_METRICS, argmax_predict, evaluate_rules, frechet_predict, label_metric,
                                observed_subset, shuffled_metric, squared_distance)

LINE = np.abs(np.subtract.outer(np.arange(3.0), np.arange(3.0)))   # classes at 0, 1, 2: d(i, j) = |i − j|


def test_frechet_mean_names_the_class_between_two_likely_observed_ones():
    # observed {0, 2}; objective(y) = p0·d(y,0)² + p2·d(y,2)²
    probs = np.array([[0.5, 0.5],      # y=0: 2, y=1: 1, y=2: 2  -> 1, a class the classifier never scores
                      [0.9, 0.1],      # y=0: 0.4, y=1: 1.0, y=2: 3.6 -> 0
                      [0.3, 0.7]])     # y=0: 2.8, y=1: 1.0, y=2: 1.2 -> 1
    assert frechet_predict(probs, LINE, observed=[0, 2]).tolist() == [1, 0, 1]
    assert argmax_predict(probs, observed=[0, 2]).tolist() == [0, 0, 2]
    # with every class observed and a confident model, Loki agrees with argmax
    assert frechet_predict(np.eye(3), LINE).tolist() == [0, 1, 2]


def test_squared_distance_rewards_near_misses():
    assert squared_distance(np.array([1, 0, 2]), np.array([1, 1, 0]), LINE).tolist() == [0.0, 1.0, 4.0]


def test_inputs_are_checked():
    with pytest.raises(ValueError, match=r"probs must be \[N, 2\]"):
        frechet_predict(np.ones((2, 3)) / 3, LINE, observed=[0, 2])
    with pytest.raises(ValueError, match=r"outside the label space of 3 classes"):
        frechet_predict(np.ones((1, 2)) / 2, LINE, observed=[0, 5])
    with pytest.raises(ValueError, match="square"):
        frechet_predict(np.ones((1, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="n_observed must be in 1..3, got 4"):
        observed_subset(3, 4)
    with pytest.raises(Exception, match="valid choices: 'attributes', 'text embeddings', 'wordnet'"):
        label_metric("hamming", "zsworld", ["red solid circle"])
    assert set(LABEL_METRICS) == {"attributes", "wordnet", "text embeddings"}


def test_relabelled_metric_keeps_the_distances_and_loses_the_meaning():
    d = label_metric("attributes", "animal_mnist", ["bear", "bird", "cat", "cow", "dog"])
    control = shuffled_metric(d, seed=3)
    np.testing.assert_allclose(np.sort(control.ravel()), np.sort(d.ravel()))
    np.testing.assert_allclose(control, control.T)
    assert np.all(np.diag(control) == 0) and not np.allclose(control, d)
    assert observed_subset(10, 4, seed=1) == sorted(observed_subset(10, 4, seed=1)) and len(observed_subset(10, 4)) == 4


def test_rules_on_the_same_images():
    cosines = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.6, 0.5]])   # image 0 is class 0, image 1 is class 1
    out = evaluate_rules(cosines, torch.tensor([0, 1]), observed=[0, 2], metrics={"line": LINE}, task_metric=LINE,
                         logit_scale=1.0)
    # argmax over {0, 2}: 0 and 2. Loki (scale 1: nearly flat probabilities) picks the middle class 1 for both
    assert out["argmax"]["pred"].tolist() == [0, 2] and out["Loki (line)"]["pred"].tolist() == [1, 1]
    assert out["argmax"]["neg_sq_distance"].tolist() == [0.0, -1.0]
    assert out["Loki (line)"]["neg_sq_distance"].tolist() == [-1.0, 0.0]
    assert out["Loki (line)"]["correct"].tolist() == [0.0, 1.0]
