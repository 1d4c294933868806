"""Pretraining-experiment helpers: equal budgets, pairing of arms; the linear probe; relative representations."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from zslab.errors import InvalidChoiceError, ZslabError
from zslab.methods.pretraining import budget_table, check_equal_budget, pairs_by
from zslab.methods.relative import (STITCHING_ARMS, matched_cosine, relative_representation,
                                    stitching_scores)
from zslab.train.probe import fit_linear_probe


def test_budget_table_reads_the_changed_entries_and_refuses_unequal_budgets():
    variants = {"base": {}, "small batch": {"train": {"batch_size": 32, "steps": 800}},
                "fixed": {"train": {"loss": "cloob", "learn_logit_scale": False},
                          "model_cfg": {"init_logit_scale": 3.401197}}}
    table = budget_table("zsclip-micro", variants)
    assert table["pairs_seen"].tolist() == [25600, 25600, 25600]
    assert table["loss"].tolist() == ["infonce", "infonce", "cloob"]
    assert table["learned_temperature"].tolist() == [True, True, False]
    assert table["initial_inverse_temperature"].round(2).tolist() == [14.29, 14.29, 30.0]
    assert check_equal_budget(table) == 25600
    unequal = budget_table("zsclip-micro", {"base": {}, "short": {"train": {"steps": 100}}})
    with pytest.raises(ZslabError, match="'base': 25600, 'short': 12800"):
        check_equal_budget(unequal)
    with pytest.raises(InvalidChoiceError, match="'stepz'"):
        budget_table("zsclip-micro", {"typo": {"train": {"stepz": 3}}})


def test_pairs_by_matches_arms_that_differ_in_one_setting():
    table = pd.DataFrame({"variant": ["n128", "s128", "n32", "s32", "n8"], "loss": ["n", "s", "n", "s", "n"],
                          "batch_size": [128, 128, 32, 32, 8]})
    assert pairs_by(table, "batch_size", "loss", "s", "n") == {32: ("s32", "n32"), 128: ("s128", "n128")}
    twice = pd.concat([table, table.iloc[[0]].assign(variant="again")])
    with pytest.raises(ZslabError, match="two variants have batch_size=128"):
        pairs_by(twice, "batch_size", "loss", "s", "n")


def test_linear_probe_fits_separable_classes_and_checks_its_input():
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 8, generator=g) * 5
    y = torch.arange(4).repeat_interleave(25)
    x = centres[y] + torch.randn(100, 8, generator=g)
    probe = fit_linear_probe(x, y, 4)
    assert (probe.predict(x) == y).float().mean() == 1.0
    assert torch.equal(fit_linear_probe(x, y, 4).weight, probe.weight)          # deterministic
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        fit_linear_probe(x, y, 3)
    with pytest.raises(ValueError, match="need x"):
        fit_linear_probe(x, y[:10], 4)


def _rotation(d: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed)))
    return q


def test_relative_representation_is_invariant_to_rotations_and_rescaling():
    g = torch.Generator().manual_seed(1)
    x, anchors = torch.randn(20, 6, generator=g), torch.randn(5, 6, generator=g)
    q = _rotation(6, 2)
    assert torch.allclose(relative_representation(3.0 * x @ q, anchors @ q), relative_representation(x, anchors),
                          atol=1e-5)
    assert matched_cosine(x, x @ q) < 0.9 and matched_cosine(x, 2 * x) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="6 dimensions, anchors 5"):
        relative_representation(x, anchors[:, :5])


def test_stitching_a_rotated_encoder_works_only_with_relative_representations_and_matched_anchors():
    """Encoder B is encoder A followed by a rotation: the relative decoder reads B as well as A, the absolute
    one does not, and anchors that are other images than A's break the relative decoder."""
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(5, 16, generator=g) * 3
    y_train, y_test = torch.arange(5).repeat_interleave(40), torch.arange(5).repeat_interleave(20)
    train_a = centres[y_train] + torch.randn(200, 16, generator=g)
    test_a = centres[y_test] + torch.randn(100, 16, generator=g)
    q = _rotation(16, 4)
    train_b, test_b = train_a @ q, test_a @ q
    idx = torch.randperm(200, generator=g)
    anchors, other = idx[:30], idx[30:60]
    scores = stitching_scores(train_a, y_train, test_a, test_b, y_test, train_a[anchors], train_b[anchors],
                              train_b[other], 5)
    assert list(scores) == list(STITCHING_ARMS)
    acc = {k: v.mean() for k, v in scores.items()}
    assert acc["relative, stitched"] == acc["relative, same encoder"] > 0.9
    assert acc["absolute, same encoder"] > 0.9 and acc["absolute, stitched"] < 0.6
    assert acc["relative, stitched, unmatched anchors"] < acc["relative, stitched"] - 0.3


