"""Deep metric learning for unseen classes: retrieval (Recall@k), clustering (NMI) and few-shot naming of novel
classes in an embedding trained on seen classes only.

An embedding (a two-layer head on frozen image features, unit output) is trained on the seen classes with one
loss of :data:`METRIC_LOSSES`:

* ``contrastive`` (Hadsell et al. 2006): same-class pairs pulled together, other pairs pushed beyond a margin;
* ``triplet`` (Schroff et al. 2015): every valid triplet of the batch, margin 0.2 on cosine distance;
* ``normalised softmax`` (the hyperspherical embedding of arXiv 2102.03243, after Zhai & Wu's NormSoftmax):
  a softmax over learnable unit class proxies at a temperature, no pairs or triplets sampled.

**Energy confusion** (ECAML, Chen & Deng, AAAI 2019, arXiv 1901.07169) is a regulariser added to any of them:
the hidden layer's unit features of *different* classes are pulled together (their mean squared distance is
minimised with weight ``confusion``), against the metric loss that pushes the output apart, so the embedding
cannot rest on the few directions that separate the seen classes best.

Batches are class-balanced (P classes × K images), every model gets the same number of steps, and the test is on
the unseen classes' images only: Recall@k (another image of the same class among the k nearest), NMI of k-means
with as many clusters as classes, and novel-class accuracy by nearest class mean of ``shots`` labelled images per
class, classes added without any re-optimisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics import normalized_mutual_information, recall_at_k
from ..registry import Registry

HIDDEN = 256
EMBED_DIM = 64
MARGIN_TRIPLET = 0.2
MARGIN_CONTRASTIVE = 0.5
TEMPERATURE = 0.05
STEPS = 600
CLASSES_PER_BATCH = 16
IMAGES_PER_CLASS = 8
LEARNING_RATE = 1e-3


class EmbeddingHead(torch.nn.Module):
    """Frozen features → hidden (the layer energy confusion acts on) → unit embedding."""

    def __init__(self, dim: int, n_classes: int):
        super().__init__()
        self.hidden = torch.nn.Sequential(torch.nn.Linear(dim, HIDDEN), torch.nn.ReLU())
        self.out = torch.nn.Linear(HIDDEN, EMBED_DIM)
        self.proxies = torch.nn.Parameter(torch.randn(n_classes, EMBED_DIM) / EMBED_DIM ** 0.5)

    def forward(self, x: torch.Tensor):
        h = self.hidden(x)
        return h, F.normalize(self.out(h), dim=1)


def _pair_masks(y: torch.Tensor):
    same = y[:, None] == y[None, :]
    eye = torch.eye(len(y), dtype=torch.bool)
    return same & ~eye, ~same


def contrastive_loss(z: torch.Tensor, y: torch.Tensor, model: EmbeddingHead) -> torch.Tensor:
    d = torch.cdist(z, z)
    pos, neg = _pair_masks(y)
    return d[pos].pow(2).mean() + (MARGIN_CONTRASTIVE - d[neg]).clamp_min(0).pow(2).mean()


def triplet_loss(z: torch.Tensor, y: torch.Tensor, model: EmbeddingHead) -> torch.Tensor:
    d = 1 - z @ z.T
    pos, neg = _pair_masks(y)
    loss = (d[:, :, None] - d[:, None, :] + MARGIN_TRIPLET).clamp_min(0)  # [anchor, positive, negative]
    valid = pos[:, :, None] & neg[:, None, :]
    active = (loss > 0) & valid
    return loss[active].sum() / active.sum().clamp_min(1)


def normalised_softmax_loss(z: torch.Tensor, y: torch.Tensor, model: EmbeddingHead) -> torch.Tensor:
    return F.cross_entropy(z @ F.normalize(model.proxies, dim=1).T / TEMPERATURE, y)


METRIC_LOSSES: Registry[Callable[[torch.Tensor, torch.Tensor, EmbeddingHead], torch.Tensor]] = Registry("metric loss")
METRIC_LOSSES.add("contrastive", contrastive_loss)
METRIC_LOSSES.add("triplet", triplet_loss)
METRIC_LOSSES.add("normalised softmax", normalised_softmax_loss)


def energy_confusion(h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ECAML's term: the mean squared distance between unit hidden features of different classes (minimising
    it confuses the representation about which seen class is which)."""
    u = F.normalize(h, dim=1)
    _, neg = _pair_masks(y)
    return torch.cdist(u, u).pow(2)[neg].mean()


