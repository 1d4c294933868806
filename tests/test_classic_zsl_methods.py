"""COSMO's combiners and gate, the attribute lower bound's linear program, and transductive propagation and
clustering, on small hand-checkable cases."""
import numpy as np
import pytest
import torch

from zslab.errors import InvalidChoiceError
from zslab.methods import attribute_bounds as bounds
from zslab.methods import cosmo, transductive
from zslab.methods.gzsl import ZSLProblem


def _tiny_problem() -> ZSLProblem:
    side = np.eye(4)
    x = torch.zeros(4, 2)
    return ZSLProblem(["a", "b", "c", "d"], side, [0, 1], [2, 3], x[:2], np.array([0, 1]), x, np.arange(4))


# ---------------------------------------------------------------------------------------------- COSMO
def test_adaptive_smoothing_by_hand():
    problem = _tiny_problem()
    experts = cosmo.Experts(seen=torch.tensor([[0.9, 0.1]]), unseen=torch.tensor([[0.6, 0.4]]),
                            seen_logits=torch.zeros(1, 2))
    p_u = torch.tensor([[0.5]])
    smoothed = cosmo.adaptive_smoothing(experts, p_u, problem)
    # seen: 0.5 * (0.9 + 0.5/2), 0.5 * (0.1 + 0.25); unseen: 0.5 * (0.6 + 0.25), 0.5 * (0.4 + 0.25)
    np.testing.assert_allclose(smoothed.numpy(), [[0.575, 0.175, 0.425, 0.325]], atol=1e-6)
    plain = cosmo.total_probability(experts, p_u, problem)
    np.testing.assert_allclose(plain.numpy(), [[0.45, 0.05, 0.30, 0.20]], atol=1e-6)


def test_smoothing_shifts_an_unsure_gate_towards_the_smaller_label_set():
    # 4 seen and 2 unseen classes, the gate undecided: the prior it adds is 1/|S| per seen and 1/|U| per unseen
    # class, so a moderately confident zero-shot expert overtakes the seen expert's top class
    x = torch.zeros(6, 2)
    problem = ZSLProblem(list("abcdef"), np.eye(6), [0, 1, 2, 3], [4, 5], x[:4], np.arange(4), x, np.arange(6))
    experts = cosmo.Experts(seen=torch.tensor([[0.7, 0.1, 0.1, 0.1]]), unseen=torch.tensor([[0.6, 0.4]]),
                            seen_logits=torch.zeros(1, 4))
    p_u = torch.tensor([[0.5]])
    assert int(cosmo.total_probability(experts, p_u, problem).argmax()) == 0     # 0.35 against 0.30
    assert int(cosmo.adaptive_smoothing(experts, p_u, problem).argmax()) == 4    # 0.4125 against 0.425


def test_gate_features_and_unseen_probability():
    experts = cosmo.Experts(seen=torch.tensor([[0.7, 0.3]]), unseen=torch.tensor([[0.1, 0.9, 0.0]]),
                            seen_logits=torch.tensor([[3.0, 0.0]]))
    features = cosmo.gate_features(experts, top_k=3)
    assert features.shape == (1, 6)
    seen_t3 = torch.tensor([3.0, 0.0]).div(3).softmax(0)
    np.testing.assert_allclose(features[0, :3].numpy(), [seen_t3[0], seen_t3[1], 0.0], atol=1e-6)  # padded
    np.testing.assert_allclose(features[0, 3:].numpy(), [0.9, 0.1, 0.0], atol=1e-6)                # sorted
    p = cosmo.unseen_probability(torch.tensor([0.2, 0.8]), threshold=0.5, temperature=0.1)
    assert p[0, 0] > 0.9 and p[1, 0] < 0.1
    hard = cosmo.unseen_probability(torch.tensor([0.2, 0.8]), 0.5, 0.1, hard=True)
    assert hard.flatten().tolist() == [1.0, 0.0]


def test_zs_scale_prefers_the_calibrated_temperature():
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (400,))
    clean = torch.nn.functional.one_hot(labels, 3).float()
    noisy = clean + 0.8 * torch.randn(400, 3)  # right on average, wrong often: a mid temperature wins
    scale = cosmo.fit_zs_scale(noisy, labels)
    assert cosmo.ZS_SCALES[0] < scale < cosmo.ZS_SCALES[-1]
    assert cosmo.fit_zs_scale(clean * 10, labels) >= 1.0  # always right: sharp (every sharp scale ties at NLL ~ 0)


def test_unknown_combiner_names_the_choices():
    with pytest.raises(InvalidChoiceError, match="adaptive smoothing"):
        cosmo.COMBINERS.get("smoothing")


