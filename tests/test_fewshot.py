"""The few-shot protocol (zslab.fewshot: nested shots, disjoint parts, seeds) and the training-free heads of
zslab.methods.adaptation (GDA against hand-computed values and a case where its covariance matters,
Tip-Adapter's cache, the validation searches)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.fewshot import SHOTS, disjoint_per_class, few_shot_data, shot_indices
from zslab.methods.adaptation import (FEW_SHOT_HEADS, best_on_validation, class_means, evaluate_heads, gda_head,
                                      shrunk_precision, tip_adapter_logits)

LABELS = np.repeat(np.arange(3), 20)        # 3 classes, 20 items each


def test_shots_are_k_per_class_nested_and_seeded():
    previous = set()
    for k in SHOTS:
        idx = shot_indices(LABELS, 3, k, seed=0)
        assert np.bincount(LABELS[idx], minlength=3).tolist() == [k, k, k]
        assert previous <= set(idx.tolist())                       # the 1-shot set lies inside the 2-shot set ...
        previous = set(idx.tolist())
    assert np.array_equal(shot_indices(LABELS, 3, 4, 7), shot_indices(LABELS, 3, 4, 7))
    assert not np.array_equal(shot_indices(LABELS, 3, 4, 7), shot_indices(LABELS, 3, 4, 8))


def test_shots_reject_bad_counts_naming_the_limit():
    with pytest.raises(ValueError, match="only 20 items"):
        shot_indices(LABELS, 3, 21, 0)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="positive integer"):
            shot_indices(LABELS, 3, bad, 0)


def test_disjoint_parts_share_no_item_and_have_their_counts():
    pool, val = disjoint_per_class(LABELS, 3, [16, 4], seed=3)
    assert not set(pool.tolist()) & set(val.tolist())
    assert np.bincount(LABELS[pool]).tolist() == [16] * 3 and np.bincount(LABELS[val]).tolist() == [4] * 3
    with pytest.raises(ValueError, match="need 21 items per class"):
        disjoint_per_class(LABELS, 3, [17, 4], seed=3)


def test_few_shot_data_on_zsworld_keeps_its_parts_apart(zsclip_micro):
    data = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=4, n_val=2, n_test=3)
    c = len(data.classes)
    assert data.pool_features.shape[0] == 4 * c and data.val_features.shape[0] == 2 * c
    assert data.test_features.shape[0] == 3 * c and data.max_shots == 4
    x, y = data.shots(2)
    assert torch.bincount(y, minlength=c).tolist() == [2] * c
    # three separate draws: no image's features repeat across the parts
    every = torch.cat([data.pool_features, data.val_features, data.test_features])
    assert torch.cdist(every, every).add(torch.eye(len(every)) * 9).min() > 1e-4
    assert data.identity["pool"] != data.identity["val"] != data.identity["test"]
    with pytest.raises(ValueError, match="only 4 items"):
        data.shots(8)


def test_class_means_and_gda_match_the_formula_by_hand():
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    y = torch.tensor([0, 0, 1, 1])
    mu = class_means(x, y, 2)
    assert mu.tolist() == [[2.0, 0.0], [0.0, 2.0]]
    centered = x.double() - mu[y]                                  # (±1, 0) and (0, ±1)
    cov = torch.cov(centered.T)                                    # diag(2/3, 2/3)
    precision = 2 * torch.linalg.inv(3 * cov + torch.trace(cov) * torch.eye(2))   # D · ((N−1)Σ + tr Σ I)⁻¹
    assert torch.allclose(shrunk_precision(centered), precision)
    assert torch.allclose(precision, torch.eye(2, dtype=torch.float64) * 2 / (2 + 4 / 3))
    head = gda_head(x, y, 2)
    w = (mu @ precision).float()
    assert torch.allclose(head.weight, w)
    assert torch.allclose(head.bias, (math.log(0.5) - 0.5 * (w.double() * mu).sum(1)).float())
    with pytest.raises(ValueError, match="classes \\[2\\] have none"):
        class_means(x, y, 3)


def test_one_shot_precision_falls_back_to_identity():
    assert torch.equal(shrunk_precision(torch.zeros(5, 3)), torch.eye(3, dtype=torch.float64))


def test_gda_uses_the_shared_covariance_where_class_means_fail():
    # Classes differ a little along y, where the noise is tiny, and more along x, where it is large: the
    # nearest class mean follows x and errs; GDA whitens x away and separates them by y.
    gen = torch.Generator().manual_seed(0)
    n = 400
    y = torch.arange(2).repeat_interleave(n)
    means = torch.tensor([[0.0, 0.0], [1.0, 0.3]])
    x = means[y] + torch.randn(2 * n, 2, generator=gen) * torch.tensor([3.0, 0.05])
    train, test = slice(0, None, 2), slice(1, None, 2)
    acc = {shared: float((gda_head(x[train], y[train], 2, shared).logits(x[test]).argmax(1) == y[test]).float().mean())
           for shared in (True, False)}
    assert acc[True] > 0.95 and acc[False] < 0.7


def test_tip_adapter_cache_by_hand():
    shots = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    f = torch.tensor([[1.0, 0.0]])
    logits = tip_adapter_logits(f, shots, torch.tensor([0, 1]), 2, beta=2.0)
    assert torch.allclose(logits, torch.tensor([[1.0, math.exp(-2.0)]]))


def test_validation_search_keeps_the_first_of_ties():
    labels = torch.tensor([0, 1])
    good = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bad = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert best_on_validation({("a",): bad, ("b",): good, ("c",): good}, labels) == (("b",), 1.0)


def test_evaluate_heads_scores_every_head_at_every_shot_and_rejects_unknown_heads(zsclip_micro):
    from zslab.zeroshot import build_classifier

    data = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=1, max_shots=2, n_val=2, n_test=2)
    classifier = build_classifier(data.encode_text, data.classes, ["a photo of a {c}."])
    heads = FEW_SHOT_HEADS.names()
    correct, chosen = evaluate_heads(data, classifier, [1, 2], heads)
    assert set(correct) == {1, 2} and all(set(v) == set(heads) for v in correct.values())
    assert all(len(v) == len(data.test_labels) for per in correct.values() for v in per.values())
    zs = correct[1]["zero-shot"]
    assert np.array_equal(zs, correct[2]["zero-shot"])              # zero-shot does not read the shots
    assert {r["head"] for r in chosen} == set(heads) and len(chosen) == 2 * len(heads)
    with pytest.raises(InvalidChoiceError, match="GDA"):
        evaluate_heads(data, classifier, [1], ["CoOp"])


def test_class_subsets_no_validation_and_shifted_tests(zsclip_micro):
    from zslab.fewshot import draw_classes, shifted_test_features

    base = draw_classes(zsclip_micro, "zsworld", "seen", 5, seed=0)
    assert len(set(base)) == 5 and base == draw_classes(zsclip_micro, "zsworld", "seen", 5, seed=0)
    assert base != draw_classes(zsclip_micro, "zsworld", "seen", 5, seed=1)
    data = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=2, n_val=0, n_test=3, split="seen",
                         classes=base)
    assert data.classes == base and data.val_features.shape[0] == 0 and data.test_features.shape[0] == 15
    x, y = shifted_test_features(data, "zsworld", "seen", 3, {"noise": 40.0})
    assert x.shape == data.test_features.shape and torch.equal(y, data.test_labels)
    assert not torch.allclose(x, data.test_features)                 # the same classes, rendered differently
    with pytest.raises(ValueError, match="between 1 and"):
        draw_classes(zsclip_micro, "zsworld", "seen", 0, seed=0)


def test_pre_projection_features_project_to_the_embeddings_and_prolip_trains(zsclip_micro):
    from zslab.methods.adaptation import ProjectorConfig, projected_logits, train_projection
    from zslab.zeroshot import build_classifier

    emb = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=2, n_val=0, n_test=2)
    pre = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=2, n_val=0, n_test=2,
                        features="pre-projection")
    proj = zsclip_micro.model.visual.proj.detach()
    assert pre.pool_features.shape[1] == proj.shape[0] != emb.pool_features.shape[1]
    assert torch.allclose(torch.nn.functional.normalize(pre.test_features @ proj, dim=-1), emb.test_features, atol=1e-5)
    classifier = build_classifier(emb.encode_text, emb.classes, ["a photo of a {c}."])
    x, y = pre.shots(2)
    out = train_projection(x, y, proj, classifier, shots=2, cfg=ProjectorConfig(epochs=30))
    assert out["pull"] == 0.5 and out["loss"][-1] < out["loss"][0]
    again = train_projection(x, y, proj, classifier, shots=2, cfg=ProjectorConfig(epochs=30))
    assert torch.equal(out["projection"], again["projection"])
    pinned = train_projection(x, y, proj, classifier, shots=2, cfg=ProjectorConfig(epochs=30, pull=1e6))
    assert (pinned["projection"] - proj).abs().max() < (out["projection"] - proj).abs().max()
    zero_shot = projected_logits(pre.test_features, proj, classifier).argmax(1)
    assert torch.equal(zero_shot, (emb.test_features @ classifier.T).argmax(1))   # W₀ gives CLIP's predictions
    with pytest.raises(InvalidChoiceError, match="pre-projection"):
        few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=1, n_val=0, n_test=1, features="logits")
