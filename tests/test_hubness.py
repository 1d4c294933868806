"""Hubness and querybank normalisation (zslab.methods.hubness) on similarity matrices small enough to check
by hand, and the paired image–caption set they are measured on."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zslab.methods.hubness import (BANKS, dual_dynamic_inverted_softmax, dual_inverted_softmax,
                                   dynamic_inverted_softmax, inverted_softmax, k_occurrence, retrieval_scores, skewness)

# gallery item 0 is a hub: every bank query likes it best
BANK = torch.tensor([[0.9, 0.1], [0.9, 0.1]])


def test_k_occurrence_and_skewness_by_hand():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.7, 0.0, 0.6]])
    assert k_occurrence(sim, k=1).tolist() == [3.0, 0.0, 0.0]
    assert k_occurrence(sim, k=2).tolist() == [3.0, 2.0, 1.0]
    # [0, 0, 0, 3]: mean 0.75, third central moment 2.53125, sd³ = 1.6875^1.5
    assert skewness([0, 0, 0, 3]) == pytest.approx(2.53125 / 1.6875 ** 1.5)
    assert skewness([1, 2, 3]) == pytest.approx(0.0) and skewness([2, 2, 2]) == 0.0
    with pytest.raises(ValueError, match=r"k must be in 1..3"):
        k_occurrence(sim, k=4)


def test_inverted_softmax_takes_the_hub_pull_out():
    query = torch.tensor([[0.5, 0.45]])   # raw: the hub (0) by a small margin
    scores = inverted_softmax(query, BANK, beta=10.0)
    # 5 − log(2e^9) vs 4.5 − log(2e^1)
    np.testing.assert_allclose(scores.numpy(), [[5 - 9 - math.log(2), 4.5 - 1 - math.log(2)]], rtol=1e-6)
    assert int(scores.argmax()) == 1
    with pytest.raises(ValueError, match="cover 3 gallery items"):
        inverted_softmax(query, torch.ones(2, 3))


def test_dynamic_inverted_softmax_leaves_queries_outside_the_activation_set_alone():
    queries = torch.tensor([[0.5, 0.45],    # raw top-1 is the hub, in the activation set: normalised -> 1
                            [0.2, 0.3]])    # raw top-1 is item 1, which no bank query picks: raw kept
    scores = dynamic_inverted_softmax(queries, BANK, beta=10.0)
    assert scores.argmax(dim=1).tolist() == [1, 1]
    np.testing.assert_allclose(scores[1].numpy(), [0.2, 0.3])


def test_dual_inverted_softmax_also_divides_by_the_gallery_bank_pull():
    query = torch.tensor([[0.5, 0.45]])
    neutral_queries = torch.zeros(2, 2)                   # a query bank that sees no hub
    gallery_bank = torch.tensor([[0.8, 0.0], [0.8, 0.0]])  # item 0 resembles every gallery-bank item: a hub
    scores = dual_inverted_softmax(query, neutral_queries, gallery_bank, beta=10.0)
    # 2·10·s − log(2e^0) − logsumexp(10 · gallery-bank column)
    expected = [20 * 0.5 - math.log(2) - (8 + math.log(2)), 20 * 0.45 - math.log(2) - math.log(2)]
    np.testing.assert_allclose(scores.numpy(), [expected], rtol=1e-6)
    assert int(inverted_softmax(query, neutral_queries, 10.0).argmax()) == 0 and int(scores.argmax()) == 1
    with pytest.raises(ValueError, match="gallery-bank similarities cover"):
        dual_inverted_softmax(query, neutral_queries, torch.ones(2, 3))
    # dynamic: a query whose raw top-1 no bank item picks keeps its raw similarities
    other = torch.tensor([[0.2, 0.3]])
    np.testing.assert_allclose(dual_dynamic_inverted_softmax(other, BANK, gallery_bank, 10.0).numpy(), [[0.2, 0.3]])
    with pytest.raises(ValueError, match="needs a gallery bank"):
        retrieval_scores(torch.eye(2), BANK, methods=("DBNorm (DualIS)",))


def test_retrieval_hits_count_the_own_pair():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.7, 0.0, 0.6]])
    out = retrieval_scores(sim, torch.zeros(4, 3), beta=1.0, k=1, methods=("raw",))
    assert out["raw"]["hit_at_1"].tolist() == [1.0, 0.0, 0.0]
    assert out["raw"]["hit_at_5"].tolist() == [1.0, 1.0, 1.0]
    assert out["raw"]["skewness"] == pytest.approx(skewness([3, 0, 0]))
    with pytest.raises(ValueError, match="one gallery item per query"):
        retrieval_scores(torch.zeros(2, 3), torch.zeros(1, 3))
    assert BANKS.names() == ["random vectors", "same distribution", "seen classes"]


def test_caption_pairs_belong_to_their_images():
    from zslab.datasets import build_dataset

    ds = build_dataset("zsworld_captions", split="unseen", n_pairs=40, seed=0)
    again = build_dataset("zsworld_captions", split="unseen", n_pairs=40, seed=0)
    assert len(ds) == len(ds.captions) == 40 and ds.captions == again.captions
    # every caption that names a shape names the shape of its own image's main object or a distractor's
    shapes = ["circle", "square", "triangle", "cross", "ring", "diamond", "disc", "box", "plus"]
    named = [next((s for s in shapes if s in c.split()), None) for c in ds.captions]
    assert sum(n is not None for n in named) >= 30
    own = [n is None or n in ds.classes[int(t)] or {"disc": "circle", "box": "square", "plus": "cross"}.get(n, "?")
           in ds.classes[int(t)] for n, t in zip(named, ds.targets)]
    assert np.mean(own) > 0.7, list(zip(ds.captions, [ds.classes[int(t)] for t in ds.targets]))
    assert build_dataset("zsworld_captions", split="unseen", n_pairs=40, seed=1).captions != ds.captions


def test_random_bank_has_the_pairs_dimension_and_unit_rows():
    from types import SimpleNamespace

    pairs = SimpleNamespace(images=torch.zeros(5, 16), model=None)
    bank = BANKS.get("random vectors")("zsworld_captions", "unseen", 0, 7, pairs, 64)
    assert bank["captions"].shape == bank["images"].shape == (7, 16)
    np.testing.assert_allclose(bank["images"].norm(dim=1).numpy(), 1.0, rtol=1e-6)
