"""Zero-shot heads from a fake text encoder whose outputs are written out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.methods.prompting import CLASS_NAME_ONLY, evaluate_heads, prompt_heads
from zslab.datasets import load_templates
from zslab.zeroshot import build_classifier, fill_templates, logits, template_embeddings

VECTORS = {
    "a cat": [3.0, 4.0, 0.0],        # norm 5  -> (0.6, 0.8, 0)
    "the cat": [0.0, 0.0, 2.0],      # norm 2  -> (0, 0, 1)
    "a dog": [1.0, 0.0, 0.0],
    "the dog": [0.0, 10.0, 0.0],     # norm 10 -> (0, 1, 0)
}


class FakeEncoder:
    """``encode_text`` from a table; records what it was asked for."""

    def __init__(self, table):
        self.table = {k: torch.tensor(v, dtype=torch.float32) for k, v in table.items()}
        self.calls = []

    def __call__(self, texts):
        self.calls.append(list(texts))
        return torch.stack([self.table[t] for t in texts])


def unit(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def test_uniform_ensemble_is_the_normalised_mean_of_normalised_prompts():
    enc = FakeEncoder(VECTORS)
    W = build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"])
    assert W.shape == (2, 3)
    # cat: mean of (0.6, 0.8, 0) and (0, 0, 1) = (0.3, 0.4, 0.5), norm sqrt(0.5)
    s = math.sqrt(0.5)
    assert W[0].tolist() == pytest.approx([0.3 / s, 0.4 / s, 0.5 / s], abs=1e-6)
    # dog: mean of (1, 0, 0) and (0, 1, 0): the raw norms (1 and 10) must not matter
    assert W[1].tolist() == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(2), 0.0], abs=1e-6)
    assert torch.linalg.norm(W, dim=1).tolist() == pytest.approx([1.0, 1.0])
    assert enc.calls == [["a cat", "the cat", "a dog", "the dog"]]     # one batched call


def test_template_weights():
    enc = FakeEncoder(VECTORS)
    only_a = build_classifier(enc, ["cat", "dog"], ["a {c}"])
    zero_the = build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"], weights=[1.0, 0.0])
    assert torch.allclose(zero_the, only_a, atol=1e-6)
    assert only_a[0].tolist() == pytest.approx([0.6, 0.8, 0.0], abs=1e-6)
    # weight 3:1 on cat: 3*(0.6,0.8,0) + (0,0,1) = (1.8, 2.4, 1)
    w31 = build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"], weights=np.array([3.0, 1.0]))
    assert w31[0].tolist() == pytest.approx(unit([1.8, 2.4, 1.0]).tolist(), abs=1e-6)
    # the scale of the weights does not matter, only their ratios
    w62 = build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"], weights=torch.tensor([6.0, 2.0]))
    assert torch.allclose(w31, w62, atol=1e-6)


def test_per_class_weights():
    enc = FakeEncoder(VECTORS)
    W = build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"], weights=[[1.0, 0.0], [0.0, 1.0]])
    assert W[0].tolist() == pytest.approx([0.6, 0.8, 0.0], abs=1e-6)      # cat: "a cat" only
    assert W[1].tolist() == pytest.approx([0.0, 1.0, 0.0], abs=1e-6)      # dog: "the dog" only


def test_per_class_prompt_dicts():
    table = {**VECTORS, "a fluffy cat": [0.0, 0.0, 5.0]}
    enc = FakeEncoder(table)
    W = build_classifier(enc, ["cat", "dog"], {"dog": ["a dog"], "cat": ["a cat", "a fluffy cat", "the cat"]})
    # cat: mean of (0.6,0.8,0), (0,0,1), (0,0,1) = (0.2, 0.2667, 0.6667)
    assert W[0].tolist() == pytest.approx(unit([0.6, 0.8, 2.0]).tolist(), abs=1e-6)
    assert W[1].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)
    # per-class prompts of different lengths take per-class weights of matching lengths
    W2 = build_classifier(enc, ["cat", "dog"], {"dog": ["a dog", "the dog"], "cat": ["a cat", "the cat"]},
                          weights=[[0.0, 1.0], [1.0, 1.0]])
    assert W2[0].tolist() == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)
    with pytest.raises(ValueError, match="missing for classes.*dog"):
        build_classifier(enc, ["cat", "dog"], {"cat": ["a cat"]})


@pytest.mark.parametrize("templates", [["a photo"], ["{c} and {c}"], ["a {c}", "no placeholder"]])
def test_templates_need_exactly_one_placeholder(templates):
    with pytest.raises(ValueError, match="exactly once") as err:
        build_classifier(FakeEncoder(VECTORS), ["cat"], templates)
    assert any(t in str(err.value) for t in templates if t.count("{c}") != 1)


def test_no_templates_raise():
    with pytest.raises(ValueError, match="no templates"):
        fill_templates(["cat"], [])


def test_weight_count_mismatch_and_negative_weights_raise():
    enc = FakeEncoder(VECTORS)
    with pytest.raises(ValueError, match="2 prompts but 3 weights"):
        build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"], weights=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="2 prompts but 1 weights"):
        build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"], weights=[[1.0], [1.0]])
    with pytest.raises(ValueError, match=">= 0"):
        build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"], weights=[1.0, -0.5])
    with pytest.raises(ValueError, match="not all 0"):
        build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"], weights=[0.0, 0.0])


def test_template_embeddings_shape_and_order():
    enc = FakeEncoder(VECTORS)
    E = template_embeddings(enc, ["cat", "dog"], ["a {c}", "the {c}"])
    assert E.shape == (2, 2, 3)                                   # [T, C, D]
    assert E[0, 0].tolist() == pytest.approx([0.6, 0.8, 0.0], abs=1e-6)    # "a cat"
    assert E[1, 0].tolist() == pytest.approx([0.0, 0.0, 1.0], abs=1e-6)    # "the cat"
    assert E[0, 1].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)    # "a dog"
    assert E[1, 1].tolist() == pytest.approx([0.0, 1.0, 0.0], abs=1e-6)    # "the dog"
    # the uniform ensemble is the normalised mean over T
    W = build_classifier(enc, ["cat", "dog"], ["a {c}", "the {c}"])
    assert torch.allclose(torch.nn.functional.normalize(E.mean(0), dim=-1), W, atol=1e-6)


def test_logits_shape_and_scale():
    classifier = torch.tensor([[1.0, 0.0], [0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    feats = torch.tensor([[2.0, 0.0], [0.0, 0.5], [3.0, 4.0]])     # unnormalised on purpose
    out = logits(feats, classifier)
    assert out.shape == (3, 3)
    assert out[0].tolist() == pytest.approx([100.0, 0.0, 100 * math.sqrt(0.5)], abs=1e-4)
    assert out[2].tolist() == pytest.approx([60.0, 80.0, 100 * 0.7 * math.sqrt(2)], abs=1e-4)
    assert logits(feats, classifier, scale=1.0)[1].tolist() == pytest.approx([0.0, 1.0, math.sqrt(0.5)], abs=1e-6)


def test_template_set_lookup():
    """Template sets are looked up by name in data/templates (zeroshot.template_set was its dead twin)."""
    assert load_templates("zsworld", "single") == ["a photo of a {c}."]  # CLIP's default prompt, with its period
    with pytest.raises(InvalidChoiceError, match="'ensemble'.*'single'"):
        load_templates("zsworld", "triple")


def test_evaluate_heads_on_a_case_with_known_answers():
    # Two classes A, B; features of three images with labels 0, 1, 1.
    table = {
        "A": [0.0, 1.0, 0.0], "B": [1.0, 0.0, 0.0],                       # names alone point the wrong way
        "a photo of a A": [1.0, 0.0, 0.0], "a photo of a B": [0.0, 1.0, 0.0],   # the template fixes it
        "a drawing of a A": [0.0, 1.0, 0.0], "a drawing of a B": [0.0, 1.0, 0.0],
    }
    feats = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.6, 0.8, 0.0]])
    labels = torch.tensor([0, 1, 1])
    heads = prompt_heads("a photo of a {c}", ["a photo of a {c}", "a drawing of a {c}"])
    assert list(heads) == ["class name", "one template", "ensemble"] and heads["class name"] == CLASS_NAME_ONLY
    out = evaluate_heads(FakeEncoder(table), ["A", "B"], heads, feats, labels)
    assert set(out) == set(heads)
    # class name: image 0 -> B, image 1 -> A, image 2 -> A (0.8 vs 0.6): all wrong
    assert out["class name"].tolist() == [0.0, 0.0, 0.0]
    # one template: A=(1,0,0), B=(0,1,0): all right
    assert out["one template"].tolist() == [1.0, 1.0, 1.0]
    # ensemble: A=(1,1,0)/sqrt2, B=(0,1,0); image 2 scores A 1.4/sqrt2=0.99 > B 0.8: wrong
    assert out["ensemble"].tolist() == [1.0, 1.0, 0.0]
    assert all(v.dtype == np.float64 and v.shape == (3,) for v in out.values())
