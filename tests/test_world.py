"""zsworld: determinism, splits, held-out compositions, knobs, concept frequencies, captions, rendering,
corpus statistics, and the dataset."""
from __future__ import annotations

import dataclasses
import itertools
import re
from collections import Counter

import numpy as np
import pytest

from zslab.datasets import build_dataset
from zslab.errors import InvalidChoiceError
from zslab.train.zoo import CAPTIONS_PER_IMAGE, offline_model_entry, training_data, with_overrides
from zslab.world import (PATTERN_MASKS, SHAPE_MASKS, CaptionWriter, WorldKnobs, concept_probabilities,
                         corpus_statistics, load_world_spec, make_corpus, make_split, render, sample_scenes)


@pytest.fixture(scope="module")
def spec():
    return load_world_spec()


@pytest.fixture(scope="module")
def knobs(spec):
    return spec.knobs


def draw(spec, knobs, seed, n=64):
    rng = np.random.default_rng(seed)
    scenes = sample_scenes(spec, knobs, n, rng, spec.compositions)
    return scenes, render(spec, knobs, scenes, rng), CaptionWriter(spec, knobs).captions(scenes, rng)


def names_composition(caption: str, spec, comp) -> bool:
    """Does the caption name ``comp`` in any phrase order the grammar writes?"""
    c, p, s = comp
    color, shape = spec.color_names[c], spec.words_of(spec.shapes[s])
    pattern = spec.words_of(spec.patterns[p])
    shapes = "|".join(map(re.escape, shape))
    pats = "|".join(map(re.escape, pattern))
    forms = [rf"\b{color} ({pats}) ({shapes})\b", rf"\b({pats}) {color} ({shapes})\b",
             rf"\b({shapes}) that is ({color} and ({pats})|({pats}) and {color})\b",
             rf"\b({shapes}) , ({color} , ({pats})|({pats}) , {color})\b"]
    return any(re.search(f, caption) for f in forms)


# ------------------------------------------------------------------------------------------ vocabulary

def test_world_has_three_factors_and_over_a_hundred_classes(spec):
    assert len(spec.compositions) == len(spec.colors) * len(spec.patterns) * len(spec.shapes) >= 100
    assert spec.class_name((0, 1, 2)) == f"{spec.color_names[0]} {spec.patterns[1]} {spec.shapes[2]}"
    assert len({spec.class_name(c) for c in spec.compositions}) == len(spec.compositions)


# ------------------------------------------------------------------------------------------ determinism

def test_same_seed_same_world_other_seed_differs(spec, knobs):
    s1, img1, cap1 = draw(spec, knobs, 7)
    s2, img2, cap2 = draw(spec, knobs, 7)
    _, img3, cap3 = draw(spec, knobs, 8)
    assert np.array_equal(s1.color, s2.color) and np.array_equal(s1.d_cx, s2.d_cx)
    assert np.array_equal(img1, img2) and cap1 == cap2
    assert not np.array_equal(img1, img3) and cap1 != cap3


def test_rendered_images_are_uint8_with_the_expected_shape(spec, knobs):
    scenes, images, caps = draw(spec, knobs, 0, n=5)
    assert images.dtype == np.uint8 and images.shape == (5, spec.image_size, spec.image_size, 3)
    assert len(caps) == 5 and all(isinstance(c, str) and c for c in caps)


# ------------------------------------------------------------------------------------------ splits

@pytest.mark.parametrize("split_seed", [0, 1, 2])
@pytest.mark.parametrize("fraction", [0.2, 0.4])
def test_composition_split_keeps_every_part_of_a_held_out_class_seen(spec, split_seed, fraction):
    split = make_split(spec, "compositions", fraction, split_seed)
    seen, unseen = set(split.seen), set(split.unseen)
    assert seen.isdisjoint(unseen) and seen | unseen == set(spec.compositions)
    assert len(split.seen) + len(split.unseen) == len(spec.compositions)
    assert len(unseen) == round(fraction * len(spec.compositions))
    for c, p, s in unseen:   # every pair of concepts of an unseen class occurs in some seen class
        assert any(x[0] == c and x[1] == p for x in seen)
        assert any(x[0] == c and x[2] == s for x in seen)
        assert any(x[1] == p and x[2] == s for x in seen)
    assert split.compositions("all") == sorted(spec.compositions)


def test_composition_split_seed(spec):
    a = make_split(spec, "compositions", 0.2, 0)
    assert make_split(spec, "compositions", 0.2, 0) == a
    assert make_split(spec, "compositions", 0.2, 1).unseen != a.unseen


