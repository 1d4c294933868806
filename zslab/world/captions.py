"""Captions for zsworld scenes, from the templates and synonyms in data/zsworld/world.json."""
from __future__ import annotations

from typing import List

import numpy as np

from .render import Scenes
from .spec import WorldSpec


def _word(spec: WorldSpec, word: str, rng: np.random.Generator, synonym_rate: float) -> str:
    options = spec.synonyms.get(word)
    if options and rng.random() < synonym_rate:
        return options[rng.integers(len(options))]
    return word


def captions(spec: WorldSpec, scenes: Scenes, rng: np.random.Generator, synonym_rate: float = 0.2) -> List[str]:
    """One caption per scene: a random template filled with the scene's words (sometimes a synonym)."""
    out = []
    templates = spec.caption_templates
    for i in range(len(scenes)):
        t = templates[rng.integers(len(templates))]
        out.append(t.format(
            color=spec.color_names[scenes.color[i]],
            shape=_word(spec, spec.shapes[scenes.shape[i]], rng, synonym_rate),
            size=_word(spec, spec.size_names[scenes.size[i]], rng, synonym_rate),
            background=spec.background_names[scenes.background[i]],
        ))
    return out
