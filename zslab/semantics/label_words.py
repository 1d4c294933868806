"""Alternative label words per class: what a class can be called in a prompt.

Word bias (Liusie et al., arXiv 2309.04992) arises from *which* word names each class; the paper varies
one label word per class across settings. Lists live in ``data/label_words/<dataset>.json`` (first word =
the class name); zsworld's come from its own vocabulary (every mix of a class's words and their
synonyms in world.json, the canonical name first), so rare synonyms are among the choices.
"""
from __future__ import annotations

import itertools
from typing import Dict, List, Sequence

import numpy as np

from ..datasets.base import DataFileError, read_data_json


def load_label_words(dataset: str, classes: Sequence[str]) -> Dict[str, List[str]]:
    """``{class: [class name, alternative, ...]}`` for ``classes`` of ``dataset``."""
    if dataset == "zsworld":
        return _zsworld_words(classes)
    path, raw = read_data_json("label_words", dataset)
    words = raw.get("words")
    if not isinstance(words, dict):
        raise DataFileError(f"{path}: needs an object 'words' of class -> list of label words")
    missing = [c for c in classes if c not in words]
    if missing:
        raise DataFileError(f"{path}: no label words for classes {missing}; it lists {sorted(words)}")
    bad = [c for c in classes if not words[c] or words[c][0] != c]
    if bad:
        raise DataFileError(f"{path}: the first label word of each class must be its name; not so for {bad}")
    return {c: list(words[c]) for c in classes}


def _zsworld_words(classes: Sequence[str]) -> Dict[str, List[str]]:
    from ..world import load_world_spec

    spec = load_world_spec()
    out = {}
    for name in classes:
        parts = name.split()
        out[name] = [" ".join(w) for w in itertools.product(*(spec.words_of(p) for p in parts))]
    return out


def label_word_settings(words: Dict[str, List[str]], n_settings: int, seed: int = 0) -> List[Dict[str, str]]:
    """``n_settings`` assignments of one label word per class: the class names first, then random draws
    (seeded), as the paper's settings vary the word of every class at once."""
    if n_settings < 1:
        raise ValueError(f"n_settings must be >= 1, got {n_settings}")
    rng = np.random.default_rng([seed, 11])
    settings = [{c: ws[0] for c, ws in words.items()}]
    for _ in range(n_settings - 1):
        settings.append({c: ws[rng.integers(len(ws))] for c, ws in words.items()})
    return settings
