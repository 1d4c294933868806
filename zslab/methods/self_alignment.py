"""Realistic zero-shot classification with a broad vocabulary, and self structural semantic alignment (S3A,
arXiv 2308.12960), in a reduced form.

The test images' classes are unknown: only a large vocabulary of candidate names is given (here the world's
composition names plus distractor names made from GloVe neighbours of its shape words). Plain zero-shot picks
the best name of the whole vocabulary per image. S3A's loop, as implemented here:

1. **cluster** the image features (k-means, ``k`` = the number of test classes, assumed known);
2. **vote**: every image votes for its current top-1 vocabulary name, counted per cluster;
3. **realign**: one name per cluster by a bipartite matching of clusters to names maximising the votes
   (the structural alignment: no two clusters take the same name);
4. **self-train** on the pseudo-labels (each image gets its cluster's name): a linear map on the image
   features, started at the identity, trained so that the mapped features pick their pseudo-label among the
   aligned names' text embeddings, and anchored to the identity;
5. repeat on the mapped features.

The final model is the mapped image features with the whole vocabulary as the classifier. S3A's language-model
step (asking an LLM for better names near the voted ones) and its fine-tuning of the image encoder itself
are left out: the map on frozen features stands in for the encoder's self-training.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..cache import TensorCache, tensor_digest


def world_compositions(world: Dict) -> List[str]:
    """Every composition name of the model's world (seen and unseen): a vocabulary whose every word the offline
    model met in training, in which the test classes (unseen compositions) are a small part."""
    from ..world import load_world_spec
    from ..world.corpus import world_setting

    spec = load_world_spec()
    return sorted(spec.class_name(c) for c in world_setting(world, spec)[1].compositions("all"))


def glove_vocabulary(world: Dict, neighbours_per_word: int = 6, min_length: int = 4) -> List[str]:
    """The world's composition names plus distractors: each zsworld name ``<color> <pattern> <shape>`` with its shape
    word replaced by GloVe neighbours of any world shape (words of ≥ ``min_length`` letters that are neither world
    words nor forms of a world shape such as plurals), over every color and pattern of the world; sorted, test
    names included. The offline model never met most distractor words (their token embeddings are untrained),
    so they act as noise rather than as confusable names."""
    from ..semantics import GloVe
    from ..world import load_world_spec

    spec = load_world_spec()
    glove = GloVe.load()
    world_words = set(spec.shapes) | set(spec.color_names) | set(spec.patterns)
    stems = {s[:5] for s in spec.shapes}        # "circles", "triangular": the same concept, not a distractor
    distractors = sorted({w for s in spec.shapes for w, _ in glove.nearest(s, neighbours_per_word)
                          if len(w) >= min_length and w.isalpha() and w not in world_words and w[:5] not in stems})
    names = {f"{c} {p} {s}" for c in spec.color_names for p in spec.patterns for s in [*spec.shapes, *distractors]}
    return sorted(names | set(world_compositions(world)))


#: Broad vocabularies by name: ``(the offline model's world mapping) -> names``.
VOCABULARIES = {"world compositions": world_compositions, "world + GloVe neighbours": glove_vocabulary}


def vocabulary(kind: str, world: Dict) -> List[str]:
    from ..errors import check_choice

    return VOCABULARIES[check_choice("vocabulary", kind, tuple(VOCABULARIES))](world)


def kmeans(x: torch.Tensor, k: int, n_iter: int = 50, seed: int = 0) -> torch.Tensor:
    """Cluster labels [N] of unit rows ``x`` by spherical k-means (k-means++ seeding, cosine similarity)."""
    if not 1 <= k <= x.shape[0]:
        raise ValueError(f"k must be in 1..{x.shape[0]}, got {k}")
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(x.float(), dim=-1)
    centres = [x[torch.randint(len(x), (1,), generator=g)].squeeze(0)]
    for _ in range(1, k):
        d = (1 - x @ torch.stack(centres).T).clamp_min(0).min(dim=1).values
        p = d / d.sum() if d.sum() > 0 else torch.full_like(d, 1 / len(d))
        centres.append(x[torch.multinomial(p, 1, generator=g)].squeeze(0))
    c = torch.stack(centres)
    labels = torch.full((len(x),), -1, dtype=torch.long)
    for _ in range(n_iter):
        new = (x @ c.T).argmax(dim=1)
        if torch.equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = x[labels == j]
            if len(members):
                c[j] = F.normalize(members.mean(0), dim=0)
    return labels


def cluster_votes(clusters: torch.Tensor, predictions: torch.Tensor, k: int, n_names: int) -> torch.Tensor:
    """``votes[j, v]``: how many images of cluster ``j`` have vocabulary name ``v`` as their top-1."""
    votes = torch.zeros(k, n_names)
    votes.index_put_((clusters, predictions), torch.ones(len(clusters)), accumulate=True)
    return votes


def realign(votes: torch.Tensor, matching: bool = True) -> torch.Tensor:
    """One vocabulary index per cluster: the bipartite matching that maximises the total votes (distinct
    names), or with ``matching=False`` each cluster's plurality name (duplicates allowed: the control)."""
    if not matching:
        return votes.argmax(dim=1)
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-votes.numpy())
    out = torch.empty(votes.shape[0], dtype=torch.long)
    out[torch.as_tensor(rows)] = torch.as_tensor(cols)
    return out


