"""The offline world as a registered dataset: balanced test sets over color-shape classes.

Splits name which classes are the choices: ``unseen`` (compositions held out of training: the
zero-shot test), ``seen`` (compositions trained on), ``all`` (both, for generalized zero-shot; the
dataset's ``unseen_classes`` attribute lists the unseen labels); ``test`` is ``unseen``. The split of compositions
(``split_kind``, ``holdout_fraction``, ``split_seed``) must match the one the model was trained with; the
defaults match zslab's offline models. Test images are drawn with a seed stream separate from training.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..world import load_world_spec, make_split, render, sample_scenes
from . import DATASETS, dataset_factory
from .base import ArrayDataset, load_templates

SPLITS = ("unseen", "seen", "all", "test")  # "test" is the zero-shot test: the unseen classes


@DATASETS.register("zsworld")
@dataset_factory(splits=SPLITS, classnames_file=False)
def zsworld(root: Optional[str] = None, split: str = "unseen", n_per_class: int = 100, seed: int = 0,
            split_kind: str = "compositions", holdout_fraction: float = 0.2, split_seed: int = 0,
            template_set: Optional[str] = None) -> ArrayDataset:
    """``n_per_class`` rendered images per class of ``split``; ``root`` is unused (the world is generated)."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    split = "unseen" if split == "test" else split
    spec = load_world_spec()
    comp = make_split(spec, split_kind, holdout_fraction, split_seed)
    pairs = comp.pairs(split)
    rng = np.random.default_rng([seed, 2])  # stream 2: evaluation images (training uses stream 1)
    images, labels = [], []
    for label, pair in enumerate(pairs):
        scenes = sample_scenes(spec, n_per_class, rng, [pair])
        images.append(render(spec, scenes, rng))
        labels.append(np.full(n_per_class, label))
    ds = ArrayDataset(
        np.concatenate(images), np.concatenate(labels), name="zsworld", split=split,
        classes=[spec.pair_name(c, s) for c, s in pairs], templates=load_templates("zsworld", template_set),
        identity={"dataset": "zsworld", "split": split, "world": spec.fingerprint(), "n_per_class": n_per_class,
                  "seed": seed, "split_kind": split_kind, "holdout_fraction": holdout_fraction,
                  "split_seed": split_seed})
    unseen = set(comp.unseen)
    ds.unseen_classes = [i for i, p in enumerate(pairs) if p in unseen]
    ds.seen_classes = [i for i, p in enumerate(pairs) if p not in unseen]
    return ds
