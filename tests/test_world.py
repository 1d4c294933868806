"""zsworld: determinism, splits, held-out compositions, concept frequencies, rendering, and the dataset."""
from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

import zslab.train.zoo as zoo
from zslab.datasets import build_dataset
from zslab.errors import InvalidChoiceError
from zslab.train.zoo import offline_model_entry, training_data
from zslab.world import SHAPE_MASKS, Scenes, captions, load_world_spec, make_split, render, sample_scenes


@pytest.fixture(scope="module")
def spec():
    return load_world_spec()


def all_pairs(spec):
    return [(c, s) for c in range(len(spec.colors)) for s in range(len(spec.shapes))]


def draw(spec, seed, n=64):
    rng = np.random.default_rng(seed)
    scenes = sample_scenes(spec, n, rng, all_pairs(spec))
    return scenes, render(spec, scenes, rng), captions(spec, scenes, rng)


# ------------------------------------------------------------------------------------------ determinism

def test_same_seed_same_world_other_seed_differs(spec):
    s1, img1, cap1 = draw(spec, 7)
    s2, img2, cap2 = draw(spec, 7)
    _, img3, cap3 = draw(spec, 8)
    assert np.array_equal(s1.color, s2.color) and np.array_equal(s1.cx, s2.cx)
    assert np.array_equal(img1, img2) and cap1 == cap2
    assert not np.array_equal(img1, img3)
    assert cap1 != cap3


def test_rendered_images_are_uint8_with_the_expected_shape(spec):
    scenes, images, caps = draw(spec, 0, n=5)
    assert images.dtype == np.uint8
    assert images.shape == (5, spec.image_size, spec.image_size, 3)
    assert len(caps) == 5 and all(isinstance(c, str) and c for c in caps)
    # every caption names its scene's color (colors have no synonyms)
    for i, cap in enumerate(caps):
        assert spec.color_names[scenes.color[i]] in cap.split()


# ------------------------------------------------------------------------------------------ splits

@pytest.mark.parametrize("split_seed", [0, 1, 2, 3])
@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_composition_split_keeps_every_color_and_shape_seen(spec, split_seed, fraction):
    split = make_split(spec, "compositions", fraction, split_seed)
    seen, unseen = set(split.seen), set(split.unseen)
    assert seen.isdisjoint(unseen)
    assert seen | unseen == set(all_pairs(spec))
    assert len(split.seen) + len(split.unseen) == len(all_pairs(spec))   # no duplicates either
    assert unseen, "something must be held out"
    assert {c for c, _ in seen} == set(range(len(spec.colors)))
    assert {s for _, s in seen} == set(range(len(spec.shapes)))
    assert split.pairs("all") == sorted(all_pairs(spec))


def test_composition_split_size_and_seed(spec):
    a = make_split(spec, "compositions", 0.2, 0)
    assert len(a.unseen) == round(0.2 * len(all_pairs(spec)))
    assert make_split(spec, "compositions", 0.2, 0) == a
    assert make_split(spec, "compositions", 0.2, 1).unseen != a.unseen


@pytest.mark.parametrize("split_seed", [0, 1, 2])
def test_shape_split_holds_out_whole_shapes(spec, split_seed):
    split = make_split(spec, "shapes", 0.34, split_seed)
    out_shapes = {s for _, s in split.unseen}
    assert len(out_shapes) == round(0.34 * len(spec.shapes))
    assert set(split.unseen) == {(c, s) for c in range(len(spec.colors)) for s in out_shapes}
    assert not any(s in out_shapes for _, s in split.seen)
    assert set(split.seen) | set(split.unseen) == set(all_pairs(spec))


def test_bad_split_inputs_raise_naming_the_value(spec):
    with pytest.raises(ValueError, match=r"1\.5"):
        make_split(spec, holdout_fraction=1.5)
    with pytest.raises(ValueError, match=r"0\.0"):
        make_split(spec, holdout_fraction=0.0)
    with pytest.raises(InvalidChoiceError) as err:
        make_split(spec, kind="colours")
    msg = str(err.value)
    assert "'colours'" in msg and "'compositions'" in msg and "'shapes'" in msg
    with pytest.raises(InvalidChoiceError, match="'seen'"):
        make_split(spec).pairs("train")


# ------------------------------------------------------------------------------------------ held-out pairs

