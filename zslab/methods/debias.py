"""Word-bias mitigation for zero-shot classifiers by reweighting class probabilities
(Liusie et al., "Mitigating Word Bias in Zero-shot Prompt-based Classifiers", arXiv 2309.04992).

A zero-shot classifier's label words and prompts give some classes a head start. Prior matching finds
one weight per class, with no labels, such that the reweighted classifier's average predicted
distribution over the unlabelled test inputs equals a target prior (uniform by default). The
zero-resource variant estimates the bias from content-free ("null") inputs instead of the test set.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import pandas as pd


def _as_probs(probs) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must be [N, K] with K >= 2, got shape {p.shape}")
    if (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-6):
        raise ValueError("each row of probabilities must be non-negative and sum to 1")
    return p


def softmax(logits, axis: int = -1) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def reweight(probs, weights) -> np.ndarray:
    """``p'(k|x) ∝ w_k p(k|x)``: the reweighted class probabilities."""
    p = _as_probs(probs) * np.asarray(weights, dtype=np.float64)[None, :]
    return p / p.sum(1, keepdims=True)


def prior_matching_weights(probs, target_prior: Optional[np.ndarray] = None, n_iter: int = 500,
                           tol: float = 1e-10) -> np.ndarray:
    """Class weights ``w`` (mean 1) with ``mean_x reweight(p, w)[x] == target_prior``. No labels are used.

    The log-weights ``b`` solve a convex problem: minimise ``mean_x logsumexp(log p_x + b) − π·b``, whose
    gradient is exactly (mean reweighted prediction − π). Damped Newton steps (Levenberg–Marquardt: the
    damping grows until a step lowers the objective) reach ``tol`` in a few dozen steps when some classes
    are almost never predicted, where the plain fixed-point iteration (``w ← w · π / marginal``, one side
    of Sinkhorn) needs thousands; near one-hot predictions make the Hessian near singular, which the
    damping handles.
    """
    p = _as_probs(probs)
    k = p.shape[1]
    prior = np.full(k, 1.0 / k) if target_prior is None else np.asarray(target_prior, dtype=np.float64)
    if prior.shape != (k,) or (prior <= 0).any() or not np.isclose(prior.sum(), 1.0):
        raise ValueError(f"target_prior must be {k} positive numbers summing to 1, got {prior}")
    s = np.log(np.maximum(p, 1e-300))

    def objective(b: np.ndarray):
        z = s + b
        top = z.max(1, keepdims=True)
        e = np.exp(z - top)
        total = e.sum(1, keepdims=True)
        q = e / total
        return float(np.mean(np.log(total[:, 0]) + top[:, 0]) - prior @ b), q

    b = np.zeros(k)
    value, q = objective(b)
    damping = 1e-8
    for _ in range(n_iter):
        marginal = q.mean(0)
        grad = marginal - prior
        if np.abs(grad).max() < tol:
            break
        hess = np.diag(marginal) - q.T @ q / len(q)   # PSD, near-singular for near one-hot predictions
        while True:                                   # Levenberg-Marquardt: damp until the step descends
            step = np.linalg.solve(hess + damping * np.eye(k), grad)
            new_value, new_q = objective(b - step)
            if new_value < value:
                damping = max(damping / 4, 1e-12)
                break
            damping *= 8
            if damping > 1e12:
                break
        if new_value >= value:                        # no step descends: at the optimum up to rounding
            break
        b, value, q = b - step, new_value, new_q
    w = np.exp(b - b.max())
    return w / w.mean()


def null_input_weights(null_probs) -> np.ndarray:
    """Zero-resource weights: the inverse of the mean prediction on content-free inputs (mean 1)."""
    p = np.atleast_2d(np.asarray(null_probs, dtype=np.float64))
    p = _as_probs(p)
    w = 1.0 / np.maximum(p.mean(0), 1e-300)
    return w / w.mean()


