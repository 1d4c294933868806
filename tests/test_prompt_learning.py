"""CoOp's learnable context (zslab.methods.prompt_learning): the embedding path equals open_clip's encode_text,
training lowers the loss and fits the shots, runs repeat exactly, and bad prompts fail clearly."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zslab.methods.prompt_learning import (ClassPrompts, CoOpConfig, context_classifier, full_batch_config,
                                          learn_context)

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
