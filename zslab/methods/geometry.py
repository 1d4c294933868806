"""The geometry of a joint embedding space: the contrastive gap, alignment, uniformity and tolerance.

* gap (Liang et al., arXiv 2203.02053; "contrastive gap", arXiv 2405.18570): the distance between the
  centroids of the image and the text embeddings of the same pairs;
* alignment and uniformity (Wang and Isola, arXiv 2005.10242): ``E‖x_i − y_i‖²`` over pairs, and
  ``log E exp(−2‖z_i − z_j‖²)`` over distinct embeddings (lower is more uniform), here of each modality
  and of both together;
* tolerance (Wang and Liu, arXiv 2012.09740): the mean cosine between embeddings of *different* samples of
  the *same* class; contrastive losses at a low temperature push them apart (uniform but intolerant).
"""
from __future__ import annotations

from typing import Dict

import torch
import torch.nn.functional as F

from ..train.losses import alignment, uniformity


def centroid_gap(image: torch.Tensor, text: torch.Tensor) -> float:
    """‖mean(image) − mean(text)‖ of unit rows."""
    return float((image.float().mean(0) - text.float().mean(0)).norm())


def tolerance(features: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean cosine over distinct pairs of rows with the same label."""
    f = F.normalize(features.float(), dim=-1)
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    if not bool(same.any()):
        raise ValueError("tolerance needs at least two samples of one class")
    return float((f @ f.T)[same].mean())


def pair_geometry(image: torch.Tensor, text: torch.Tensor) -> Dict[str, float]:
    """Gap, alignment and uniformity (images, texts, both) of paired unit rows ``image[i]``, ``text[i]``."""
    if image.shape != text.shape:
        raise ValueError(f"paired embeddings differ in shape: {tuple(image.shape)} vs {tuple(text.shape)}")
    x, y = F.normalize(image.float(), dim=-1), F.normalize(text.float(), dim=-1)
    with torch.no_grad():
        return {"gap": centroid_gap(x, y), "alignment": float(alignment(x, y)),
                "uniformity_image": float(uniformity(x)), "uniformity_text": float(uniformity(y)),
                "uniformity_joint": float(uniformity(torch.cat([x, y])))}
