"""Lower bounds on the worst-case error of attribute-based zero-shot classification (Mazzetto, Menghini, Yuan,
Upfal and Bach, NeurIPS 2022, arXiv 2205.13068).

A class-attribute matrix ``M`` [k, n] says, for each class ``j``, the fraction ``M[j, i]`` of its members that
have attribute ``i``. With *perfect* attribute detectors an image arrives as its binary attribute vector ``v``,
and any map ``v → class`` is right with probability ``Σ_v P(j(v), v)``. Many joint distributions ``P(j, v)`` agree
with ``M`` (uniform classes, each class's attribute marginals fixed); the best map's accuracy under the *worst*
of them is the linear program

    min_P  Σ_v max_j P(j, v)    s.t.  Σ_v P(j, v) = 1/k,   Σ_{v: v_i = 1} P(j, v) = M[j, i] / k,   P ≥ 0,

(the authors' ``solve_adversarial_perfect_detectors``), and ``1 − OPT`` lower-bounds the worst-case error of every
attribute-based classifier; the paper proves it tight. Two classes can share a vector only where their
deterministic (0/1) attributes agree, so the program splits into independent groups of classes with equal 0/1
signatures; in each, only the attributes fractional for some member are enumerated (at most
:data:`MAX_FREE_ATTRIBUTES`). For a 0/1 matrix the bound is the share of classes lost to identical rows,
``1 − (number of distinct rows) / k``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import numpy as np

from ..registry import Registry

#: 2**this attribute patterns per class are enumerated; the authors restrict to 15 attributes greedily.
MAX_FREE_ATTRIBUTES = 16


def _check_matrix(matrix: np.ndarray) -> np.ndarray:
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 1 or m.shape[1] < 1:
        raise ValueError(f"a class-attribute matrix must be [classes, attributes], got shape {m.shape}")
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1:
        raise ValueError("class-attribute values must be fractions in [0, 1]")
    return m


def collision_bound(matrix: np.ndarray) -> float:
    """``1 − distinct rows / k``: classes with identical rows cannot be told apart by any map of their attributes.
    For a 0/1 matrix this is the linear program's bound; for graded values read as exact per-class descriptors
    (zsworld's colour levels), not as fractions of members, it is the bound under that reading."""
    m = _check_matrix(matrix)
    return 1.0 - len(np.unique(m, axis=0)) / m.shape[0]


def _group_accuracy(rows: np.ndarray, k: int) -> float:
    """The LP's optimum restricted to one group of classes with equal 0/1 signatures (their mass is len/k)."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    g = len(rows)
    if g == 1:
        return 1.0 / k
    free = np.flatnonzero(~np.isin(rows, (0.0, 1.0)).all(axis=0) | (rows.min(0) != rows.max(0)))
    if free.size == 0:  # identical rows: whatever the vector, only one of the g classes can be named
        return 1.0 / k
    if free.size > MAX_FREE_ATTRIBUTES:
        raise ValueError(f"{free.size} attributes vary within a group of {g} classes; at most {MAX_FREE_ATTRIBUTES} "
                         "can be enumerated (2**n patterns): select fewer attributes")
    patterns = np.array(list(itertools.product((0, 1), repeat=free.size)), dtype=np.float64).reshape(-1, free.size)
    n_pat = len(patterns)
    n_x = g * n_pat  # x[j, u], then t[u]
    # equalities: per class, total mass and each free attribute's mass
    eq_rows, eq_cols, eq_vals, b_eq = [], [], [], []
    r = 0
    for j in range(g):
        cols = j * n_pat + np.arange(n_pat)
        eq_rows += [r] * n_pat
        eq_cols += cols.tolist()
        eq_vals += [1.0] * n_pat
        b_eq.append(1.0 / k)
        r += 1
        for a, attribute in enumerate(free):
            on = np.flatnonzero(patterns[:, a] == 1)
            eq_rows += [r] * len(on)
            eq_cols += (j * n_pat + on).tolist()
            eq_vals += [1.0] * len(on)
            b_eq.append(rows[j, attribute] / k)
            r += 1
    a_eq = coo_matrix((eq_vals, (eq_rows, eq_cols)), shape=(r, n_x + n_pat))
    # x[j, u] - t[u] <= 0
    ub_rows = np.arange(n_x)
    a_ub = coo_matrix((np.r_[np.ones(n_x), -np.ones(n_x)],
                       (np.r_[ub_rows, ub_rows], np.r_[np.arange(n_x), n_x + np.tile(np.arange(n_pat), g)])),
                      shape=(n_x, n_x + n_pat))
    cost = np.r_[np.zeros(n_x), np.ones(n_pat)]
    result = linprog(cost, A_ub=a_ub.tocsr(), b_ub=np.zeros(n_x), A_eq=a_eq.tocsr(), b_eq=np.array(b_eq),
                     bounds=(0, None), method="highs")
    if not result.success:
        raise RuntimeError(f"the bound's linear program failed: {result.message}")
    return float(result.fun)


def worst_case_accuracy(matrix: np.ndarray) -> float:
    """The best attribute→class map's accuracy under the worst distribution consistent with ``matrix`` (uniform
    classes, perfect detectors): the linear program above, solved group by group."""
    m = _check_matrix(matrix)
    k = m.shape[0]
    deterministic = np.isin(m, (0.0, 1.0)).all(axis=0)
    signatures: Dict[bytes, List[int]] = {}
    for j in range(k):
        signatures.setdefault(m[j, deterministic].tobytes(), []).append(j)
    return float(sum(_group_accuracy(m[members], k) for members in signatures.values()))


def error_lower_bound(matrix: np.ndarray) -> float:
    """``1 − worst_case_accuracy``: no attribute-based classifier, even with perfect detectors, can guarantee a
    lower error on every distribution consistent with ``matrix``."""
    return max(0.0, 1.0 - worst_case_accuracy(matrix))


# --------------------------------------------------------------------------------------------------------
# Coarsenings of a graded matrix (the knob that makes rows collide)
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Coarsening:
    """Which attributes to keep (``None``: all) and whether to binarise them at 0.5."""

    keep: Callable[[str], bool]
    binarise: bool
    about: str

    def apply(self, matrix: np.ndarray, attributes: Sequence[str]) -> np.ndarray:
        columns = [i for i, a in enumerate(attributes) if self.keep(a)]
        m = np.asarray(matrix, dtype=np.float64)[:, columns]
        return (m >= 0.5).astype(np.float64) if self.binarise else m


COARSENINGS: Registry[Coarsening] = Registry("attribute coarsening")
_COLOUR = ("red_level", "green_level", "blue_level", "luma", "saturation", "warm_hue")
_SHAPE = ("has_corners", "round_outline", "hollow", "convex", "corners_3", "corners_4", "corners_more_than_4",
          "horizontal_or_vertical_edges", "slanted_edges", "quarter_turn_symmetric", "relative_area")
COARSENINGS.add("graded", Coarsening(lambda a: True, False, "every attribute as committed"))
COARSENINGS.add("binarised", Coarsening(lambda a: True, True, "every attribute, binarised at 0.5"))
COARSENINGS.add("binarised, no colour", Coarsening(lambda a: a not in _COLOUR, True,
                                                   "pattern and shape attributes only, binarised"))
COARSENINGS.add("binarised, shape only", Coarsening(lambda a: a in _SHAPE, True, "shape attributes only, binarised"))


# --------------------------------------------------------------------------------------------------------
# The notebook's computations
# --------------------------------------------------------------------------------------------------------
def bound_rows(dataset: str, unseen: Sequence[str], coarsenings: Sequence[str] = ("graded",),
               values_are_shares: bool = True) -> List[Dict]:
    """The bound of ``dataset``'s committed matrix over all its classes and over ``unseen`` alone, per
    coarsening: the collision bound (rows as exact descriptors) and, where the values are shares of a class's
    members (``values_are_shares``, the paper's reading) or 0/1, the linear program (``lp_bound``; NaN where
    neither holds or too many attributes vary to enumerate)."""
    from ..semantics.attributes import load_attributes

    table = load_attributes(dataset)
    rows = []
    for name in coarsenings:
        coarsening = COARSENINGS.get(name)
        for part, classes in (("all classes", table.classes), ("unseen classes", list(unseen))):
            m = coarsening.apply(table.select(classes).matrix, table.attributes)
            lp = float("nan")
            if values_are_shares or np.isin(m, (0.0, 1.0)).all():
                try:
                    lp = error_lower_bound(m)
                except ValueError:  # too many attributes vary within a group to enumerate
                    pass
            rows.append({"dataset": dataset, "coarsening": name, "classes": part, "n_classes": len(classes),
                         "n_attributes": m.shape[1], "distinct_rows": len(np.unique(m, axis=0)),
                         "lp_bound": lp, "collision_bound": collision_bound(m)})
    return rows


def coarsened_model_rows(dataset: str, features: str, models: Sequence[str], seeds: Sequence[int], n_train: int,
                         n_test: int, coarsenings: Sequence[str], device: str = "cpu") -> List[Dict]:
    """Each ZSL model trained on each coarsening of the attribute matrix: its error on the unseen classes
    (choosing among them, 1 − A_U→U) beside the bound of the unseen classes' coarsened rows."""
    from ..semantics.attributes import load_attributes
    from .gzsl import build_problem, evaluate_model, with_side

    attributes = load_attributes(dataset).attributes
    rows = []
    for seed in seeds:
        problem = build_problem(dataset, features, seed, n_train, n_test, device=device)
        for name in coarsenings:
            changed = with_side(problem, COARSENINGS.get(name).apply(problem.side, attributes), name)
            bound = collision_bound(changed.side[changed.unseen])
            for model in models:
                error = 1.0 - evaluate_model(model, changed, seed).zsl_unseen
                rows.append({"dataset": dataset, "seed": seed, "coarsening": name, "model": model,
                             "unseen_error": error, "bound": bound, "slack": error - bound})
    return rows
