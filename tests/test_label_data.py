"""The classification dataset mixed into an offline CLIP's captions, and prefix conditioning's source words."""
from __future__ import annotations

import numpy as np
import pytest

from zslab.errors import InvalidChoiceError
from zslab.train.label_data import PREFIX_WORDS, check_label_data, label_corpus, mix_training_data, prefixed
from zslab.train.zoo import offline_model_entry, training_data, with_overrides
from zslab.world import load_world_spec
from zslab.world.corpus import world_setting

WORLD = offline_model_entry("zsclip-micro")["world"]


def test_label_data_fields_are_checked_and_defaults_filled():
    assert check_label_data({"n": 5})["template"] == "a photo of a {c}."
    with pytest.raises(InvalidChoiceError, match="prefix"):
        check_label_data({"n": 5, "prefix": True})
    with pytest.raises(ValueError, match="template"):
        check_label_data({"n": 5, "template": "a photo"})
    with pytest.raises(ValueError, match="n must be"):
        check_label_data({"n": -1})
    with pytest.raises(InvalidChoiceError, match="prefix mode"):
        prefixed(["x"], "title")
    assert prefixed(["a red ring"], "caption") == [f"{PREFIX_WORDS['caption']} a red ring"]


def test_label_corpus_names_the_main_object_of_seen_compositions_only():
    images, texts = label_corpus(WORLD, {"n": 200, "world": {"distractor_rate": 0.0, "clutter_rate": 0.0}}, 0, 2)
    spec = load_world_spec()
    _, split = world_setting(WORLD, spec)
    seen = {spec.class_name(c) for c in split.seen}
    unseen = {spec.class_name(c) for c in split.unseen}
    assert images.shape[0] == 200 and images.dtype == np.uint8 and len(texts) == 200
    names = {t[0][len("a photo of a "):-1] for t in texts}
    assert all(len(set(t)) == 1 and len(t) == 2 for t in texts)
    assert names <= seen and not names & unseen
    again, _ = label_corpus(WORLD, {"n": 200, "world": {"distractor_rate": 0.0, "clutter_rate": 0.0}}, 0, 2)
    assert np.array_equal(images, again)


def test_mixing_appends_labels_and_prefixes_every_text():
    images = np.zeros((3, 32, 32, 3), dtype=np.uint8)
    captions = [["a b"], ["c d"], ["e f"]]
    same = mix_training_data(WORLD, {"n": 0}, 0, images, captions)
    assert same[0] is images and same[1] is captions
    mixed_images, mixed = mix_training_data(WORLD, {"n": 4, "prefixes": True}, 0, images, captions)
    assert mixed_images.shape[0] == 7 and len(mixed) == 7
    assert all(c[0].startswith(PREFIX_WORDS["caption"] + " ") for c in mixed[:3])
    assert all(c[0].startswith(PREFIX_WORDS["label"] + " a photo of a ") for c in mixed[3:])


def test_a_label_data_override_is_its_own_model_and_the_zoo_entries_are_unchanged():
    entry = offline_model_entry("zsclip-micro")
    assert "label_data" not in entry and "label_data" not in with_overrides(entry, {"train": {"steps": 3}})
    mixed = with_overrides(entry, {"label_data": {"n": 50, "prefixes": True}, "world": {"n_train": 100}})
    assert mixed["label_data"]["prefixes"] is True and mixed["label_data"]["template"] == "a photo of a {c}."
    images, captions, _ = training_data(mixed, 0)
    assert images.shape[0] == 150 and len(captions) == 150
    with pytest.raises(ValueError):
        with_overrides(entry, {"label_data": {"n": 5, "world": {"noise": -1.0}}})