def test_shape_split_holds_out_whole_shapes(spec):
    split = make_split(spec, "shapes", 0.34, 0)
    out_shapes = {s for _, _, s in split.unseen}
    assert len(out_shapes) == round(0.34 * len(spec.shapes))
    assert set(split.unseen) == {comp for comp in spec.compositions if comp[2] in out_shapes}
    assert not any(s in out_shapes for _, _, s in split.seen)


def test_bad_split_inputs_raise_naming_the_value(spec):
    with pytest.raises(ValueError, match=r"1\.5"):
        make_split(spec, holdout_fraction=1.5)
    with pytest.raises(InvalidChoiceError) as err:
        make_split(spec, kind="colours")
    assert "'colours'" in str(err.value) and "'compositions'" in str(err.value)
    with pytest.raises(InvalidChoiceError, match="'seen'"):
        make_split(spec).compositions("train")


# ------------------------------------------------------------------------------------------ knobs

def test_unknown_or_bad_knobs_raise_naming_them(spec):
    with pytest.raises(InvalidChoiceError) as err:
        spec.knobs.replace({"bare_label_ratio": 0.1})
    assert "'bare_label_ratio'" in str(err.value) and "bare_label_rate" in str(err.value)
    with pytest.raises(ValueError, match="offtopic_rate.*1.5"):
        spec.knobs.replace({"offtopic_rate": 1.5})
    with pytest.raises(ValueError, match="concept weights"):
        WorldKnobs(concept_weights={"red": -1})
    with pytest.raises(InvalidChoiceError, match="bare_label_ratio"):
        with_overrides(offline_model_entry("zsclip-micro"), {"world": {"bare_label_ratio": 0.1}})


def test_every_knob_has_a_default_in_world_json(spec):
    import json

    from zslab.config import data_file

    raw = json.loads(data_file("zsworld", "world.json").read_text())["knobs"]
    assert set(raw) == set(WorldKnobs.names())


def test_knobs_are_part_of_the_model_key(spec):
    from zslab.train.zoo import OFFLINE_ZOO

    entry = offline_model_entry("zsclip-micro")
    other = with_overrides(entry, {"world": {"offtopic_rate": 0.3}})
    assert other["world"]["offtopic_rate"] == 0.3 and "offtopic_rate" not in entry["world"]
    assert OFFLINE_ZOO.key("zsclip-micro", entry, 0) != OFFLINE_ZOO.key("zsclip-micro", other, 0)


# ------------------------------------------------------------------------------------------ held-out classes

def test_held_out_compositions_never_appear_in_training(spec):
    entry = with_overrides(offline_model_entry("zsclip-tiny"), {"world": {"n_train": 3000}})
    corpus = make_corpus(spec, spec.knobs, make_split(spec), 3000, seed=0)
    images, per_image, split = training_data(entry, seed=0)
    assert np.array_equal(images, corpus.images) and per_image == corpus.captions
    scenes, unseen = corpus.scenes, set(split.unseen)
    drawn = set(zip(scenes.color.tolist(), scenes.pattern.tolist(), scenes.shape.tolist()))
    assert drawn.isdisjoint(unseen) and len(drawn) > 0.9 * len(split.seen)
    distractors = set(zip(scenes.d_color[scenes.d_present].tolist(), scenes.d_pattern[scenes.d_present].tolist(),
                          scenes.d_shape[scenes.d_present].tolist()))
    assert distractors and distractors.isdisjoint(unseen)
    assert all(len(caps) == CAPTIONS_PER_IMAGE for caps in per_image)
    for caps in per_image:
        for cap in caps:
            for comp in unseen:
                assert not names_composition(cap, spec, comp), (cap, spec.class_name(comp))


def test_the_check_for_a_named_composition_works(spec):
    comp = (0, 1, 2)
    name = spec.class_name(comp)
    assert names_composition(f"a photo of a {name} lol", spec, comp)
    c, p, s = name.split()
    assert names_composition(f"my {s} that is {c} and {p}", spec, comp)
    assert not names_composition(f"a {c} {s}", spec, comp)


def test_held_out_shapes_never_named_in_training_captions(spec):
    split = make_split(spec, "shapes", 0.34, 0)
    corpus = make_corpus(spec, spec.knobs, split, 1500, seed=0)
    out_shapes = {s for _, _, s in split.unseen}
    banned = {w for s in out_shapes for w in spec.words_of(spec.shapes[s])}
    assert not set(corpus.scenes.shape.tolist()) & out_shapes
    assert not any(set(cap.split()) & banned for caps in corpus.captions for cap in caps)


# ------------------------------------------------------------------------------------------ frequencies

