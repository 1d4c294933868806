"""Label metric spaces: distances between classes from WordNet, attribute vectors or embeddings.

Every function returns a symmetric ``[C, C]`` float64 numpy array with an exact zero diagonal, so the
result can serve directly as a cost matrix (hierarchical/semantic mistake severity), a target for
structure-preserving losses, or input to a 2-D layout.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from ..arrays import finite_2d
from ..errors import check_choice

METRICS = ("euclidean", "cosine")


def _finish(d: np.ndarray) -> np.ndarray:
    d = 0.5 * (d + d.T)  # exact symmetry, whatever the rounding of the two triangles
    np.fill_diagonal(d, 0.0)
    return d


def _as_matrix(x: Any, name: str) -> np.ndarray:
    m = finite_2d(x, name, "[C, D] (one row per class)")
    if m.shape[0] == 0:
        raise ValueError(f"{name} has no rows")
    return m


def wordnet_path_distance_matrix(synset_names: Sequence[str], wordnet: Optional[Any] = None) -> np.ndarray:
    """``1 − path_similarity`` between WordNet synsets (e.g. ``"dog.n.01"``), in [0, 1).

    Path similarity is 1 / (1 + shortest hypernym-path length); nouns all meet at ``entity.n.01``.
    Synsets with no connecting path (e.g. a noun and a verb) get distance 1. ``wordnet`` defaults to
    :func:`zslab.semantics.wordnet.load_wordnet`.
    """
    if wordnet is None:
        from .wordnet import load_wordnet

        wordnet = load_wordnet()
    names = list(synset_names)
    if not names:
        raise ValueError("synset_names is empty")
    synsets = [wordnet.synset(n) for n in names]
    c = len(synsets)
    d = np.zeros((c, c))
    for i in range(c):
        for j in range(i + 1, c):
            sim = synsets[i].path_similarity(synsets[j])
            d[i, j] = d[j, i] = 1.0 - (float(sim) if sim is not None else 0.0)
    return _finish(d)


def attribute_distance_matrix(matrix: Any, metric: str = "euclidean") -> np.ndarray:
    """Distances between class attribute vectors (rows of ``matrix`` [C, A]).

    ``euclidean``: ‖a − b‖₂. ``cosine``: 1 − cos(a, b) in [0, 2]; a zero row has cosine 0 with every other
    row (distance 1), and 0 to itself.
    """
    check_choice("metric", metric, METRICS)
    m = _as_matrix(matrix, "matrix")
    if metric == "euclidean":
        sq = (m * m).sum(1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * m @ m.T, 0.0))
    else:
        norms = np.linalg.norm(m, axis=1, keepdims=True)
        u = m / np.where(norms > 0, norms, 1.0)
        d = 1.0 - np.clip(u @ u.T, -1.0, 1.0)
    return _finish(d)


def embedding_distance_matrix(vectors: Any) -> np.ndarray:
    """Cosine distance ``1 − cos`` between class embeddings (e.g. text-encoder outputs; torch or numpy)."""
    return attribute_distance_matrix(vectors, metric="cosine")
