"""OGEN (Zang, Goh, Susskind and Huang, ICLR 2024, arXiv 2401.15914): regularise prompt learning with image
features synthesised for unknown classes from their names.

Prompt learning on base classes tends to overfit them, and the learned context then names new (unknown) classes
worse than the hand-made prompt. OGEN adds a small class-conditional feature generator: given a class's text
embedding (the query) and its k nearest classes' text embeddings (keys) and image features (values), an
attention block extrapolates an image feature for the class, ``normalize(ffn(q) + attention(q, K, V))``. It is
trained on base classes by leaving one out (synthesise a base class's feature from its neighbours and match the
real one), and then synthesises features for the unknown classes from their names alone; classifying those
against the unknown classes' prompts regularises the shared context jointly with the base-class loss.

This module follows the authors' released trainer (apple/ml-ogen, ``trainers/ogen.py``) on frozen image
features: k = 3 neighbours (by the base classes' mean image features; for unknown classes by text similarity),
neighbour features drawn as ``mean + u · std`` with ``u ~ U(0, 1)``, the loss
``D · (mse(x̂_unknown, x) + mse(x̂_known, x_known)) + 0.25 · ce(real) + 0.25 · ce(x̂_unknown) + 0.25 / k ·
ce(x̂_known) + 0.5 / k · ce(x̂_new)`` and only the reconstruction terms for the first 20% of the epochs. The
paper's adaptive self-distillation is not in that released trainer and not here.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Sequence

import torch
import torch.nn.functional as F

from .prompt_learning import ClassPrompts, CoOpConfig, encode_prompt_embeddings, frozen


class FeatureGenerator(torch.nn.Module):
    """``normalize(ffn(q) + attention(q, K, V))`` per query: OGEN's extrapolation of an image feature from the
    class's text embedding ``q`` ``[B, 1, D]`` and its neighbours' text embeddings ``K`` and image features ``V``
    ``[B, k, D]``."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        heads = heads if dim % heads == 0 else 1
        self.attention = torch.nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.ffn = torch.nn.Sequential(torch.nn.Linear(dim, dim), torch.nn.ReLU(), torch.nn.Linear(dim, dim))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attention(q, k, v, need_weights=False)
        return F.normalize(self.ffn(q) + attended, dim=-1).flatten(0, 1)


@dataclass
class OGENConfig:
    """OGEN's joint objective on top of CoOp's optimiser ``coop``: ``neighbours`` k, the share of epochs that
    only train the generator, and ``shuffle_new`` (a control: the synthesised new-class features are labelled
    with a seeded permutation of the new classes, so they carry no knowledge of them)."""

    coop: CoOpConfig
    neighbours: int = 3
    warmup_share: float = 0.2
    shuffle_new: bool = False

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be at least 1, got {self.neighbours}")
        if not 0 <= self.warmup_share < 1:
            raise ValueError(f"warmup_share must be in [0, 1), got {self.warmup_share}")

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def nearest_classes(similarity: torch.Tensor, k: int, exclude_self: bool) -> torch.Tensor:
    """``[C, k]`` indices of each row's ``k`` most similar columns (its own column left out when asked)."""
    sim = similarity.clone()
    if exclude_self:
        sim.fill_diagonal_(-float("inf"))
    if k > sim.shape[1] - int(exclude_self):
        raise ValueError(f"{k} neighbours asked for among {sim.shape[1] - int(exclude_self)} classes")
    return sim.topk(k, dim=1).indices


def learn_context_ogen(lm: Any, base_names: Sequence[str], new_names: Sequence[str], features: torch.Tensor,
                       labels: torch.Tensor, cfg: OGENConfig, label: str = "") -> Dict[str, torch.Tensor]:
    """CoOp's context learned on base-class ``features``/``labels`` with OGEN's synthesised new-class features as
    a regulariser; returns the context and the loss per step. Deterministic on CPU."""
    with frozen(lm.model):
        return _learn(lm.model, lm.tokenizer, base_names, new_names, features, labels, cfg, label)


