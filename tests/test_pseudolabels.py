"""Pseudolabel prompt tuning (zslab.methods.pseudolabels): class-balanced and global selection by hand, GRIP's
growing schedule and relabelling, FPL, the oracle control, the three paradigms' data, and the real learners."""
from __future__ import annotations

from typing import List

import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.methods.pseudolabels import (PROMPT_MODALITIES, STRATEGIES, PromptLearner, PseudolabelTask,
                                        build_paradigm, fpl, grip, make_learner, oracle, select_pseudolabels)

# 6 unlabelled images, 3 classes: images 0-2 lean to class 0 (confidence 0 > 1 > 2), image 3 to class 1, images 4-5
# to class 2 (5 more than 4).
LOGITS = torch.tensor([[5.0, 0, 0], [4.0, 0, 0], [3.0, 0, 0], [0, 2.0, 0], [0, 0, 1.0], [0, 0, 2.5]])


def test_class_balanced_selection_keeps_each_classes_most_confident_by_hand():
    picked = select_pseudolabels(LOGITS, 2)
    assert picked["rows"].tolist() == [0, 1, 3, 4, 5]                  # class 0 keeps 0 and 1, not 2
    assert picked["labels"].tolist() == [0, 0, 1, 2, 2]
    one = select_pseudolabels(LOGITS, 1)
    assert one["rows"].tolist() == [0, 3, 5] and one["labels"].tolist() == [0, 1, 2]


def test_global_selection_takes_the_most_confident_whatever_their_class():
    picked = select_pseudolabels(LOGITS, 1, selection="global")       # 1 × 3 classes = the 3 most confident
    assert picked["rows"].tolist() == [0, 1, 2] and picked["labels"].tolist() == [0, 0, 0]


def test_candidates_restrict_the_pseudolabels_classes():
    picked = select_pseudolabels(LOGITS, 5, candidates=[1, 2])
    assert set(picked["labels"].tolist()) <= {1, 2} and len(picked["rows"]) == 6
    assert picked["labels"][picked["rows"] == 0].item() in (1, 2)        # image 0's best among 1 and 2


def test_selection_rejects_bad_arguments_naming_them():
    with pytest.raises(InvalidChoiceError, match="class-balanced"):
        select_pseudolabels(LOGITS, 1, selection="balanced")
    with pytest.raises(ValueError, match="n_per_class"):
        select_pseudolabels(LOGITS, 0)
    with pytest.raises(ValueError, match="candidates"):
        select_pseudolabels(LOGITS, 1, candidates=[3])


class RecordingLearner(PromptLearner):
    """Scores with fixed logits until fitted; a fit returns the one-hot logits of the labels it was given on
    exactly the rows of the unlabelled pool it saw (so a test can tell which round's scorer is used)."""

    def __init__(self, logits: torch.Tensor, relabel: torch.Tensor):
        self.logits, self.relabel = logits, relabel
        self.fits: List[torch.Tensor] = []

    def zero_shot(self):
        return lambda x: self.logits

    def fit(self, features, labels, label=""):
        self.fits.append(labels.clone())
        return lambda x: torch.nn.functional.one_hot(self.relabel, self.logits.shape[1]).float() * 10


def test_grip_grows_the_pseudolabels_and_relabels_with_the_previous_round():
    n, classes = 12, 3
    logits = torch.zeros(n, classes)
    logits[torch.arange(n), torch.arange(n) % classes] = torch.linspace(1, 3, n)   # zero-shot: i % 3
    truth = torch.arange(n) % classes
    relabel = (torch.arange(n) + 1) % classes                                        # every fit relabels: i+1 % 3
    learner = RecordingLearner(logits, relabel)
    task = PseudolabelTask(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), torch.zeros(n, 2),
                           unlabelled_truth=truth)
    result = grip(learner, task, rounds=2)
    assert [len(f) for f in learner.fits] == [6, 12]                 # half of the 4 per class, then all of them
    assert [h["pseudolabels"] for h in result.history] == [6, 12]
    assert result.history[0]["pseudolabel_accuracy"] == 1.0           # round 1: zero-shot labels, all right
    assert result.history[1]["pseudolabel_accuracy"] == 0.0           # round 2: the first fit's relabelling, all wrong
    assert torch.equal(result.scorer(None).argmax(1), relabel)


def test_fpl_trains_once_on_labelled_plus_pseudolabelled_and_the_oracle_on_the_truth():
    logits = LOGITS
    learner = RecordingLearner(logits, torch.zeros(6, dtype=torch.long))
    task = PseudolabelTask(torch.zeros(2, 2), torch.tensor([2, 1]), torch.zeros(6, 2),
                           unlabelled_truth=torch.tensor([0, 0, 1, 1, 2, 2]))
    out = fpl(learner, task, n_per_class=1)
    assert learner.fits[-1].tolist() == [2, 1, 0, 1, 2] and out.history[0]["pseudolabels"] == 3
    oracle(learner, task)
    assert learner.fits[-1].tolist() == [2, 1, 0, 0, 1, 1, 2, 2]
    with pytest.raises(ValueError, match="true labels"):
        oracle(learner, PseudolabelTask(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), torch.zeros(3, 2)))
    assert STRATEGIES.get("labelled only")(learner, task).scorer is not None
    with pytest.raises(InvalidChoiceError, match="GRIP"):
        STRATEGIES.get("grip")


