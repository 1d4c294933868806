"""Classic (generalized) zero-shot learning: the seen-unseen curve, AUSUC, the models and the validation split."""
import numpy as np
import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.metrics import ausuc, calibrated_stacking, gzsl_metrics, seen_unseen_curve
from zslab.methods import gzsl
from zslab.methods.gzsl import ZSL_MODELS, ZSLProblem


# ---------------------------------------------------------------------------------------------- the curve and AUSUC
def test_curve_equals_calibrated_stacking_at_every_point():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(80, 7))
    labels = rng.integers(0, 7, 80)
    seen, unseen = [0, 1, 2, 3, 4], [5, 6]
    curve = seen_unseen_curve(scores, labels, seen, unseen)
    mask = np.zeros(7, bool)
    mask[unseen] = True
    for gamma, s, u in zip(curve["gamma"], curve["seen"], curve["unseen"]):
        g = float(np.clip(gamma, -1e9, 1e9))
        m = gzsl_metrics(calibrated_stacking(scores, mask, g).argmax(1), labels, seen, unseen)
        assert m["seen"] == pytest.approx(s, abs=1e-12) and m["unseen"] == pytest.approx(u, abs=1e-12)
    assert np.all(np.diff(curve["gamma"]) > 0)
    assert np.all(np.diff(curve["seen"]) <= 1e-12) and np.all(np.diff(curve["unseen"]) >= -1e-12)


