"""Evaluation plumbing shared by the notebooks: building the evaluation set, scoring a head."""
from __future__ import annotations

import inspect
from typing import Optional

import numpy as np
import torch

from .datasets import DATASETS, ZSDataset, build_dataset, subsample
from .zeroshot import logits


def eval_dataset(name: str, root: Optional[str] = None, split: str = "test", n_per_class: int = 0,
                 seed: int = 0, **kwargs) -> ZSDataset:
    """A dataset for evaluation with at most ``n_per_class`` images per class (0 = all of them).

    Generated datasets (zsworld) draw exactly that many; stored ones take a seeded subsample, recorded
    in the dataset identity (so cached features are keyed by the selection).
    """
    params = inspect.signature(DATASETS.get(name)).parameters
    if "n_per_class" in params:
        if n_per_class > 0:
            kwargs["n_per_class"] = n_per_class
        if "seed" in params:
            kwargs["seed"] = seed
        return build_dataset(name, root=root or None, split=split, **kwargs)
    ds = build_dataset(name, root=root or None, split=split, **kwargs)
    return subsample(ds, n_per_class=n_per_class, seed=seed) if n_per_class > 0 else ds


def correct_vector(image_features: torch.Tensor, labels: torch.Tensor, classifier: torch.Tensor) -> np.ndarray:
    """0/1 per image: is the top-1 zero-shot prediction right? (Its mean is top-1 accuracy; its bootstrap
    gives the interval; two heads' vectors on the same images give a paired difference.)"""
    pred = logits(image_features, classifier).argmax(dim=1)
    return (pred == labels).numpy().astype(np.float64)


def chance_level(ds: ZSDataset) -> float:
    return 1.0 / len(ds.classes)
