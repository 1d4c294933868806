"""Preserving semantic relations (Annadani & Biswas, CVPR 2018, arXiv 1803.03049) in a visual-space ZSL model.

Class side information is mapped *into the image feature space* by a small network ``g`` (a class prototype per
class), and an image is scored by its cosine to each prototype. Trained on seen classes' images by
cross-entropy alone, the prototypes only need to separate the seen classes; the paper adds a loss that makes
the prototypes keep the *relations* of the side information: the cosine between two classes' prototypes should
match how similar the two classes are semantically. Here the target is the cosine similarity of the classes'
centred side-information rows (:func:`relation_targets`; ``label_space`` distances give the same structure for
other side information), over every pair of classes, seen and unseen: the unseen classes' side information is
known in inductive ZSL, and this is what places their prototypes. LsrGAN (arXiv 2007.09549) puts the same
relation regulariser on generated features.

Two entries of :data:`zslab.methods.gzsl.ZSL_MODELS`: ``visual-space prototypes`` (relation weight 0, the
control) and ``relation-preserving`` (weight from the validation grid).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .gzsl import ZSL_MODELS, Scorer, ZSLModel, ZSLProblem, standardised_side

HIDDEN = 256
TEMPERATURE = 0.1
EPOCHS = 40
BATCH_SIZE = 128


def relation_targets(side: np.ndarray) -> torch.Tensor:
    """``[C, C]`` cosine similarities of the centred side-information rows: the class structure to keep."""
    s = np.asarray(side, dtype=np.float64)
    s = s - s.mean(0, keepdims=True)
    s = s / np.maximum(np.linalg.norm(s, axis=1, keepdims=True), 1e-12)
    return torch.as_tensor(s @ s.T).float()


def relation_loss(prototypes: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared gap between the prototypes' pairwise cosines and the targets, off the diagonal."""
    p = F.normalize(prototypes, dim=1)
    gap = (p @ p.T - targets).pow(2)
    off = ~torch.eye(len(targets), dtype=torch.bool)
    return gap[off].mean()


def fit_visual_prototypes(problem: ZSLProblem, seed: int = 0, relation_weight: float = 0.0, lr: float = 1e-3,
                          epochs: int = EPOCHS) -> Scorer:
    """Map side information to prototypes in the (unit) image-feature space; cross-entropy over seen classes at
    temperature 0.1, plus ``relation_weight`` × :func:`relation_loss` over all classes."""
    if relation_weight < 0:
        raise ValueError(f"relation_weight must be >= 0, got {relation_weight}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    side = standardised_side(problem.side)
    x = F.normalize(problem.x_train.float(), dim=1)
    seen = torch.as_tensor(problem.seen)
    y = problem.seen_positions()
    targets = relation_targets(problem.side)
    g = torch.nn.Sequential(torch.nn.Linear(side.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, x.shape[1]))
    optimiser = torch.optim.Adam(g.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            prototypes = g(side)
            logits = x[batch] @ F.normalize(prototypes[seen], dim=1).T / TEMPERATURE
            loss = F.cross_entropy(logits, y[batch])
            if relation_weight > 0:
                loss = loss + relation_weight * relation_loss(prototypes, targets)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    with torch.no_grad():
        prototypes = F.normalize(g(side), dim=1)

    def score(features: torch.Tensor) -> torch.Tensor:
        return F.normalize(features.float(), dim=1) @ prototypes.T

    score.prototypes = prototypes  # type: ignore[attr-defined]  (read by relation_rows)
    return score


ZSL_MODELS.add("visual-space prototypes", ZSLModel(lambda p, seed=0, **h: fit_visual_prototypes(p, seed, 0.0, **h),
                                                   {"lr": (1e-3,)}))
ZSL_MODELS.add("relation-preserving", ZSLModel(fit_visual_prototypes, {"relation_weight": (0.3, 1.0, 3.0)}))


def relation_rows(datasets, features, unseen, models, seeds, n_train, n_test, device: str = "cpu"):
    """Every model on every dataset and seed (:func:`zslab.methods.gzsl.evaluate_model`): A_U→U, calibrated
    S/U/H, AUSUC, and the relation gap of its class prototypes (:func:`relation_loss` against
    :func:`relation_targets`; recorded as ``relation_gap``); a model without prototypes is measured on its classes'
    score profiles over the test images instead."""
    from ..records import record
    from .gzsl import dataset_problems, evaluate_model

    rows = []
    for dataset, seed, problem in dataset_problems(datasets, features, unseen, seeds, n_train, n_test, device=device):
        targets = relation_targets(problem.side)
        for name in models:
            result = evaluate_model(name, problem, seed)
            prototypes = result.prototypes
            gap = float(relation_loss(prototypes if prototypes is not None else _prototypes_from_scores(result.scores),
                                      targets))
            labels = {"dataset": dataset, "model": name}
            values = {"zsl_unseen": result.zsl_unseen, **result.calibrated, "ausuc": result.ausuc,
                      "relation_gap": gap}
            for metric, value in values.items():
                record(metric if metric in ("zsl_unseen", "ausuc", "relation_gap") else f"gzsl_{metric}", value,
                       seed=seed, **labels)
            rows.append({**labels, "seed": seed, **values, "hyper": dict(result.hyper)})
    return rows


def _prototypes_from_scores(scores: torch.Tensor) -> torch.Tensor:
    """A model-agnostic view of the class geometry: each class's column of test scores (how every test image
    rates it), centred; two classes whose prototypes are alike are rated alike."""
    s = scores.float()
    return (s - s.mean(0, keepdim=True)).T