def _learn(clip, tokenizer, base_names, new_names, features, labels, cfg: OGENConfig, label) -> Dict[str, torch.Tensor]:
    from .. import progress as progress_channel
    from .adaptation import class_means

    coop, k = cfg.coop, cfg.neighbours
    base, new = ClassPrompts(clip, tokenizer, base_names, coop.context_words), ClassPrompts(clip, tokenizer, new_names, coop.context_words)
    gen = torch.Generator().manual_seed(int(coop.seed))
    torch.manual_seed(int(coop.seed))                              # the generator's initial weights
    x = F.normalize(features.float(), dim=-1)
    n_base = len(base_names)
    means = class_means(x, labels, n_base).float()
    stds = torch.stack([x[labels == c].std(0, unbiased=False) for c in range(n_base)])
    known_of = nearest_classes(F.normalize(means, dim=-1) @ F.normalize(means, dim=-1).T, k, exclude_self=True)
    permutation = torch.randperm(len(new_names), generator=gen)   # drawn in both arms: the same noise follows
    relabel = permutation if cfg.shuffle_new else torch.arange(len(new_names))
    context = torch.nn.Parameter(base.initial_context.clone())
    generator = FeatureGenerator(x.shape[1])
    opt = torch.optim.SGD([context, *generator.parameters()], lr=coop.lr, momentum=coop.momentum,
                          weight_decay=coop.weight_decay)
    scale = float(clip.logit_scale.exp())
    warmup_steps = int(coop.steps * cfg.warmup_share)
    dim = x.shape[1]
    losses: List[float] = []
    for step in range(coop.steps):
        for group in opt.param_groups:
            group["lr"] = coop.lr_at(step)
        w_base = F.normalize(encode_prompt_embeddings(clip, base.embeddings(context), base.tokens), dim=-1)
        w_new = F.normalize(encode_prompt_embeddings(clip, new.embeddings(context), new.tokens), dim=-1)
        known = known_of[labels]                                                      # [N, k]
        noise = torch.rand(len(labels), 1, dim, generator=gen)
        x_known = means[known] + noise * stds[known]                                  # [N, k, D]
        w_self, w_known = w_base[labels].detach().unsqueeze(1), w_base[known].detach()
        x_self_pred = generator(w_self, w_known, x_known)                             # [N, D]: leave-one-out
        x_known_pred = generator(w_known, w_self, x.unsqueeze(1))                     # [N·k, D]
        loss = dim * (F.mse_loss(x_self_pred, x) + F.mse_loss(x_known_pred, x_known.flatten(0, 1)))
        if step >= warmup_steps:
            new_of = (w_self.squeeze(1) @ w_new.T).topk(k, dim=1).indices            # [N, k] nearest new classes
            x_new_pred = generator(w_new[new_of].reshape(-1, 1, dim), w_self.repeat_interleave(k, 0),
                                   x.repeat_interleave(k, 0).unsqueeze(1))
            loss = loss + 0.25 * F.cross_entropy(scale * x @ w_base.T, labels) \
                + 0.25 * F.cross_entropy(scale * x_self_pred @ w_base.T, labels) \
                + 0.25 / k * F.cross_entropy(scale * x_known_pred @ w_base.T, known.flatten()) \
                + 0.5 / k * F.cross_entropy(scale * x_new_pred @ w_new.T, relabel[new_of.flatten()])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 10 == 0 or step == coop.steps - 1:
            progress_channel.report(f"OGEN {label}".strip(), step + 1, coop.steps, f"loss {losses[-1]:.4f}", unit="step")
    return {"context": context.detach().clone(), "loss": torch.tensor(losses)}


def cached_learn_context_ogen(lm: Any, base_names: Sequence[str], new_names: Sequence[str], features: torch.Tensor,
                              labels: torch.Tensor, cfg: OGENConfig, label: str = "", cache: Any = None
                              ) -> Dict[str, torch.Tensor]:
    """:func:`learn_context_ogen`, read from the tensor cache when trained before."""
    from ..cache import TensorCache, tensor_digest

    description = {"kind": "OGEN context", "version": 2, "model": lm.fingerprint, "base": list(base_names), "new": list(new_names),
                   "shots": tensor_digest({"features": features, "labels": labels}), "config": cfg.as_dict()}
    return (cache or TensorCache()).get_or_compute(
        description, lambda: learn_context_ogen(lm, base_names, new_names, features, labels, cfg, label))
