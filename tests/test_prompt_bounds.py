"""PAC-Bayes bounds for discrete prompts (zslab.methods.prompt_bounds): the prior's description length, the
two bounds on hand-checked values, and the greedy search on a toy text tower whose best words are known."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.cache import TensorCache
from zslab.methods.prompt_bounds import (PromptPrior, binary_kl, bound, cached_greedy_prompt_search, evaluate_prompts,
                                         flat_token_prior_nats, greedy_prompt_search, kl_inverse_bound, mcallester_bound, prompt_words,
                                         rank_agreement, vocabulary_of, world_vocabulary)


def test_prompt_words_split_punctuation_and_need_one_slot():
    assert prompt_words("A photo of a {c}.") == ["a", "photo", "of", "a", "{c}", "."]
    with pytest.raises(ValueError, match="exactly one"):
        prompt_words("a photo")
    assert vocabulary_of(["a {obj} , big", "the {caption}"]) == [",", "a", "big", "the"]


def test_prior_pays_length_slot_and_words():
    prior = PromptPrior(("a", "photo", "of"), max_length=4)
    # L = 4 words: ln 5 (length) + ln 5 (slot among 5 places) + 4 ln 3
    assert prior.neg_log_prob("a photo of a {c}") == pytest.approx(2 * math.log(5) + 4 * math.log(3))
    assert prior.neg_log_prob("{c}") == pytest.approx(math.log(5))
    assert math.isinf(prior.neg_log_prob("a picture of {c}"))            # a word outside the vocabulary
    assert math.isinf(prior.neg_log_prob("a a a a a {c}"))               # longer than max_length
    assert PromptPrior.covering(("a", "photo", "of"), ["a photo of a {c}."], 2).max_length == 5   # "." counts
    assert flat_token_prior_nats(49408, 77) == pytest.approx(77 * math.log(49408))


def test_world_vocabulary_holds_the_caption_words_and_the_extra_templates():
    vocab = world_vocabulary(["a zebra {c}"])
    assert {"photo", "circle", "striped", "box", "background", "zebra"} <= set(vocab)
    assert not any("{" in w for w in vocab)


def test_mcallester_bound_on_hand_values():
    # train error 0.1, n = 10000, KL = 10, delta 0.05: 0.1 + sqrt((10 + ln(200/0.05)) / 20000)
    expected = 0.1 + math.sqrt((10 + math.log(2 * 100 / 0.05)) / 20000)
    assert mcallester_bound(0.1, 10000, 10.0, 0.05) == pytest.approx(expected)
    assert mcallester_bound(0.9, 10, 1000.0) == 1.0 and mcallester_bound(0.1, 10, math.inf) == 1.0
    with pytest.raises(ValueError, match="delta"):
        mcallester_bound(0.1, 10, 1.0, delta=1.5)


@pytest.mark.parametrize("train_error", [0.0, 0.05, 0.3, 0.6])
def test_kl_inverse_bound_solves_the_kl_equation_and_is_tighter(train_error):
    n, kl, delta = 2000, 15.0, 0.05
    b = kl_inverse_bound(train_error, n, kl, delta)
    budget = (kl + math.log(2 * math.sqrt(n) / delta)) / n
    assert b > train_error and binary_kl(train_error, b) == pytest.approx(budget, rel=1e-6)
    assert b <= mcallester_bound(train_error, n, kl, delta) + 1e-12        # Pinsker: never looser
    assert bound("kl inverse", train_error, n, kl, delta) == b
    with pytest.raises(InvalidChoiceError, match="'catoni'.*McAllester"):
        bound("catoni", train_error, n, kl, delta)


class WordTower:
    """A toy text tower: a prompt's embedding points at its class, strongly with the word "sharp"; without
    it, the first class's prompt points at the second class (one class in three wrong); "noise" points
    every prompt at the next class."""

    def __init__(self, classes):
        self.classes = list(classes)

    def __call__(self, texts):
        out = []
        for t in texts:
            k = next(i for i, c in enumerate(self.classes) if t.endswith(c))
            v = torch.full((len(self.classes),), 1.0)
            words = t.split()
            wrong = "noise" in words or ("sharp" not in words and k == 0)
            target = (k + 1) % len(self.classes) if wrong else k
            v[target] += 10.0 if "sharp" in words else 0.01
            out.append(v)
        return torch.stack(out)


def test_greedy_search_finds_the_helpful_word_and_avoids_the_harmful_one():
    classes = ["red", "blue", "green"]
    feats = torch.eye(3).repeat(20, 1)
    labels = torch.arange(3).repeat(20)
    steps = greedy_prompt_search(WordTower(classes), classes, ["noise", "plain", "sharp"], feats, labels, 2)
    assert [s["length"] for s in steps] == [1, 2]
    assert steps[0]["template"] == "sharp {c}" and steps[0]["train_error"] == 0.0
    assert "noise" not in steps[1]["template"]
    with pytest.raises(ValueError, match="max_length"):
        greedy_prompt_search(WordTower(classes), classes, ["x"], feats, labels, 0)


def test_cached_greedy_search_matches_the_search_and_skips_the_tower_when_warm(tmp_path):
    classes = ["red", "blue", "green"]
    feats, labels = torch.eye(3).repeat(20, 1), torch.arange(3).repeat(20)
    calls = []

    def counting_tower(texts):
        calls.append(len(texts))
        return WordTower(classes)(texts)

    cache = TensorCache(tmp_path)
    vocab = ["noise", "plain", "sharp"]
    cold = cached_greedy_prompt_search(counting_tower, "tower-a", classes, vocab, feats, labels, 2, cache=cache)
    assert cold == greedy_prompt_search(WordTower(classes), classes, vocab, feats, labels, 2)
    n_cold = len(calls)
    assert n_cold > 0
    warm = cached_greedy_prompt_search(counting_tower, "tower-a", classes, vocab, feats, labels, 2, cache=cache)
    assert warm == cold and len(calls) == n_cold                      # read back, the tower not called
    cached_greedy_prompt_search(counting_tower, "tower-b", classes, vocab, feats, labels, 2, cache=cache)
    assert len(calls) > n_cold                                        # another tower is searched anew
    n = len(calls)
    cached_greedy_prompt_search(counting_tower, "tower-a", classes, vocab, feats, 1 - labels.clamp(max=1), 2, cache=cache)
    assert len(calls) > n                                             # other training labels: searched anew


def test_evaluate_prompts_reports_errors_and_bounds_per_prompt():
    classes = ["red", "blue", "green"]
    feats, labels = torch.eye(3).repeat(50, 1), torch.arange(3).repeat(50)
    prior = PromptPrior(("noise", "sharp"), max_length=2)
    table = evaluate_prompts(WordTower(classes), classes, [{"template": "sharp {c}", "kind": "searched"},
                                                           {"template": "noise {c}", "kind": "searched"}],
                             (feats, labels), (feats[:30], labels[:30]), prior, flat_nats=500.0)
    assert table["train_error"].tolist() == [0.0, 1.0] and table["test_error"].tolist() == [0.0, 1.0]
    assert table.loc[0, "neg_log_prior"] == pytest.approx(math.log(3) + math.log(2) + math.log(2))
    assert (table["bound: McAllester"] >= table["test_error"]).all()
    assert table.loc[0, "bound: flat tokens"] > table.loc[0, "bound: McAllester"]
    assert table["n_train"].tolist() == [150, 150]


def test_rank_agreement_is_spearman():
    assert rank_agreement([0.1, 0.2, 0.3, 0.4], [0.05, 0.1, 0.2, 0.3]) == pytest.approx(1.0)
    assert rank_agreement([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="3 paired"):
        rank_agreement([0.1, 0.2], [0.1, 0.2])