def balanced_batches(labels: np.ndarray, steps: int, seed: int, classes_per_batch: int = CLASSES_PER_BATCH,
                     images_per_class: int = IMAGES_PER_CLASS) -> List[np.ndarray]:
    """``steps`` batches of P classes × K images (with replacement within a class that has fewer than K)."""
    rng = np.random.default_rng([seed, 31])
    classes = np.unique(labels)
    members = {c: np.flatnonzero(labels == c) for c in classes}
    p = min(classes_per_batch, len(classes))
    batches = []
    for _ in range(steps):
        chosen = rng.choice(classes, size=p, replace=False)
        batches.append(np.concatenate([rng.choice(members[c], size=images_per_class,
                                                  replace=len(members[c]) < images_per_class) for c in chosen]))
    return batches


def train_embedding(x: torch.Tensor, labels: np.ndarray, loss: str, seed: int, confusion: float = 0.0,
                    steps: int = STEPS) -> Callable[[torch.Tensor], torch.Tensor]:
    """Train an :class:`EmbeddingHead` on seen-class features with ``loss`` (+ ``confusion`` × energy confusion);
    returns the map from features to unit embeddings."""
    objective = METRIC_LOSSES.get(loss)
    if confusion < 0:
        raise ValueError(f"confusion must be >= 0, got {confusion}")
    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = ((x - mean) / std).float()
    classes, y = np.unique(labels, return_inverse=True)
    y = torch.as_tensor(y)
    model = EmbeddingHead(z.shape[1], len(classes))
    optimiser = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    for batch in balanced_batches(y.numpy(), steps, seed):
        b = torch.as_tensor(batch)
        h, e = model(z[b])
        total = objective(e, y[b], model)
        if confusion > 0:
            total = total + confusion * energy_confusion(h, y[b])
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
    model.eval()

    @torch.no_grad()
    def embed(features: torch.Tensor) -> torch.Tensor:
        return model(((features - mean) / std).float())[1]

    return embed


def kmeans(x: torch.Tensor, k: int, seed: int, iterations: int = 50) -> np.ndarray:
    """Cluster assignments of k-means (k-means++ seeding, seeded) on ``x``."""
    rng = np.random.default_rng([seed, 37])
    x = x.double()
    centres = [x[rng.integers(len(x))]]
    for _ in range(1, k):
        d = torch.cdist(x, torch.stack(centres)).min(1).values.pow(2).numpy()
        centres.append(x[rng.choice(len(x), p=d / d.sum()) if d.sum() > 0 else rng.integers(len(x))])
    c = torch.stack(centres)
    for _ in range(iterations):
        assign = torch.cdist(x, c).argmin(1)
        new = torch.stack([x[assign == j].mean(0) if (assign == j).any() else c[j] for j in range(k)])
        if torch.allclose(new, c):
            break
        c = new
    return torch.cdist(x, c).argmin(1).numpy()


@dataclass
class UnseenScores:
    recall: Dict[int, float]
    nmi: float
    novel_accuracy: float