# ---------------------------------------------------------------------------------------------- lower bounds
def test_bound_of_hand_matrices():
    assert bounds.worst_case_accuracy(np.array([[0.5], [0.5]])) == pytest.approx(0.5)
    assert bounds.worst_case_accuracy(np.array([[1.0], [0.0]])) == pytest.approx(1.0)
    # shares 3/4 and 1/4: the worst joint still lets the best map get 3/8 + 3/8 right
    assert bounds.worst_case_accuracy(np.array([[0.75], [0.25]])) == pytest.approx(0.75)
    # two attributes whose shares can be arranged so that the two classes overlap completely
    assert bounds.error_lower_bound(np.array([[0.5, 0.5], [0.5, 0.5]])) == pytest.approx(0.5)


def test_binary_matrices_lose_exactly_their_colliding_rows():
    m = np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 0], [0, 1, 0], [0, 1, 0]], float)
    assert bounds.collision_bound(m) == pytest.approx(1 - 3 / 6)
    assert bounds.error_lower_bound(m) == pytest.approx(bounds.collision_bound(m))


def test_groups_split_by_deterministic_attributes():
    # class 0 is set apart by attribute 0; classes 1 and 2 share it and differ only in shares of attribute 1
    m = np.array([[1.0, 0.5], [0.0, 0.75], [0.0, 0.25]])
    assert bounds.worst_case_accuracy(m) == pytest.approx(1 / 3 + (2 / 3) * 0.75)


def test_bound_rejects_bad_matrices():
    with pytest.raises(ValueError, match="fractions"):
        bounds.error_lower_bound(np.array([[1.5]]))
    too_many = np.full((2, bounds.MAX_FREE_ATTRIBUTES + 1), 0.5)
    with pytest.raises(ValueError, match="select fewer attributes"):
        bounds.error_lower_bound(too_many)


def test_coarsenings_make_zsworld_rows_collide():
    from zslab.semantics.attributes import load_attributes

    table = load_attributes("zsworld")
    collisions = [bounds.collision_bound(bounds.COARSENINGS.get(name).apply(table.matrix, table.attributes))
                  for name in ("graded", "binarised", "binarised, no colour", "binarised, shape only")]
    assert collisions[0] == 0.0
    assert collisions == sorted(collisions) and collisions[-1] > 0.9


# ---------------------------------------------------------------------------------------------- transductive
def _clusters(seed: int = 0, per_class: int = 30, spread: float = 0.3):
    rng = np.random.default_rng(seed)
    centres = np.eye(3, 8) * 3
    y = np.repeat(np.arange(3), per_class)
    x = centres[y] + spread * rng.normal(size=(len(y), 8))
    return torch.as_tensor(x).float(), torch.as_tensor(y)


def test_knn_graph_is_symmetric_without_self_loops():
    x, _ = _clusters()
    for shuffled in (False, True):
        g = transductive.knn_graph(x, 5, shuffled=shuffled)
        assert torch.equal(g, g.T) and float(g.diagonal().abs().sum()) == 0
        assert int(g.sum(1).min()) >= 5
    with pytest.raises(ValueError, match="k must be"):
        transductive.knn_graph(x, len(x))


def test_label_spreading_repairs_wrong_initial_labels_on_clustered_data():
    x, y = _clusters()
    initial = torch.nn.functional.one_hot(y, 3).double()
    wrong = torch.arange(0, len(y), 4)  # a quarter of the labels flipped
    initial[wrong] = torch.nn.functional.one_hot((y[wrong] + 1) % 3, 3).double()
    spread = transductive.multi_view_propagation({"image": x}, initial, k=8)
    assert float((spread.argmax(1) == y).float().mean()) > 0.95
    shuffled = transductive.multi_view_propagation({"image": x}, initial, k=8, shuffled=True)
    assert float((shuffled.argmax(1) == y).float().mean()) < 0.9


def test_clustering_uses_the_queries_where_one_shot_misleads():
    x, y = _clusters(spread=0.9)
    support_rows = torch.tensor([0, 30, 60])  # one shot per class
    queries = torch.arange(len(y))
    inductive = transductive.nearest_mean(x[support_rows], y[support_rows], x[queries], 3).argmax(1)
    kmeans = transductive.laplacian_kmeans(x[support_rows], y[support_rows], x[queries], 3, 0.0)
    laplacian = transductive.laplacian_kmeans(x[support_rows], y[support_rows], x[queries], 3, 0.7, k=8)
    acc = {name: float((pred == y).float().mean()) for name, pred in
           (("inductive", inductive), ("kmeans", kmeans.assignments.argmax(1)),
            ("laplacian", laplacian.assignments.argmax(1)))}
    assert acc["kmeans"] >= acc["inductive"] and acc["laplacian"] >= acc["inductive"]
    assert kmeans.assignments.sum(1).allclose(torch.ones(len(y)))
    with pytest.raises(ValueError, match="every class"):
        transductive.laplacian_kmeans(x[:2], torch.tensor([0, 0]), x, 3)