def prior_imbalance(probs) -> float:
    """KL divergence (nats) of the mean predicted distribution from uniform: 0 when unbiased on average."""
    m = _as_probs(probs).mean(0)
    return max(0.0, float(np.sum(m * np.log(np.maximum(m, 1e-300) * len(m)))))  # >= 0; clamp rounding


def optimal_weights(probs, labels, n_sweeps: int = 5, prior_matched: Optional[np.ndarray] = None) -> np.ndarray:
    """The oracle of the paper's comparison: class weights that maximise accuracy *using the test labels*
    (an upper bound for reweighting, not a method), by exact coordinate ascent on log-weights, started
    from no reweighting and from prior matching; the better of the two is kept.

    For one class k at a time, every input's prediction flips between k and its best other class at a
    threshold of k's log-weight; sorting those thresholds gives the accuracy-maximising weight exactly.
    Coordinate ascent can stop at a local optimum, so this is a lower estimate of the true oracle.
    """
    p = _as_probs(probs)
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must be [N] = [{p.shape[0]}], got shape {y.shape}")
    s = np.log(np.maximum(p, 1e-300))
    best_w, best_acc = None, -1.0
    pm = prior_matching_weights(p) if prior_matched is None else np.asarray(prior_matched, dtype=np.float64)
    for start in (np.zeros(p.shape[1]), np.log(pm)):
        w = _coordinate_ascent(s, y, start.copy(), n_sweeps)
        acc = float(((s + np.log(w)).argmax(1) == y).mean())
        if acc > best_acc:
            best_w, best_acc = w, acc
    return best_w


def _coordinate_ascent(s: np.ndarray, y: np.ndarray, b: np.ndarray, n_sweeps: int) -> np.ndarray:
    for _ in range(n_sweeps):
        changed = False
        z = s + b
        for k in range(s.shape[1]):
            z[:, k] = -np.inf                            # the best class other than k, for every input
            other_pred = z.argmax(1)
            best_other = z[np.arange(len(z)), other_pred]
            thresholds = best_other - s[:, k]            # k is predicted iff b_k > threshold
            gain_if_k = (y == k).astype(float) - (other_pred == y).astype(float)
            order = np.argsort(thresholds)
            t_sorted, g_sorted = thresholds[order], gain_if_k[order]
            # b_k just above t_sorted[j] predicts k for inputs 0..j: accuracy change = cumulative gain
            cum = np.concatenate([[0.0], np.cumsum(g_sorted)])
            j = int(np.argmax(cum))
            if j == 0:
                new = t_sorted[0] - 1.0
            elif j == len(t_sorted):
                new = t_sorted[-1] + 1.0
            else:
                new = 0.5 * (t_sorted[j - 1] + t_sorted[j])
            current = int(np.searchsorted(t_sorted, b[k], side="left"))
            if cum[j] > cum[current] + 1e-12:
                b[k], changed = new, True
            z[:, k] = s[:, k] + b[k]
        if not changed:
            break
    w = np.exp(b - b.max())
    return w / w.mean()


#: The paper's comparison: the raw classifier, the unsupervised fix, its zero-resource variant, the oracle.
REWEIGHTINGS = ("raw", "prior matching", "null input", "oracle")


def reweighting_weights(probs, null_probs, labels) -> Dict[str, np.ndarray]:
    """The class weights of each of :data:`REWEIGHTINGS` for one classifier.

    ``null_probs`` are the classifier's probabilities on content-free input(s) (the zero-resource
    estimate of its bias); ``labels`` are used by the oracle only (an upper bound, not a method).
    """
    p = _as_probs(probs)
    matched = prior_matching_weights(p)
    return {"raw": np.ones(p.shape[1]), "prior matching": matched, "null input": null_input_weights(null_probs),
            "oracle": optimal_weights(p, labels, prior_matched=matched)}