def evaluate_unseen(embedding: torch.Tensor, labels: np.ndarray, ks: Sequence[int], shots: int,
                    seed: int) -> UnseenScores:
    """Recall@k and NMI over all unseen images, and the accuracy of naming the other images by the nearest mean
    of ``shots`` labelled images per unseen class."""
    sim = (embedding @ embedding.T).double()
    sim.fill_diagonal_(-1e9)  # an image does not retrieve itself
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    recall = recall_at_k(sim.numpy(), [np.flatnonzero(r) for r in same], ks)
    classes = np.unique(labels)
    nmi = normalized_mutual_information(labels, kmeans(embedding, len(classes), seed))
    rng = np.random.default_rng([seed, 41])
    support = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=shots, replace=False) for c in classes])
    query = np.setdiff1d(np.arange(len(labels)), support)
    means = torch.stack([F.normalize(embedding[torch.as_tensor(support[labels[support] == c])].mean(0), dim=0)
                         for c in classes])
    predicted = classes[(embedding[torch.as_tensor(query)] @ means.T).argmax(1).numpy()]
    return UnseenScores({int(k): recall[f"R@{k}"] for k in ks}, nmi, float((predicted == labels[query]).mean()))


#: Bump when the head, the losses or the training recipe change: every cached embedding then misses.
EMBEDDING_VERSION = 1


def cached_embedding(problem, x: torch.Tensor, loss: str, seed: int, confusion: float, steps: int) -> torch.Tensor:
    """:func:`train_embedding` on the problem's seen-class training images, applied to ``x``; cached under the
    content of both, the loss, the confusion weight, the steps, the seed and the recipe's constants."""
    from ..cache import TensorCache, tensor_digest
    from .gzsl import problem_digest

    description = {"kind": "metric embedding", "version": EMBEDDING_VERSION, "problem": problem_digest(problem),
                   "x": tensor_digest({"x": x}), "loss": loss, "seed": int(seed), "confusion": float(confusion),
                   "steps": int(steps), "recipe": [HIDDEN, EMBED_DIM, MARGIN_TRIPLET, MARGIN_CONTRASTIVE, TEMPERATURE,
                                                   CLASSES_PER_BATCH, IMAGES_PER_CLASS, LEARNING_RATE]}

    def compute() -> Dict[str, torch.Tensor]:
        embed = train_embedding(problem.x_train, problem.y_train, loss, seed, confusion, steps)
        return {"embedding": embed(x)}

    return TensorCache().get_or_compute(description, compute)["embedding"]


def metric_learning_rows(datasets, features, unseen, arms: Dict[str, Sequence], seeds, n_train, n_test,
                         ks: Sequence[int] = (1, 2, 4, 8), shots: int = 5, steps: int = STEPS,
                         device: str = "cpu") -> List[Dict]:
    """Every arm (``name -> (loss, confusion weight)``) on every dataset and seed, trained on the seen classes
    and tested on the unseen classes' test images; also the frozen features themselves (``frozen features``).
    Recorded as ``recall_at_<k>``, ``nmi`` and ``novel_accuracy`` labelled ``arm``."""
    from ..records import record
    from .gzsl import dataset_problems

    for loss, weight in arms.values():
        METRIC_LOSSES.get(loss)
    rows = []
    for dataset, seed, problem in dataset_problems(datasets, features, unseen, seeds, n_train, n_test, device=device):
        keep = np.isin(problem.y_test, problem.unseen)
        x_unseen, y_unseen = problem.x_test[torch.as_tensor(keep)], problem.y_test[keep]
        embeddings = {"frozen features": F.normalize(x_unseen.float(), dim=1)}
        for name, (loss, weight) in arms.items():
            embeddings[name] = cached_embedding(problem, x_unseen, loss, seed, float(weight), steps)
        for name, e in embeddings.items():
            scores = evaluate_unseen(e, y_unseen, ks, shots, seed)
            row = {"dataset": dataset, "seed": seed, "arm": name, "nmi": scores.nmi,
                   "novel_accuracy": scores.novel_accuracy, **{f"recall_at_{k}": v for k, v in scores.recall.items()}}
            for metric, value in row.items():
                if metric not in ("dataset", "seed", "arm"):
                    record(metric, value, seed=seed, dataset=dataset, arm=name)
            rows.append(row)
    return rows
