"""Seen/unseen splits of zsworld: over color-shape compositions, or over whole shape classes."""
from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Tuple

import numpy as np

from ..errors import check_choice
from .spec import WorldSpec

Pair = Tuple[int, int]  # (color index, shape index)


@dataclass(frozen=True)
class CompositionSplit:
    """Which color-shape pairs appear in training (seen) and which never do (unseen)."""

    kind: str
    seen: Tuple[Pair, ...]
    unseen: Tuple[Pair, ...]
    split_seed: int

    @property
    def seen_set(self) -> FrozenSet[Pair]:
        return frozenset(self.seen)

    def pairs(self, which: str) -> List[Pair]:
        check_choice("zsworld class subset", which, ("seen", "unseen", "all"))
        return {"seen": list(self.seen), "unseen": list(self.unseen),
                "all": sorted(self.seen + self.unseen)}[which]


SPLIT_KINDS = ("compositions", "shapes")


def make_split(spec: WorldSpec, kind: str = "compositions", holdout_fraction: float = 0.2,
               split_seed: int = 0) -> CompositionSplit:
    """Hold out a fraction of compositions (every color and shape stays seen in some other pair), or whole
    shapes (``kind="shapes"``: those shape words never occur in training captions)."""
    check_choice("zsworld split kind", kind, SPLIT_KINDS)
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
    rng = np.random.default_rng(split_seed)
    n_colors, n_shapes = len(spec.colors), len(spec.shapes)
    all_pairs = [(c, s) for c in range(n_colors) for s in range(n_shapes)]
    if kind == "shapes":
        n_out = max(1, round(holdout_fraction * n_shapes))
        out_shapes = set(rng.choice(n_shapes, size=n_out, replace=False).tolist())
        unseen = [p for p in all_pairs if p[1] in out_shapes]
    else:
        n_out = max(1, round(holdout_fraction * len(all_pairs)))
        unseen = []
        # Greedy in a random order: skip a pair whose removal would leave its color or shape unseen.
        for idx in rng.permutation(len(all_pairs)):
            c, s = all_pairs[idx]
            left_c = sum(1 for p in all_pairs if p[0] == c and p not in unseen and p != (c, s))
            left_s = sum(1 for p in all_pairs if p[1] == s and p not in unseen and p != (c, s))
            if left_c >= 2 and left_s >= 2:
                unseen.append((c, s))
            if len(unseen) == n_out:
                break
    seen = [p for p in all_pairs if p not in set(unseen)]
    return CompositionSplit(kind, tuple(seen), tuple(sorted(unseen)), split_seed)
