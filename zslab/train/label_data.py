"""A classification dataset mixed into an offline CLIP's caption corpus, optionally with prefix tokens.

Prefix Conditioning (arXiv 2206.01125) trains CLIP on image-caption data *and* image-label data (label
prompts such as "a photo of a {class}."). A classification dataset has a bias of its own: object-centric
photos and one fixed text form. Trained naively, the text encoder ties the label-prompt form to that
dataset, and zero-shot prompts, which look like label prompts, inherit the bias. Prefix conditioning
prepends a token that says which dataset a text comes from; at test time the *caption* prefix is used.

A model entry opts in with a ``label_data`` part (absent from the zoo's own entries, so their cache keys
do not change)::

    label_data: {n: 10000, template: "a photo of a {c}.", world: {distractor_rate: 0.0, clutter_rate: 0.0},
                 prefixes: true}

``n`` scenes of the seen compositions are rendered with the model's world plus ``world`` (the dataset's
image bias; ``{}`` is a classification dataset with the captions' own images), each labelled with the
template filled with its main object's class name. With ``prefixes`` every caption starts with
:data:`PREFIX_WORDS` ``["caption"]`` and every label prompt with ``["label"]``; prompts at test time choose
a mode by the same words (:func:`prefixed`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from ..errors import InvalidChoiceError, check_choice
from ..world import load_world_spec, render, sample_scenes
from ..world.corpus import world_setting

#: The words that mark a text's source (made-up words: their token rows are learnt only as prefixes).
PREFIX_WORDS = {"caption": "capsrc", "label": "labsrc"}
#: Fields of a ``label_data`` entry part and their defaults.
LABEL_DATA_DEFAULTS: Dict[str, Any] = {"n": 0, "template": "a photo of a {c}.", "world": {}, "prefixes": False}


def check_label_data(part: Mapping[str, Any]) -> Dict[str, Any]:
    """The ``label_data`` part with its defaults filled in; unknown fields and bad values raise."""
    unknown = sorted(set(part) - set(LABEL_DATA_DEFAULTS))
    if unknown:
        raise InvalidChoiceError(f"unknown label_data field {unknown[0]!r}; valid fields: "
                                 f"{', '.join(LABEL_DATA_DEFAULTS)}")
    out = {**LABEL_DATA_DEFAULTS, **dict(part)}
    if int(out["n"]) < 0:
        raise ValueError(f"label_data.n must be >= 0, got {out['n']!r}")
    if "{c}" not in str(out["template"]):
        raise ValueError(f"label_data.template must contain '{{c}}', got {out['template']!r}")
    return out


def prefixed(texts: Sequence[str], mode: str) -> List[str]:
    """``texts`` with the prefix word of ``mode`` (``caption`` or ``label``) in front."""
    check_choice("prefix mode", mode, PREFIX_WORDS)
    return [f"{PREFIX_WORDS[mode]} {t}" for t in texts]


def label_corpus(world: Mapping[str, Any], part: Mapping[str, Any], seed: int,
                 captions_per_image: int) -> Tuple[np.ndarray, List[List[str]]]:
    """``(images [n, H, W, 3], texts n × K)`` of the classification dataset (seed stream 4: apart from the
    caption corpus's stream 1 and the evaluation streams)."""
    part = check_label_data(part)
    spec = load_world_spec()
    knobs, split = world_setting({**dict(world), **dict(part["world"])}, spec)
    rng = np.random.default_rng([seed, 4])
    scenes = sample_scenes(spec, knobs, int(part["n"]), rng, split.seen)
    images = render(spec, knobs, scenes, rng)
    names = [spec.class_name((int(a), int(b), int(c))) for a, b, c in zip(scenes.color, scenes.pattern, scenes.shape)]
    texts = [[str(part["template"]).format(c=name)] * captions_per_image for name in names]
    return images, texts


def mix_training_data(world: Mapping[str, Any], part: Mapping[str, Any], seed: int, images: np.ndarray,
                      captions: List[List[str]]) -> Tuple[np.ndarray, List[List[str]]]:
    """The caption corpus with the classification dataset appended (prefixed when ``part["prefixes"]``)."""
    part = check_label_data(part)
    if int(part["n"]) == 0:
        return images, captions
    k = len(captions[0]) if captions else 1
    label_images, label_texts = label_corpus(world, part, seed, k)
    if part["prefixes"]:
        captions = [prefixed(c, "caption") for c in captions]
        label_texts = [prefixed(t, "label") for t in label_texts]
    return np.concatenate([images, label_images]), list(captions) + label_texts
