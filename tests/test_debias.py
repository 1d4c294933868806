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


# ------------------------------------------------------------------------------------------ the oracle

def test_oracle_weights_reach_the_best_accuracy_of_a_grid_search():
    """Three classes: the exact coordinate ascent finds the accuracy of a fine 2-D grid over the two free
    log-weights (the authors' code grid-searches the same offsets)."""
    from zslab.methods.debias import optimal_weights

    rng = np.random.default_rng(1)
    grid = np.linspace(-4, 4, 121)
    for _ in range(4):
        y = rng.integers(0, 3, 60)
        logits = rng.normal(size=(60, 3))
        logits[np.arange(60), y] += 0.8
        logits[:, 1] += 1.0                                # a word bias towards class 1
        p = softmax(logits)
        acc = (reweight(p, optimal_weights(p, y)).argmax(1) == y).mean()
        best = max((softmax(np.log(p) + [0, a, b]).argmax(1) == y).mean() for a in grid for b in grid)
        assert acc >= best - 1e-9 and acc >= (p.argmax(1) == y).mean()


def test_oracle_needs_labels_of_every_input():
    from zslab.methods.debias import optimal_weights

    with pytest.raises(ValueError, match=r"labels must be \[N\]"):
        optimal_weights(softmax(np.zeros((4, 2))), [0, 1])


# ------------------------------------------------------------------------------------------ the protocol

class _Inputs:
    """A hand-made zero-shot problem: 2-d unit features, classes 'a'/'b' along the axes; the label word
    'bee' for class b is encoded off-axis, so choosing it biases the classifier towards class a."""

    def __init__(self):
        import torch

        self.classes, self.dataset = ["a", "b"], "toy"
        ang = np.concatenate([np.linspace(0.05, 0.75, 50), np.linspace(0.85, 1.5, 50)])
        self.labels = np.repeat([0, 1], 50)
        self.features = torch.tensor(np.stack([np.cos(ang), np.sin(ang)], 1), dtype=torch.float32)
        self.null_features = torch.tensor([[0.7071, 0.7071]])
        self.templates = ["{c}"]
        self.vectors = {"a": [1.0, 0.0], "b": [0.0, 1.0], "bee": [0.94, 0.34]}

    def encode_text(self, texts):
        import torch

        return torch.tensor([self.vectors[t] for t in texts])


def test_word_bias_experiment_averages_over_word_settings_and_prior_matching_repairs_the_bias():
    from zslab.methods.debias import REWEIGHTINGS, word_bias_experiment

    inputs = _Inputs()
    words = {"a": ["a"], "b": ["b", "bee"]}
    run = word_bias_experiment(inputs, words, vary_words=True, n_word_settings=8, scale=100.0, seed=0)
    assert set(run.correct) == set(REWEIGHTINGS) and run.n_classifiers == 8 and len(run.per_setting) == 8
    biased = run.per_setting[run.per_setting["raw"] < 0.9]     # settings that drew the word "bee"
    assert len(biased) > 0 and (biased["prior matching"] > biased["raw"] + 0.2).all()
    assert (run.per_setting["oracle"] >= run.per_setting["prior matching"] - 1e-9).all()
    assert run.prior_kl["prior matching"] < 1e-6 < run.prior_kl["raw"]
    control = word_bias_experiment(inputs, words, vary_words=False, scale=100.0)
    assert control.n_classifiers == 1 and control.correct["raw"].mean() > 0.95


def test_label_word_settings_start_with_the_class_names():
    from zslab.semantics.label_words import label_word_settings, load_label_words

    words = load_label_words("animal_mnist", ["cow", "zebra"])
    assert words["cow"][0] == "cow" and len(words["zebra"]) > 1
    settings = label_word_settings(words, 5, seed=0)
    assert settings[0] == {"cow": "cow", "zebra": "zebra"} and len(settings) == 5
    assert settings == label_word_settings(words, 5, seed=0)
    assert all(s["cow"] in words["cow"] for s in settings)
    world = load_label_words("zsworld", ["red striped square"])["red striped square"]
    assert world[0] == "red striped square" and "red stripy box" in world


def test_prior_matching_converges_when_a_class_is_almost_never_predicted():
    """Sharp probabilities (CLIP's scale 100) with one class almost never on top: the Newton solver still
    matches the prior to 1e-8 (the fixed-point iteration stalled here after thousands of steps)."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2000, 20)) * 0.1
    logits[:, 0] -= 0.3                               # class 0: rarely predicted
    p = softmax(100 * logits)
    assert p.argmax(1).tolist().count(0) < 20
    w = prior_matching_weights(p)
    assert np.abs(reweight(p, w).mean(0) - 1 / 20).max() < 1e-8


def test_prior_matching_handles_near_one_hot_predictions():
    """Cosine scores at CLIP's scale of 100 give near one-hot probabilities, whose Hessian is near
    singular: the damped steps still match the prior, where undamped Newton steps ran off."""
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(10, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = rng.integers(0, 10, 1000)
    x = centres[y] + 0.3 * rng.normal(size=(1000, 32))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    p = softmax(100 * (x @ centres.T + np.r_[0.3, np.zeros(9)]))   # class 0 favoured by a word bias
    assert (p.max(1) > 0.999).mean() > 0.5
    w = prior_matching_weights(p)
    assert np.abs(reweight(p, w).mean(0) - 0.1).max() < 1e-8 and prior_imbalance(reweight(p, w)) < 1e-10
    assert (reweight(p, w).argmax(1) == y).mean() > (p.argmax(1) == y).mean() + 0.1


def test_cached_reweighting_weights_are_the_computed_ones_and_read_back(tmp_path):
    from zslab.cache import TensorCache
    from zslab.methods.debias import cached_reweighting_weights, reweighting_weights, softmax

    rng = np.random.default_rng(0)
    probs = softmax(rng.normal(size=(40, 5)) * 3)
    null = softmax(rng.normal(size=(2, 5)))
    labels = rng.integers(0, 5, size=40)
    cache = TensorCache(tmp_path)
    direct = reweighting_weights(probs, null, labels)
    first = cached_reweighting_weights(probs, null, labels, cache=cache)
    again = cached_reweighting_weights(probs, null, labels, cache=cache)
    assert (cache.misses, cache.hits) == (1, 1)
    for m in direct:
        assert np.array_equal(direct[m], first[m]) and np.array_equal(first[m], again[m]) and first[m].dtype == direct[m].dtype
    cached_reweighting_weights(probs[::-1].copy(), null, labels, cache=cache)
    assert cache.misses == 2
