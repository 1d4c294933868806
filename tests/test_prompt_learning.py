"""CoOp's learnable context (zslab.methods.prompt_learning): the embedding path equals open_clip's encode_text,
training lowers the loss and fits the shots, runs repeat exactly, and bad prompts fail clearly."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zslab.methods.prompt_learning import (RANDOM_INIT_STD, ClassPrompts, CoOpConfig, context_classifier,
                                          full_batch_config, learn_context, random_context_words)

CLASSES = ["red solid circle", "blue striped square", "green dotted ring", "yellow solid diamond"]


def test_hand_made_context_reproduces_encode_text(zsclip_micro):
    lm = zsclip_micro
    ours = context_classifier(lm, CLASSES, context_init="a photo of a")
    with torch.no_grad():
        theirs = F.normalize(lm.model.encode_text(lm.tokenizer([f"a photo of a {c}." for c in CLASSES])).float(), dim=-1)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_learned_context_fits_the_shots_and_repeats_exactly(zsclip_micro):
    lm = zsclip_micro
    flags = [p.requires_grad for p in lm.model.parameters()]
    gen = torch.Generator().manual_seed(0)
    # features near each class's hand-made text embedding but rotated: the hand-made context is not optimal
    base = context_classifier(lm, CLASSES)
    noise = torch.randn(len(CLASSES), base.shape[1], generator=gen)
    centres = F.normalize(base + 0.8 * noise, dim=-1)
    labels = torch.arange(len(CLASSES)).repeat(8)
    feats = F.normalize(centres[labels] + 0.05 * torch.randn(len(labels), base.shape[1], generator=gen), dim=-1)
    cfg = CoOpConfig(steps=60, lr=0.05, batch_size=0)
    first = learn_context(lm, CLASSES, feats, labels, cfg)
    assert float(first["loss"][-5:].mean()) < float(first["loss"][:2].mean()) - 0.05
    before = (feats @ base.T).argmax(1).eq(labels).float().mean()
    after = (feats @ context_classifier(lm, CLASSES, first["context"]).T).argmax(1).eq(labels).float().mean()
    assert after >= before and after > 0.5
    again = learn_context(lm, CLASSES, feats, labels, cfg)
    assert torch.equal(first["context"], again["context"])
    assert [p.requires_grad for p in lm.model.parameters()] == flags          # the shared model is left as it was


def test_context_carries_over_to_classes_it_never_saw(zsclip_micro):
    lm = zsclip_micro
    ctx = ClassPrompts(lm.model, lm.tokenizer, CLASSES[:2], "a photo of a").initial_context
    new = context_classifier(lm, CLASSES[2:], ctx)
    assert torch.allclose(new, context_classifier(lm, CLASSES[2:]), atol=1e-6)


def test_bad_prompts_and_configs_fail_clearly(zsclip_micro):
    lm = zsclip_micro
    with pytest.raises(ValueError, match="fills or overflows"):
        ClassPrompts(lm.model, lm.tokenizer, ["very " * 30 + "long name"], "a photo of a")
    prompts = ClassPrompts(lm.model, lm.tokenizer, CLASSES, "a photo of a")
    with pytest.raises(ValueError, match="does not fit prompts built for"):
        prompts.embeddings(torch.zeros(2, prompts.initial_context.shape[1]))
    with pytest.raises(ValueError, match="steps"):
        CoOpConfig(steps=0)


def test_schedule_warms_up_at_a_constant_then_decays_by_cosine():
    cfg = CoOpConfig(steps=11, lr=0.1, warmup_steps=1, warmup_lr=1e-5)
    assert cfg.lr_at(0) == 1e-5 and cfg.lr_at(1) == pytest.approx(0.1)
    assert cfg.lr_at(6) == pytest.approx(0.05) and cfg.lr_at(10) < 0.003


def test_full_batch_recipe_follows_coop_epochs_and_scales_the_rate():
    one, sixteen = full_batch_config(1, 38), full_batch_config(16, 38)
    assert (one.steps, sixteen.steps, full_batch_config(4, 38).steps) == (50, 200, 100)
    assert one.batch_size == 0 and one.lr == pytest.approx(0.002 * 38 / 32)
    assert sixteen.lr == pytest.approx(0.002 * 16 * 38 / 32)
    assert full_batch_config(3, 10).steps == 50                       # between listed counts: the one below


def test_random_init_starts_from_small_vectors_at_placeholder_positions_and_learns(zsclip_micro):
    lm = zsclip_micro
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(len(CLASSES)).repeat(6)
    centres = context_classifier(lm, CLASSES)
    feats = F.normalize(centres[labels] + 0.05 * torch.randn(len(labels), centres.shape[1], generator=gen), dim=-1)
    cfg = CoOpConfig(steps=40, lr=0.2, batch_size=0, random_init=3, seed=5)
    assert cfg.context_words == random_context_words(3) == "X X X"
    zero_steps = learn_context(lm, CLASSES, feats, labels, CoOpConfig(steps=1, lr=1e-9, batch_size=0, random_init=3,
                                                                     seed=5, warmup_steps=1, warmup_lr=1e-12))
    assert zero_steps["context"].shape[0] == 3 and zero_steps["context"].std() < 3 * RANDOM_INIT_STD
    out = learn_context(lm, CLASSES, feats, labels, cfg)
    assert float(out["loss"][-3:].mean()) < 0.6 * float(out["loss"][0])
    learned = context_classifier(lm, CLASSES, out["context"], cfg.context_words)
    assert (feats @ learned.T).argmax(1).eq(labels).float().mean() > 1.5 / len(CLASSES)
    with pytest.raises(ValueError, match="random_init"):
        CoOpConfig(random_init=-1)
