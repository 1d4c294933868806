"""Label-free prompt weighting for zero-shot ensembles (ZPE: Allingham et al. 2023, arXiv 2302.06235).

A pool of prompt templates is scored without labels: a prompt that fits the test images makes the model
confident about *some* class, so its score starts from the **max logit** over classes, averaged over the
unlabelled test images (the paper's naive score). That score is biased by the prompt itself: words the
pretraining data made common give high logits on every image. ZPE corrects it by subtracting the same
average computed on images from the *pretraining* distribution, so that what is left is how much better the
prompt fits these test images than images in general. The ensemble's class embedding is then the
score-weighted mean of the prompts' normalised text embeddings (``softmax`` of the scores).

Everything works on the per-template class embeddings ``[T, C, D]`` of :func:`zslab.zeroshot.template_embeddings`
and on image features, so one encoding serves every pool and scorer.
"""
from __future__ import annotations

from typing import Callable, Dict, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from ..evaluation import correct_vector
from ..registry import Registry


def prompt_logits(image_features: torch.Tensor, template_emb: torch.Tensor, logit_scale: float) -> torch.Tensor:
    """Scaled cosine logits ``[T, N, C]`` of every image under every template's classifier."""
    if template_emb.ndim != 3:
        raise ValueError(f"template_emb must be [T, C, D], got shape {tuple(template_emb.shape)}")
    x = F.normalize(image_features.float(), dim=-1)
    return logit_scale * torch.einsum("nd,tcd->tnc", x, F.normalize(template_emb.float(), dim=-1))


def mean_max_logit(logits: torch.Tensor) -> torch.Tensor:
    """``[T]``: per template, the max logit over classes averaged over images."""
    return logits.max(dim=-1).values.mean(dim=-1)


#: Prompt scorers: ``(test_logits [T,N,C], reference_logits [T,M,C]) -> scores [T]`` (higher = better prompt).
SCORERS: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry("prompt scorer")


@SCORERS.register("max logit")
def max_logit_score(test_logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """The naive score: mean max logit on the test images (the reference images are not used)."""
    return mean_max_logit(test_logits)


@SCORERS.register("ZPE")
def zpe_score(test_logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """The max-logit score on the test images minus the same on images of the pretraining distribution:
    a prompt that is confident everywhere (a frequency bias of pretraining) gains nothing from it."""
    if reference_logits.shape[0] != test_logits.shape[0] or reference_logits.shape[-1] != test_logits.shape[-1]:
        raise ValueError(f"reference logits {tuple(reference_logits.shape)} must share templates and classes with "
                         f"test logits {tuple(test_logits.shape)}")
    return mean_max_logit(test_logits) - mean_max_logit(reference_logits)


def softmax_weights(scores: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Ensemble weights ``[T]`` summing to 1. Scores are in the model's own logit units, so ``temperature=1``
    weighs prompts the way the model's softmax weighs classes; no value is tuned on labels."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return torch.softmax(scores.double() / temperature, dim=0).float()


def weighted_classifier(template_emb: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Class embeddings ``[C, D]``: the weighted mean of normalised per-template embeddings, renormalised
    (with uniform weights this is CLIP's prompt ensemble, :func:`zslab.zeroshot.build_classifier`)."""
    if weights.shape != template_emb.shape[:1]:
        raise ValueError(f"{template_emb.shape[0]} templates but {tuple(weights.shape)} weights")
    emb = F.normalize(template_emb.float(), dim=-1)
    return F.normalize((weights.float()[:, None, None] * emb).sum(0), dim=-1)


def weigh_pool(template_emb: torch.Tensor, test_features: torch.Tensor, labels: torch.Tensor,
               reference_features: torch.Tensor, logit_scale: float, scorers: Sequence[str] = ("max logit", "ZPE"),
               temperature: float = 1.0) -> Dict[str, Dict[str, np.ndarray]]:
    """Every weighting of one prompt pool on the same test images.

    Returns ``{"correct": {method: 0/1 per image}, "weights": {method: [T]}, "scores": {scorer: [T]},
    "single": per-template top-1 [T]}``; methods are ``uniform`` and each scorer. Labels are used only to
    score the result, never to weigh the prompts.
    """
    test = prompt_logits(test_features, template_emb, logit_scale)
    reference = prompt_logits(reference_features, template_emb, logit_scale)
    n_templates = template_emb.shape[0]
    weights = {"uniform": torch.full((n_templates,), 1.0 / n_templates)}
    scores = {}
    for name in scorers:
        scores[name] = SCORERS.get(name)(test, reference)
        weights[name] = softmax_weights(scores[name], temperature)
    correct = {name: correct_vector(test_features, labels, weighted_classifier(template_emb, w))
               for name, w in weights.items()}
    single = (test.argmax(-1) == labels[None]).float().mean(-1)
    return {"correct": correct, "weights": {k: v.numpy() for k, v in weights.items()},
            "scores": {k: v.numpy() for k, v in scores.items()}, "single": single.numpy()}


def evaluate_pools(template_emb: torch.Tensor, n_base: int, n_extra: Sequence[int], test_features: torch.Tensor,
                   labels: torch.Tensor, reference_features: torch.Tensor, logit_scale: float,
                   temperature: float = 1.0) -> Dict[int, Dict[str, Dict[str, np.ndarray]]]:
    """:func:`weigh_pool` on nested pools: the first ``n_base`` templates plus the next ``k`` for each ``k`` in
    ``n_extra`` (e.g. a hand-made set plus k poor prompts): accuracy against pool contents."""
    too_many = [k for k in n_extra if k < 0 or n_base + k > template_emb.shape[0]]
    if too_many:
        raise ValueError(f"pool sizes {too_many} out of range: {n_base} base templates and "
                         f"{template_emb.shape[0] - n_base} extra ones are available")
    return {k: weigh_pool(template_emb[:n_base + k], test_features, labels, reference_features, logit_scale,
                          temperature=temperature) for k in n_extra}


def prompt_table(result: Dict[str, Dict[str, np.ndarray]], templates: Sequence[str], n_base: int,
                 base: str = "hand-made", extra: str = "poor") -> pd.DataFrame:
    """One row per template of a pool: its kind, its own top-1, each scorer's score and weight."""
    n = len(result["single"])
    rows = pd.DataFrame({"template": list(templates)[:n], "kind": [base if i < n_base else extra for i in range(n)],
                         "single_top1": result["single"]})
    for name, score in result["scores"].items():
        rows[f"score: {name}"] = score
        rows[f"weight: {name}"] = result["weights"][name]
    return rows