def test_default_concepts_follow_a_long_tail(spec, knobs):
    p = concept_probabilities(spec, knobs, "color")
    assert np.all(np.diff(p) < 0) and p[0] / p[-1] == pytest.approx(len(p) ** knobs.concept_zipf)
    flat = concept_probabilities(spec, knobs.replace({"concept_zipf": 0.0}), "shape")
    assert np.allclose(flat, 1 / len(spec.shapes))


def test_concept_weight_zero_never_draws_that_color(spec, knobs):
    k = knobs.replace({"concept_weights": {"red": 0.0}})
    scenes = sample_scenes(spec, k, 5000, np.random.default_rng(0), spec.compositions)
    red = spec.color_names.index("red")
    assert red not in set(scenes.color.tolist()) and red not in set(scenes.d_color.ravel().tolist())


def test_concept_weights_scale_frequencies(spec, knobs):
    k = knobs.replace({"concept_zipf": 0.0, "concept_weights": {"blue": 4.0, "ring": 4.0}})
    scenes = sample_scenes(spec, k, 40000, np.random.default_rng(0), spec.compositions)
    colors, shapes = Counter(scenes.color.tolist()), Counter(scenes.shape.tolist())
    blue, ring = spec.color_names.index("blue"), spec.shapes.index("ring")
    assert 3.5 < colors[blue] / np.mean([colors[c] for c in colors if c != blue]) < 4.5
    assert 3.5 < shapes[ring] / np.mean([shapes[s] for s in shapes if s != ring]) < 4.5


# ------------------------------------------------------------------------------------------ captions

def _scenes(spec, knobs, n=400, seed=0):
    return sample_scenes(spec, knobs, n, np.random.default_rng(seed), spec.compositions)


def test_bare_label_captions_are_the_class_name(spec, knobs):
    k = knobs.replace({"bare_label_rate": 1.0})
    scenes = _scenes(spec, k)
    caps = CaptionWriter(spec, k).captions(scenes, np.random.default_rng(1))
    assert caps == [spec.class_name(scenes.composition(i)) for i in range(len(scenes))]


def test_clean_captions_name_their_class_and_noisy_ones_do_not_always(spec, knobs):
    clean = knobs.replace({"attribute_drop_rate": 0.0, "attribute_error_rate": 0.0, "synonym_rate": 0.0,
                           "word_order_rate": 0.0, "offtopic_rate": 0.0})
    scenes = _scenes(spec, clean)
    caps = CaptionWriter(spec, clean).captions(scenes, np.random.default_rng(1))
    assert all(spec.class_name(scenes.composition(i)) in cap for i, cap in enumerate(caps))
    noisy = knobs.replace({"attribute_drop_rate": 0.5})
    caps = CaptionWriter(spec, noisy).captions(scenes, np.random.default_rng(1))
    named = np.mean([spec.class_name(scenes.composition(i)) in cap for i, cap in enumerate(caps)])
    assert named < 0.5


def test_offtopic_captions_name_a_distractor_in_a_plain_form(spec, knobs):
    k = knobs.replace({"offtopic_rate": 1.0, "distractor_rate": 1.0, "attribute_drop_rate": 0.0,
                       "attribute_error_rate": 0.0, "synonym_rate": 0.0, "word_order_rate": 0.0, "filler_rate": 0.0})
    scenes = _scenes(spec, k, n=200)
    caps = CaptionWriter(spec, k).captions(scenes, np.random.default_rng(1))
    framings = [f.split("{obj}")[0] for f in spec.framing_forms]
    for i, cap in enumerate(caps):
        distractors = {spec.class_name((int(scenes.d_color[i, j]), int(scenes.d_pattern[i, j]),
                                        int(scenes.d_shape[i, j]))) for j in range(scenes.d_present.shape[1])}
        assert any(d in cap for d in distractors), cap
        assert not any(cap.startswith(f) for f in framings if f), cap


def test_framing_forms_are_used_at_their_rate(spec, knobs):
    k = knobs.replace({"framing_rate": 1.0, "filler_rate": 0.0, "context_rate": 0.0, "offtopic_rate": 0.0})
    caps = CaptionWriter(spec, k).captions(_scenes(spec, k), np.random.default_rng(2))
    framings = tuple(f.split("{obj}")[0] for f in spec.framing_forms)
    assert all(cap.startswith(framings) for cap in caps)
    k0 = k.replace({"framing_rate": 0.0})
    caps = CaptionWriter(spec, k0).captions(_scenes(spec, k0), np.random.default_rng(2))
    assert not any(cap.startswith(("a photo of", "a picture of", "close-up of")) for cap in caps)