def test_geometry_matches_hand_computed_cases():
    from zslab.methods.geometry import centroid_gap, pair_geometry, tolerance

    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[-1.0, 0.0], [0.0, -1.0]])
    assert centroid_gap(image, text) == pytest.approx(2 ** 0.5)          # centroids (.5, .5) and (−.5, −.5)
    g = pair_geometry(image, text)
    assert g["gap"] == pytest.approx(2 ** 0.5) and g["alignment"] == pytest.approx(4.0)
    assert g["uniformity_image"] == pytest.approx(-4.0)                  # one pair at squared distance 2
    assert pair_geometry(image, image)["gap"] == 0.0
    labels = torch.tensor([0, 0, 1, 1])
    feats = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [0.0, 1.0]])
    assert tolerance(feats, labels) == pytest.approx((0.6 + 1.0) / 2)     # mean over same-class pairs
    with pytest.raises(ValueError, match="at least two samples"):
        tolerance(feats[:2], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="differ in shape"):
        pair_geometry(image, text[:1])


def test_scores_of_shapes_one_value_per_seed_and_arm_for_check_gain():
    from zslab.analysis import check_gain
    from zslab.methods.pretraining import scores_of

    table = pd.DataFrame({"variant": ["a", "b"] * 3, "seed": [0, 0, 1, 1, 2, 2], "gap": [1.0, 0.5, 1.1, 0.6, 0.9, 0.5]})
    scores = scores_of(table, "gap", sign=-1.0)
    assert scores[1]["b"].tolist() == [-0.6]
    verdict = check_gain("b has the smaller gap", scores, "b", "a", scale=1.0, unit="", record=False)
    assert verdict["status"] == "reproduced" and verdict["estimate"]["mean"] == pytest.approx(0.4667, abs=1e-3)


def test_paired_frequency_slope_reads_the_change_of_each_concept():
    """Two arms, one concept per row: recall changes by 0.1 per tenfold change in count in every factor,
    whatever the concepts' own levels (a hard concept stays hard), so the paired slope is exactly 0.1."""
    from zslab.methods.concept_frequency import paired_frequency_slope

    rows = []
    for factor, level in (("color", 0.2), ("shape", 0.7)):
        for i, (n_ref, n_arm) in enumerate([(100, 1000), (100, 10), (100, 100), (50, 5000)]):
            recall_ref = level + 0.05 * i
            change = 0.1 * (math.log10(n_arm) - math.log10(n_ref))
            rows += [{"arm": "ref", "factor": factor, "concept": f"{factor}{i}", "recall": recall_ref,
                      "n_captions": n_ref},
                     {"arm": "arm", "factor": factor, "concept": f"{factor}{i}", "recall": recall_ref + change,
                      "n_captions": n_arm}]
    assert paired_frequency_slope(pd.DataFrame(rows), "arm", "ref") == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no concept is in both arms"):
        paired_frequency_slope(pd.DataFrame(rows), "arm", "missing")


def test_soft_target_summary_sits_between_uniform_and_one_hot():
    from zslab.methods.pretraining import soft_target_summary

    summary = soft_target_summary("lit-animal-mnist-micro", seed=0, n_batches=3)
    assert summary["batch_size"] == 128 and summary["uniform_target_mass"] == 1 / 128
    assert 1 / 128 < summary["own_caption_target_mass"] < 1
    assert -1 <= summary["mean_cosine_of_different_captions"] < 1
    assert summary["mean_cwcl_weight_of_different_captions"] == pytest.approx(
        (summary["mean_cosine_of_different_captions"] + 1) / 2, abs=1e-6)
