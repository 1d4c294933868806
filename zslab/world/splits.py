"""Seen/unseen splits of zsworld: over compositions (color, pattern, shape), or over whole shapes."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import FrozenSet, List, Tuple

import numpy as np

from ..errors import check_choice
from .spec import Composition, WorldSpec


@dataclass(frozen=True)
class CompositionSplit:
    """Which compositions appear in training (seen) and which never do (unseen)."""

    kind: str
    seen: Tuple[Composition, ...]
    unseen: Tuple[Composition, ...]
    split_seed: int

    @property
    def seen_set(self) -> FrozenSet[Composition]:
        return frozenset(self.seen)

    def compositions(self, which: str) -> List[Composition]:
        check_choice("zsworld class subset", which, ("seen", "unseen", "all"))
        return {"seen": list(self.seen), "unseen": list(self.unseen),
                "all": sorted(self.seen + self.unseen)}[which]


SPLIT_KINDS = ("compositions", "shapes")


def make_split(spec: WorldSpec, kind: str = "compositions", holdout_fraction: float = 0.2,
               split_seed: int = 0) -> CompositionSplit:
    """Hold out a fraction of compositions, or whole shapes (``kind="shapes"``: those shape words never
    occur in training captions).

    Composition splits keep every concept seen, and every pair of concepts of a held-out composition
    (its color-shape, color-pattern and pattern-shape pairs) seen in some other composition, so that an
    unseen class is a new combination of familiar parts, never a part the model has not met.
    """
    check_choice("zsworld split kind", kind, SPLIT_KINDS)
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    rng = np.random.default_rng(split_seed)
    every = spec.compositions
    if kind == "shapes":
        n_shapes = len(spec.shapes)
        n_out = max(1, round(holdout_fraction * n_shapes))
        out_shapes = set(rng.choice(n_shapes, size=n_out, replace=False).tolist())
        unseen = [comp for comp in every if comp[2] in out_shapes]
    else:
        n_out = max(1, round(holdout_fraction * len(every)))
        pair_left = Counter(pair for comp in every for pair in _pairs(comp))
        unseen = []
        # Greedy in a random order: skip a composition whose removal would leave one of its pairs unseen.
        for idx in rng.permutation(len(every)):
            comp = every[idx]
            if all(pair_left[pair] >= 2 for pair in _pairs(comp)):
                unseen.append(comp)
                for pair in _pairs(comp):
                    pair_left[pair] -= 1
            if len(unseen) == n_out:
                break
    held = set(unseen)
    seen = [comp for comp in every if comp not in held]
    return CompositionSplit(kind, tuple(seen), tuple(sorted(unseen)), split_seed)


def _pairs(comp: Composition) -> List[Tuple[str, int, int]]:
    c, p, s = comp
    return [("cp", c, p), ("cs", c, s), ("ps", p, s)]