# ---------------------------------------------------------------------------------------------- side information
def test_hierarchy_side_information_follows_the_taxonomy():
    pytest.importorskip("nltk")
    from zslab.methods.side_information import hypernym_closures, side_information

    try:
        closures = hypernym_closures("animal_mnist", ["cat", "dog", "horse", "zebra"])
    except Exception as error:  # WordNet is a Debian package (tools/system_assets.sh)
        pytest.skip(f"WordNet not installed: {error}")
    assert "carnivore.n.01" in closures["cat"] and "carnivore.n.01" in closures["dog"]
    assert "equine.n.01" in closures["horse"] and "equine.n.01" in closures["zebra"]
    h = side_information("wordnet hierarchy", "animal_mnist", ["cat", "dog", "horse", "zebra"])
    assert h.shape[0] == 4 and not (h.min(0) == 1).any()           # ancestors shared by all are dropped
    cos = (h / np.linalg.norm(h, axis=1, keepdims=True)) @ (h / np.linalg.norm(h, axis=1, keepdims=True)).T
    assert cos[0, 1] > cos[0, 3] and cos[2, 3] > cos[2, 0]          # cat~dog, horse~zebra
    onto = side_information("ontology", "animal_mnist", ["cat", "dog", "horse", "zebra"])
    assert onto.shape == (4, h.shape[1] + 19)
    with pytest.raises(InvalidChoiceError, match="ontology"):
        side_information("word2vec", "animal_mnist", ["cat"])


