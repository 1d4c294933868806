"""Classification by description (zslab.methods.descriptors): the two ways of combining descriptors on a
hand-checkable case, the shuffled-descriptor control, and each descriptor source."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import require_system_asset
from zslab.methods.descriptors import (DESCRIPTOR_SOURCES, PromptHead, attach_names, attribute_phrases, explain,
                                       load_descriptor_file, shuffled_content, top1_correct)

# class A: two descriptors along e1 (they agree); class B: one along e2, one along e3 (they disagree)
VECTORS = {"A, which x": [1.0, 0, 0], "A, which y": [1.0, 0, 0], "B, which x": [0, 1.0, 0], "B, which y": [0, 0, 1.0]}
encode = lambda texts: torch.tensor([VECTORS[t] for t in texts])  # noqa: E731
DESCRIBED = {"A": ["A, which x", "A, which y"], "B": ["B, which x", "B, which y"]}
IMAGE = torch.tensor([[0.6, 0.5, 0.5]])   # x·e1 = 0.6 (A's mean score), x·(e2+e3)/2 = 0.5 (B's mean score)


def test_mean_score_and_mean_embedding_decide_differently_by_hand():
    """Mean score: A 0.6 vs B 0.5, A wins. Mean embedding: B's direction (e2+e3)/√2 gives 0.707 > 0.6."""
    heads = {"score": PromptHead(DESCRIBED, "mean score"), "embedding": PromptHead(DESCRIBED, "mean embedding")}
    w_score = heads["score"].classifier(encode, ["A", "B"])
    np.testing.assert_allclose(w_score.numpy(), [[1, 0, 0], [0, 0.5, 0.5]])
    correct = top1_correct(encode, ["A", "B"], heads, IMAGE, torch.tensor([0]))
    assert correct == {"score": pytest.approx([1.0]), "embedding": pytest.approx([0.0])}
    with pytest.raises(ValueError, match="unknown aggregation 'max'; valid: mean score, mean embedding"):
        PromptHead(DESCRIBED, "max")


def test_explanation_lists_the_predicted_class_top_descriptors():
    table = explain(encode, ["A", "B"], DESCRIBED, IMAGE, torch.tensor([0]), items=[0], top=2)
    assert table["predicted"].tolist() == ["A", "A"] and table["rank"].tolist() == [1, 2]
    assert table["class score"].iloc[0] == pytest.approx(0.6 / np.linalg.norm([0.6, 0.5, 0.5]))
    assert (np.diff(table["similarity"]) <= 0).all()


def test_shuffled_content_is_a_seeded_derangement():
    content = {c: [f"{c} fact"] for c in "ABCDE"}
    for seed in range(5):
        shuffled = shuffled_content(content, seed)
        assert all(shuffled[c] != content[c] for c in content)
        assert sorted(v[0] for v in shuffled.values()) == sorted(v[0] for v in content.values())
        assert shuffled == shuffled_content(content, seed)
    with pytest.raises(ValueError, match="at least 2 classes"):
        shuffled_content({"A": ["x"]})


def test_attribute_descriptors_name_their_class_and_its_attributes():
    phrases = attribute_phrases("animal_mnist", ["bird", "elephant"])
    assert "has a pair of wings" in phrases["bird"] and "has a pair of wings" not in phrases["elephant"]
    named = DESCRIPTOR_SOURCES.get("attributes")("animal_mnist", ["bird"])
    assert named["bird"][0].startswith("bird, which ")
    assert attach_names({"cat": ["purrs"]}, "a {c} that {d}") == {"cat": ["a cat that purrs"]}
    assert DESCRIPTOR_SOURCES.get("hand-written")("fashion_mnist", ["bag"])["bag"]
    with pytest.raises(Exception, match="valid choices: 'WordNet gloss', 'attributes', 'hand-written'"):
        DESCRIPTOR_SOURCES.get("gpt-3")


def test_wordnet_gloss_descriptors_cover_both_datasets():
    from zslab.semantics.wordnet import class_synsets, wordnet_source_dir

    require_system_asset((wordnet_source_dir() / "data.noun").is_file(), "WordNet 3.0",
                         "apt-get install -y wordnet-base wordnet-sense-index")
    for dataset in ("animal_mnist", "fashion_mnist"):
        glosses = DESCRIPTOR_SOURCES.get("WordNet gloss")(dataset, list(class_synsets(dataset)))
        assert len(glosses) == 10 and all(len(v) == 1 and len(v[0]) > 15 for v in glosses.values())
    assert "striped" in DESCRIPTOR_SOURCES.get("WordNet gloss")("animal_mnist", ["zebra"])["zebra"][0]


def test_descriptor_file_in_the_data_format(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"descriptions": {"A": ["A, which is round"], "B": ["B, which is tall"]}}))
    assert load_descriptor_file(str(path), ["B"]) == {"B": ["B, which is tall"]}
    with pytest.raises(ValueError, match=r"no descriptors for classes \['C'\]"):
        load_descriptor_file(str(path), ["A", "C"])
