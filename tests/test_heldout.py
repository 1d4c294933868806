"""Held-out-class transfer scoring, on a hand-made 3-class problem."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from zslab.methods.heldout import check_heldout_in_manifest, heldout_transfer

VECTORS = {"a": [1.0, 0.0, 0.0], "b": [0.0, 1.0, 0.0], "c": [0.0, 0.0, 1.0], "the b": [0.0, 0.9, 0.44]}


def encode(texts):
    return torch.tensor([VECTORS[t] for t in texts])


def test_heldout_transfer_scores_held_out_images_among_held_out_classes():
    # images of a, b, c, each close to its class axis; c's images lean towards b
    feats = torch.tensor([[1, 0.1, 0], [0.1, 1, 0], [0, 0.6, 0.8], [0, 0.8, 0.6]], dtype=torch.float32)
    labels = torch.tensor([0, 1, 2, 2])
    out = heldout_transfer(encode, ["a", "b", "c"], ["b", "c"], {"name": ["{c}"]}, feats, labels)
    # held-out images (b, c, c) among {b, c}: b right, c right once (0.6/0.8), wrong once (0.8/0.6)
    assert out.heldout_correct["name"].tolist() == [1.0, 1.0, 0.0]
    g = out.gzsl["name"]
    assert g["seen"] == 1.0 and g["unseen"] == pytest.approx(0.75)       # mean per class: b 1, c 0.5
    with pytest.raises(ValueError, match="'d'"):
        heldout_transfer(encode, ["a", "b", "c"], ["d"], {"name": ["{c}"]}, feats, labels)


def test_per_class_prompts_are_restricted_to_the_held_out_classes():
    feats = torch.tensor([[0, 1, 0.1], [0, 0.1, 1]], dtype=torch.float32)
    out = heldout_transfer(encode, ["a", "b", "c"], ["b", "c"],
                           {"described": {"a": ["a"], "b": ["the b"], "c": ["c"]}}, feats, torch.tensor([1, 2]))
    assert out.heldout_correct["described"].tolist() == [1.0, 1.0]


def test_a_model_trained_with_other_held_out_classes_is_refused():
    check_heldout_in_manifest({"heldout_classes": ["c", "b"]}, ["b", "c"], "m")
    check_heldout_in_manifest(None, ["b"], "real model")                   # open_clip models have no manifest
    with pytest.raises(ValueError, match="trained with held-out classes"):
        check_heldout_in_manifest({"heldout_classes": ["a"]}, ["b"], "m")
