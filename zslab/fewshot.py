"""The few-shot protocol of CLIP adaptation papers (CoOp, Tip-Adapter, GDA): K labelled shots per class, a small
labelled validation split for hyper-parameters, and a test split, all of the same classes.

K is one of :data:`SHOTS` (CoOp's 1, 2, 4, 8, 16). For one seed the shots are *nested*: the K-shot set holds the
first K images per class of one seeded per-class order, so the 1-shot set lies inside the 2-shot set and so on,
and a curve over K changes only the number of shots, never which images came first. The three parts never
share an image:

* generated datasets (zsworld) draw them as three separate samples of the classes (the test draw with the seed,
  the shot pool and the validation draw with seeds offset by :data:`POOL_OFFSET` and :data:`VAL_OFFSET`);
* stored datasets (``fashion_mnist``, ``animal_mnist``: train and test splits only) carve the shot pool and the
  validation split out of their train split, disjointly, and test on their test split.

Features are encoded once per part and cached under the part's dataset identity (its selection included); a
K-shot set is rows of the pool's features, so no image is ever encoded twice.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from .errors import check_choice

#: The shot counts of CoOp's protocol (and of Tip-Adapter's and GDA's figures).
SHOTS: Tuple[int, ...] = (1, 2, 4, 8, 16)
#: What :func:`few_shot_data` encodes: the image embeddings, or the image tower's output before its projection.
FEATURE_KINDS = ("embedding", "pre-projection")
#: Seed offsets of the shot pool and of the validation draw (generated datasets), so neither repeats the test draw.
POOL_OFFSET = 1000
VAL_OFFSET = 2000


def per_class_order(labels: np.ndarray, n_classes: int, seed: int) -> Dict[int, np.ndarray]:
    """Each class's indices in one seeded random order (``labels``: class index per item)."""
    rng = np.random.default_rng([seed, 11])
    labels = np.asarray(labels)
    return {c: rng.permutation(np.flatnonzero(labels == c)) for c in range(n_classes)}