def test_curve_end_points_are_the_two_conventional_tasks():
    # 2 seen classes (0, 1), 1 unseen (2); one image per class plus a second image of class 2
    scores = np.array([[3.0, 1.0, 2.0],    # class 0: right among seen, margin +1
                       [0.0, 2.0, 5.0],    # class 1: right among seen, margin -3
                       [4.0, 0.0, 1.0],    # class 2: margin +3
                       [0.0, 1.0, 2.0]])   # class 2: margin -1
    labels = np.array([0, 1, 2, 2])
    curve = seen_unseen_curve(scores, labels, [0, 1], [2])
    assert curve["seen"][0] == 1.0 and curve["unseen"][0] == 0.0          # everything seen: A_S→S = 1
    assert curve["seen"][-1] == 0.0 and curve["unseen"][-1] == 1.0        # everything unseen: A_U→U = 1
    # margins sorted: -3 (class 1), -1 (class 2), +1 (class 0), +3 (class 2)
    np.testing.assert_allclose(curve["gamma"][1:-1], [-2.0, 0.0, 2.0])
    np.testing.assert_allclose(curve["seen"], [1.0, 0.5, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(curve["unseen"], [0.0, 0.0, 0.5, 0.5, 1.0])
    assert ausuc(curve["seen"], curve["unseen"]) == pytest.approx(0.5 * 0.5 + 0.5 * 0.0)


def test_ausuc_of_known_curves():
    assert ausuc([1.0, 0.0], [0.0, 1.0]) == pytest.approx(0.5)                         # the straight line
    assert ausuc([1.0, 1.0, 0.0], [0.0, 1.0, 1.0]) == pytest.approx(1.0)              # a perfect classifier
    assert ausuc([0.8, 0.8, 0.4, 0.0], [0.0, 0.5, 0.5, 1.0]) == pytest.approx(0.4 + 0.1)  # a drop, then a slope
    assert ausuc([0.0, 0.4, 0.8, 0.8], [1.0, 0.5, 0.5, 0.0]) == pytest.approx(0.4 + 0.1)  # any order
    assert ausuc([0.6], [0.5]) == pytest.approx(0.3)                                  # end points added
    with pytest.raises(ValueError, match="fractions"):
        ausuc([1.2], [0.1])
    with pytest.raises(ValueError, match="equal"):
        ausuc([0.5, 0.1], [0.1])


def test_curve_rejects_bad_splits():
    scores = np.zeros((4, 3))
    with pytest.raises(ValueError, match="disjoint"):
        seen_unseen_curve(scores, [0, 1, 2, 2], [0, 1], [1, 2])
    with pytest.raises(ValueError, match="both seen and unseen"):
        seen_unseen_curve(scores, [0, 1, 0, 1], [0, 1], [2])


# ---------------------------------------------------------------------------------------------- a linear world
def _problem(seed: int = 0, noise: float = 0.3, n_per_class: int = 30) -> ZSLProblem:
    """8 classes with unique binary attribute rows; an image's features are a fixed linear map of its class's
    attributes plus noise, so attributes learnt on 6 classes transfer to the other 2."""
    rng = np.random.default_rng(seed)
    side = np.array([[1, 0, 0, 1, 0, 1], [0, 1, 0, 1, 1, 0], [0, 0, 1, 0, 1, 1], [1, 1, 0, 0, 0, 1],
                     [0, 1, 1, 1, 0, 0], [1, 0, 1, 0, 1, 0], [1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], float)
    mixing = rng.normal(size=(6, 12))

    def draw(classes):
        y = np.repeat(classes, n_per_class)
        return torch.as_tensor(side[y] @ mixing + noise * rng.normal(size=(len(y), 12))).float(), y

    seen, unseen = np.arange(6), np.array([6, 7])
    x_train, y_train = draw(seen)
    x_test, y_test = draw(np.arange(8))
    return ZSLProblem([f"c{i}" for i in range(8)], side, seen, unseen, x_train, y_train, x_test, y_test)


@pytest.mark.parametrize("name", ["DAP", "ESZSL", "DeViSE", "ALE", "SJE"])
def test_every_model_transfers_to_unseen_classes_of_a_linear_world(name):
    problem = _problem(n_per_class=100)  # the bilinear models' 30 epochs need enough minibatches
    scores = ZSL_MODELS.get(name).fit(problem, seed=0)(problem.x_test)
    assert scores.shape == (len(problem.y_test), 8)
    assert gzsl.zsl_accuracy(scores, problem.y_test, problem.unseen) > 0.9  # chance 0.5
    assert gzsl.zsl_accuracy(scores, problem.y_test, problem.seen) > 0.8   # chance 1/6


def test_eszsl_is_the_closed_form():
    problem = _problem(noise=0.5, n_per_class=5)
    scores = gzsl.fit_eszsl(problem, image_reg=0.3, side_reg=2.0)(problem.x_test).double()
    x = problem.x_train.double().numpy()
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    s = problem.side / np.linalg.norm(problem.side, axis=1, keepdims=True)
    y = -np.ones((len(x), 6))
    y[np.arange(len(x)), problem.y_train] = 1
    v = np.linalg.inv(x.T @ x + 0.3 * np.eye(12)) @ x.T @ y @ s[:6] @ np.linalg.inv(s[:6].T @ s[:6] + 2.0 * np.eye(6))
    xt = problem.x_test.double().numpy()
    xt /= np.linalg.norm(xt, axis=1, keepdims=True)
    np.testing.assert_allclose(scores.numpy(), xt @ v @ s.T, rtol=1e-4, atol=1e-5)


def test_ranking_losses_by_hand():
    target = torch.tensor([0])
    one_violator = torch.tensor([[2.0, 1.5, 0.0]])   # violations: 0.5 and 0
    two_violators = torch.tensor([[0.0, 0.5, 0.2]])  # violations: 1.5 and 1.2
    for kind, expected in (("devise", (0.5, 2.7)), ("sje", (0.5, 1.5)), ("ale", (0.5, 0.75 * 2.7))):
        loss = gzsl._ranking_loss(kind)
        assert float(loss(one_violator, target)) == pytest.approx(expected[0])
        assert float(loss(two_violators, target)) == pytest.approx(expected[1])
    assert float(gzsl._ranking_loss("ale")(torch.tensor([[5.0, 0.0, 0.0]]), target)) == 0.0


def test_dap_stays_finite_when_an_attribute_never_varies_among_seen_classes():
    problem = _problem()
    side = np.c_[problem.side, [1, 1, 1, 1, 1, 1, 0, 0]]  # always on for the seen classes, off for the unseen
    changed = gzsl.with_side(problem, side, "with a constant attribute")
    scores = gzsl.fit_dap(changed)(changed.x_test)
    assert torch.isfinite(scores).all()
    # the floor on its probability (DAP_EPS) caps what the never-seen value costs an unseen class
    assert gzsl.zsl_accuracy(scores, changed.y_test, changed.unseen) > 0.9


def test_class_split_validation_never_uses_the_unseen_classes():
    problem = _problem(n_per_class=10)
    val = gzsl.class_split_validation(problem, seed=3)
    assert set(val.unseen) | set(val.seen) == set(problem.seen)
    assert len(val.unseen) == 2 and not set(val.y_test) & set(problem.unseen)  # 6 seen: a fifth, at least 2
    assert not set(val.y_train) & set(val.unseen)
    assert all(np.sum(val.y_test == c) == 10 for c in val.unseen)  # all images of the stand-in unseen classes
    assert all(np.sum(val.y_test == c) == 2 for c in val.seen)    # a fifth of each seen class's images
    assert len(val.y_train) + len(val.y_test) == len(problem.y_train)
    small = gzsl.restricted(val)
    assert len(small.classes) == 6 and small.side.shape == (6, 6)
    assert len(gzsl.class_split_validation(problem, seed=3, class_fraction=0.5).unseen) == 3
    assert gzsl.class_split_validation(problem, seed=3).unseen.tolist() == val.unseen.tolist()  # seeded


def test_evaluate_model_reports_consistent_numbers():
    problem = _problem(noise=0.8)
    result = gzsl.evaluate_model("ESZSL", problem, seed=0)
    mask = problem.unseen_mask
    again = gzsl_metrics(calibrated_stacking(result.scores, mask, result.gamma).argmax(1).numpy(), problem.y_test,
                         problem.seen, problem.unseen)
    assert again == result.calibrated
    assert result.curve["seen"][0] == pytest.approx(result.zsl_seen)
    assert result.curve["unseen"][-1] == pytest.approx(result.zsl_unseen)
    assert 0 < result.ausuc <= 1
    assert set(result.hyper) == {"image_reg", "side_reg"}
    control = gzsl.shuffled_calibration_mask(problem, seed=0)
    assert control.sum() == len(problem.unseen)


def test_bad_input_names_the_choices():
    with pytest.raises(InvalidChoiceError, match="DAP"):
        ZSL_MODELS.get("DAPP")
    problem = _problem(n_per_class=2)
    with pytest.raises(ValueError, match="seen classes only"):
        ZSLProblem(problem.classes, problem.side, problem.seen, problem.unseen, problem.x_test, problem.y_test,
                   problem.x_test, problem.y_test)
    with pytest.raises(ValueError, match="ranking loss"):
        gzsl.fit_bilinear(problem, loss="hinge")
    with pytest.raises(ValueError, match="unseen classes named"):
        gzsl.build_problem("animal_mnist", gzsl.EFFICIENTNET, 0, 2, 2)


# ---------------------------------------------------------------------------------------------- semantic relations
def test_relation_targets_and_loss_by_hand():
    from zslab.methods.semantic_relations import relation_loss, relation_targets

    side = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    t = relation_targets(side)  # centred rows: a, b, a -> cos(a, b) = -1, cos(a, a) = 1
    np.testing.assert_allclose(t.numpy(), [[1, -1, 1], [-1, 1, -1], [1, -1, 1]], atol=1e-6)
    assert float(relation_loss(torch.tensor([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0]]), t)) == pytest.approx(0.0)
    assert float(relation_loss(torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]), t)) == pytest.approx(16 / 6)  # four pairs off by 2, two exact


