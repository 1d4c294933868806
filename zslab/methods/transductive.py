"""Transductive zero-shot and few-shot classification: using the unlabelled test images themselves.

* **Label propagation from class prototypes** (after Fu, Hospedales, Xiang and Gong, *Transductive Multi-view
  Zero-Shot Learning*, TPAMI 2015, arXiv 1501.04560): an inductive zero-shot model's scores on the unlabelled
  unseen-class images are the initial labels; they spread over a k-nearest-neighbour graph of those images built
  from several *views* (the image features and the model's projection of them into the side-information space),
  the graphs of the views summed (the paper's heterogeneous multi-view hypergraph, simplified to a graph). Label
  spreading (Zhou et al. 2004): ``F = (I − α S)⁻¹ Y₀`` with ``S = D^{-1/2} W D^{-1/2}``.
* **Laplacian-regularised K-means** (Ziko, Boudiaf, Dolz, Granger and Ben Ayed, arXiv 2106.09516, after the
  authors' SLK-few-shot code): with K labelled support shots per novel class, the unlabelled queries are
  clustered around the class means, the assignment updated by the bound step
  ``z_p ← softmax(−‖x_p − m_k‖² / τ + λ Σ_q w_pq z_q)`` (``w`` a kNN affinity), the means re-estimated from
  support and soft queries; ``λ = 0`` is plain K-means seeded by the supports; the inductive baseline is the
  nearest support mean (SimpleShot).

The control for both: the same computation on a *shuffled* graph (each image's neighbours drawn at random), which
keeps the degree of smoothing but not the test set's cluster structure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F

#: Neighbours per image in the graphs, label spreading's α, SLK's λ and the soft-assignment temperature.
KNN = 10
ALPHA = 0.9
LAPLACIAN_WEIGHT = 0.7
ITERATIONS = 20


def knn_graph(features: torch.Tensor, k: int = KNN, shuffled: bool = False, seed: int = 0) -> torch.Tensor:
    """A symmetric 0/1 affinity ``[N, N]``: each image linked to its ``k`` nearest neighbours by cosine
    similarity (no self-loops); ``shuffled`` links each image to ``k`` random others instead (the control)."""
    n = len(features)
    if not 1 <= k < n:
        raise ValueError(f"k must be between 1 and {n - 1} (the other images), got {k}")
    if shuffled:
        generator = torch.Generator().manual_seed(seed)
        scores = torch.rand(n, n, generator=generator)
    else:
        x = F.normalize(features.double(), dim=-1)
        scores = x @ x.T
    scores.fill_diagonal_(-float("inf"))
    neighbours = scores.topk(k, dim=1).indices
    w = torch.zeros(n, n, dtype=torch.float64)
    w.scatter_(1, neighbours, 1.0)
    return ((w + w.T) > 0).double()


def label_spreading(graph: torch.Tensor, initial: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """``(I − α S)⁻¹ Y₀`` for the normalised graph ``S``: labels ``initial`` [N, C] smoothed over the graph."""
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    degree = graph.sum(1).clamp_min(1e-12)
    s = graph / degree.sqrt()[:, None] / degree.sqrt()[None, :]
    eye = torch.eye(len(graph), dtype=torch.float64)
    return torch.linalg.solve(eye - alpha * s, initial.double())


def multi_view_propagation(views: Dict[str, torch.Tensor], initial: torch.Tensor, k: int = KNN,
                           alpha: float = ALPHA, shuffled: bool = False, seed: int = 0) -> torch.Tensor:
    """Label spreading over the sum of every view's kNN graph (each view: one representation of the same
    images)."""
    if not views:
        raise ValueError("need at least one view")
    graph = sum(knn_graph(v, k, shuffled, seed + i) for i, v in enumerate(views.values()))
    return label_spreading(graph, initial, alpha)


@dataclass
class ClusteringResult:
    assignments: torch.Tensor  # [Q, C] soft assignment of each query
    means: torch.Tensor        # [C, D]


def laplacian_kmeans(support: torch.Tensor, support_labels: torch.Tensor, queries: torch.Tensor, n_classes: int,
                     laplacian_weight: float = LAPLACIAN_WEIGHT, k: int = KNN, temperature: Optional[float] = None,
                     iterations: int = ITERATIONS, shuffled: bool = False, seed: int = 0) -> ClusteringResult:
    """Transductive few-shot classification by clustering the queries around the support means, with the
    Laplacian term pulling neighbours (kNN over the queries) to the same class; ``laplacian_weight = 0`` is
    K-means seeded by the supports. Features are L2-normalised; ``temperature`` (default: the mean squared
    distance of the queries to their nearest initial mean) scales the distances inside the softmax."""
    xs = F.normalize(support.double(), dim=-1)
    xq = F.normalize(queries.double(), dim=-1)
    one_hot = F.one_hot(support_labels, n_classes).double()
    counts = one_hot.sum(0)
    if int(counts.min()) < 1:
        raise ValueError("every class needs at least one support shot")
    means = one_hot.T @ xs / counts[:, None]
    graph = knn_graph(xq, min(k, len(xq) - 1), shuffled, seed) if laplacian_weight > 0 else None
    if temperature is None:
        temperature = float(torch.cdist(xq, means).pow(2).min(1).values.mean().clamp_min(1e-6))
    z = torch.softmax(-torch.cdist(xq, means).pow(2) / temperature, dim=1)
    for _ in range(iterations):
        logits = -torch.cdist(xq, means).pow(2) / temperature
        if graph is not None:
            logits = logits + laplacian_weight * graph @ z
        z = torch.softmax(logits, dim=1)
        means = (one_hot.T @ xs + z.T @ xq) / (counts + z.sum(0))[:, None]
    return ClusteringResult(z.float(), means.float())


def nearest_mean(support: torch.Tensor, support_labels: torch.Tensor, queries: torch.Tensor,
                 n_classes: int) -> torch.Tensor:
    """The inductive baseline (SimpleShot): each query to its nearest support mean, L2-normalised features;
    returns scores [Q, C] (negative squared distances)."""
    xs = F.normalize(support.double(), dim=-1)
    one_hot = F.one_hot(support_labels, n_classes).double()
    means = one_hot.T @ xs / one_hot.sum(0).clamp_min(1)[:, None]
    return -torch.cdist(F.normalize(queries.double(), dim=-1), means).pow(2).float()


# --------------------------------------------------------------------------------------------------------
# The notebook's loops
# --------------------------------------------------------------------------------------------------------
PROPAGATION_ARMS = ("inductive", "propagation, image view", "propagation, image + semantic views",
                    "propagation, shuffled graph")
CLUSTERING_ARMS = ("nearest mean (inductive)", "K-means", "Laplacian K-means", "Laplacian K-means, shuffled graph")


def transductive_zsl_rows(datasets, features, unseen, zsl_model: str, seeds, n_train, n_test, k: int = KNN,
                          alpha: float = ALPHA, device: str = "cpu"):
    """Per dataset and seed: the inductive attribute model's accuracy on the unseen-class test images (among
    the unseen classes, A_U→U) and after label propagation over those images (image view; image + the model's
    semantic scores as a second view; a shuffled graph as the control). Recorded as ``zsl_unseen`` by ``arm``."""
    from ..metrics import mean_per_class_accuracy
    from ..records import record
    from .gzsl import dataset_problems, evaluate_model

    rows = []
    for dataset, seed, problem in dataset_problems(datasets, features, unseen, seeds, n_train, n_test, device=device):
        keep = torch.as_tensor(np.isin(problem.y_test, problem.unseen))
        x = problem.x_test[keep]
        y = problem.y_test[keep.numpy()]
        scores = evaluate_model(zsl_model, problem, seed).scores[keep][:, torch.as_tensor(problem.unseen)]
        initial = F.one_hot(scores.argmax(1), len(problem.unseen)).double()
        semantic = (scores - scores.mean(1, keepdim=True)) / scores.std(1, keepdim=True).clamp_min(1e-12)
        kk = min(k, len(x) - 1)
        arms = {"inductive": scores,
                "propagation, image view": multi_view_propagation({"image": x}, initial, kk, alpha),
                "propagation, image + semantic views": multi_view_propagation(
                    {"image": x, "semantic": semantic}, initial, kk, alpha),
                "propagation, shuffled graph": multi_view_propagation(
                    {"image": x, "semantic": semantic}, initial, kk, alpha, shuffled=True, seed=seed)}
        for arm, s in arms.items():
            accuracy = mean_per_class_accuracy(problem.unseen[s.argmax(1).numpy()], y)
            record("zsl_unseen", accuracy, dataset=dataset, seed=seed, arm=arm, model=zsl_model)
            rows.append({"dataset": dataset, "seed": seed, "arm": arm, "zsl_unseen": accuracy})
    return rows


#: Bump when a clustering arm or its constants change: every cached result then misses.
TRANSDUCTIVE_VERSION = 1


def clustering_arms(support: torch.Tensor, labels: torch.Tensor, queries: torch.Tensor, n_classes: int,
                    laplacian_weight: float, k: int, seed: int) -> Dict[str, torch.Tensor]:
    """The four few-shot arms' query scores (:data:`CLUSTERING_ARMS`), cached under the content of the shots and
    queries and every constant, so a warm rerun does not cluster again."""
    from ..cache import TensorCache, tensor_digest

    description = {"kind": "transductive few-shot arms", "version": TRANSDUCTIVE_VERSION,
                   "data": tensor_digest({"support": support, "labels": labels, "queries": queries}),
                   "n_classes": int(n_classes), "laplacian_weight": float(laplacian_weight), "k": int(k),
                   "seed": int(seed), "iterations": ITERATIONS}

    def compute() -> Dict[str, torch.Tensor]:
        return {"nearest mean (inductive)": nearest_mean(support, labels, queries, n_classes),
                "K-means": laplacian_kmeans(support, labels, queries, n_classes, 0.0).assignments,
                "Laplacian K-means": laplacian_kmeans(support, labels, queries, n_classes, laplacian_weight,
                                                      k).assignments,
                "Laplacian K-means, shuffled graph": laplacian_kmeans(support, labels, queries, n_classes,
                                                                      laplacian_weight, k, shuffled=True,
                                                                      seed=seed).assignments}

    found = TensorCache().get_or_compute(description, compute)
    return {arm: found[arm] for arm in CLUSTERING_ARMS}


def transductive_fewshot_rows(models, pretrained, datasets, classes, seeds, shots, n_test: int,
                              laplacian_weight: float = LAPLACIAN_WEIGHT, k: int = KNN, device: str = "cpu"):
    """Per dataset, seed and shot count: top-1 of the queries (the test split of the novel classes, all at once)
    by the nearest support mean, K-means seeded by the supports, Laplacian K-means and its shuffled-graph
    control. Recorded as ``top1`` by ``arm`` and ``shots``."""
    from ..fewshot import few_shot_data
    from ..records import record

    rows = []
    for dataset in datasets:
        for seed in seeds:
            data = few_shot_data(models[dataset], pretrained.get(dataset) if isinstance(pretrained, dict) else pretrained,
                                 dataset, seed, max(shots), 0, n_test, classes=classes.get(dataset) or None,
                                 device=device)
            c = len(data.classes)
            for n_shots in shots:
                support, labels = data.shots(n_shots)
                arms = clustering_arms(support, labels, data.test_features, c, laplacian_weight, k, seed)
                for arm, s in arms.items():
                    top1 = float((s.argmax(1) == data.test_labels).double().mean())
                    record("top1", top1, dataset=dataset, seed=seed, arm=arm, shots=n_shots, n_classes=c)
                    rows.append({"dataset": dataset, "seed": seed, "shots": n_shots, "arm": arm, "top1": top1,
                                 "n_classes": c})
    return rows