def shot_indices(labels: np.ndarray, n_classes: int, k: int, seed: int) -> np.ndarray:
    """Sorted indices of ``k`` items of every class, the first ``k`` of :func:`per_class_order` (so the
    ``k``-shot set of a seed contains its ``j``-shot set for every ``j < k``). Every class must have ``k``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"shots must be a positive integer, got {k!r}")
    order = per_class_order(labels, n_classes, seed)
    short = {c: len(idx) for c, idx in order.items() if len(idx) < k}
    if short:
        raise ValueError(f"{k} shots asked for, but classes {sorted(short)[:5]} have only "
                         f"{min(short.values())} items in the pool; use at most that many shots")
    return np.sort(np.concatenate([idx[:k] for idx in order.values()]))


def disjoint_per_class(labels: np.ndarray, n_classes: int, counts: Sequence[int], seed: int) -> Tuple[np.ndarray, ...]:
    """Disjoint index sets, ``counts[i]`` items of every class in set ``i`` (sorted), from one seeded order."""
    order = per_class_order(labels, n_classes, seed)
    need = int(sum(counts))
    short = {c: len(idx) for c, idx in order.items() if len(idx) < need}
    if short:
        raise ValueError(f"need {need} items per class ({' + '.join(map(str, counts))}), but classes "
                         f"{sorted(short)[:5]} have only {min(short.values())}")
    bounds = np.cumsum([0, *counts])
    return tuple(np.sort(np.concatenate([idx[bounds[i]:bounds[i + 1]] for idx in order.values()]))
                 for i in range(len(counts)))


@dataclass
class FewShotData:
    """A model's encoded shot pool, validation split and test split of the same classes (unit image features)."""

    model: Any
    classes: list
    pool_features: torch.Tensor
    pool_labels: torch.Tensor
    val_features: torch.Tensor
    val_labels: torch.Tensor
    test_features: torch.Tensor
    test_labels: torch.Tensor
    seed: int
    identity: Dict[str, Any]

    @property
    def max_shots(self) -> int:
        return int(np.bincount(self.pool_labels.numpy(), minlength=len(self.classes)).min())

    def shots(self, k: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Features and labels of the ``k``-shot training set (nested in ``k`` for this seed)."""
        rows = torch.from_numpy(shot_indices(self.pool_labels.numpy(), len(self.classes), k, self.seed))
        return self.pool_features[rows], self.pool_labels[rows]

    @property
    def encode_text(self):
        from .embeddings import cached_text_encoder

        return cached_text_encoder(self.model)


def few_shot_data(model: str, pretrained: Optional[str], dataset: str, seed: int, max_shots: int = 16,
                  n_val: int = 4, n_test: int = 100, split: str = "unseen", data_root: str = "",
                  classes: Optional[Sequence[str]] = None, batch_size: int = 256, device: str = "cpu",
                  features: str = "embedding", shift: Optional[Mapping[str, Any]] = None) -> FewShotData:
    """Load ``model`` (seed ``seed``) and encode the shot pool (``max_shots`` per class), the validation split
    (``n_val`` per class; 0: none) and the test split (``n_test`` per class; 0 = all) of ``dataset``, restricted
    to ``classes`` (names, in that order) when given. ``split`` names the classes of a generated dataset
    (zsworld: ``unseen``, ``seen``, ``all``); stored datasets use their train split for shots and validation
    and their test split for testing. ``features``: ``embedding`` (the model's unit image embeddings) or
    ``pre-projection`` (its image tower's output before the last projection, for methods that tune it; unit
    rows too: the projection is linear and its outputs are normalised again). ``shift``: world knobs rendered on
    top of the model's own world for all three parts (a generated dataset under distribution shift)."""
    from .datasets import build_dataset, select, select_classes
    from .embeddings import image_features
    from .evaluation import eval_dataset
    from .models import load_model

    if max_shots < 1 or n_val < 0 or n_test < 0:
        raise ValueError(f"need max_shots ≥ 1, n_val ≥ 0 and n_test ≥ 0; got {max_shots}, {n_val}, {n_test}")
    check_choice("features", features, FEATURE_KINDS)
    if shift and not _is_generated(dataset):
        raise ValueError(f"shift renders a generated dataset (zsworld) with other world knobs; {dataset!r} is stored")
    lm = load_model(model, pretrained or None, seed=seed, device=device)
    root = data_root or None
    if _is_generated(dataset):
        from .evaluation import model_world

        if shift and model_world(lm) is None:
            raise ValueError(f"shift needs one of zslab's offline models (their world is known); got {model!r}")
        world = {"world": {**model_world(lm), **dict(shift)}} if shift else {}
        test = eval_dataset(dataset, root, split, n_per_class=n_test, seed=seed, model=lm, **world)
        pool = eval_dataset(dataset, root, split, n_per_class=max_shots, seed=seed + POOL_OFFSET, model=lm, **world)
        val = (eval_dataset(dataset, root, split, n_per_class=n_val, seed=seed + VAL_OFFSET, model=lm, **world)
               if n_val else None)
    else:
        test = eval_dataset(dataset, root, "test", n_per_class=n_test, seed=seed, model=lm)
        train = build_dataset(dataset, root=root, split="train")
        pool_rows, val_rows = disjoint_per_class(train.targets, len(train.classes), [max_shots, n_val], seed)
        pool = select(train, pool_rows, seed=int(seed), part="few-shot pool")
        val = select(train, val_rows, seed=int(seed), part="validation") if n_val else None
    if classes is not None:
        pool, test = select_classes(pool, classes), select_classes(test, classes)
        val = select_classes(val, classes) if val is not None else None
    if list(pool.classes) != list(test.classes):
        raise ValueError(f"{dataset}: the shot pool and the test split name different classes")
    encoder = lm
    if features == "pre-projection":
        from .methods.adaptation import pre_projection_model

        encoder = pre_projection_model(lm)
    pool_x, pool_y = image_features(encoder, pool, batch_size=batch_size)
    test_x, test_y = image_features(encoder, test, batch_size=batch_size)
    if val is not None:
        val_x, val_y = image_features(encoder, val, batch_size=batch_size)
    else:
        val_x, val_y = pool_x[:0], pool_y[:0]
    return FewShotData(lm, list(test.classes), pool_x, pool_y, val_x, val_y, test_x, test_y, seed=int(seed),
                       identity={"pool": pool.identity, "val": val.identity if val is not None else None,
                                 "test": test.identity})


def shifted_test_features(data: FewShotData, dataset: str, split: str, n_test: int, shift: Mapping[str, Any],
                          batch_size: int = 256) -> Tuple[torch.Tensor, torch.Tensor]:
    """Features and labels of a test split of ``data``'s classes rendered with the world knobs ``shift`` on top of
    the model's own world (a distribution shift of a generated dataset; the same seed as ``data``'s test draw)."""
    from .datasets import select_classes
    from .embeddings import image_features
    from .evaluation import eval_dataset, model_world

    if not _is_generated(dataset) or model_world(data.model) is None:
        raise ValueError(f"a shifted test needs a generated dataset (zsworld) and one of zslab's offline models; "
                         f"got {dataset!r}")
    ds = eval_dataset(dataset, None, split, n_per_class=n_test, seed=data.seed, model=data.model,
                      world={**model_world(data.model), **dict(shift)})
    if list(ds.classes) != data.classes:
        ds = select_classes(ds, data.classes)
    return image_features(data.model, ds, batch_size=batch_size)


def draw_classes(model: Any, dataset: str, split: str, n: int, seed: int) -> List[str]:
    """``n`` class names of a generated dataset's ``split`` in ``model``'s world, drawn with ``seed`` (in the
    split's order): e.g. base classes for a base-to-new split, as many as the new ones."""
    from .evaluation import eval_dataset

    names = list(eval_dataset(dataset, None, split, n_per_class=1, seed=0, model=model).classes)  # not rendered
    if not 1 <= n <= len(names):
        raise ValueError(f"n must be between 1 and the {len(names)} classes of {dataset}/{split}, got {n}")
    keep = np.sort(np.random.default_rng([seed, 13]).choice(len(names), n, replace=False))
    return [names[i] for i in keep]


def _is_generated(dataset: str) -> bool:
    """A dataset drawn on demand (``n_per_class`` is a parameter of its builder), not read from files."""
    from .datasets import DATASETS

    return "n_per_class" in inspect.signature(DATASETS.get(dataset)).parameters
