"""Continual fine-tuning (ZSCL, momentum interpolation): the distillation loss, the weight averagers, the
MTIL scores, and the loop on a tiny model."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from zslab.errors import InvalidChoiceError
from zslab.methods.continual import (HELD_OUT, START, ContinualMethod, ContinualResults, ReferenceData, Task,
                                     _Averager, distillation_loss, run_continual)
from zslab.train.finetune import FinetuneConfig

TINY = dict(embed_dim=16, vision_cfg=dict(image_size=16, layers=1, width=32, head_width=16, patch_size=8),
            text_cfg=dict(context_length=8, vocab_size=64, width=32, heads=2, layers=1))


def test_distillation_is_smallest_where_the_student_matches_the_teacher():
    teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    t = 2.0
    at_teacher = distillation_loss(teacher.clone(), teacher, t)
    # by hand: T² × (row entropies + column entropies) of softmax(teacher / T)
    p_rows = F.softmax(teacher / t, dim=1)
    p_cols = F.softmax(teacher.T / t, dim=1)
    entropy = -(p_rows * p_rows.log()).sum(1).mean() - (p_cols * p_cols.log()).sum(1).mean()
    assert math.isclose(float(at_teacher), float(t * t * entropy), rel_tol=1e-6)
    student = teacher.clone().requires_grad_(True)
    distillation_loss(student, teacher, t).backward()
    assert torch.allclose(student.grad, torch.zeros_like(student.grad), atol=1e-6)
    assert distillation_loss(teacher + torch.tensor([[1.0, -1.0], [0.0, 0.0]]), teacher, t) > at_teacher


def test_averagers_by_hand():
    fast = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        fast.weight.fill_(0.0)
    momentum = _Averager(ContinualMethod(average="momentum", momentum=0.5), fast)
    ensemble = _Averager(ContinualMethod(average="weight-ensemble", avg_every=2), fast)
    ensemble.start_task(fast)
    for step, value in enumerate([4.0, 8.0, 2.0]):
        with torch.no_grad():
            fast.weight.fill_(value)
        momentum.step(fast, step)
        ensemble.step(fast, step)
    assert float(momentum.predicting(fast).weight.detach()) == 3.5  # slow: 0 → 2 → 5 → 3.5 (half old, half new)
    assert float(ensemble.predicting(fast).weight.detach()) == (4.0 + 2.0) / 2  # steps 0 and 2 are sampled
    assert _Averager(ContinualMethod(), fast).predicting(fast) is fast


def test_method_checks_name_the_bad_value():
    with pytest.raises(InvalidChoiceError, match="swa"):
        ContinualMethod(average="swa")
    with pytest.raises(ValueError, match="momentum"):
        ContinualMethod(average="momentum", momentum=1.0)
    with pytest.raises(ValueError, match="avg_every"):
        ContinualMethod(avg_every=0)


def test_mtil_scores_from_a_hand_made_table():
    rows = []
    acc = {(START, "a"): 0.1, (START, "b"): 0.2, (START, HELD_OUT): 0.5,
           ("a", "a"): 0.9, ("a", "b"): 0.4, ("a", HELD_OUT): 0.3,
           ("b", "a"): 0.6, ("b", "b"): 0.8, ("b", HELD_OUT): 0.2}
    for (after, s), v in acc.items():
        rows.append({"seed": 0, "method": "m", "after": after, "set": s, "top1": v})
    res = ContinualResults(table=pd.DataFrame(rows), tasks=["a", "b"], methods=["m"])
    score = res.summary_scores().iloc[0]
    assert math.isclose(score["transfer"], (0.2 + 0.4) / 2)  # task b before it is learned: start and after a
    assert math.isclose(score["last"], (0.6 + 0.8) / 2)
    assert math.isclose(score[HELD_OUT], 0.2)
    assert res.steps().set_index(["after", "set"]).loc[("b", "a"), "tasks learned"] == 2


def _task(name, n_classes, seed):
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (8 * n_classes, 16, 16, 3), generator=g, dtype=torch.uint8)
    labels = torch.arange(n_classes).repeat(8)
    head = F.normalize(torch.randn(n_classes, 16, generator=g), dim=-1)
    return Task(name, images, labels, images[:16], labels[:16], head, {"name": name})


def test_the_loop_is_deterministic_and_every_method_runs():
    torch.manual_seed(0)
    lm = SimpleNamespace(model=open_clip.CLIP(**TINY).eval(), logit_scale=20.0)
    tasks, held = [_task("a", 3, 1), _task("b", 4, 2)], _task(HELD_OUT, 5, 3)
    g = torch.Generator().manual_seed(4)
    ref_images = torch.randint(0, 256, (12, 16, 16, 3), generator=g, dtype=torch.uint8)
    reference = ReferenceData(ref_images, F.normalize(torch.randn(12, 16, generator=g), dim=-1),
                              F.normalize(torch.randn(6, 16, generator=g), dim=-1), {})
    cfg = FinetuneConfig(steps=6, batch_size=8, lr=1e-3, warmup_steps=1)
    keys = {f"{after}/{s}" for after in (START, "a", "b") for s in ("a", "b", HELD_OUT)}
    for fields in ({}, {"distill": True, "average": "weight-ensemble", "avg_every": 2}, {"average": "momentum"}):
        method = ContinualMethod(**fields)
        first = run_continual(lm, tasks, held, method, cfg, reference, ref_batch=4)
        again = run_continual(lm, tasks, held, method, cfg, reference, ref_batch=4)
        assert set(first) == keys and all(np.array_equal(first[k], again[k]) for k in keys), fields
    with pytest.raises(ValueError, match="reference data"):
        run_continual(lm, tasks, held, ContinualMethod(distill=True), cfg, None)
