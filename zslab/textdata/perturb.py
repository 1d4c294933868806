"""Controlled changes to texts, as controls for what an encoder's advantage rests on."""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np

from ..registry import Registry

#: name -> fn(texts, seed) -> texts. "none" leaves them as they are.
TEXT_CONTROLS: Registry[Callable[[Sequence[str], int], List[str]]] = Registry("text control")


@TEXT_CONTROLS.register("none")
def _none(texts: Sequence[str], seed: int) -> List[str]:
    return list(texts)


@TEXT_CONTROLS.register("shuffled word order")
def shuffle_word_order(texts: Sequence[str], seed: int) -> List[str]:
    """Each text's words in a random order (seeded): the bag of words stays, syntax and order go. An
    encoder that averages word vectors gives the same embedding; one that composes words in order does not."""
    rng = np.random.default_rng([seed, 5])
    out = []
    for text in texts:
        words = text.split()
        out.append(" ".join(words[i] for i in rng.permutation(len(words))))
    return out


def apply_controls(texts: Sequence[str], controls: Sequence[str], seed: int) -> Dict[str, List[str]]:
    """``{control: texts}`` for each named control (``none`` = the texts unchanged)."""
    return {c: TEXT_CONTROLS.get(c)(texts, seed) for c in controls}