def self_train_map(features: torch.Tensor, pseudo: torch.Tensor, name_embeddings: torch.Tensor, scale: float,
                   steps: int = 100, lr: float = 0.01, anchor: float = 1.0, seed: int = 0) -> torch.Tensor:
    """A [D, D] map ``M`` (from the identity) so that ``normalize(f M)`` picks pseudo-label ``pseudo`` among
    ``name_embeddings`` [K, D] (cross-entropy at the model's logit ``scale``), with ``anchor`` · ‖M − I‖²."""
    torch.manual_seed(seed)
    d = features.shape[1]
    m = torch.eye(d, requires_grad=True)
    opt = torch.optim.Adam([m], lr=lr)
    f, w = F.normalize(features.float(), dim=-1), F.normalize(name_embeddings.float(), dim=-1)
    for _ in range(steps):
        logits = scale * F.normalize(f @ m, dim=-1) @ w.T
        loss = F.cross_entropy(logits, pseudo) + anchor * ((m - torch.eye(d)) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.detach()


@dataclass
class AlignmentResult:
    predictions: torch.Tensor          # [N] vocabulary index per image from the final (mapped) features
    cluster_names: List[torch.Tensor]  # per iteration: the vocabulary index given to each cluster
    pseudo_accuracy: List[float]       # per iteration: the pseudo-labels' accuracy (needs the true names)


#: The variants a notebook compares: (cluster the features?, realign by matching?).
VARIANTS: Dict[str, Tuple[bool, bool]] = {
    "S3A (cluster, vote, realign, self-train)": (True, True),
    "without realignment (plurality vote)": (True, False),
    "without clusters (self-train on zero-shot labels)": (False, False),
}


def self_structural_alignment(features: torch.Tensor, vocab_embeddings: torch.Tensor, k: int, scale: float,
                              iterations: int = 3, cluster: bool = True, matching: bool = True, seed: int = 0,
                              true_vocab_index: torch.Tensor = None) -> AlignmentResult:
    """The loop of the module docstring. ``vocab_embeddings`` [V, D] are the text embeddings of the vocabulary.
    Without ``cluster`` every image is its own cluster (pseudo-labels = zero-shot top-1: the no-structure
    control). ``true_vocab_index`` (optional) only scores the pseudo-labels for the record."""
    w = F.normalize(vocab_embeddings.float(), dim=-1)
    f = F.normalize(features.float(), dim=-1)
    mapped = f
    names_per_iter, pseudo_acc = [], []
    for it in range(iterations):
        top1 = (mapped @ w.T).argmax(dim=1)
        if cluster:
            clusters = kmeans(mapped, k, seed=seed + it)
            names = realign(cluster_votes(clusters, top1, k, len(w)), matching=matching)
            pseudo_vocab = names[clusters]
        else:
            pseudo_vocab = top1
            names = torch.unique(top1)
        chosen = torch.unique(pseudo_vocab)
        local = torch.searchsorted(chosen, pseudo_vocab)
        m = self_train_map(f, local, w[chosen], scale, seed=seed + it)
        mapped = F.normalize(f @ m, dim=-1)
        names_per_iter.append(names)
        if true_vocab_index is not None:
            pseudo_acc.append(float((pseudo_vocab == true_vocab_index).float().mean()))
    return AlignmentResult((mapped @ w.T).argmax(dim=1), names_per_iter, pseudo_acc)


def cached_self_structural_alignment(features: torch.Tensor, vocab_embeddings: torch.Tensor, k: int, scale: float,
                                     iterations: int = 3, cluster: bool = True, matching: bool = True, seed: int = 0,
                                     true_vocab_index: torch.Tensor = None,
                                     cache: Optional[TensorCache] = None) -> AlignmentResult:
    """:func:`self_structural_alignment`, stored in the cache under a digest of its inputs and arguments: the
    loop (k-means and a self-trained map per round) is ~5 s per call on one core, the bulk of a warm rerun of
    the S3A notebook, and its result depends on nothing else."""
    inputs = {"features": features.float().contiguous(), "vocab": vocab_embeddings.float().contiguous()}
    if true_vocab_index is not None:
        inputs["truth"] = true_vocab_index.long().contiguous()
    description = {"kind": "self_structural_alignment", "inputs": tensor_digest(inputs), "k": k,
                   "scale": float(scale), "iterations": iterations, "cluster": cluster, "matching": matching,
                   "seed": seed}

    def compute() -> Dict[str, torch.Tensor]:
        result = self_structural_alignment(features, vocab_embeddings, k, scale, iterations, cluster, matching,
                                           seed, true_vocab_index)
        return {"predictions": result.predictions, "pseudo_accuracy": torch.tensor(result.pseudo_accuracy, dtype=torch.float64),
                **{f"cluster_names_{i}": names for i, names in enumerate(result.cluster_names)}}

    stored = (cache or TensorCache()).get_or_compute(description, compute)
    names = [stored[f"cluster_names_{i}"] for i in range(iterations)]
    return AlignmentResult(stored["predictions"], names, stored["pseudo_accuracy"].tolist())
