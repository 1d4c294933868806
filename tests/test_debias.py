import numpy as np
import pytest

from zslab.methods.debias import (null_input_weights, prior_imbalance, prior_matching_weights, reweight,
                                  softmax)


def test_prior_matching_removes_a_constant_word_bias_and_restores_accuracy():
    """Two classes; the classifier adds +2 to class 0's logit for every input (a word bias). True logits
    separate the classes, so removing the bias restores the right predictions."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 200)
    clean = np.stack([np.where(labels == 0, 1.0, -1.0), np.where(labels == 1, 1.0, -1.0)], 1)
    clean += rng.normal(0, 0.5, clean.shape)
    biased = softmax(clean + np.array([2.0, 0.0]))
    assert (biased.argmax(1) == labels).mean() < 0.8  # the bias costs accuracy
    w = prior_matching_weights(biased)
    fixed = reweight(biased, w)
    assert np.allclose(fixed.mean(0), [0.5, 0.5], atol=1e-6)
    assert (fixed.argmax(1) == labels).mean() > 0.95
    assert w[1] / w[0] == pytest.approx(np.exp(2.0), rel=0.25)  # undoes roughly the +2 logit shift


def test_prior_matching_is_identity_on_an_unbiased_classifier():
    p = softmax(np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]))
    assert np.allclose(prior_matching_weights(p), 1.0)
    assert prior_imbalance(p) == pytest.approx(0.0, abs=1e-12)


def test_prior_matching_reaches_a_non_uniform_target():
    p = softmax(np.random.default_rng(1).normal(size=(500, 3)))
    target = np.array([0.5, 0.3, 0.2])
    assert np.allclose(reweight(p, prior_matching_weights(p, target)).mean(0), target, atol=1e-6)


def test_null_input_weights_invert_the_null_prediction():
    w = null_input_weights([[0.8, 0.2], [0.6, 0.4]])  # mean 0.7 / 0.3
    assert w[1] / w[0] == pytest.approx(0.7 / 0.3)
    assert w.mean() == pytest.approx(1.0)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="sum to 1"):
        prior_matching_weights([[0.5, 0.2]])
    with pytest.raises(ValueError, match="shape"):
        prior_matching_weights([0.5, 0.5])
    with pytest.raises(ValueError, match="target_prior"):
        prior_matching_weights([[0.5, 0.5]], target_prior=np.array([1.0, 0.0]))