def test_paradigms_split_the_data_as_the_paper_does(zsclip_micro):
    from zslab.fewshot import draw_classes, few_shot_data

    unseen = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=4, n_val=0, n_test=2)
    seen = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=2, n_val=0, n_test=2, split="seen",
                         classes=draw_classes(zsclip_micro, "zsworld", "seen", 3, seed=0))
    c = len(unseen.classes)
    ul = build_paradigm("UL", unseen)
    assert len(ul.task.labelled_labels) == 0 and len(ul.task.unlabelled_features) == 4 * c
    ssl = build_paradigm("SSL", unseen, n_labelled=1)
    assert torch.bincount(ssl.task.labelled_labels, minlength=c).tolist() == [1] * c
    assert len(ssl.task.unlabelled_features) == 3 * c
    pool = {tuple(r) for r in unseen.pool_features.tolist()}
    parts = [{tuple(r) for r in ssl.task.labelled_features.tolist()}, {tuple(r) for r in ssl.task.unlabelled_features.tolist()}]
    assert not parts[0] & parts[1] and parts[0] | parts[1] == pool
    tr = build_paradigm("TRZSL", unseen, seen)
    assert tr.classes == seen.classes + unseen.classes and tr.task.candidates == list(range(3, 3 + c))
    assert tr.task.unlabelled_truth.min() == 3 and len(tr.test_labels) == 2 * (3 + c)
    learner = make_learner("textual", zsclip_micro, tr.classes)
    scored = tr.score(learner.zero_shot())
    assert {"seen", "unseen", "harmonic"} <= set(scored) and scored["accuracy"] == scored["harmonic"]
    with pytest.raises(ValueError, match="seen="):
        build_paradigm("TRZSL", unseen)
    with pytest.raises(ValueError, match="between 1 and 3"):
        build_paradigm("SSL", unseen, n_labelled=4)
    with pytest.raises(ValueError, match="disjoint"):
        build_paradigm("TRZSL", unseen, unseen)
    with pytest.raises(InvalidChoiceError, match="TRZSL"):
        build_paradigm("transductive", unseen)


def test_real_learners_score_like_zero_shot_clip_untrained_and_fit_pseudolabels(zsclip_micro, tmp_path):
    from zslab.cache import TensorCache
    from zslab.fewshot import few_shot_data

    emb = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=3, n_val=0, n_test=2)
    pre = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=3, n_val=0, n_test=2,
                        features="pre-projection")
    cache = TensorCache(tmp_path)
    textual = make_learner("textual", zsclip_micro, emb.classes, epochs=5, cache=cache)
    visual = make_learner("visual", zsclip_micro, emb.classes, epochs=20, cache=cache)
    assert textual.feature_kind == "embedding" and visual.feature_kind == "pre-projection"
    zs_t = textual.zero_shot()(emb.test_features).argmax(1)
    assert torch.equal(zs_t, visual.zero_shot()(pre.test_features).argmax(1))   # the same CLIP before training
    for learner, data in ((textual, emb), (visual, pre)):
        task = PseudolabelTask(data.pool_features[:0], data.pool_labels[:0], data.pool_features,
                               unlabelled_truth=data.pool_labels)
        first = fpl(learner, task, n_per_class=2).scorer(data.test_features)
        again = fpl(learner, task, n_per_class=2).scorer(data.test_features)
        assert torch.equal(first, again)                                        # deterministic
        assert not torch.allclose(first, learner.zero_shot()(data.test_features))
    assert (cache.misses, cache.hits) == (2, 2)                                  # the second fits were read back
    with pytest.raises(InvalidChoiceError, match="textual"):
        make_learner("multimodal", zsclip_micro, emb.classes)
    assert PROMPT_MODALITIES.names() == ["textual", "visual"]


def test_few_shot_data_renders_a_shift_only_for_generated_datasets(zsclip_micro):
    from zslab.fewshot import few_shot_data

    plain = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=1, n_val=0, n_test=1)
    shifted = few_shot_data("zsclip-micro", "zsworld", "zsworld", seed=0, max_shots=1, n_val=0, n_test=1,
                            shift={"noise": 40.0})
    assert shifted.classes == plain.classes and not torch.allclose(shifted.pool_features, plain.pool_features)
    with pytest.raises(ValueError, match="stored"):
        few_shot_data("zsclip-micro", "zsworld", "fashion_mnist", seed=0, shift={"noise": 40.0})
