"""Evaluation metrics for zero-shot notebooks: classification, GZSL, OOD detection, retrieval, intervals.

Every function accepts numpy arrays or torch tensors (moved to the CPU and converted once, up front) and
returns plain Python floats or flat dicts of floats with fixed keys, so a result can go straight into
``zslab.records`` or a pandas row. Keys follow CLIP_benchmark (``acc1``, ``acc5``,
``mean_per_class_recall``); a value that is undefined for the input (top-5 accuracy with fewer than 5
classes, the seen accuracy of a test set without seen samples) is NaN rather than a silently wrong
number. Input that cannot be right (mismatched shapes, labels out of range, a ``level`` outside (0, 1))
raises ``ValueError`` with the offending value in the message.

Ranking ties are broken deterministically by a stable sort on ``-scores``: among equal scores the lower
class (or gallery) index ranks first, so results never depend on the sort algorithm or the platform.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple, Union

import numpy as np

from .arrays import to_numpy

__all__ = [
    "topk_accuracy",
    "accuracy",
    "mean_per_class_accuracy",
    "classification_metrics",
    "gzsl_metrics",
    "calibrated_stacking",
    "seen_unseen_curve",
    "ausuc",
    "normalized_mutual_information",
    "auroc",
    "fpr_at_tpr",
    "ood_metrics",
    "recall_at_k",
    "bootstrap_ci",
    "bootstrap_mean_ci",
    "across_seeds",
    "student_t_ppf",
]

ArrayLike = Any  # numpy array, torch tensor, or anything np.asarray accepts


# --------------------------------------------------------------------------------------------------
# private helpers
# --------------------------------------------------------------------------------------------------

def _scores_2d(scores: ArrayLike, name: str = "scores") -> np.ndarray:
    s = to_numpy(scores)
    if s.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, C], got shape {s.shape}")
    if not np.issubdtype(s.dtype, np.number) or np.issubdtype(s.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if np.isnan(s).any():
        raise ValueError(f"{name} contain {int(np.isnan(s).sum())} NaN value(s); rankings would be arbitrary")
    return s


def _scores_1d(scores: ArrayLike, name: str) -> np.ndarray:
    s = to_numpy(scores)
    if s.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {s.shape}")
    if s.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(s.dtype, np.number) or np.issubdtype(s.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real numbers, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if np.isnan(s).any():
        raise ValueError(f"{name} contains {int(np.isnan(s).sum())} NaN value(s)")
    return s


def _int_array(x: ArrayLike, name: str, ndim: int = 1) -> np.ndarray:
    """Integer class indices; integral floats are accepted (labels often arrive as float tensors)."""
    a = to_numpy(x)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {a.shape}")
    if a.dtype == np.bool_:
        raise ValueError(f"{name} must be integer class indices, got a boolean array")
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64, copy=False)
    if np.issubdtype(a.dtype, np.floating) and a.size and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
        return a.astype(np.int64)
    if a.size == 0:
        return a.astype(np.int64)
    raise ValueError(f"{name} must be integer class indices, got dtype {a.dtype}")


def _check_level(level: float, name: str = "level") -> float:
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in (0, 1), got {level!r}") from None
    if not (0.0 < lv < 1.0):
        raise ValueError(f"{name} must be in (0, 1) (e.g. 0.95), got {level!r}")
    return lv


def _check_ks(ks: Iterable[int], name: str = "ks") -> Tuple[int, ...]:
    if isinstance(ks, (int, np.integer)):
        ks = (ks,)
    out = tuple(ks)
    if not out:
        raise ValueError(f"{name} is empty")
    for k in out:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{name} must be positive integers, got {k!r} in {out!r}")
    return tuple(int(k) for k in out)


# --------------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------------

def topk_accuracy(scores: ArrayLike, labels: ArrayLike, ks: Iterable[int] = (1, 5)) -> Dict[str, float]:
    """Fraction of samples whose true class is among the ``k`` highest scores, as ``{"acc1": .., "acc5": ..}``.

    ``acc{k}`` is NaN when there are fewer than ``k`` classes: every sample would count as correct, which is
    a meaningless 1.0 (CLIP_benchmark convention). Ties go to the lower class index (stable sort), so a
    constant-score model is not credited with the right answer by luck of the sort.
    """
    s = _scores_2d(scores)
    y = _int_array(labels, "labels")
    ks = _check_ks(ks)
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"shape mismatch: scores {s.shape} vs labels {y.shape} (need N rows of scores per N labels)")
    n, c = s.shape
    if n == 0:
        raise ValueError("no samples: scores has shape (0, C); accuracy is undefined")
    bad = (y < 0) | (y >= c)
    if bad.any():
        raise ValueError(f"labels must be in [0, {c}) for scores with {c} classes, got {y[bad][:5].tolist()}")
    kmax = min(max(ks), c)
    order = np.argsort(-s, axis=1, kind="stable")[:, :kmax]
    hits = order == y[:, None]
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1), kmax)  # 0-based rank of the true class (or >= kmax)
    return {f"acc{k}": (float("nan") if k > c else float(np.mean(first_hit < k))) for k in ks}


def accuracy(scores: ArrayLike, labels: ArrayLike) -> float:
    """Top-1 accuracy as a fraction; ties go to the lower class index."""
    return topk_accuracy(scores, labels, ks=(1,))["acc1"]


def mean_per_class_accuracy(predictions: ArrayLike, labels: ArrayLike,
                            classes: Optional[ArrayLike] = None) -> float:
    """Average over classes of the per-class accuracy (recall), so that large classes do not dominate.

    This is the accuracy the ZSL benchmarks report (Xian et al. 2018). By default it averages over the
    classes present in ``labels``; with ``classes`` it averages over exactly those, ignoring samples of
    other classes. A listed class without any sample has no accuracy, so it raises rather than counting as
    0 or being skipped silently.
    """
    p = _int_array(predictions, "predictions")
    y = _int_array(labels, "labels")
    if p.shape != y.shape:
        raise ValueError(f"shape mismatch: predictions {p.shape} vs labels {y.shape}")
    if classes is None:
        cls = np.unique(y)
        if cls.size == 0:
            raise ValueError("no samples: labels is empty; mean per-class accuracy is undefined")
    else:
        cls = np.unique(_int_array(classes, "classes"))
        if cls.size == 0:
            raise ValueError("classes is empty; mean per-class accuracy is undefined")
        missing = np.setdiff1d(cls, y)
        if missing.size:
            raise ValueError(f"classes without any sample in labels (their accuracy is undefined): "
                             f"{missing[:10].tolist()}{' ...' if missing.size > 10 else ''}")
    return _mean_per_class(p, y, cls)


def _mean_per_class(p: np.ndarray, y: np.ndarray, cls: np.ndarray) -> float:
    """Mean per-class accuracy over ``cls`` (sorted, unique, all present in ``y``)."""
    keep = np.isin(y, cls)
    yk, correct = y[keep], (p[keep] == y[keep])
    idx = np.searchsorted(cls, yk)
    totals = np.bincount(idx, minlength=cls.size)
    hits = np.bincount(idx, weights=correct, minlength=cls.size)
    return float(np.mean(hits / totals))


def classification_metrics(scores: ArrayLike, labels: ArrayLike) -> Dict[str, float]:
    """CLIP_benchmark-style summary: ``acc1``, ``acc5`` (NaN under 5 classes) and ``mean_per_class_recall``."""
    out = topk_accuracy(scores, labels, ks=(1, 5))
    s = _scores_2d(scores)
    pred = np.argsort(-s, axis=1, kind="stable")[:, 0]  # same tie rule as topk_accuracy
    out["mean_per_class_recall"] = mean_per_class_accuracy(pred, labels)
    return out


# --------------------------------------------------------------------------------------------------
# generalized zero-shot learning
# --------------------------------------------------------------------------------------------------

def gzsl_metrics(predictions: ArrayLike, labels: ArrayLike, seen_classes: ArrayLike,
                 unseen_classes: ArrayLike) -> Dict[str, float]:
    """Seen/unseen mean per-class accuracy and their harmonic mean (Xian et al. 2018 GZSL protocol).

    ``predictions`` are over the joint label space (seen and unseen classes together): that is what makes
    GZSL hard, a seen-biased model loses U by predicting seen classes for unseen samples. S averages over
    the seen classes that occur in ``labels``, U likewise for unseen; H = 2SU/(S+U), 0 when S+U == 0, and
    NaN when the test set has no seen (or no unseen) samples, since then S (or U) is undefined.
    """
    p = _int_array(predictions, "predictions")
    y = _int_array(labels, "labels")
    if p.shape != y.shape:
        raise ValueError(f"shape mismatch: predictions {p.shape} vs labels {y.shape}")
    seen = np.unique(_int_array(seen_classes, "seen_classes"))
    unseen = np.unique(_int_array(unseen_classes, "unseen_classes"))
    if seen.size == 0 or unseen.size == 0:
        raise ValueError(f"seen_classes and unseen_classes must both be non-empty, got {seen.size} seen "
                         f"and {unseen.size} unseen")
    overlap = np.intersect1d(seen, unseen)
    if overlap.size:
        raise ValueError(f"seen_classes and unseen_classes must be disjoint; both contain "
                         f"{overlap[:10].tolist()}{' ...' if overlap.size > 10 else ''}")
    stray = np.setdiff1d(np.unique(y), np.concatenate([seen, unseen]))
    if stray.size:
        raise ValueError(f"labels contain classes that are neither seen nor unseen: {stray[:10].tolist()}")

    def part(classes: np.ndarray) -> float:
        present = np.intersect1d(classes, y)
        return _mean_per_class(p, y, present) if present.size else float("nan")

    s_acc, u_acc = part(seen), part(unseen)
    if math.isnan(s_acc) or math.isnan(u_acc):
        h = float("nan")
    elif s_acc + u_acc == 0:
        h = 0.0
    else:
        h = 2 * s_acc * u_acc / (s_acc + u_acc)
    return {"seen": s_acc, "unseen": u_acc, "harmonic": float(h)}


def base_new_harmonic(base_accuracy: float, new_accuracy: float) -> float:
    """CoOp/CoCoOp's H: the harmonic mean of the accuracy on base classes (judged among the base classes) and on
    new classes (among the new classes). Unlike :func:`gzsl_metrics`, each part has its own label space, so H
    measures how well a prompt transfers, not how a joint classifier is biased. 0 when both are 0."""
    for name, value in (("base_accuracy", base_accuracy), ("new_accuracy", new_accuracy)):
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
    total = float(base_accuracy) + float(new_accuracy)
    return 0.0 if total == 0 else 2.0 * float(base_accuracy) * float(new_accuracy) / total


def calibrated_stacking(scores: ArrayLike, unseen_mask: ArrayLike, gamma: float) -> Any:
    """Subtract ``gamma`` from every seen-class score (Chao et al. 2016) to counter the bias towards seen classes.

    ``unseen_mask`` is a boolean [C] vector, True for unseen classes. A torch tensor comes back as a tensor
    on the same device (gradients flow); anything else comes back as a numpy array. Sweeping ``gamma`` on
    validation data traces the seen/unseen trade-off (the AUSUC curve).
    """
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise ValueError(f"gamma must be a finite number, got {gamma!r}") from None
    if not math.isfinite(g):
        raise ValueError(f"gamma must be a finite number, got {gamma!r}")
    m = to_numpy(unseen_mask)
    if m.dtype != np.bool_:
        raise ValueError(f"unseen_mask must be a boolean [C] mask, got dtype {m.dtype}; to build one from "
                         f"class indices use `mask = np.zeros(C, bool); mask[unseen_classes] = True`")
    shape = tuple(scores.shape) if hasattr(scores, "shape") else np.shape(scores)
    if m.ndim != 1 or len(shape) < 1 or shape[-1] != m.shape[0]:
        raise ValueError(f"shape mismatch: scores {shape} vs unseen_mask {m.shape} (mask needs one entry per class)")
    if hasattr(scores, "detach") and hasattr(scores, "device"):
        import torch

        seen_t = torch.as_tensor(~m, device=scores.device).to(scores.dtype)
        return scores - g * seen_t
    s = np.asarray(scores)
    if not np.issubdtype(s.dtype, np.floating):
        s = s.astype(np.float64)
    return s - np.asarray(g, dtype=s.dtype) * (~m).astype(s.dtype)


def seen_unseen_curve(scores: ArrayLike, labels: ArrayLike, seen_classes: ArrayLike,
                      unseen_classes: ArrayLike) -> Dict[str, np.ndarray]:
    """Every point of the seen-unseen accuracy curve of calibrated stacking (Chao et al., arXiv 1605.04253).

    Subtracting ``gamma`` from the seen classes' scores (:func:`calibrated_stacking`) sends a sample to its
    best seen class when ``max_seen - max_unseen > gamma`` and to its best unseen class otherwise, so the
    curve only changes where ``gamma`` crosses one sample's margin. The points are computed exactly at
    ``-inf``, at the midpoint between each pair of consecutive distinct margins, and at ``+inf``: from
    (U, S) = (0, A_S→S), everything predicted seen, to (A_U→U, 0), everything predicted unseen. S and U are
    mean per-class accuracies over the joint label space, as in :func:`gzsl_metrics`, whose value at any
    returned ``gamma`` they equal. Returns ``{"gamma", "seen", "unseen"}`` arrays, ``gamma`` ascending.
    """
    s = _scores_2d(scores)
    y = _int_array(labels, "labels")
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"shape mismatch: scores {s.shape} vs labels {y.shape}")
    seen = np.unique(_int_array(seen_classes, "seen_classes"))
    unseen = np.unique(_int_array(unseen_classes, "unseen_classes"))
    gzsl_metrics(y, y, seen, unseen)  # the same checks on the split (disjoint, non-empty, no stray labels)
    for name, part in (("seen_classes", seen), ("unseen_classes", unseen)):
        if part.min() < 0 or part.max() >= s.shape[1]:
            raise ValueError(f"{name} must index the {s.shape[1]} score columns, got {part.tolist()[:10]}")
    is_seen_sample = np.isin(y, seen)
    if is_seen_sample.all() or not is_seen_sample.any():
        raise ValueError("the curve needs test samples of both seen and unseen classes")
    best_seen = seen[s[:, seen].argmax(1)]
    best_unseen = unseen[s[:, unseen].argmax(1)]
    margin = s[:, seen].max(1) - s[:, unseen].max(1)
    # each sample weighs 1 / (its class's count x the number of classes of its part present)
    counts = np.bincount(y, minlength=s.shape[1]).astype(np.float64)
    n_seen_present = np.count_nonzero(counts[seen])
    n_unseen_present = np.count_nonzero(counts[unseen])
    weight = 1.0 / (counts[y] * np.where(is_seen_sample, n_seen_present, n_unseen_present))
    gain_seen = np.where(is_seen_sample & (best_seen == y), weight, 0.0)     # counted while margin > gamma
    gain_unseen = np.where(~is_seen_sample & (best_unseen == y), weight, 0.0)  # counted while margin <= gamma
    order = np.argsort(margin, kind="stable")
    m = margin[order]
    # group equal margins: they switch together
    last_of_group = np.r_[m[1:] != m[:-1], True]
    cum_seen = np.cumsum(gain_seen[order])[last_of_group]
    cum_unseen = np.cumsum(gain_unseen[order])[last_of_group]
    distinct = m[last_of_group]
    total_seen = gain_seen.sum()
    gammas = np.r_[-np.inf, (distinct[:-1] + distinct[1:]) / 2, np.inf]
    seen_acc = np.r_[total_seen, total_seen - cum_seen]
    unseen_acc = np.r_[0.0, cum_unseen]
    return {"gamma": gammas, "seen": np.clip(seen_acc, 0.0, 1.0), "unseen": np.clip(unseen_acc, 0.0, 1.0)}


def ausuc(seen_accuracy: ArrayLike, unseen_accuracy: ArrayLike) -> float:
    """Area under the seen-unseen accuracy curve (Chao et al., arXiv 1605.04253): S plotted against U,
    integrated by the trapezoid rule over U in increasing order: 1 for a perfect classifier; a model whose
    margins do not separate seen from unseen samples traces the straight line, A_S→S × A_U→U / 2. The points are those of
    :func:`seen_unseen_curve` (any order); a curve must reach both axes to be complete, so the end points
    (0, max S) and (max U, 0) are added when missing."""
    s_acc = np.asarray(seen_accuracy, dtype=np.float64).ravel()
    u_acc = np.asarray(unseen_accuracy, dtype=np.float64).ravel()
    if s_acc.shape != u_acc.shape or s_acc.size == 0:
        raise ValueError(f"seen and unseen accuracies must be two equal, non-empty arrays; got {s_acc.shape} "
                         f"and {u_acc.shape}")
    if not (np.isfinite(s_acc).all() and np.isfinite(u_acc).all()) or s_acc.min() < 0 or s_acc.max() > 1 \
            or u_acc.min() < 0 or u_acc.max() > 1:
        raise ValueError("accuracies must be finite fractions in [0, 1]")
    order = np.lexsort((-s_acc, u_acc))  # U ascending; at equal U, S descending (the staircase's vertical drops)
    u, s_ = u_acc[order], s_acc[order]
    if u[0] > 0:
        u, s_ = np.r_[0.0, u], np.r_[s_[0], s_]
    if s_[-1] > 0:
        u, s_ = np.r_[u, u[-1]], np.r_[s_, 0.0]
    return float(np.sum(np.diff(u) * (s_[1:] + s_[:-1]) / 2))


def normalized_mutual_information(labels: ArrayLike, clusters: ArrayLike) -> float:
    """NMI of a clustering against the labels, ``I(Y; C) / sqrt(H(Y) H(C))`` (the geometric normalisation of
    the deep-metric-learning papers' clustering metric); 1 for a relabelling of the truth, 0 for independent
    assignments, and 1 when both are a single group (nothing to tell apart)."""
    y = _int_array(labels, "labels")
    c = _int_array(clusters, "clusters")
    if y.shape != c.shape or y.size == 0:
        raise ValueError(f"labels and clusters must be two equal, non-empty vectors; got {y.shape} and {c.shape}")
    _, yi = np.unique(y, return_inverse=True)
    _, ci = np.unique(c, return_inverse=True)
    joint = np.zeros((yi.max() + 1, ci.max() + 1))
    np.add.at(joint, (yi, ci), 1.0)
    joint /= y.size
    py, pc = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / (py[:, None] * pc[None, :])[nz])).sum())
    hy = float(-(py * np.log(py)).sum())
    hc = float(-(pc * np.log(pc)).sum())
    if hy == 0.0 and hc == 0.0:
        return 1.0
    if hy == 0.0 or hc == 0.0:
        return 0.0
    return max(0.0, mutual / math.sqrt(hy * hc))


# --------------------------------------------------------------------------------------------------
# out-of-distribution detection
# --------------------------------------------------------------------------------------------------

def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank (what scipy.stats.rankdata does by default)."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    end = np.cumsum(counts)
    avg = end - (counts - 1) / 2.0
    return avg[inverse.reshape(-1)]


def auroc(scores_in: ArrayLike, scores_out: ArrayLike) -> float:
    """Area under the ROC curve with in-distribution as the positive class and higher = more in-distribution.

    Computed exactly as the Mann-Whitney statistic P(in > out) + 0.5 P(in == out), from ranks, so it needs
    no thresholds and treats ties symmetrically (identical score distributions give 0.5).
    """
    a = _scores_1d(scores_in, "scores_in")
    b = _scores_1d(scores_out, "scores_out")
    ranks = _average_ranks(np.concatenate([a, b]))
    n_in, n_out = a.size, b.size
    u = ranks[:n_in].sum() - n_in * (n_in + 1) / 2.0
    return float(u / (n_in * n_out))


def fpr_at_tpr(scores_in: ArrayLike, scores_out: ArrayLike, tpr: float = 0.95) -> float:
    """False-positive rate at the threshold that keeps ``tpr`` of the in-distribution samples (FPR@95).

    The threshold is the highest score t with at least ``tpr`` of ``scores_in`` >= t (the ceil(tpr*n)-th
    largest in-distribution score); the result is the fraction of ``scores_out`` >= t. OOD scores tied with
    the threshold count as false positives: a detector cannot separate what it scores equally.
    """
    a = _scores_1d(scores_in, "scores_in")
    b = _scores_1d(scores_out, "scores_out")
    try:
        r = float(tpr)
    except (TypeError, ValueError):
        raise ValueError(f"tpr must be a number in (0, 1], got {tpr!r}") from None
    if not (0.0 < r <= 1.0):
        raise ValueError(f"tpr must be in (0, 1] (e.g. 0.95), got {tpr!r}")
    k = max(1, math.ceil(r * a.size - 1e-9))  # tolerance: 0.95 * 20 must mean 19, not 20
    threshold = np.sort(a)[::-1][k - 1]
    return float(np.mean(b >= threshold))


def ood_metrics(scores_in: ArrayLike, scores_out: ArrayLike) -> Dict[str, float]:
    """The two numbers OOD papers report: ``{"auroc": .., "fpr95": ..}`` (both as fractions)."""
    return {"auroc": auroc(scores_in, scores_out), "fpr95": fpr_at_tpr(scores_in, scores_out, 0.95)}


# --------------------------------------------------------------------------------------------------
# retrieval
# --------------------------------------------------------------------------------------------------

def _is_index(p: Any) -> bool:
    """A single gallery index (Python/numpy int or a 0-d array/tensor), as opposed to a collection of them."""
    return isinstance(p, (int, np.integer)) or (hasattr(p, "shape") and len(p.shape) == 0)

def recall_at_k(similarity: ArrayLike, positives: Union[ArrayLike, Sequence[Iterable[int]]],
                ks: Iterable[int] = (1, 5, 10)) -> Dict[str, float]:
    """Fraction of queries with at least one positive among their ``k`` most similar gallery items.

    ``positives`` is an int array [Q] (one gallery index per query, e.g. image->caption with one caption)
    or a list of Q iterables of gallery indices (e.g. image->text on COCO with 5 captions per image).
    ``R@k`` is NaN when the gallery has fewer than ``k`` items, as in ``topk_accuracy``.
    """
    sim = _scores_2d(similarity, "similarity")
    ks = _check_ks(ks)
    q, g = sim.shape
    if q == 0:
        raise ValueError("no queries: similarity has shape (0, G); recall is undefined")
    pos_mask = np.zeros((q, g), dtype=bool)
    if isinstance(positives, (list, tuple)) and not all(_is_index(p) for p in positives):
        if len(positives) != q:
            raise ValueError(f"shape mismatch: similarity {sim.shape} has {q} queries but positives has "
                             f"{len(positives)} entries")
        for i, pos in enumerate(positives):
            pos = to_numpy(pos) if hasattr(pos, "detach") else pos
            idx = _int_array([pos] if _is_index(pos) else list(pos), f"positives[{i}]")
            if idx.size == 0:
                raise ValueError(f"positives[{i}] is empty: query {i} has no positive, so its recall is undefined")
            bad = (idx < 0) | (idx >= g)
            if bad.any():
                raise ValueError(f"positives[{i}] has gallery indices outside [0, {g}): {idx[bad].tolist()}")
            pos_mask[i, idx] = True
    else:
        idx = _int_array(positives, "positives")
        if idx.shape[0] != q:
            raise ValueError(f"shape mismatch: similarity {sim.shape} vs positives {idx.shape} (one per query)")
        bad = (idx < 0) | (idx >= g)
        if bad.any():
            raise ValueError(f"positives has gallery indices outside [0, {g}): {idx[bad][:5].tolist()}")
        pos_mask[np.arange(q), idx] = True
    kmax = min(max(ks), g)
    order = np.argsort(-sim, axis=1, kind="stable")[:, :kmax]
    hits = np.take_along_axis(pos_mask, order, axis=1)
    first_hit = np.where(hits.any(axis=1), hits.argmax(axis=1), kmax)
    return {f"R@{k}": (float("nan") if k > g else float(np.mean(first_hit < k))) for k in ks}


# --------------------------------------------------------------------------------------------------
# uncertainty
# --------------------------------------------------------------------------------------------------

def _check_resamples(n_resamples: int) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    return int(n_resamples)


def _percentile_interval(stats: np.ndarray, level: float) -> Tuple[float, float]:
    alpha = 1.0 - level
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_ci(statistic: Callable[..., float], *arrays: ArrayLike, n_resamples: int = 1000,
                 level: float = 0.95, seed: int = 0) -> Tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*arrays)``, resampling rows of all arrays jointly.

    Joint resampling (the same row indices for every array) keeps e.g. each prediction with its label.
    The resamples come from ``np.random.default_rng(seed)``, so a seed always gives the same interval;
    ``bootstrap_mean_ci(v, seed=s)`` equals ``bootstrap_ci(np.mean, v, n_resamples=2000, seed=s)``.
    A statistic that is not finite on some resample (e.g. a class drawn zero times) raises.
    """
    level = _check_level(level)
    n_resamples = _check_resamples(n_resamples)
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample")
    data = [to_numpy(a) for a in arrays]
    for i, a in enumerate(data):
        if a.ndim == 0:
            raise ValueError(f"array {i} is a scalar (shape ()); bootstrap resamples rows of arrays")
    lengths = [a.shape[0] for a in data]
    if len(set(lengths)) != 1:
        raise ValueError(f"shape mismatch: arrays must have the same number of rows, got shapes "
                         f"{[a.shape for a in data]}")
    n = lengths[0]
    if n == 0:
        raise ValueError("arrays are empty; nothing to resample")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples)
    for b in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        stats[b] = float(statistic(*(a[idx] for a in data)))
    bad = ~np.isfinite(stats)
    if bad.any():
        raise ValueError(f"statistic was not finite on {int(bad.sum())} of {n_resamples} resamples "
                         f"(first value {stats[bad][0]!r}); the interval would be meaningless")
    return _percentile_interval(stats, level)


