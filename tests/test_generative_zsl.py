"""Feature generators (f-CLSWGAN / LisGAN / LsrGAN / SABR-I), the seen-class CNN, and the GeneCIS-style
conditional-similarity tasks, on small synthetic problems and hand cases."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from zslab.errors import InvalidChoiceError
from zslab.methods import conditional_similarity as cs
from zslab.methods import feature_generation as fg
from zslab.methods import gzsl
from zslab.methods.gzsl import ZSL_MODELS, ZSLModel, ZSLProblem


def _clustered_problem(seed: int = 0, n_per_class: int = 40, dim: int = 16) -> ZSLProblem:
    """6 classes whose image features are a linear function of their (distinct, binary) attributes plus
    noise: a generator conditioned on attributes can place the 2 unseen classes."""
    rng = np.random.default_rng(seed)
    side = np.array([[1, 0, 0, 1, 0], [0, 1, 0, 1, 0], [0, 0, 1, 1, 0], [1, 0, 0, 0, 1], [0, 1, 0, 0, 1],
                     [0, 0, 1, 0, 1]], dtype=float)
    mixing = rng.normal(size=(side.shape[1], dim))
    centres = side @ mixing
    def draw(classes):
        y = np.repeat(classes, n_per_class)
        return torch.as_tensor(centres[y] + 0.3 * rng.normal(size=(len(y), dim))).float(), y
    seen, unseen = [0, 1, 2, 3], [4, 5]
    x_train, y_train = draw(seen)
    x_test, y_test = draw(seen + unseen)
    return ZSLProblem(list("abcdef"), side, seen, unseen, x_train, y_train, x_test, y_test)


# ---------------------------------------------------------------------------------------------- generators
def test_soul_samples_are_per_class_centroids():
    x = torch.tensor([[0.0, 0.0], [0.0, 0.2], [5.0, 5.0], [5.0, 5.2]])
    y = torch.tensor([0, 0, 1, 1])
    souls = fg.soul_samples(x, y, 2, per_class=1, seed=0)
    np.testing.assert_allclose(souls[:, 0].numpy(), [[0.0, 0.1], [5.0, 5.1]], atol=1e-6)
    # more souls than images: the images themselves, the last repeated
    assert fg.soul_samples(x, y, 2, per_class=3, seed=0).shape == (2, 3, 2)


def test_relation_regulariser_is_zero_within_epsilon_and_positive_outside():
    side = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    context = fg.GeneratorContext(x, torch.tensor([0, 1]), torch.as_tensor(side).float(), side,
                                  torch.tensor([0, 1]), torch.tensor([2]), seed=0)
    loss = fg.GENERATOR_REGULARISERS.get("semantic relations")(context)

    class Fixed(torch.nn.Module):
        def __init__(self, means):
            super().__init__()
            self.means = means
        def forward(self, rows, generator=None):           # every class's samples sit on its mean
            index = torch.cdist(rows, torch.as_tensor(side).float()).argmin(1)
            return self.means[index]

    matching = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2 ** -0.5, 2 ** -0.5]])   # cosines equal the attributes'
    assert float(loss(Fixed(matching), None, None, None)) == pytest.approx(0.0, abs=1e-9)
    wrong = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert float(loss(Fixed(wrong), None, None, None)) > 0.1


def test_seen_bias_and_unseen_fidelity_by_hand():
    problem = _clustered_problem()
    scores = torch.zeros(len(problem.y_test), 6)
    scores[:, 0] = 1.0                                     # everything goes to seen class 0
    assert fg.seen_bias(scores, problem) == 1.0
    scores[torch.as_tensor(np.isin(problem.y_test, problem.unseen)), 4] = 2.0
    assert fg.seen_bias(scores, problem) == 0.0
    x = F.normalize(problem.x_test, dim=1)
    means = torch.stack([x[torch.as_tensor(problem.y_test == c)].mean(0) for c in range(6)])
    assert fg.unseen_fidelity(F.normalize(means, dim=1), problem) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", ["f-CLSWGAN", "LisGAN", "LsrGAN", "SABR-I"])
def test_generators_recognise_unseen_classes_of_a_linear_world(name):
    problem = _clustered_problem()
    result = gzsl.evaluate_model(name, problem, seed=0, use_cache=False, fixed={"steps": 60})
    assert result.zsl_unseen > 0.75, result.zsl_unseen       # chance among the 2 unseen classes is 0.5
    assert result.zsl_seen > 0.75


def test_fixed_settings_reach_the_fit_and_cannot_override_the_grid(monkeypatch):
    problem = _clustered_problem()
    with pytest.raises(ValueError, match="classifier_epochs"):
        gzsl.evaluate_model("SABR-I", problem, seed=0, use_cache=False, fixed={"classifier_epochs": 3})
    with pytest.raises(ValueError, match="steps must be"):
        gzsl.evaluate_model("f-CLSWGAN", problem, seed=0, use_cache=False, fixed={"steps": 0})


def test_harmonic_selection_can_choose_otherwise_than_unseen_accuracy(monkeypatch):
    problem = _clustered_problem()
    x = F.normalize(problem.x_train.double(), dim=-1).float()
    centres = {problem.classes[c]: x[torch.as_tensor(problem.y_train == c)].mean(0) for c in problem.seen}

    def fit(p, seed=0, variant=0.0):
        c = torch.stack([centres[name] for name in p.classes])
        unseen = torch.as_tensor(p.unseen_mask)

        def score(features):
            s = -torch.cdist(F.normalize(features.float(), dim=-1), c)
            noise = torch.randn(s.shape, generator=torch.Generator().manual_seed(1))
            if variant == 0.0:                 # perfect among the unseen classes, seen columns random
                s[:, ~unseen] = 10 * noise[:, ~unseen]
            else:                              # right everywhere, a little noise on the unseen columns
                s[:, unseen] += 0.05 * noise[:, unseen]
            return s
        return score

    for selection in gzsl.SELECTIONS:
        monkeypatch.setitem(ZSL_MODELS._entries, f"toy-{selection}", ZSLModel(fit, {"variant": (0.0, 1.0)},
                                                                               selection=selection))
    by_accuracy, _ = gzsl.select_on_validation("toy-zsl_unseen", problem, seed=0)
    by_harmonic, _ = gzsl.select_on_validation("toy-harmonic", problem, seed=0)
    assert by_accuracy == {"variant": 0.0} and by_harmonic == {"variant": 1.0}
    with pytest.raises(ValueError, match="unknown selection"):
        ZSLModel(fit, {"variant": (0.0,)}, selection="accuracy")


def test_generator_runs_records_the_diagnostics(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path))
    problem = _clustered_problem()
    monkeypatch.setattr(gzsl, "dataset_problems", lambda *a, **k: iter([("toy", 0, problem)]))
    runs = fg.generator_runs(["toy"], {"toy": "x"}, {}, ["ESZSL", "f-CLSWGAN"], [0], 1, 1, steps=30)
    rows = {r["model"]: r for r in runs.rows}
    assert 0 <= rows["ESZSL"]["seen_bias"] <= 1 and "unseen_fidelity" not in rows["ESZSL"]
    assert -1 <= rows["f-CLSWGAN"]["unseen_fidelity"] <= 1


# ---------------------------------------------------------------------------------------------- seen-class CNN
def test_seen_cnn_learns_its_classes_and_is_refused_for_zsworld():
    from zslab.methods.seen_cnn import FEATURE_DIM, SEEN_CNN, train_seen_cnn

    torch.manual_seed(0)
    images = torch.zeros(60, 1, 28, 28)
    labels = torch.arange(3).repeat_interleave(20)
    for c in range(3):                                     # class c: a bright band at rows 8c .. 8c+6
        images[labels == c, :, 8 * c:8 * c + 6, :] = 1.0
    images += 0.1 * torch.rand_like(images)
    model = train_seen_cnn(images, labels, 3, seed=0, epochs=5)
    assert (model(images).argmax(1) == labels).float().mean() > 0.9
    assert model.body(images).shape == (60, FEATURE_DIM)
    with pytest.raises(ValueError, match="stored datasets"):
        gzsl.build_problem("zsworld", SEEN_CNN, 0, 2, 2)


# ---------------------------------------------------------------------------------------------- GeneCIS tasks
@pytest.mark.parametrize("name", ["focus color", "change color", "focus shape", "change shape"])
def test_every_gallery_has_exactly_one_conditionally_similar_image(name):
    task = cs.CONDITION_TASKS.get(name)
    comps = np.array([(c, p, s) for c in range(4) for p in range(2) for s in range(3)])
    rng = np.random.default_rng(0)
    references, values, galleries = cs.task_compositions(task, comps, 50, 15, rng)
    j = cs.FACTOR_INDEX[task.factor]
    others = [i for i in range(3) if i != j]
    for ref, value, gallery in zip(references, values, galleries):
        if task.kind == "focus":
            right = gallery[:, j] == ref[j]
        else:
            right = (gallery[:, j] == value) & (gallery[:, others] == ref[others]).all(1)
            assert value != ref[j]
        assert right[0] and right.sum() == 1, (ref, value, gallery)
    # the hard distractors are there: in focus tasks, the reference's other factors with another value
    if task.kind == "focus":
        hard = [(g[1:, others] == r[others]).all(1).sum() for r, g in zip(references, galleries)]
        assert np.mean(hard) >= 5


def test_recall_counts_ties_against_the_positive():
    scores = torch.tensor([[0.9, 0.1, 0.2], [0.5, 0.5, 0.1], [0.1, 0.2, 0.3]])
    assert cs.recall_at(scores, (1, 2, 3)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: 1.0}


def test_combiner_learns_to_follow_the_condition():
    # the target is the reference with the condition's direction added: image and text alone both fail
    g = torch.Generator().manual_seed(0)
    n, d = 2000, 8
    reference = F.normalize(torch.randn(n, d, generator=g), dim=1)
    directions = F.normalize(torch.randn(4, d, generator=g), dim=1)
    which = torch.randint(4, (n,), generator=g)
    target = F.normalize(reference + 1.5 * directions[which], dim=1)
    combiner = cs.train_combiner(reference[:1500], directions[which[:1500]], target[:1500], seed=0, epochs=15)
    task = cs.EncodedTask(reference[1500:], directions[which[1500:]],
                          torch.stack([target[1500:], *[target[1500:].roll(k, 0) for k in range(1, 10)]], dim=1), [])
    learned = cs.recall_at(cs.combiner_scores(combiner, task))[1]
    image_only = cs.recall_at(cs.zero_shot_scores("image only", task))[1]
    assert learned > image_only + 0.2 and learned > 0.6, (learned, image_only)


def test_unknown_task_names_the_choices():
    with pytest.raises(InvalidChoiceError, match="focus color"):
        cs.CONDITION_TASKS.get("focus size")


def test_combiner_scores_are_cached_so_a_warm_rerun_trains_nothing(zsclip_micro, monkeypatch):
    encoded = {"change color": cs.encode_task(zsclip_micro, "change color", 8, seed=0)}
    calls = []
    real = cs.train_combiner
    monkeypatch.setattr(cs, "train_combiner", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = cs.cached_combiner_scores(zsclip_micro, encoded, 40, seed=0, shuffle=False, epochs=1)
    again = cs.cached_combiner_scores(zsclip_micro, encoded, 40, seed=0, shuffle=False, epochs=1)
    assert len(calls) == 1 and torch.equal(first["change color"], again["change color"])
    assert first["change color"].shape == (8, cs.GALLERY_SIZE)
    cs.cached_combiner_scores(zsclip_micro, encoded, 40, seed=0, shuffle=True, epochs=1)
    assert len(calls) == 2                                  # the control is its own entry
