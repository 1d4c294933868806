"""OGEN (zslab.methods.ogen): the generator's output, neighbour choice, and the joint training: it lowers its
loss, repeats exactly, leaves the shared model as it was, and its shuffled control trains differently."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from zslab.methods.ogen import FeatureGenerator, OGENConfig, learn_context_ogen, nearest_classes
from zslab.methods.prompt_learning import CoOpConfig, context_classifier

BASE = ["red solid circle", "blue striped square", "green dotted ring", "yellow solid diamond", "pink checked cross"]
NEW = ["red striped ring", "blue solid circle", "green checked square", "cyan dotted diamond"]


def test_generator_gives_one_unit_feature_per_query():
    torch.manual_seed(0)
    gen = FeatureGenerator(8)
    q, k, v = torch.randn(5, 1, 8), torch.randn(5, 3, 8), torch.randn(5, 3, 8)
    out = gen(q, k, v)
    assert out.shape == (5, 8) and torch.allclose(out.norm(dim=-1), torch.ones(5), atol=1e-6)
    assert FeatureGenerator(6).attention.num_heads == 1            # 4 heads need a width divisible by 4


def test_nearest_classes_leave_each_class_out_and_check_k():
    sim = torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    assert nearest_classes(sim, 1, exclude_self=True).flatten().tolist() == [1, 0, 1]
    assert nearest_classes(sim, 1, exclude_self=False).flatten().tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="3 neighbours asked for among 2"):
        nearest_classes(sim, 3, exclude_self=True)
    with pytest.raises(ValueError, match="neighbours"):
        OGENConfig(CoOpConfig(), neighbours=0)


def test_joint_training_lowers_its_loss_repeats_and_its_control_differs(zsclip_micro):
    lm = zsclip_micro
    flags = [p.requires_grad for p in lm.model.parameters()]
    gen = torch.Generator().manual_seed(0)
    base = context_classifier(lm, BASE)
    labels = torch.arange(len(BASE)).repeat(4)
    feats = F.normalize(base[labels] + 0.3 * torch.randn(len(labels), base.shape[1], generator=gen), dim=-1)
    cfg = OGENConfig(CoOpConfig(steps=30, lr=0.05, batch_size=0), neighbours=2)
    first = learn_context_ogen(lm, BASE, NEW, feats, labels, cfg)
    assert first["context"].shape == (4, lm.model.token_embedding.weight.shape[1]) and len(first["loss"]) == 30
    assert float(first["loss"][-3:].mean()) < float(first["loss"][:3].mean())
    assert torch.equal(first["context"], learn_context_ogen(lm, BASE, NEW, feats, labels, cfg)["context"])
    shuffled = learn_context_ogen(lm, BASE, NEW, feats, labels, OGENConfig(cfg.coop, 2, shuffle_new=True))
    assert not torch.equal(first["context"], shuffled["context"])
    assert [p.requires_grad for p in lm.model.parameters()] == flags
