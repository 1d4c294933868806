"""Hubness in cross-modal retrieval and querybank normalisation (QB-Norm: Bogolin et al., *Cross Modal
Retrieval with Querybank Normalisation*, CVPR 2022, arXiv 2112.12777).

In a high-dimensional joint space a few gallery items (*hubs*) are among the nearest neighbours of very many
queries, and so are retrieved for queries they do not match. Hubness is measured by the *k-occurrence*
``N_k(g)`` (how many queries have ``g`` among their ``k`` nearest) and the skewness of its distribution over
the gallery. QB-Norm estimates each gallery item's pull from a **bank of queries** drawn like the real ones
(e.g. training captions) and divides it out:

* inverted softmax (IS): ``s'(q, g) = exp(β s(q, g)) / Σ_b exp(β s(b, g))``, for every query;
* dynamic inverted softmax (DIS, QB-Norm's rule): IS only for queries whose top-1 gallery item is in the
  *activation set* (items that are top-1 for some bank query), the raw similarities otherwise, so that
  queries far from the bank are left alone;
* Balance Act's dual bank normalisation (DBNorm, arXiv 2310.11612): a **gallery bank** beside the query bank,
  dividing each gallery item's score by its pull on both (dual IS, and its dynamic variant).

Everything works on similarity matrices ``[queries, gallery]`` (e.g. caption features @ image features.T).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict

import numpy as np
import torch

from ..registry import Registry

if TYPE_CHECKING:
    import pandas as pd


def _as_tensor(x) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float64)
    if t.ndim != 2:
        raise ValueError(f"similarities must be [queries, gallery], got shape {tuple(t.shape)}")
    return t


def k_occurrence(similarity, k: int = 10) -> np.ndarray:
    """``N_k`` per gallery item ``[G]``: how many queries rank it among their ``k`` most similar."""
    sim = _as_tensor(similarity)
    if not 1 <= k <= sim.shape[1]:
        raise ValueError(f"k must be in 1..{sim.shape[1]} (the gallery size), got {k}")
    top = sim.topk(k, dim=1).indices.reshape(-1)
    return np.bincount(top.numpy(), minlength=sim.shape[1]).astype(np.float64)


def skewness(values) -> float:
    """Sample skewness ``E[(x − μ)³] / σ³`` (0 for a symmetric distribution; hubness makes ``N_k`` right-skewed)."""
    x = np.asarray(values, dtype=np.float64)
    sd = x.std()
    if x.size < 3 or sd == 0:
        return 0.0
    return float(np.mean((x - x.mean()) ** 3) / sd ** 3)


def inverted_softmax(similarity, bank_similarity, beta: float = 20.0) -> torch.Tensor:
    """IS in log space: ``β s(q, g) − logsumexp_b β s(b, g)`` (the same ranking per query as the ratio)."""
    sim, bank = _as_tensor(similarity), _as_tensor(bank_similarity)
    if bank.shape[1] != sim.shape[1]:
        raise ValueError(f"bank similarities cover {bank.shape[1]} gallery items, the queries {sim.shape[1]}")
    return beta * sim - torch.logsumexp(beta * bank, dim=0, keepdim=True)


def dynamic_inverted_softmax(similarity, bank_similarity, beta: float = 20.0) -> torch.Tensor:
    """QB-Norm's DIS: the IS scores for queries whose raw top-1 is in the bank's activation set, raw
    similarities for the others (rows are ranked separately, so their scales need not agree)."""
    sim, bank = _as_tensor(similarity), _as_tensor(bank_similarity)
    normalised = inverted_softmax(sim, bank, beta)
    activation = torch.zeros(sim.shape[1], dtype=torch.bool)
    activation[bank.argmax(dim=1)] = True
    use = activation[sim.argmax(dim=1)]
    return torch.where(use[:, None], normalised, sim)


def dual_inverted_softmax(similarity, bank_similarity, gallery_bank_similarity, beta: float = 20.0) -> torch.Tensor:
    """Balance Act's dual inverted softmax (DBNorm, arXiv 2310.11612), in log space: the IS score divided once more
    by each gallery item's pull on a **gallery bank** (items of the gallery's own modality):
    ``2β s(q, g) − logsumexp_b β s(b, g) − logsumexp_h β s(h, g)``, with ``b`` the query bank and ``h`` the
    gallery bank (``gallery_bank_similarity`` [H, G], same-modality similarities). Why: a hub is close to many
    items of both modalities, so either bank reveals it; the gallery bank needs no query data at all."""
    sim, gallery_bank = _as_tensor(similarity), _as_tensor(gallery_bank_similarity)
    if gallery_bank.shape[1] != sim.shape[1]:
        raise ValueError(f"gallery-bank similarities cover {gallery_bank.shape[1]} gallery items, the queries "
                         f"{sim.shape[1]}")
    return inverted_softmax(sim, bank_similarity, beta) + beta * sim - torch.logsumexp(beta * gallery_bank, dim=0,
                                                                                       keepdim=True)


def dual_dynamic_inverted_softmax(similarity, bank_similarity, gallery_bank_similarity,
                                  beta: float = 20.0) -> torch.Tensor:
    """DBNorm's dynamic variant: the dual IS scores for queries whose raw top-1 is in the activation set (items
    that are top-1 for some query-bank or gallery-bank item), raw similarities for the others."""
    sim = _as_tensor(similarity)
    bank, gallery_bank = _as_tensor(bank_similarity), _as_tensor(gallery_bank_similarity)
    activation = torch.zeros(sim.shape[1], dtype=torch.bool)
    activation[bank.argmax(dim=1)] = True
    activation[gallery_bank.argmax(dim=1)] = True
    use = activation[sim.argmax(dim=1)]
    return torch.where(use[:, None], dual_inverted_softmax(sim, bank, gallery_bank, beta), sim)


def _with_gallery_bank(name: str, normalise: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    def scorer(sim, bank, gallery_bank, beta):
        if gallery_bank is None:
            raise ValueError(f"{name} needs a gallery bank: pass gallery_bank_similarity")
        return normalise(sim, bank, gallery_bank, beta)
    return scorer


#: Retrieval scorers: ``(similarity [Q, G], query-bank similarity [B, G], gallery-bank similarity [H, G] or
#: None, beta) -> scores [Q, G]``.
NORMALISERS: Registry[Callable[..., torch.Tensor]] = Registry("similarity normaliser")
NORMALISERS.add("raw", lambda sim, bank, gallery_bank, beta: _as_tensor(sim))
NORMALISERS.add("IS", lambda sim, bank, gallery_bank, beta: inverted_softmax(sim, bank, beta))
NORMALISERS.add("QB-Norm (DIS)", lambda sim, bank, gallery_bank, beta: dynamic_inverted_softmax(sim, bank, beta))
NORMALISERS.add("DBNorm (DualIS)", _with_gallery_bank("DBNorm (DualIS)", dual_inverted_softmax))
NORMALISERS.add("DBNorm (DualDIS)", _with_gallery_bank("DBNorm (DualDIS)", dual_dynamic_inverted_softmax))


def retrieval_scores(similarity, bank_similarity, beta: float = 20.0, k: int = 10,
                     methods=("raw", "IS", "QB-Norm (DIS)"),
                     gallery_bank_similarity=None) -> Dict[str, Dict[str, object]]:
    """Per method: ``hit_at_1`` (0/1 per query: is its own pair, the gallery item with the query's index,
    ranked first), ``hit_at_5``, and the skewness of ``N_k`` over the gallery. The DBNorm methods also need
    ``gallery_bank_similarity`` (gallery-bank items against the gallery, same modality)."""
    sim = _as_tensor(similarity)
    if sim.shape[0] != sim.shape[1]:
        raise ValueError(f"paired retrieval needs one gallery item per query, got {tuple(sim.shape)}")
    truth = torch.arange(sim.shape[0])
    out = {}
    for name in methods:
        scores = NORMALISERS.get(name)(sim, bank_similarity, gallery_bank_similarity, beta)
        rank = (scores > scores[truth, truth][:, None]).sum(dim=1)   # items scored above the pair
        out[name] = {"hit_at_1": (rank < 1).numpy().astype(np.float64),
                     "hit_at_5": (rank < 5).numpy().astype(np.float64),
                     "skewness": skewness(k_occurrence(scores, k))}
    return out


def _bank_from_pairs(split_of: Callable[[str], str]):
    def build(dataset, split, seed, n_bank, pairs, batch_size):
        from ..evaluation import encode_pair_set

        # the test pairs' model, another draw of pairs (seed stream apart from the test pairs')
        bank = encode_pair_set(pairs.model, dataset, split_of(split), n_bank, 10_000 + seed, batch_size)
        return {"captions": bank.captions, "images": bank.images}
    return build


def _random_bank(dataset, split, seed, n_bank, pairs, batch_size):
    g = torch.Generator().manual_seed(seed)
    dim = pairs.images.shape[1]
    return {side: torch.nn.functional.normalize(torch.randn(n_bank, dim, generator=g), dim=-1)
            for side in ("captions", "images")}


#: Query banks: ``(dataset, split, seed, n_bank, pairs, batch_size) -> {"captions": [B, D], "images": [B, D]}``
#: (unit rows; captions are the bank for text queries), encoded by the model of the test ``pairs``.
BANKS: Registry[Callable[..., Dict[str, torch.Tensor]]] = Registry("query bank")
BANKS.add("same distribution", _bank_from_pairs(lambda split: split))   # other pairs of the test split
BANKS.add("seen classes", _bank_from_pairs(lambda split: "seen"))        # pairs of the training compositions
BANKS.add("random vectors", _random_bank)                                # the control: no query structure


def bank_features(kind: str, *args) -> Dict[str, torch.Tensor]:
    """The query bank ``kind`` (see :data:`BANKS`), drawn with a seed stream apart from the test pairs."""
    return BANKS.get(kind)(*args)


def label_arms(rows: "pd.DataFrame") -> "pd.DataFrame":
    """Rows (``seed``, ``direction``, ``bank``, ``method``, ...) with an ``arm`` column for figures: ``raw`` once
    (raw similarities do not depend on the bank), ``<method>, <bank>`` for the normalised ones."""
    arm = rows["method"].where(rows["method"] == "raw", rows["method"] + ", " + rows["bank"])
    return rows.assign(arm=arm).drop_duplicates(["seed", "direction", "arm"])
