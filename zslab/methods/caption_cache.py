"""Training-free cache adapters over a support set: Tip-Adapter's cache and CapS-Adapter's caption-based,
multimodal support set (arXiv 2405.16591).

A cache turns a labelled support set into extra logits without training: an image's affinity to every support
item, sharpened by ``exp(−β (1 − affinity))``, votes for the item's label, and ``α`` weighs the votes against
the zero-shot logits (Tip-Adapter). CapS-Adapter builds the support set from *captions* of a few target
images per class (by a captioning model) and from images *generated* from those captions (by a text-to-image
model), and mixes the two kinds of affinity: ``A = (1 − δ) · f·K_image + δ · f·K_caption``. Its authors
search α, β, δ on a labelled validation split (their ``madapter.py``); so does :func:`search_cache`.

Offline stand-ins (:func:`zsworld_caption_support`): zsworld's caption writer is the captioner (it describes a
sampled target scene as its alt-text does: synonyms, dropped or wrong attributes, distractors), and the
generator draws a new scene of the composition the caption was written for.
"""
from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class SupportSet:
    """``image_features`` [M, D] and ``caption_features`` [M, D] (unit rows, pair ``i`` made from one caption)
    with their class ``labels`` [M]; ``target_features`` [K, D] and ``target_labels`` are the sampled target
    images themselves (what a few-shot cache would use: a reference, not a training-free input)."""

    image_features: torch.Tensor
    caption_features: torch.Tensor
    labels: torch.Tensor
    captions: Sequence[str]
    target_features: Optional[torch.Tensor] = None
    target_labels: Optional[torch.Tensor] = None

    def target_images_only(self) -> "SupportSet":
        """The sampled target images as the cache (Tip-Adapter's few-shot cache), for reference."""
        if self.target_features is None:
            raise ValueError("this support set keeps no target images")
        return SupportSet(self.target_features, self.target_features, self.target_labels, [])

    def __post_init__(self):
        m = self.labels.shape[0]
        if self.image_features.shape[0] != m or self.caption_features.shape[0] != m:
            raise ValueError(f"support set: {self.image_features.shape[0]} images, {self.caption_features.shape[0]} "
                             f"captions and {m} labels must be paired one to one")


def cache_logits(features: torch.Tensor, keys_image: torch.Tensor, keys_caption: torch.Tensor, labels: torch.Tensor,
                 n_classes: int, beta: float, delta: float) -> torch.Tensor:
    """``exp(−β(1 − A)) @ onehot(labels)`` with ``A = (1 − δ) f·K_image + δ f·K_caption`` ([N, C])."""
    if not 0.0 <= delta <= 1.0:
        raise ValueError(f"delta must be in [0, 1], got {delta}")
    f = F.normalize(features.float(), dim=-1)
    affinity = (1 - delta) * f @ keys_image.float().T + delta * f @ keys_caption.float().T
    return torch.exp(-beta * (1 - affinity)) @ F.one_hot(labels.long(), n_classes).float()


def adapted_logits(features: torch.Tensor, classifier: torch.Tensor, support: SupportSet, alpha: float, beta: float,
                   delta: float, scale: float = 100.0) -> torch.Tensor:
    """Zero-shot logits (``scale`` · cosine, CLIP's 100 as in the authors' code) plus ``alpha`` · cache logits."""
    zs = scale * F.normalize(features.float(), dim=-1) @ classifier.float().T
    if alpha == 0:
        return zs
    return zs + alpha * cache_logits(features, support.image_features, support.caption_features, support.labels,
                                     classifier.shape[0], beta, delta)


#: The hyper-parameter grid searched on the validation split (α, β as in Tip-Adapter's ranges; δ for CapS).
ALPHAS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
BETAS = (1.0, 3.0, 5.5, 10.0, 20.0)

#: Each cache arm and the δ values it may use: δ = 0 reads only the (generated) images, δ = 1 only the captions.
CACHE_ARMS: Dict[str, Tuple[float, ...]] = {
    "image cache": (0.0,),
    "caption cache": (1.0,),
    "CapS (images + captions)": (0.0, 0.25, 0.5, 0.75, 1.0),
}