def cached_reweighting_weights(probs, null_probs, labels, cache=None) -> Dict[str, np.ndarray]:
    """:func:`reweighting_weights`, read from the tensor cache when these exact inputs were seen (prior
    matching's 500 iterations and the oracle's sweeps were most of the word-bias notebook's warm rerun)."""
    import hashlib

    import torch

    from ..cache import TensorCache

    arrays = [np.ascontiguousarray(np.asarray(a)) for a in (probs, null_probs, labels)]
    digest = hashlib.sha256()
    for a in arrays:
        digest.update(f"{a.dtype}{a.shape}".encode())
        digest.update(a.tobytes())
    description = {"kind": "class reweighting weights", "methods": list(REWEIGHTINGS), "inputs": digest.hexdigest(),
                   "dtypes": "as computed"}  # each method's own dtype is kept: the reweighted scores do not move
    found = (cache or TensorCache()).get_or_compute(
        description, lambda: {m: torch.from_numpy(np.ascontiguousarray(w)) for m, w in reweighting_weights(*arrays).items()})
    return {m: found[m].numpy() for m in REWEIGHTINGS}


def _encode_once(encode_text, texts: List[str]):
    """``encode_text`` with every text of ``texts`` encoded in one batch up front, then looked up (one
    sentence-encoder call instead of one per classifier)."""
    import torch

    unique = sorted(set(texts))
    table = dict(zip(unique, encode_text(unique)))

    def lookup(batch):
        return torch.stack([table[t] for t in batch])

    return lookup


@dataclass
class WordBiasResult:
    """One input set under one regime: per-input correctness of each method averaged over the regime's
    classifiers, the mean prior KL of each method, and one row per classifier (accuracy per method)."""

    correct: Dict[str, np.ndarray]
    prior_kl: Dict[str, float]
    per_setting: pd.DataFrame
    n_classifiers: int


def word_bias_experiment(inputs, words: Dict[str, List[str]], vary_words: bool, n_word_settings: int = 6,
                         scale: float = 100.0, seed: int = 0) -> WordBiasResult:
    """The paper's protocol on one set of inputs (a :class:`zslab.tasks.ZeroShotInputs`).

    ``vary_words``: one classifier per template × label-word assignment (one template per run, one word
    per class); otherwise the control, a single classifier from the class names and the whole template
    ensemble. Each classifier is scored raw, prior-matched, null-input reweighted and by the oracle.
    """
    from ..semantics.label_words import label_word_settings
    from ..zeroshot import build_classifier, fill_templates

    if vary_words:
        assignments = label_word_settings(words, n_word_settings, seed)
        classifiers = [{c: fill_templates([a[c]], [t])[0] for c in inputs.classes}
                       for t in inputs.templates for a in assignments]
    else:
        classifiers = [list(inputs.templates)]
    encode = _encode_once(inputs.encode_text, [text for prompts in classifiers
                                               for per_class in fill_templates(inputs.classes, prompts)
                                               for text in per_class])
    sums = {m: np.zeros(len(inputs.labels)) for m in REWEIGHTINGS}
    kl = {m: 0.0 for m in REWEIGHTINGS}
    rows = []
    for prompts in classifiers:
        w = build_classifier(encode, inputs.classes, prompts)
        probs = softmax(scale * (inputs.features @ w.T).numpy())
        null_probs = softmax(scale * (inputs.null_features @ w.T).numpy())
        row = {}
        for m, wm in cached_reweighting_weights(probs, null_probs, inputs.labels).items():
            reweighted = reweight(probs, wm)
            correct = (reweighted.argmax(1) == inputs.labels).astype(np.float64)
            sums[m] += correct
            kl[m] += prior_imbalance(reweighted)
            row[m] = float(correct.mean())
        rows.append(row)
    n = len(classifiers)
    return WordBiasResult({m: v / n for m, v in sums.items()}, {m: v / n for m, v in kl.items()}, pd.DataFrame(rows), n)
