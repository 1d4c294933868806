"""Relative representations (Moschella et al., arXiv 2209.15430): a sample is represented by its cosine
similarities to a fixed set of anchor samples, encoded by the same encoder.

Two encoders trained alike from different seeds embed the data in latent spaces that differ by (roughly) an
angle-preserving transformation, so absolute coordinates do not transfer between them while the angles to
*corresponding* anchors do. That enables zero-shot model stitching: a decoder trained on one encoder's
relative representations reads another encoder's without any training. The anchors must be the same
samples on both sides; :func:`stitching_scores` also runs the control with unmatched anchors.
"""
from __future__ import annotations

from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F

from ..train.probe import fit_linear_probe


def relative_representation(features: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` cosine similarities of each row of ``features`` [N, D] to each anchor [K, D]."""
    if features.shape[1] != anchors.shape[1]:
        raise ValueError(f"features have {features.shape[1]} dimensions, anchors {anchors.shape[1]}")
    return F.normalize(features.float(), dim=-1) @ F.normalize(anchors.float(), dim=-1).T


def matched_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine between row i of ``a`` and row i of ``b`` (the same sample in two spaces)."""
    return float(F.cosine_similarity(a.float(), b.float(), dim=-1).mean())


#: Arms of the stitching experiment: (representation, decoder's encoder = test encoder?, anchors matched?).
STITCHING_ARMS = {
    "absolute, same encoder": ("absolute", True, True),
    "absolute, stitched": ("absolute", False, True),
    "relative, same encoder": ("relative", True, True),
    "relative, stitched": ("relative", False, True),
    "relative, stitched, unmatched anchors": ("relative", False, False),
}


def stitching_scores(train_a: torch.Tensor, train_labels: torch.Tensor, test_a: torch.Tensor,
                     test_b: torch.Tensor, test_labels: torch.Tensor, anchors_a: torch.Tensor,
                     anchors_b: torch.Tensor, other_anchors_b: torch.Tensor, n_classes: int,
                     l2: float = 1e-3) -> Dict[str, np.ndarray]:
    """0/1 correctness per test image for each of :data:`STITCHING_ARMS`.

    A decoder (linear probe) is fitted on encoder A's training features, absolute or relative to A's
    anchors. "Same encoder" decodes A's test features; "stitched" decodes encoder B's features of the same
    test images, relative to B's encodings of the *same* anchor images (``anchors_b``) or, in the control,
    of other images (``other_anchors_b``)."""
    probes = {"absolute": fit_linear_probe(train_a, train_labels, n_classes, l2),
              "relative": fit_linear_probe(relative_representation(train_a, anchors_a), train_labels, n_classes, l2)}
    out = {}
    for arm, (kind, same, matched) in STITCHING_ARMS.items():
        test = test_a if same else test_b
        if kind == "relative":
            anchors = anchors_a if same else (anchors_b if matched else other_anchors_b)
            test = relative_representation(test, anchors)
        out[arm] = (probes[kind].predict(test) == test_labels).numpy().astype(np.float64)
    return out
