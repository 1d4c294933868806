"""Word-bias mitigation for zero-shot classifiers by reweighting class probabilities
(Liusie et al., "Mitigating Word Bias in Zero-shot Prompt-based Classifiers", arXiv 2309.04992).

A zero-shot classifier's label words and prompts give some classes a head start. Prior matching finds
one weight per class, with no labels, such that the reweighted classifier's average predicted
distribution over the unlabelled test inputs equals a target prior (uniform by default). The
zero-resource variant estimates the bias from content-free ("null") inputs instead of the test set.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


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


def prior_matching_weights(probs, target_prior: Optional[np.ndarray] = None, n_iter: int = 2000,
                           tol: float = 1e-10) -> np.ndarray:
    """Class weights ``w`` (mean 1) with ``mean_x reweight(p, w)[x] == target_prior``.

    Fixed-point iteration ``w_k ← w_k · π_k / mean_x p'(k|x)``; it converges for strictly positive
    probabilities (the same scaling as one side of Sinkhorn's algorithm). No labels are used.
    """
    p = _as_probs(probs)
    k = p.shape[1]
    prior = np.full(k, 1.0 / k) if target_prior is None else np.asarray(target_prior, dtype=np.float64)
    if prior.shape != (k,) or (prior <= 0).any() or not np.isclose(prior.sum(), 1.0):
        raise ValueError(f"target_prior must be {k} positive numbers summing to 1, got {prior}")
    w = np.ones(k)
    for _ in range(n_iter):
        marginal = reweight(p, w).mean(0)
        update = prior / np.maximum(marginal, 1e-300)
        w = w * update
        w = w / w.mean()
        if np.abs(update - 1).max() < tol:
            break
    return w


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
