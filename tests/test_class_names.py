"""Learned class names (zslab.methods.class_names): untrained names give the zero-shot classifier, training
changes only the name positions and fixes a wrong name, runs repeat exactly, and the renamings make the poor
names they promise."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zslab.errors import InvalidChoiceError
from zslab.methods.class_names import NamePrompts, learn_class_names, named_classifier, rename_classes
from zslab.methods.prompt_learning import CoOpConfig

CLASSES = ["red solid circle", "blue striped square", "green dotted ring", "yellow solid diamond"]


def test_untrained_names_are_the_zero_shot_classifier_and_the_mask_covers_the_names(zsclip_micro):
    lm = zsclip_micro
    with torch.no_grad():
        theirs = F.normalize(lm.model.encode_text(lm.tokenizer([f"a photo of a {c}." for c in CLASSES])).float(), dim=-1)
    assert torch.allclose(named_classifier(lm, CLASSES), theirs, atol=1e-6)
    prompts = NamePrompts(lm.model, lm.tokenizer, CLASSES + ["class 7"])
    n_name_tokens = [int((lm.tokenizer([c])[0] != 0).sum()) - 2 for c in CLASSES + ["class 7"]]
    assert prompts.mask.sum(1).tolist() == n_name_tokens
    assert not prompts.mask[:, :5].any()                       # SOS and "a photo of a" stay fixed
    with pytest.raises(ValueError, match="do not fit"):
        prompts.embeddings(prompts.base[:, :3])


def test_learned_names_fix_a_wrong_name_change_only_names_and_repeat_exactly(zsclip_micro):
    lm = zsclip_micro
    flags = [p.requires_grad for p in lm.model.parameters()]
    gen = torch.Generator().manual_seed(0)
    true = named_classifier(lm, CLASSES)
    labels = torch.arange(len(CLASSES)).repeat(8)
    feats = F.normalize(true[labels] + 0.05 * torch.randn(len(labels), true.shape[1], generator=gen), dim=-1)
    given = ["purple checked cross", *CLASSES[1:]]                # class 0's name is wrong
    before = (feats @ named_classifier(lm, given).T).argmax(1).eq(labels).float()
    cfg = CoOpConfig(steps=60, lr=0.05, batch_size=0)
    first = learn_class_names(lm, given, feats, labels, cfg)
    after = (feats @ named_classifier(lm, given, first["names"]).T).argmax(1).eq(labels).float()
    assert float(first["loss"][-5:].mean()) < float(first["loss"][:2].mean()) - 0.05
    assert after[labels == 0].mean() > before[labels == 0].mean() + 0.5     # the wrong name is corrected
    prompts = NamePrompts(lm.model, lm.tokenizer, given)
    moved = (first["names"] - prompts.base).abs().amax(-1) > 0
    assert moved.any() and not (moved & ~prompts.mask).any()                # only name positions are learned
    assert torch.equal(first["names"], learn_class_names(lm, given, feats, labels, cfg)["names"])
    assert [p.requires_grad for p in lm.model.parameters()] == flags


def test_renamings_make_the_poor_names_they_promise():
    names = CLASSES + ["red striped square", "cyan dotted cross"]
    wrong, idx = rename_classes(names, "wrong colour", 0.5, seed=0)
    assert len(idx) == 3 and idx == sorted(idx) and (wrong, idx) == rename_classes(names, "wrong colour", 0.5, 0)
    for i, (old, new) in enumerate(zip(names, wrong)):
        if i in idx:
            assert new.split()[1:] == old.split()[1:] and new.split()[0] != old.split()[0] and new not in names
        else:
            assert new == old
    no_colour, idx = rename_classes(names, "no colour", 1.0, seed=0)
    assert no_colour[0] == "solid circle" and no_colour[1] == "striped square" == no_colour[4]   # ambiguous
    code, _ = rename_classes(names, "code", 1.0, seed=0)
    assert code == [f"class {i}" for i in range(len(names))]
    assert len(rename_classes(names, "code", 0.01, seed=0)[1]) == 1                              # at least one
    with pytest.raises(InvalidChoiceError, match="wrong colour"):
        rename_classes(names, "misspelt", 0.5, 0)
    with pytest.raises(ValueError, match="fraction"):
        rename_classes(names, "code", 0.0, 0)
    with pytest.raises(ValueError, match="world's colours"):
        rename_classes(["circle"], "no colour", 1.0, 0)
