"""ZPE prompt weighting (zslab.methods.prompt_weighting) on hand-made 3-d cases whose answers can be
worked out on paper."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zslab.methods.prompt_weighting import (SCORERS, evaluate_pools, max_logit_score, mean_max_logit,
                                            prompt_logits, prompt_table, softmax_weights, weigh_pool,
                                            weighted_classifier, zpe_score)
from zslab.zeroshot import build_classifier


def _unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


# Two classes; axis 2 is what every image shares ("photo-ness"), the pretraining images are only that.
TEST_IMAGES = _unit([1, 0, 1], [0, 1, 1])          # class 0, class 1
LABELS = torch.tensor([0, 1])
REFERENCE = _unit([0, 0, 1], [0, 0, 1])
GOOD = _unit([1, 0, 0], [0, 1, 0])                  # per class: the right direction
# swapped classes plus a strong shared component: confident on every image, right on none of the test ones
BIASED = _unit([0, 0.3, 1], [0.3, 0, 1])


def test_mean_max_logit_and_the_two_scores_by_hand():
    emb = torch.stack([GOOD, BIASED])
    test, ref = prompt_logits(TEST_IMAGES, emb, 1.0), prompt_logits(REFERENCE, emb, 1.0)
    assert test.shape == (2, 2, 2)
    good_test = 1 / np.sqrt(2)                       # x0 · e0
    biased_test = 1.3 / (np.sqrt(2) * np.sqrt(1.09))  # x0 · b1
    biased_ref = 1 / np.sqrt(1.09)
    np.testing.assert_allclose(mean_max_logit(test).numpy(), [good_test, biased_test], rtol=1e-5)
    np.testing.assert_allclose(max_logit_score(test, ref).numpy(), [good_test, biased_test], rtol=1e-5)
    np.testing.assert_allclose(zpe_score(test, ref).numpy(), [good_test, biased_test - biased_ref], rtol=1e-5, atol=1e-6)
    # the naive score prefers the biased prompt; the pretraining correction reverses the order
    assert biased_test > good_test and biased_test - biased_ref < good_test
    assert SCORERS.names() == ["ZPE", "max logit"]


def test_naive_score_follows_the_biased_prompt_and_zpe_does_not():
    emb = torch.stack([GOOD, BIASED])
    out = weigh_pool(emb, TEST_IMAGES, LABELS, REFERENCE, logit_scale=20.0)
    assert out["correct"]["max logit"].tolist() == [0.0, 0.0]     # weight ≈ all on the biased prompt
    assert out["correct"]["ZPE"].tolist() == [1.0, 1.0]
    assert out["correct"]["uniform"].tolist() == [1.0, 1.0]
    assert out["weights"]["max logit"][1] > 0.9 and out["weights"]["ZPE"][0] > 0.99
    np.testing.assert_allclose(out["weights"]["uniform"], [0.5, 0.5])
    assert out["single"].tolist() == [1.0, 0.0]                     # each prompt alone


def test_softmax_weights_sum_to_one_and_reject_a_bad_temperature():
    w = softmax_weights(torch.tensor([1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(w.numpy(), 0.25)
    w = softmax_weights(torch.tensor([0.0, np.log(3.0)]))
    np.testing.assert_allclose(w.numpy(), [0.25, 0.75], rtol=1e-6)
    np.testing.assert_allclose(softmax_weights(torch.tensor([0.0, 2.0]), temperature=2.0).numpy(),
                               softmax_weights(torch.tensor([0.0, 1.0])).numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        softmax_weights(torch.tensor([1.0]), temperature=0)


def test_uniform_weights_give_clips_prompt_ensemble():
    torch.manual_seed(0)
    table = {f"t{t} c{c}": torch.randn(8) for t in range(3) for c in range(4)}
    encode = lambda texts: torch.stack([table[s] for s in texts])  # noqa: E731
    classes = [f"c{c}" for c in range(4)]
    templates = [f"t{t} {{c}}" for t in range(3)]
    emb = torch.stack([F.normalize(encode([tpl.replace("{c}", c) for c in classes]), dim=-1) for tpl in templates])
    torch.testing.assert_close(weighted_classifier(emb, torch.full((3,), 1 / 3)),
                               build_classifier(encode, classes, templates))
    weights = torch.tensor([0.2, 0.0, 0.8])
    torch.testing.assert_close(weighted_classifier(emb, weights), build_classifier(encode, classes, templates, weights))
    with pytest.raises(ValueError, match="3 templates but"):
        weighted_classifier(emb, torch.ones(2))


def test_pools_are_nested_and_sizes_are_checked():
    emb = torch.stack([GOOD, GOOD, BIASED, BIASED])
    pools = evaluate_pools(emb, 2, [0, 1, 2], TEST_IMAGES, LABELS, REFERENCE, logit_scale=20.0)
    assert [len(p["weights"]["uniform"]) for p in pools.values()] == [2, 3, 4]
    table = prompt_table(pools[2], ["a", "b", "c", "d"], 2)
    assert table["kind"].tolist() == ["hand-made", "hand-made", "poor", "poor"]
    assert table["weight: ZPE"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"pool sizes \[3\] out of range: 2 base templates and 2 extra"):
        evaluate_pools(emb, 2, [3], TEST_IMAGES, LABELS, REFERENCE, logit_scale=20.0)


def test_reference_logits_must_match_the_pool():
    test = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match="must share templates and classes"):
        zpe_score(test, torch.zeros(3, 5, 4))
    with pytest.raises(ValueError, match=r"must be \[T, C, D\]"):
        prompt_logits(torch.zeros(3, 2), torch.zeros(2, 2), 1.0)
