"""Test-time prompt tuning (zslab.methods.test_time): confident views, TPT's and RLCF's losses by hand, the
views' encoding, and the episodic loop: deterministic, cached, and an oracle reward corrects the student."""
from __future__ import annotations

import math

import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.methods.test_time import (TTAConfig, adapt_and_predict, cached_adapt_and_predict, clip_scores,
                                     confident_views, marginal_entropy, rlcf_loss, view_features)


def test_confident_views_are_the_lowest_entropy_ones():
    logits = torch.tensor([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 9.0, 0.0]])
    assert confident_views(logits, 0.5).tolist() == [3, 1]
    assert confident_views(logits, 0.01).tolist() == [3]                 # at least one view


def test_marginal_entropy_by_hand():
    assert marginal_entropy(torch.zeros(2, 4)).item() == pytest.approx(math.log(4))
    # two confident views that disagree: each is sure, their mean is not
    assert marginal_entropy(torch.tensor([[50.0, 0.0], [0.0, 50.0]])).item() == pytest.approx(math.log(2), abs=1e-6)


def test_rlcf_step_raises_the_rewarded_class_among_the_top_k():
    logits = torch.nn.Parameter(torch.tensor([[2.0, 1.9, -5.0]]))
    rewards = torch.tensor([[0.1, 0.9, 0.0]])                            # the reward model prefers class 1
    loss = rlcf_loss(logits, rewards, k=2)
    loss.backward()
    assert logits.grad[0, 1] < 0 < logits.grad[0, 0]                    # descent raises 1 and lowers 0
    assert clip_scores(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [-1.0, 0.0]])).tolist() == [[2.5, 0.0]]


def test_views_start_with_the_image_and_are_cached(zsclip_micro, tmp_path):
    from zslab.cache import TensorCache
    from zslab.evaluation import eval_dataset

    ds = eval_dataset("zsworld", None, "unseen", n_per_class=1, seed=0, model=zsclip_micro)
    cache = TensorCache(tmp_path)
    views = view_features(zsclip_micro, ds, 3, seed=0, cache=cache)
    assert views.shape[:2] == (len(ds), 4)
    image, _ = ds[0]
    with torch.no_grad():
        plain = torch.nn.functional.normalize(zsclip_micro.model.encode_image(zsclip_micro.preprocess(image)[None]).float(), dim=-1)
    assert torch.allclose(views[0, 0], plain[0], atol=1e-5) and not torch.allclose(views[0, 1], plain[0])
    assert torch.equal(view_features(zsclip_micro, ds, 3, seed=0, cache=cache), views) and cache.hits == 1


def test_an_oracle_reward_corrects_the_student_and_runs_repeat(zsclip_micro, tmp_path):
    from zslab.cache import TensorCache
    from zslab.evaluation import eval_dataset

    ds = eval_dataset("zsworld", None, "unseen", n_per_class=2, seed=0, model=zsclip_micro)
    views = view_features(zsclip_micro, ds, 7, seed=0)
    labels = torch.as_tensor(ds.targets)
    oracle = 2.5 * torch.nn.functional.one_hot(labels, len(ds.classes)).float()[:, None, :].expand(-1, 8, -1)
    cfg = TTAConfig(steps=5, lr=0.1, share=0.25, sample_k=len(ds.classes))       # every class is scored
    zero_shot = adapt_and_predict(zsclip_micro, ds.classes, views, "TPT", TTAConfig(steps=1, lr=1e-12))
    tuned = adapt_and_predict(zsclip_micro, ds.classes, views, "RLCF", cfg, oracle)
    gain = float((tuned == labels).float().mean() - (zero_shot == labels).float().mean())
    assert gain > 0.05, gain                                                      # 11.8 points measured
    cache = TensorCache(tmp_path)
    again = cached_adapt_and_predict(zsclip_micro, ds.classes, views, "RLCF", cfg, oracle, cache=cache)
    assert torch.equal(again, tuned)
    assert torch.equal(cached_adapt_and_predict(zsclip_micro, ds.classes, views, "RLCF", cfg, oracle, cache=cache), tuned)
    assert cache.hits == 1
    with pytest.raises(ValueError, match="reward"):
        adapt_and_predict(zsclip_micro, ds.classes, views, "RLCF", cfg)
    with pytest.raises(InvalidChoiceError, match="TPT"):
        adapt_and_predict(zsclip_micro, ds.classes, views, "entropy", cfg)
    with pytest.raises(ValueError, match="share"):
        TTAConfig(share=0.0)
