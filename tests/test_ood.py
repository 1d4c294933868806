"""Zero-shot OOD scores (zslab.methods.ood) on hand-made features, and CLIPN's losses and no-tower training
(zslab.train.negation) on the smallest offline CLIP."""
from __future__ import annotations

import math

import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F

from zslab.errors import ZslabError
from zslab.methods.ood import NoTower, classes_with_words, clipn_no_tower, ood_scores, ood_table
from zslab.train.negation import (NoTowerConfig, clipn_loss, is_text_part, load_prompt_pairs, no_tower_model,
                                  train_no_tower)


def test_classes_with_words_matches_whole_words():
    classes = ["red solid circle", "blue striped ring", "green dotted square", "pink checked circular thing"]
    assert classes_with_words(classes, ["circle", "square"]) == [0, 2]
    assert classes_with_words(classes, []) == [0, 1, 2, 3]
    assert classes_with_words(classes, ["Ring "]) == [1]


def test_scores_on_hand_made_features():
    yes = torch.eye(2, 3)                                      # two ID classes along axes 0 and 1
    feats = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])   # an ID image, and one orthogonal to both classes
    s = ood_scores(feats, yes, logit_scale=10.0)
    assert set(s) == {"MSP"}
    assert s["MSP"][0] == pytest.approx(1 / (1 + math.exp(-10)))    # softmax of logits (10, 0)
    assert s["MSP"][1] == pytest.approx(0.5)                          # (0, 0): no class stands out
    no = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])      # both "no" prompts point at the OOD direction
    s = ood_scores(feats, yes, 10.0, no)
    # ID image: class 0 says yes (logit 10 vs no 0); OOD image: every class says no (0 vs 10)
    assert s["CLIPN (CTW)"][0] == pytest.approx(1 / (1 + math.exp(-10)))
    assert s["CLIPN (CTW)"][1] == pytest.approx(1 / (1 + math.exp(10)))
    p0 = torch.tensor([10.0, 0.0]).softmax(0)
    atd0 = float(p0[0] / (1 + math.exp(-10)) + p0[1] * 0.5)      # class 1: yes 0 vs no 0
    assert s["CLIPN (ATD)"][0] == pytest.approx(atd0, rel=1e-5)
    rows = ood_table({k: v[:1] for k, v in s.items()}, {k: v[1:] for k, v in s.items()}, prefix="x: ", seed=3)
    assert {r["method"] for r in rows} == {"x: MSP", "x: CLIPN (CTW)", "x: CLIPN (ATD)"}
    assert all(r["auroc"] == 1.0 and r["seed"] == 3 for r in rows if r["method"] != "x: MSP")


def test_prompt_pairs_are_paired_and_have_one_slot(tmp_path):
    yes, no = load_prompt_pairs()
    assert len(yes) == len(no) >= 3 and all(" no " in n or "without" in n for n in no)
    bad = tmp_path / "pairs.json"
    bad.write_text('{"yes": ["a {}", "b {}"], "no": ["no {}"]}')
    with pytest.raises(ValueError, match="pairs"):
        load_prompt_pairs(str(bad))


def test_clipn_loss_rewards_yes_on_the_diagonal_and_no_elsewhere():
    img = torch.eye(3)
    good = clipn_loss(img, yes_features=torch.eye(3), no_features=-torch.eye(3), logit_scale=10.0)
    swapped = clipn_loss(img, yes_features=-torch.eye(3), no_features=torch.eye(3), logit_scale=10.0)
    assert good["yes"] < 1e-3 < swapped["yes"]
    assert float(good["tso"]) == pytest.approx(2 - math.sqrt(4 + 1e-4), abs=1e-6)   # opposite texts: the minimum
    same = clipn_loss(img, torch.eye(3), torch.eye(3), 10.0)
    assert float(same["tso"]) == pytest.approx(2 - 0.01, abs=1e-5)                # identical texts: the maximum
    ignore = torch.ones(3, 3, dtype=torch.bool)                           # every off-diagonal pair left out
    assert clipn_loss(img, torch.eye(3), -torch.eye(3), 10.0, ignore=ignore)["no"] == 0
    assert good["total"] == pytest.approx(0.5 * (good["yes"] + good["no"] + good["tso"]))


def test_no_tower_training_moves_only_the_text_tower_and_lowers_its_loss(zsclip_micro):
    lm = zsclip_micro
    n = 64
    gen = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(n, 32, generator=gen), dim=-1)
    captions = [[f"red solid circle number {i}", f"a red circle {i}"] for i in range(n)]
    classes = np.arange(n) % 8
    cfg = NoTowerConfig(steps=30, batch_size=16, lr=1e-3, warmup_steps=2)
    state, history = train_no_tower(lm.model, lm.tokenizer, feats, captions, classes, lm.logit_scale, cfg, seed=1)
    assert state and all(is_text_part(k) for k in state)
    assert np.mean(history["total"][-5:]) < np.mean(history["total"][:5])
    before = {k: v for k, v in lm.model.state_dict().items()}
    tower = no_tower_model(lm.model, state)
    assert all(torch.equal(tower.state_dict()[k], before[k]) for k in before if not is_text_part(k))
    assert any(not torch.equal(tower.state_dict()[k], before[k]) for k in state)
    again, _ = train_no_tower(lm.model, lm.tokenizer, feats, captions, classes, lm.logit_scale, cfg, seed=1)
    assert all(torch.equal(again[k], state[k]) for k in state)            # deterministic for a seed
    out = NoTower(tower, lm.tokenizer).encode_text(["a photo of no red solid circle."])
    assert out.shape == (1, 32) and torch.linalg.norm(out).item() == pytest.approx(1.0, abs=1e-5)


def test_clipn_tower_is_cached_and_needs_an_offline_model(zsclip_micro, tmp_path):
    from zslab.cache import TensorCache

    cache = TensorCache(tmp_path)
    cfg = NoTowerConfig(steps=3, batch_size=8)
    first = clipn_no_tower(zsclip_micro, cfg, n_images=40, seed=0, cache=cache)
    second = clipn_no_tower(zsclip_micro, cfg, n_images=40, seed=0, cache=cache)
    assert (cache.misses, cache.hits) == (1, 1)
    text = ["a photo of no red solid circle."]
    assert torch.equal(first.encode_text(text), second.encode_text(text))

    class Stranger:
        name, manifest = "ViT-B-32", {}
    with pytest.raises(ZslabError, match="not a zslab offline CLIP"):
        clipn_no_tower(Stranger(), cfg)


def test_prompt_tokens_match_the_tokenizer_on_each_prompt():
    from zslab.train.negation import _prompt_tokens

    tokenizer = open_clip.SimpleTokenizer(context_length=12)
    captions = [["a red circle", "red circle."], ["a big blue square with stripes and dots"]]
    captions[1].append(captions[1][0])
    templates = ["a photo of {}.", "a photo of no {}."]
    table = _prompt_tokens(tokenizer, templates, captions)
    assert table.shape == (2, 2, 2, 12)
    for i, per_image in enumerate(captions):
        for k, caption in enumerate(per_image):
            assert torch.equal(table[i, k], tokenizer([t.format(caption) for t in templates]))
