"""Training-free caches (zslab.methods.caption_cache): the cache logits on hand-checked features, the δ mix of
image and caption affinities, the validation search, and the offline caption support set."""
from __future__ import annotations

import math

import pytest
import torch

from zslab.methods.caption_cache import (CACHE_ARMS, FEW_SHOT_REFERENCE, SupportSet, adapted_logits, cache_logits,
                                         evaluate_cache_arms, search_cache, zsworld_caption_support)


def _support():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    captions = torch.tensor([[0.0, 1.0], [1.0, 0.0]])       # captions point the other way round
    return SupportSet(images, captions, torch.tensor([0, 1]), ["a", "b"], images, torch.tensor([0, 1]))


def test_cache_logits_follow_the_affinity_formula():
    s = _support()
    f = torch.tensor([[1.0, 0.0]])
    only_images = cache_logits(f, s.image_features, s.caption_features, s.labels, 2, beta=2.0, delta=0.0)
    assert only_images[0].tolist() == pytest.approx([1.0, math.exp(-2.0)])        # exp(-β(1 - cos))
    only_captions = cache_logits(f, s.image_features, s.caption_features, s.labels, 2, beta=2.0, delta=1.0)
    assert only_captions[0].tolist() == pytest.approx([math.exp(-2.0), 1.0])
    half = cache_logits(f, s.image_features, s.caption_features, s.labels, 2, beta=2.0, delta=0.5)
    assert half[0].tolist() == pytest.approx([math.exp(-1.0), math.exp(-1.0)])
    with pytest.raises(ValueError, match="delta"):
        cache_logits(f, s.image_features, s.caption_features, s.labels, 2, 1.0, 1.5)


def test_adapted_logits_add_alpha_times_the_cache():
    s = _support()
    f, w = torch.tensor([[0.6, 0.8]]), torch.eye(2)
    zs = adapted_logits(f, w, s, 0.0, 1.0, 0.0)
    assert zs[0].tolist() == pytest.approx([60.0, 80.0])
    both = adapted_logits(f, w, s, 3.0, 1.0, 0.0)
    assert (both - zs)[0].tolist() == pytest.approx((3.0 * cache_logits(f, s.image_features, s.caption_features,
                                                                        s.labels, 2, 1.0, 0.0))[0].tolist())
    with pytest.raises(ValueError, match="paired"):
        SupportSet(torch.zeros(2, 2), torch.zeros(3, 2), torch.zeros(2), [])


def test_search_picks_the_delta_that_validates_best():
    s = _support()
    # validation images agree with the captions, not with the images: δ = 1 must win; zero-shot is uninformative
    val = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    labels = torch.tensor([0, 1])
    best = search_cache(val, labels, torch.zeros(2, 2), s, deltas=(0.0, 1.0))
    assert best["delta"] == 1.0 and best["val_top1"] == 1.0
    scores, params = evaluate_cache_arms(val, labels, val, labels, torch.zeros(2, 2), s)
    assert set(scores) == {"zero-shot", *CACHE_ARMS, FEW_SHOT_REFERENCE}
    assert scores["caption cache"].tolist() == [1.0, 1.0] and scores["image cache"].tolist() == [0.0, 0.0]
    assert [p["arm"] for p in params] == [*CACHE_ARMS, FEW_SHOT_REFERENCE]


def test_zsworld_support_set_is_paired_labelled_and_seeded(zsclip_micro):
    classes = ["red solid circle", "blue striped square"]
    s = zsworld_caption_support(zsclip_micro, classes, k=3, n_generated=2, seed=0)
    assert s.image_features.shape == (12, 32) and s.caption_features.shape == (12, 32)
    assert s.labels.tolist() == [0] * 6 + [1] * 6 and s.target_features.shape == (6, 32)
    assert len(s.captions) == 12 and s.captions[0] == s.captions[1]            # two renders per caption
    again = zsworld_caption_support(zsclip_micro, classes, k=3, n_generated=2, seed=0)
    assert torch.equal(s.image_features, again.image_features) and s.captions == again.captions
    with pytest.raises(ValueError, match="not zsworld classes"):
        zsworld_caption_support(zsclip_micro, ["zebra"], k=1)