def test_corpus_statistics_count_concepts_and_synonyms(spec, knobs):
    corpus = make_corpus(spec, knobs, make_split(spec), 500, seed=3, captions_per_image=2)
    rows = {(r["factor"], r["concept"]): r for r in corpus_statistics(spec, corpus)}
    square = rows[("shape", "square")]
    texts = [cap for caps in corpus.captions for cap in caps]
    assert square["n_exact_word"] == sum("square" in c.split() for c in texts)
    assert square["synonyms"]["box"] == sum("box" in c.split() for c in texts) > 0
    assert square["n_captions"] == square["n_exact_word"] + square["n_synonyms"]
    assert square["n_images"] == int((corpus.scenes.shape == spec.shapes.index("square")).sum())
    assert sum(rows[("color", c)]["n_images"] for c in spec.color_names) == 500


# ------------------------------------------------------------------------------------------ rendering

def test_each_shape_and_pattern_renders_distinct_pixels(spec, knobs):
    quiet = knobs.replace({"noise": 0.0, "color_jitter": 0.0, "distractor_rate": 0.0, "clutter_rate": 0.0})
    comps = [(0, 0, s) for s in range(len(spec.shapes))] + [(0, p, 0) for p in range(len(spec.patterns))]
    rng = np.random.default_rng(0)
    scenes = sample_scenes(spec, quiet, len(comps), rng, [comps[0]])
    scenes.shape[:] = [c[2] for c in comps]
    scenes.pattern[:] = [c[1] for c in comps]
    scenes.size[:] = spec.size_names.index("large")
    scenes.cx[:] = scenes.cy[:] = spec.image_size / 2
    images = render(spec, quiet, scenes, rng)
    shapes, patterns = images[:len(spec.shapes)], images[len(spec.shapes):]
    for (a, ia), (b, ib) in itertools.combinations(zip(spec.shapes, shapes), 2):
        assert not np.array_equal(ia, ib), f"{a} and {b} render the same pixels"
    for (a, ia), (b, ib) in itertools.combinations(zip(spec.patterns, patterns), 2):
        assert not np.array_equal(ia, ib), f"{a} and {b} render the same pixels"
    assert set(spec.shapes) <= set(SHAPE_MASKS) and set(spec.patterns) <= set(PATTERN_MASKS)


def test_render_refuses_a_shape_without_a_mask(spec, knobs):
    odd = dataclasses.replace(spec, shapes=spec.shapes + ["hexagon"])
    scenes = sample_scenes(spec, knobs, 1, np.random.default_rng(0), [(0, 0, 0)])
    with pytest.raises(ValueError, match="hexagon"):
        render(odd, knobs, scenes, np.random.default_rng(0))


# ------------------------------------------------------------------------------------------ the dataset

def test_zsworld_unseen_classes_are_the_unseen_compositions(spec):
    ds = build_dataset("zsworld", split="unseen", n_per_class=3)
    split = make_split(spec)
    assert ds.classes == [spec.class_name(c) for c in split.unseen]
    assert len(ds) == 3 * len(split.unseen)
    assert Counter(ds.targets.tolist()) == {i: 3 for i in range(len(split.unseen))}
    assert ds.unseen_classes == list(range(len(split.unseen))) and ds.seen_classes == []
    image, label = ds[0]
    assert image.mode == "RGB" and image.size == (spec.image_size, spec.image_size) and label == 0


def test_zsworld_all_split_has_every_class_and_marks_unseen(spec):
    ds = build_dataset("zsworld", split="all", n_per_class=1)
    split = make_split(spec)
    assert ds.classes == [spec.class_name(c) for c in spec.compositions]
    assert {ds.classes[i] for i in ds.unseen_classes} == {spec.class_name(c) for c in split.unseen}
    assert sorted(ds.unseen_classes + ds.seen_classes) == list(range(len(spec.compositions)))


def test_zsworld_follows_the_model_world_and_seed():
    test = build_dataset("zsworld", split="test", n_per_class=2)
    unseen = build_dataset("zsworld", split="unseen", n_per_class=2)
    assert test.classes == unseen.classes and test.identity == unseen.identity
    assert np.array_equal(test.images, unseen.images)
    other = build_dataset("zsworld", split="unseen", n_per_class=2, seed=1)
    assert other.identity != unseen.identity and not np.array_equal(other.images, unseen.images)
    clean = build_dataset("zsworld", split="unseen", n_per_class=2, world={"distractor_rate": 0.0})
    assert clean.identity != unseen.identity and not np.array_equal(clean.images, unseen.images)
    moved = build_dataset("zsworld", split="unseen", n_per_class=2, world={"split_seed": 1})
    assert moved.classes != unseen.classes


def test_zsworld_bad_split_and_count():
    with pytest.raises(InvalidChoiceError, match="'unseen'"):
        build_dataset("zsworld", split="train")
    with pytest.raises(ValueError, match="n_per_class"):
        build_dataset("zsworld", split="unseen", n_per_class=0)