def _spy_training_data(monkeypatch, entry):
    """``training_data`` plus the scenes it drew (captured by wrapping the zoo's ``sample_scenes``)."""
    drawn = []

    def spy(*args, **kwargs):
        scenes = sample_scenes(*args, **kwargs)
        drawn.append(scenes)
        return scenes

    monkeypatch.setattr(zoo, "sample_scenes", spy)
    images, per_image, split = training_data(entry, seed=0)
    assert len(drawn) == 1
    return drawn[0], images, per_image, split


def _shape_words(spec, shape_index):
    name = spec.shapes[shape_index]
    return {name, *spec.synonyms.get(name, [])}


def test_held_out_compositions_never_appear_in_training(spec, monkeypatch):
    entry = offline_model_entry("zsclip-tiny")
    entry["world"]["n_train"] = 3000
    scenes, images, per_image, split = _spy_training_data(monkeypatch, entry)
    assert split == make_split(spec, "compositions", 0.2, 0)
    assert images.shape == (3000, spec.image_size, spec.image_size, 3) and len(per_image) == 3000
    assert len(scenes) == 3000

    unseen = set(split.unseen)
    drawn_pairs = set(zip(scenes.color.tolist(), scenes.shape.tolist()))
    assert drawn_pairs.isdisjoint(unseen)
    assert len(drawn_pairs) == len(split.seen)          # and every seen pair is actually trained on

    unseen_words = [(spec.color_names[c], _shape_words(spec, s)) for c, s in unseen]
    n_captions = 0
    for i, caps in enumerate(per_image):
        assert len(caps) == zoo.CAPTIONS_PER_IMAGE
        for cap in caps:
            words = set(cap.split())
            n_captions += 1
            # the caption describes its own scene ...
            assert spec.color_names[scenes.color[i]] in words
            assert words & _shape_words(spec, scenes.shape[i])
            # ... and never names a held-out composition
            for color, shape_words in unseen_words:
                assert not (color in words and words & shape_words), (cap, color, shape_words)
    assert n_captions == 3000 * zoo.CAPTIONS_PER_IMAGE


def test_held_out_shapes_never_named_in_training_captions(spec, monkeypatch):
    entry = offline_model_entry("zsclip-micro")
    entry["world"].update(split_kind="shapes", holdout_fraction=0.34, n_train=1500)
    scenes, _, per_image, split = _spy_training_data(monkeypatch, entry)
    out_shapes = {s for _, s in split.unseen}
    assert not set(scenes.shape.tolist()) & out_shapes
    banned = set().union(*(_shape_words(spec, s) for s in out_shapes))
    assert banned
    assert not any(set(cap.split()) & banned for caps in per_image for cap in caps)


# ------------------------------------------------------------------------------------------ frequencies

def test_concept_weight_zero_never_draws_that_color(spec):
    rng = np.random.default_rng(0)
    scenes = sample_scenes(spec, 5000, rng, all_pairs(spec), {"red": 0.0})
    red = spec.color_names.index("red")
    assert red not in set(scenes.color.tolist())
    assert len(set(scenes.color.tolist())) == len(spec.colors) - 1


def test_concept_weights_scale_frequencies(spec):
    rng = np.random.default_rng(0)
    n = 40000
    scenes = sample_scenes(spec, n, rng, all_pairs(spec), {"blue": 4.0, "ring": 4.0})
    colors = Counter(scenes.color.tolist())
    shapes = Counter(scenes.shape.tolist())
    blue, ring = spec.color_names.index("blue"), spec.shapes.index("ring")
    other_color = np.mean([colors[c] for c in range(len(spec.colors)) if c != blue])
    other_shape = np.mean([shapes[s] for s in range(len(spec.shapes)) if s != ring])
    assert 3.5 < colors[blue] / other_color < 4.5
    assert 3.5 < shapes[ring] / other_shape < 4.5
    # without weights the same color is about as frequent as the others
    plain = Counter(sample_scenes(spec, n, np.random.default_rng(0), all_pairs(spec)).color.tolist())
    assert 0.85 < plain[blue] / np.mean([plain[c] for c in plain if c != blue]) < 1.15


def test_negative_concept_weight_raises_naming_it(spec):
    with pytest.raises(ValueError) as err:
        sample_scenes(spec, 10, np.random.default_rng(0), all_pairs(spec), {"green": -1.0})
    msg = str(err.value)
    assert "'green'" in msg and "-1.0" in msg and ">= 0" in msg
    with pytest.raises(ValueError, match="no color-shape pairs"):
        sample_scenes(spec, 10, np.random.default_rng(0), [])


