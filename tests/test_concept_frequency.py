"""Concept frequency and REAL-Prompt (zslab.methods.concept_frequency): name choice, factor heads and the
within-factor slope on hand-made inputs, and caption counts of a real offline model's own corpus."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zslab.methods.concept_frequency import (concept_labels, factor_prompts, most_frequent_names, per_concept_recall,
                                             renamed, training_corpus_statistics, within_group_slope)
from zslab.world import load_world_spec


def test_real_prompt_picks_the_most_frequent_word_and_keeps_the_name_on_ties():
    stats = [{"concept": "square", "n_exact_word": 10, "synonyms": {"box": 30}},
             {"concept": "circle", "n_exact_word": 50, "synonyms": {"disc": 5}},
             {"concept": "cross", "n_exact_word": 7, "synonyms": {"plus": 7}},
             {"concept": "red", "n_exact_word": 3, "synonyms": {}}]
    assert most_frequent_names(stats) == {"square": "box", "circle": "circle", "cross": "cross", "red": "red"}
    assert renamed({"square": "box", "circle": "circle"}) == ["square"]


def test_factor_heads_average_over_the_other_factors():
    spec = load_world_spec()
    prompts = factor_prompts(spec, "shape", {"square": "box"})
    assert set(prompts) == set(spec.factor_values("shape"))
    assert len(prompts["square"]) == len(spec.factor_values("color")) * len(spec.factor_values("pattern"))
    assert "a photo of a red solid box." in prompts["square"] and all("square" not in p for p in prompts["square"])
    assert "a photo of a red solid circle." in prompts["circle"]
    assert len(factor_prompts(spec, "color", {})["red"]) == 4 * 6
    with pytest.raises(ValueError, match="unknown factor 'size'"):
        factor_prompts(spec, "size", {})
    labels = concept_labels(["red solid circle", "blue striped square"], torch.tensor([1, 0, 1]), "pattern", spec)
    assert labels.tolist() == [spec.factor_values("pattern").index(p) for p in ["striped", "solid", "striped"]]


def test_within_group_slope_removes_each_group_level():
    # two factors with different levels (chance), the same slope of 2 inside each
    x, y, g = [0, 1, 0, 1], [0, 2, 5, 7], ["a", "a", "b", "b"]
    assert within_group_slope(x, y, g) == pytest.approx(2.0)
    assert np.polyfit(x, y, 1)[0] == pytest.approx(2.0) and within_group_slope([0, 1, 2, 3], y, g) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="does not vary"):
        within_group_slope([1, 1, 2, 2], y, ["a", "a", "b", "b"])
    recall = per_concept_recall(np.array([1.0, 0.0, 1.0]), np.array([0, 0, 1]), ["x", "y", "z"])
    assert recall["x"] == 0.5 and recall["y"] == 1.0 and np.isnan(recall["z"])


def test_caption_counts_come_from_the_models_own_corpus(zsclip_micro):
    stats = training_corpus_statistics(zsclip_micro)
    by = {r["concept"]: r for r in stats}
    assert len(stats) == 8 + 4 + 6
    # Zipf-like draws: the most frequent color is named far more often than the rarest
    assert by["red"]["n_captions"] > 3 * by["pink"]["n_captions"] > 0
    # captions use the name more often than its synonym (synonym_rate < 0.5)
    assert by["square"]["n_exact_word"] > by["square"]["synonyms"]["box"] > 0
    assert training_corpus_statistics(zsclip_micro) == stats                    # read back from the cache
    with pytest.raises(ValueError, match="not one of zslab's offline CLIPs"):
        training_corpus_statistics(type("M", (), {"manifest": None, "name": "ViT-B-32"})())