# ---------------------------------------------------------------------------------------------- compositional
def test_pair_split_keeps_every_primitive_seen_and_is_seeded():
    from zslab.methods.compositional import split_pairs

    colors, shapes = list("abcdefgh"), list("uvwxyz")
    split = split_pairs(colors, shapes, seed=1, n_unseen=8, n_absent=8)
    assert len(split.seen) == 32 and len(split.unseen) == 8 and len(split.absent) == 8
    assert not set(split.seen) & set(split.unseen) and not set(split.unseen) & set(split.absent)
    assert {p // 6 for p in split.seen} == set(range(8)) and {p % 6 for p in split.seen} == set(range(6))
    assert split.label_space("closed").tolist() == sorted(set(split.seen) | set(split.unseen))
    assert split.label_space("open").tolist() == list(range(48))
    assert split_pairs(colors, shapes, seed=1, n_unseen=8, n_absent=8).unseen.tolist() == split.unseen.tolist()
    assert split.name(7) == "b v"
    with pytest.raises(ValueError, match="n_unseen"):
        split_pairs(colors, shapes, seed=0, n_unseen=35, n_absent=10)
    with pytest.raises(ValueError, match="world"):
        split.label_space("half-open")


def _synthetic_compositions(contextual: bool, seed: int = 0, per_pair: int = 40):
    """Features = one-hot colour + one-hot shape (+ noise); with ``contextual`` the colour part is rotated by the
    shape (colour c on shape s looks like colour c + s), so separate colour heads cannot transfer."""
    from zslab.methods.compositional import CompositionalData, split_pairs

    rng = np.random.default_rng(seed)
    split = split_pairs(list("abcdef"), list("uvw"), seed=seed, n_unseen=3, n_absent=2)

    def draw(pairs):
        pair = np.repeat(pairs, per_pair)
        c, s = pair // 3, pair % 3
        look = (c + s) % 6 if contextual else c
        x = np.concatenate([np.eye(6)[look], np.eye(3)[s]], axis=1) + 0.2 * rng.normal(size=(len(pair), 9))
        return torch.as_tensor(x).float(), torch.as_tensor(c), torch.as_tensor(s), pair

    x, c, s, _ = draw(split.seen)
    xt, _, _, pt = draw(np.union1d(split.seen, split.unseen))
    return CompositionalData(split, x, c, s, xt, pt)


@pytest.mark.parametrize("name", ["separate primitives", "object-conditioned attributes", "pair embedding"])
def test_compositional_models_recognise_seen_pairs(name):
    from zslab.methods.compositional import COMPOSITIONAL_MODELS, compositional_metrics

    data = _synthetic_compositions(contextual=False)
    scores = COMPOSITIONAL_MODELS.get(name)(data, seed=0)(data.x_test)
    assert scores.shape == (len(data.pair_test), 18)
    metrics = compositional_metrics(scores, data, "closed")
    assert metrics["seen"] > 0.9 and 0 <= metrics["auc"] <= 1
    assert compositional_metrics(scores, data, "open")["auc"] <= metrics["auc"] + 1e-9  # more pairs to rule out


def test_separate_primitives_transfer_when_attributes_do_not_depend_on_objects():
    from zslab.methods.compositional import COMPOSITIONAL_MODELS, compositional_metrics

    data = _synthetic_compositions(contextual=False)
    scores = COMPOSITIONAL_MODELS.get("separate primitives")(data, seed=0)(data.x_test)
    assert compositional_metrics(scores, data, "closed")["best_harmonic"] > 0.8


def test_rendered_colour_depends_on_shape_only_with_the_contextual_knob():
    from zslab.world import load_world_spec, render, sample_scenes
    from zslab.world.render import shape_color_shifts

    spec = load_world_spec()
    shifts = shape_color_shifts(spec, 60.0)
    assert shifts.shape == (len(spec.shapes), 3)
    np.testing.assert_allclose(np.linalg.norm(shifts, axis=1), 60.0, rtol=1e-5)
    np.testing.assert_allclose(shifts.sum(1), 0.0, atol=1e-3)  # no shape is merely brighter
    comps = [(0, 0, s) for s in range(len(spec.shapes))]      # red, solid, every shape
    plain, shifted = spec.knobs, spec.knobs.replace({"contextual_color": 60.0})
    scenes = sample_scenes(spec, plain, 12, np.random.default_rng(0), comps)
    same_plain = render(spec, plain, scenes, np.random.default_rng(1))
    same_again = render(spec, plain.replace({"contextual_color": 0.0}), scenes, np.random.default_rng(1))
    assert np.array_equal(same_plain, same_again)               # the knob at 0 changes nothing
    moved = render(spec, shifted, scenes, np.random.default_rng(1)).astype(float)
    assert np.abs(moved - same_plain).max() > 20
    assert spec.fingerprint() == load_world_spec().fingerprint()
    assert dataclasses_replace_fingerprint(spec) != spec.fingerprint()


def dataclasses_replace_fingerprint(spec):
    import dataclasses

    return dataclasses.replace(spec, knobs=spec.knobs.replace({"contextual_color": 10.0})).fingerprint()


# ---------------------------------------------------------------------------------------------- metric learning
def test_metric_losses_by_hand():
    from zslab.methods import metric_learning as ml

    y = torch.tensor([0, 0, 1, 1])
    far = torch.tensor([[1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]])   # classes at opposite poles
    assert float(ml.triplet_loss(far, y, None)) == 0.0
    assert float(ml.contrastive_loss(far, y, None)) == 0.0                   # distance 2 > margin 0.5
    same = torch.tensor([[1.0, 0.0]] * 4)                                   # everything collapsed
    assert float(ml.triplet_loss(same, y, None)) == pytest.approx(ml.MARGIN_TRIPLET)
    assert float(ml.contrastive_loss(same, y, None)) == pytest.approx(ml.MARGIN_CONTRASTIVE ** 2)
    # energy confusion: unit features of different classes at squared distance 2 (orthogonal)
    h = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    assert float(ml.energy_confusion(h, y)) == pytest.approx(2.0)


def test_balanced_batches_and_kmeans():
    from zslab.methods import metric_learning as ml
    from zslab.metrics import normalized_mutual_information

    labels = np.repeat(np.arange(5), [3, 10, 10, 10, 10])
    batches = ml.balanced_batches(labels, steps=4, seed=0, classes_per_batch=3, images_per_class=4)
    assert len(batches) == 4 and all(len(b) == 12 for b in batches)
    assert all(sorted(np.bincount(labels[b], minlength=5)[np.bincount(labels[b], minlength=5) > 0]) == [4, 4, 4]
               for b in batches)
    x, y = _clusters()
    assert normalized_mutual_information(y.numpy(), ml.kmeans(x, 3, seed=0)) == pytest.approx(1.0)


def test_unseen_scores_of_a_perfect_embedding():
    from zslab.methods.metric_learning import evaluate_unseen

    x, y = _clusters(spread=0.05)
    scores = evaluate_unseen(torch.nn.functional.normalize(x, dim=1), y.numpy(), ks=(1, 4), shots=2, seed=0)
    assert scores.recall == {1: 1.0, 4: 1.0} and scores.nmi == pytest.approx(1.0) and scores.novel_accuracy == 1.0


def test_training_an_embedding_separates_seen_classes():
    from zslab.methods.metric_learning import METRIC_LOSSES, train_embedding

    x, y = _clusters(spread=0.8, per_class=40)
    for loss in METRIC_LOSSES.names():
        embed = train_embedding(x, y.numpy(), loss, seed=0, steps=80)
        e = embed(x)
        assert torch.allclose(e.norm(dim=1), torch.ones(len(e)), atol=1e-5)
        sim = e @ e.T
        sim.fill_diagonal_(-2.0)
        assert float((y[sim.argmax(1)] == y).float().mean()) > 0.95, loss   # nearest neighbour of its own class
    with pytest.raises(InvalidChoiceError, match="triplet"):
        train_embedding(x, y.numpy(), "arcface", seed=0)