def bootstrap_mean_ci(values: ArrayLike, n_resamples: int = 2000, level: float = 0.95,
                      seed: int = 0) -> Tuple[float, float]:
    """Percentile bootstrap interval of a mean, vectorised (pass the 0/1 correctness vector for accuracy).

    Draws the same resamples as ``bootstrap_ci`` with the same seed, in blocks of resamples to bound
    memory, so the two agree exactly; this one is just much faster.
    """
    level = _check_level(level)
    n_resamples = _check_resamples(n_resamples)
    v = _scores_1d(values, "values")
    if not np.all(np.isfinite(v)):
        raise ValueError("values contain infinite entries; their mean is not finite")
    n = v.size
    rng = np.random.default_rng(seed)
    block = max(1, (1 << 22) // n)  # ~32 MiB of int64 indices per block
    stats = np.empty(n_resamples)
    for start in range(0, n_resamples, block):
        stop = min(start + block, n_resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        stats[start:stop] = v[idx].mean(axis=1)
    return _percentile_interval(stats, level)


def student_t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t distribution (scipy's ``t.ppf``); ``student_t_ppf(0.975, 2)`` = 4.303, the
    multiplier of a 95% interval from 3 seeds."""
    from scipy.stats import t as student_t

    q = _check_level(q, "q")
    try:
        nu = float(df)
    except (TypeError, ValueError):
        raise ValueError(f"df must be a positive number, got {df!r}") from None
    if not (nu > 0 and math.isfinite(nu)):
        raise ValueError(f"df must be a positive finite number, got {df!r}")
    return float(student_t.ppf(q, nu))


def across_seeds(values: Sequence[float], level: float = 0.95) -> Dict[str, float]:
    """Mean of seed-level results with a Student-t interval: ``{"mean", "low", "high", "half_width", "n"}``.

    Seeds are few (3-5), so the t multiplier (4.30 for 3 seeds at 95%) rather than 1.96 is what makes the
    interval honest. A single value has no across-seed interval: ``low``, ``high`` and ``half_width`` are
    NaN (never a zero-width interval that would pass for certainty); judge a single run over its images
    instead (:func:`zslab.verdicts.paired_gain`).
    """
    level = _check_level(level)
    v = _scores_1d(values, "values")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"values must be finite, got {v.tolist()}")
    n = int(v.size)
    mean = float(np.mean(v))
    if n == 1:
        return {"mean": mean, "low": math.nan, "high": math.nan, "half_width": math.nan, "n": 1}
    sem = float(np.std(v, ddof=1)) / math.sqrt(n)
    half = student_t_ppf(1.0 - (1.0 - level) / 2.0, n - 1) * sem
    return {"mean": mean, "low": mean - half, "high": mean + half, "half_width": half, "n": n}
