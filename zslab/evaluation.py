"""Evaluation plumbing shared by the notebooks: the evaluation set of a model, its encoded images, scoring."""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import numpy as np
import torch

from .datasets import DATASETS, ZSDataset, build_dataset, subsample
from .zeroshot import logits


def model_world(model: Any) -> Optional[Dict[str, Any]]:
    """The ``world:`` mapping a zslab offline model was trained in (from its manifest); ``None`` otherwise."""
    return (getattr(model, "manifest", None) or {}).get("world")


def offline_world(model: Any, needs: str):
    """``(spec, knobs, split)`` of the zsworld a zslab offline model was trained in, for code that draws new scenes
    from it; ``needs`` finishes the error raised for any other model ("the ... need the model's world")."""
    from .world import load_world_spec
    from .world.corpus import world_setting

    world = model_world(model)
    if world is None:
        raise ValueError(f"model {getattr(model, 'name', model)!r} is not a zslab offline CLIP: {needs}")
    spec = load_world_spec()
    knobs, split = world_setting(world, spec)
    return spec, knobs, split


def eval_dataset(name: str, root: Optional[str] = None, split: str = "test", n_per_class: int = 0,
                 seed: int = 0, model: Any = None, **kwargs) -> ZSDataset:
    """A dataset for evaluation with at most ``n_per_class`` images per class (0 = all of them).

    Generated datasets (zsworld) draw exactly that many, from the world of ``model`` when it is one of
    zslab's offline models (its manifest's ``world``: split and knobs), so that a model trained with a
    knob turned is tested on its own world. Stored datasets take a seeded subsample, recorded in the
    dataset identity (so cached features are keyed by the selection).
    """
    params = inspect.signature(DATASETS.get(name)).parameters
    world = model_world(model)
    if "world" in params and world is not None and "world" not in kwargs:
        kwargs["world"] = world
    if "n_per_class" in params:
        if n_per_class > 0:
            kwargs["n_per_class"] = n_per_class
        if "seed" in params:
            kwargs["seed"] = seed
        return build_dataset(name, root=root or None, split=split, **kwargs)
    ds = build_dataset(name, root=root or None, split=split, **kwargs)
    return subsample(ds, n_per_class=n_per_class, seed=seed) if n_per_class > 0 else ds


@dataclass
class EncodedEval:
    """A model, its evaluation set, and the set's image features and labels (from the cache when warm)."""

    model: Any
    dataset: ZSDataset
    features: torch.Tensor
    labels: torch.Tensor

    @property
    def encode_text(self) -> Callable[[Sequence[str]], torch.Tensor]:
        """The model's ``encode_text``, with prompts read from and written to the cache."""
        from .embeddings import cached_text_encoder

        return cached_text_encoder(self.model)


def encode_eval_set(model: str, pretrained: Optional[str], dataset: str, split: str, seed: int,
                    n_per_class: int = 0, data_root: str = "", overrides: Optional[Mapping[str, Dict]] = None,
                    batch_size: int = 256, device: str = "cpu", sample_seed: Optional[int] = None,
                    **dataset_kwargs) -> EncodedEval:
    """Load ``model`` (seed ``seed``; zslab models trained with ``overrides``) on ``device`` (``auto``:
    cuda when present), build its evaluation set and encode it: the first step of every zero-shot
    notebook, for one seed. ``sample_seed`` draws the images (default: ``seed``); a second, disjoint
    sample of the same classes for the same model (a training set beside the test set) takes another.
    Features come back on the CPU."""
    from .embeddings import image_features
    from .models import load_model

    kwargs = {"overrides": overrides} if overrides else {}
    lm = load_model(model, pretrained or None, seed=seed, device=device, **kwargs)
    ds = eval_dataset(dataset, data_root or None, split, n_per_class=n_per_class,
                      seed=seed if sample_seed is None else sample_seed, model=lm,
                      **dataset_kwargs)
    feats, labels = image_features(lm, ds, batch_size=batch_size)
    return EncodedEval(lm, ds, feats, labels)


def correct_vector(image_features: torch.Tensor, labels: torch.Tensor, classifier: torch.Tensor) -> np.ndarray:
    """0/1 per image: is the top-1 zero-shot prediction right? (Its mean is top-1 accuracy; its bootstrap
    gives the interval; two heads' vectors on the same images give a paired difference.)"""
    pred = logits(image_features, classifier).argmax(dim=1)
    return (pred == labels).numpy().astype(np.float64)


def chance_level(ds: ZSDataset) -> float:
    return 1.0 / len(ds.classes)


@dataclass
class EncodedPairs:
    """Paired images and captions (row ``i`` of each belongs together), unit rows, plus the model."""

    model: Any
    dataset: ZSDataset
    images: torch.Tensor
    captions: torch.Tensor


def encode_pairs(model: str, pretrained: Optional[str], dataset: str, split: str, seed: int, n_pairs: int,
                 batch_size: int = 256, device: str = "cpu", **dataset_kwargs) -> EncodedPairs:
    """Load ``model`` (seed ``seed``), draw ``n_pairs`` image–caption pairs of ``dataset`` (a retrieval set with
    a ``captions`` attribute, e.g. ``zsworld_captions``, from the model's own world; pairs seed ``seed``) and
    encode both sides (cached): the first step of a retrieval notebook."""
    from .models import load_model

    lm = load_model(model, pretrained or None, seed=seed, device=device)
    return encode_pair_set(lm, dataset, split, n_pairs, seed, batch_size, **dataset_kwargs)


def encode_pair_set(lm: Any, dataset: str, split: str, n_pairs: int, pairs_seed: int, batch_size: int = 256,
                    **dataset_kwargs) -> EncodedPairs:
    """``n_pairs`` pairs of ``dataset`` drawn with ``pairs_seed``, encoded by the loaded model ``lm`` (e.g. a
    query bank beside the test pairs: same model, another draw)."""
    import torch.nn.functional as F

    from .embeddings import cached_text_encoder, image_features

    world = model_world(lm)
    if world is not None and "world" not in dataset_kwargs:
        dataset_kwargs["world"] = world
    ds = build_dataset(dataset, split=split, n_pairs=n_pairs, seed=pairs_seed, **dataset_kwargs)
    texts = getattr(ds, "captions", None)
    if texts is None:
        raise ValueError(f"dataset {dataset!r} has no captions: retrieval needs image–caption pairs")
    feats, _ = image_features(lm, ds, batch_size=batch_size)
    return EncodedPairs(lm, ds, F.normalize(feats.float(), dim=-1),
                        F.normalize(cached_text_encoder(lm)(list(texts)).float(), dim=-1))