def test_relation_loss_pulls_prototypes_to_the_attribute_structure():
    from zslab.methods.semantic_relations import fit_visual_prototypes, relation_loss, relation_targets

    problem = _problem(n_per_class=20)
    targets = relation_targets(problem.side)
    plain = fit_visual_prototypes(problem, seed=0, relation_weight=0.0, epochs=10)
    kept = fit_visual_prototypes(problem, seed=0, relation_weight=3.0, epochs=10)
    assert float(relation_loss(kept.prototypes, targets)) < float(relation_loss(plain.prototypes, targets))
    assert "relation-preserving" in ZSL_MODELS and "visual-space prototypes" in ZSL_MODELS
    with pytest.raises(ValueError, match="relation_weight"):
        fit_visual_prototypes(problem, relation_weight=-1.0)


def test_evaluate_model_caches_the_fit_and_reproduces_it(monkeypatch):
    problem = _problem(noise=0.7, n_per_class=12)
    first = gzsl.evaluate_model("ESZSL", problem, seed=4)
    uncached = gzsl.evaluate_model("ESZSL", problem, seed=4, use_cache=False)
    assert torch.equal(first.scores, uncached.scores) and first.gamma == uncached.gamma
    assert first.hyper == uncached.hyper and first.calibrated == uncached.calibrated

    def refit(*args, **kwargs):
        raise AssertionError("a warm evaluation must not fit again")

    monkeypatch.setattr(gzsl, "select_on_validation", refit)
    again = gzsl.evaluate_model("ESZSL", problem, seed=4)
    assert torch.equal(again.scores, first.scores) and again.ausuc == first.ausuc
    changed = gzsl.with_side(problem, problem.side[:, ::-1].copy(), "permuted attributes")
    with pytest.raises(AssertionError, match="must not fit again"):
        gzsl.evaluate_model("ESZSL", changed, seed=4)       # other content: a miss


def test_best_calibration_is_finite_even_when_every_margin_is_equal():
    problem = _problem(n_per_class=4)
    flat = torch.zeros(len(problem.y_test), 8)  # identical scores: one margin for all images
    gamma, h = gzsl.best_calibration(flat, problem)
    assert np.isfinite(gamma) and h == 0.0
    mask = problem.unseen_mask
    assert gzsl_metrics(calibrated_stacking(flat, mask, gamma).argmax(1).numpy(), problem.y_test, problem.seen,
                        problem.unseen)["harmonic"] == h