# ------------------------------------------------------------------------------------------ rendering

def test_each_shape_renders_a_distinct_mask(spec):
    n = len(spec.shapes)
    large = spec.size_names.index("large")
    black = spec.background_names.index("black")
    center = np.full(n, spec.image_size / 2)
    scenes = Scenes(color=np.full(n, spec.color_names.index("yellow")), shape=np.arange(n),
                    size=np.full(n, large), background=np.full(n, black), cx=center, cy=center)
    images = render(spec, scenes, np.random.default_rng(0), noise=0.0)
    bg = np.array(spec.backgrounds["black"], dtype=np.uint8)
    masks = [(img != bg).any(axis=-1) for img in images]
    area = spec.image_size ** 2
    for name, mask in zip(spec.shapes, masks):
        assert 10 < mask.sum() < area / 2, name
        # the object lies within its radius of the centre
        reach = int(np.ceil(spec.sizes["large"] * spec.image_size)) + 1
        lo, hi = spec.image_size // 2 - reach, spec.image_size // 2 + reach
        assert mask[lo:hi, lo:hi].sum() == mask.sum(), name
    for (a, ma), (b, mb) in itertools.combinations(zip(spec.shapes, masks), 2):
        assert not np.array_equal(ma, mb), f"{a} and {b} render the same pixels"
    assert set(spec.shapes) <= set(SHAPE_MASKS)


def test_render_refuses_a_shape_without_a_mask(spec):
    import dataclasses

    odd = dataclasses.replace(spec, shapes=spec.shapes + ["hexagon"])
    scenes = Scenes(*(np.zeros(1, dtype=np.int64) for _ in range(4)), cx=np.full(1, 16.0), cy=np.full(1, 16.0))
    with pytest.raises(ValueError, match="hexagon"):
        render(odd, scenes, np.random.default_rng(0))


# ------------------------------------------------------------------------------------------ the dataset

def test_zsworld_unseen_classes_are_the_unseen_pairs(spec):
    ds = build_dataset("zsworld", split="unseen", n_per_class=3)
    split = make_split(spec)
    assert ds.classes == [spec.pair_name(c, s) for c, s in split.unseen]
    assert len(ds) == 3 * len(split.unseen)
    assert Counter(ds.targets.tolist()) == {i: 3 for i in range(len(split.unseen))}
    assert ds.unseen_classes == list(range(len(split.unseen))) and ds.seen_classes == []
    image, label = ds[0]
    assert image.mode == "RGB" and image.size == (spec.image_size, spec.image_size) and label == 0


def test_zsworld_all_split_has_every_pair_and_marks_unseen(spec):
    ds = build_dataset("zsworld", split="all", n_per_class=1)
    split = make_split(spec)
    assert len(ds.classes) == 48 == len(spec.colors) * len(spec.shapes)
    assert len(set(ds.classes)) == 48 and len(ds) == 48
    unseen_names = {spec.pair_name(c, s) for c, s in split.unseen}
    assert {ds.classes[i] for i in ds.unseen_classes} == unseen_names
    assert {ds.classes[i] for i in ds.seen_classes} == {spec.pair_name(c, s) for c, s in split.seen}
    assert sorted(ds.unseen_classes + ds.seen_classes) == list(range(48))


def test_zsworld_test_split_equals_unseen_and_seed_changes_identity():
    test = build_dataset("zsworld", split="test", n_per_class=2)
    unseen = build_dataset("zsworld", split="unseen", n_per_class=2)
    assert test.classes == unseen.classes and test.identity == unseen.identity
    assert np.array_equal(test.images, unseen.images)
    other = build_dataset("zsworld", split="unseen", n_per_class=2, seed=1)
    assert other.identity != unseen.identity and other.identity["seed"] == 1
    assert not np.array_equal(other.images, unseen.images)
    more = build_dataset("zsworld", split="unseen", n_per_class=5)
    assert len(more) == 5 * len(more.classes) and more.identity != unseen.identity


def test_zsworld_bad_split_and_count():
    with pytest.raises(InvalidChoiceError, match="'unseen'"):
        build_dataset("zsworld", split="train")
    with pytest.raises(ValueError, match="n_per_class"):
        build_dataset("zsworld", split="unseen", n_per_class=0)
