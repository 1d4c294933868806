"""Training corpora of zsworld (images + alt-text captions) and their statistics.

``corpus_statistics`` counts, in the captions actually generated for a model, how often each concept
word and each of its synonyms occurs: the "concept frequency" that frequency studies plot accuracy
against (counted in text, as in the papers, so distractor mentions and wrong attributes count too).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Dict, List

import numpy as np

from .captions import CaptionWriter
from .render import Scenes, render, sample_scenes
from .spec import FACTORS, WorldKnobs, WorldSpec
from .splits import CompositionSplit, make_split


@dataclass
class Corpus:
    """Rendered images ``[N,H,W,3]`` uint8, ``K`` captions per image, the scenes drawn, the split used."""

    images: np.ndarray
    captions: List[List[str]]
    scenes: Scenes
    split: CompositionSplit
    knobs: WorldKnobs


def make_corpus(spec: WorldSpec, knobs: WorldKnobs, split: CompositionSplit, n: int, seed: int,
                captions_per_image: int = 4) -> Corpus:
    """``n`` training scenes of the seen compositions (distractors too), each with K captions.

    Held-out compositions are never drawn and never named: not as the main object, not as a distractor,
    not by a wrong attribute.
    """
    rng = np.random.default_rng([seed, 1])  # stream 1: training data (evaluation images use stream 2)
    scenes = sample_scenes(spec, knobs, n, rng, split.seen)
    images = render(spec, knobs, scenes, rng)
    writer = CaptionWriter(spec, knobs, banned=split.unseen)
    per_caption = [writer.captions(scenes, rng) for _ in range(captions_per_image)]
    return Corpus(images, [list(c) for c in zip(*per_caption)], scenes, split, knobs)


def corpus_statistics(spec: WorldSpec, corpus: Corpus) -> List[Dict]:
    """One row per concept of a class factor: how many training images show it as the main object, how
    many captions mention it (any of its words), and how many use each synonym."""
    words = Counter(w for caps in corpus.captions for cap in caps for w in set(cap.split()))
    image_counts = {f: np.bincount(getattr(corpus.scenes, f), minlength=len(spec.factor_values(f))) for f in FACTORS}
    rows = []
    for factor in FACTORS:
        for i, concept in enumerate(spec.factor_values(factor)):
            per_word = {w: int(words.get(w, 0)) for w in spec.words_of(concept)}
            rows.append({"factor": factor, "concept": concept, "n_images": int(image_counts[factor][i]),
                         "n_captions": int(sum(per_word.values())), "n_exact_word": per_word[concept],
                         "n_synonyms": int(sum(per_word.values()) - per_word[concept]),
                         "synonyms": {w: c for w, c in per_word.items() if w != concept}})
    return rows


#: Keys of a model entry's ``world:`` mapping that choose the split (the rest are knobs, plus ``n_train``).
SPLIT_DEFAULTS = {"split_kind": "compositions", "holdout_fraction": 0.2, "split_seed": 0}


def world_setting(world: Dict, spec: WorldSpec):
    """(knobs, split) of a model entry's ``world:`` mapping: split keys, ``n_train``, knob overrides."""
    split_args = {k: world.get(k, v) for k, v in SPLIT_DEFAULTS.items()}
    overrides = {k: v for k, v in world.items() if k not in SPLIT_DEFAULTS and k != "n_train"}
    knobs = spec.knobs.replace(overrides)
    return knobs, make_split(spec, split_args["split_kind"], split_args["holdout_fraction"], split_args["split_seed"])
