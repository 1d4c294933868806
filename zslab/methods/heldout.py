"""Zero-shot transfer to classes held out of a model's training, by prompt head (LiT-style evaluation).

Two views of the same test images: the held-out classes' images choosing among the held-out classes only
(zero-shot transfer proper), and every image choosing among all classes (the generalized setting: seen
accuracy, unseen accuracy and their harmonic mean, where a model's bias to its seen classes shows).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from ..evaluation import correct_vector
from ..metrics import gzsl_metrics
from ..semantics.attributes import load_descriptions
from ..zeroshot import Templates, build_classifier, logits
from .prompting import CLASS_NAME_ONLY

HEADS = ("class name", "template ensemble", "descriptions")


def transfer_heads(dataset: str, classes: Sequence[str], templates: Sequence[str]) -> Dict[str, Templates]:
    """The class name alone, the dataset's template ensemble, and per-class descriptions (Menon & Vondrick,
    arXiv 2210.07183) from ``data/descriptions/<dataset>.json``."""
    descriptions = load_descriptions(dataset)
    return {"class name": CLASS_NAME_ONLY, "template ensemble": list(templates),
            "descriptions": {c: descriptions[c] for c in classes}}


@dataclass
class TransferScores:
    heldout_correct: Dict[str, np.ndarray]     # per head: 0/1 per held-out image, choosing among held-out classes
    gzsl: Dict[str, Dict[str, float]]          # per head: seen / unseen / harmonic over all classes


def _subset(prompts: Templates, classes: Sequence[str]) -> Templates:
    return {c: prompts[c] for c in classes} if isinstance(prompts, Mapping) else prompts


def heldout_view(classes: Sequence[str], heldout: Sequence[str], features: torch.Tensor,
                 labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The images of the held-out classes, labelled by their index in ``heldout``: zero-shot transfer proper,
    choosing among the held-out classes only."""
    missing = [c for c in heldout if c not in classes]
    if missing:
        raise ValueError(f"held-out classes {missing} are not classes of the dataset ({list(classes)})")
    unseen_idx = [list(classes).index(c) for c in heldout]
    y = labels.numpy()
    mask = np.isin(y, unseen_idx)
    return features[torch.as_tensor(mask)], torch.as_tensor([unseen_idx.index(int(t)) for t in y[mask]])


def heldout_transfer(encode_text: Callable[[Sequence[str]], torch.Tensor], classes: Sequence[str],
                     heldout: Sequence[str], heads: Mapping[str, Templates], features: torch.Tensor,
                     labels: torch.Tensor) -> TransferScores:
    """Score every head on held-out-only and generalized zero-shot classification of the same images."""
    held_features, y_held = heldout_view(classes, heldout, features, labels)
    unseen_idx = [list(classes).index(c) for c in heldout]
    seen_idx = [i for i in range(len(classes)) if i not in unseen_idx]
    y = labels.numpy()
    correct: Dict[str, np.ndarray] = {}
    gzsl: Dict[str, Dict[str, float]] = {}
    for head, prompts in heads.items():
        w_held = build_classifier(encode_text, list(heldout), _subset(prompts, heldout))
        correct[head] = correct_vector(held_features, y_held, w_held)
        w_all = build_classifier(encode_text, list(classes), prompts)
        gzsl[head] = gzsl_metrics(logits(features, w_all).argmax(1).numpy(), y, seen_idx, unseen_idx)
    return TransferScores(correct, gzsl)


def check_heldout_in_manifest(manifest: Mapping, heldout: List[str], model: str) -> None:
    """A zslab model records the classes it held out; evaluating it on other ones would not be zero-shot."""
    if manifest and sorted(manifest.get("heldout_classes", heldout)) != sorted(heldout):
        raise ValueError(f"{model} was trained with held-out classes {manifest['heldout_classes']}, not {heldout}")
