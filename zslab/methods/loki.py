"""Loki: the Fréchet mean of a model's class probabilities under a label metric (Roberts et al., *Geometry-Aware
Adaptation for Pretrained Models*, NeurIPS 2023, arXiv 2307.12226).

A classifier's argmax can only name the classes it scores (the *observed* ones, ``K``). If the label space
``Y ⊇ K`` carries a metric ``d``, the prediction

    ŷ(x) = argmin_{y ∈ Y}  Σ_{k ∈ K} P(k | x) · d(y, k)²

uses the whole probability vector: it can name a class never scored (between two likely ones), and with all
classes observed it can still move a confused prediction towards the centre of the likely region. It is a
fixed linear map of the probabilities followed by an argmin, with no training. The paper judges it by the
**expected squared distance** between prediction and truth, which rewards near misses.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch


def _distances(distances: np.ndarray) -> np.ndarray:
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distances must be a square [Y, Y] matrix, got shape {d.shape}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("distances must be finite and non-negative")
    return d


def frechet_predict(probs: torch.Tensor | np.ndarray, distances: np.ndarray,
                    observed: Optional[Sequence[int]] = None) -> np.ndarray:
    """Loki's prediction ``[N]`` (indices into the label space ``Y``).

    ``probs`` ``[N, K]``: each row a distribution over the observed classes; ``observed`` their indices in
    ``Y`` (default: all of ``Y``, ``K = Y``); ``distances`` ``[Y, Y]``. Ties go to the lowest index.
    """
    d = _distances(distances)
    p = np.asarray(probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else probs, dtype=np.float64)
    observed = list(range(d.shape[0])) if observed is None else list(observed)
    if p.ndim != 2 or p.shape[1] != len(observed):
        raise ValueError(f"probs must be [N, {len(observed)}] (one column per observed class), got {p.shape}")
    bad = [k for k in observed if not 0 <= k < d.shape[0]]
    if bad:
        raise ValueError(f"observed classes {bad} are outside the label space of {d.shape[0]} classes")
    # the Fréchet objective of every candidate y: Σ_k p_k d(y, k)², for all images at once
    objective = p @ (d[:, observed] ** 2).T
    return objective.argmin(axis=1)


def argmax_predict(probs: torch.Tensor | np.ndarray, observed: Optional[Sequence[int]] = None) -> np.ndarray:
    """The standard rule, in label-space indices: the most probable observed class."""
    p = np.asarray(probs.detach().cpu().numpy() if isinstance(probs, torch.Tensor) else probs)
    best = p.argmax(axis=1)
    return best if observed is None else np.asarray(observed)[best]


def squared_distance(pred: np.ndarray, truth: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """``d(ŷ, y)²`` per item; its mean is the paper's expected squared distance (0 when every prediction is
    right; near misses cost little, far misses much)."""
    d = _distances(distances)
    return d[np.asarray(pred), np.asarray(truth)] ** 2


def shuffled_metric(distances: np.ndarray, seed: int = 0) -> np.ndarray:
    """The control: the same distances with the classes relabelled at random, so the metric keeps its
    values but no longer says which classes are alike."""
    d = _distances(distances)
    order = np.random.default_rng(seed).permutation(d.shape[0])
    return d[np.ix_(order, order)]


def observed_subset(n_classes: int, n_observed: int, seed: int = 0) -> list:
    """A seeded choice of ``n_observed`` of ``n_classes`` classes the classifier may name (sorted)."""
    if not 1 <= n_observed <= n_classes:
        raise ValueError(f"n_observed must be in 1..{n_classes}, got {n_observed}")
    return sorted(np.random.default_rng(seed).choice(n_classes, size=n_observed, replace=False).tolist())


def evaluate_rules(logits_all: torch.Tensor, labels: torch.Tensor, observed: Sequence[int],
                   metrics: dict, task_metric: np.ndarray, logit_scale: float) -> dict:
    """Argmax and Loki under each label metric of ``metrics`` (``{name: [Y, Y] distances}``), on the same
    images, with only the ``observed`` classes scored by the model.

    ``logits_all`` ``[N, Y]`` are cosine similarities to every class (unit vectors, unscaled); the model's
    probabilities over the observed classes are ``softmax(logit_scale · cos)``. Returns, per rule,
    ``{"neg_sq_distance": −d(ŷ, y)² under task_metric, "correct": 0/1, "pred": ŷ}`` per image (negated, so that
    higher is better for every paired gain).
    """
    probs = torch.softmax(logit_scale * logits_all[:, list(observed)].double(), dim=1)
    truth = labels.numpy()
    preds = {"argmax": argmax_predict(probs, observed)}
    for name, distances in metrics.items():
        preds[f"Loki ({name})"] = frechet_predict(probs, distances, observed)
    return {rule: {"neg_sq_distance": -squared_distance(pred, truth, task_metric),
                   "correct": (pred == truth).astype(np.float64), "pred": pred} for rule, pred in preds.items()}


def label_metric(kind: str, dataset: str, classes: Sequence[str], class_embeddings: Optional[torch.Tensor] = None
                 ) -> np.ndarray:
    """A ``[Y, Y]`` label metric for ``classes`` of ``dataset``: ``attributes`` (Euclidean distance between
    class attribute vectors, ``data/attributes/``), ``wordnet`` (1 − path similarity of the classes'
    synsets, ``data/wordnet/class_synsets.json``) or ``text embeddings`` (1 − cosine between the zero-shot
    classifier's class vectors: the paper's self-derived metric, available for any model and dataset)."""
    from ..errors import check_choice
    from ..semantics.label_space import attribute_distance_matrix, embedding_distance_matrix, \
        wordnet_path_distance_matrix

    check_choice("label metric", kind, LABEL_METRICS)
    if kind == "attributes":
        from ..semantics.attributes import load_attributes

        return attribute_distance_matrix(load_attributes(dataset).select(classes).matrix)
    if kind == "wordnet":
        from ..semantics.wordnet import class_synsets

        synsets = class_synsets(dataset)
        return wordnet_path_distance_matrix([synsets[c] for c in classes])
    if class_embeddings is None:
        raise ValueError("the 'text embeddings' metric needs the class embeddings")
    return embedding_distance_matrix(class_embeddings)


LABEL_METRICS = ("attributes", "wordnet", "text embeddings")