def search_cache(val_features: torch.Tensor, val_labels: torch.Tensor, classifier: torch.Tensor,
                 support: SupportSet, deltas: Sequence[float], alphas: Sequence[float] = ALPHAS,
                 betas: Sequence[float] = BETAS) -> Dict[str, float]:
    """The (α, β, δ) with the best validation accuracy (ties: the first in grid order, smaller values first)."""
    best, best_acc = None, -1.0
    for alpha, beta, delta in itertools.product(alphas, betas, deltas):
        acc = float((adapted_logits(val_features, classifier, support, alpha, beta, delta).argmax(1)
                     == val_labels).float().mean())
        if acc > best_acc + 1e-12:
            best, best_acc = {"alpha": alpha, "beta": beta, "delta": delta}, acc
    return {**best, "val_top1": best_acc}


#: The reference arm: the few labelled target images themselves as the cache (not training-free input).
FEW_SHOT_REFERENCE = "few-shot image cache (reference)"


def evaluate_cache_arms(test_features: torch.Tensor, test_labels: torch.Tensor, val_features: torch.Tensor,
                        val_labels: torch.Tensor, classifier: torch.Tensor, support: SupportSet):
    """0/1 correctness per test image of zero-shot, every arm of :data:`CACHE_ARMS` and the few-shot
    reference, each with its hyper-parameters searched on the validation split; and those parameters."""
    scores = {"zero-shot": (adapted_logits(test_features, classifier, support, 0.0, 1.0, 0.0).argmax(1)
                            == test_labels).numpy().astype(float)}
    params = []
    arms = {**{a: (support, d) for a, d in CACHE_ARMS.items()}}
    if support.target_features is not None:
        arms[FEW_SHOT_REFERENCE] = (support.target_images_only(), (0.0,))
    for arm, (cache, deltas) in arms.items():
        hp = search_cache(val_features, val_labels, classifier, cache, deltas)
        logits = adapted_logits(test_features, classifier, cache, hp["alpha"], hp["beta"], hp["delta"])
        scores[arm] = (logits.argmax(1) == test_labels).numpy().astype(float)
        params.append({"arm": arm, **hp})
    return scores, params


def zsworld_caption_support(lm, classes: Sequence[str], k: int, n_generated: int = 1, seed: int = 0) -> SupportSet:
    """CapS built offline for the zsworld classes ``classes`` of offline CLIP ``lm``'s world: ``k`` target
    scenes per class are drawn (the test distribution's seed stream is not reused) and captioned by the world's
    caption writer; each caption yields ``n_generated`` new renders of its class. Captions and renders are
    encoded by ``lm`` (captions through the prompt cache)."""
    from ..embeddings import cached_text_encoder, rendered_image_features
    from ..evaluation import offline_world
    from ..world import captions as write_captions
    from ..world import render, sample_scenes

    if k < 1 or n_generated < 1:
        raise ValueError(f"k and n_generated must be ≥ 1, got {k} and {n_generated}")
    spec, knobs, split = offline_world(lm, "the zsworld caption support set needs the model's world; in real mode "
                                            "build a SupportSet from your own captions and images")
    comps = {spec.class_name(c): c for c in split.compositions("all")}
    missing = [c for c in classes if c not in comps]
    if missing:
        raise ValueError(f"not zsworld classes of this model: {missing[:3]}")
    pool = [comps[c] for c in classes]
    rng = np.random.default_rng([seed, 5])          # stream 5: support sets
    caps, labels, target_images, generated = [], [], [], []
    for label, name in enumerate(classes):
        scenes = sample_scenes(spec, knobs, k, rng, [comps[name]], distractor_pool=pool)
        target_images.append(render(spec, knobs, scenes, rng))
        for caption in write_captions(spec, knobs, scenes, rng):
            new = sample_scenes(spec, knobs, n_generated, rng, [comps[name]], distractor_pool=pool)
            generated.append(render(spec, knobs, new, rng))
            caps += [caption] * n_generated
            labels += [label] * n_generated

    encode = functools.partial(rendered_image_features, lm)
    return SupportSet(encode(np.concatenate(generated)), F.normalize(cached_text_encoder(lm)(caps).float(), dim=-1),
                      torch.tensor(labels), caps, encode(np.concatenate(target_images)),
                      torch.arange(len(classes)).repeat_interleave(k))
