"""The offline world as a registered dataset: balanced test sets over its classes (compositions).

Splits name which classes are the choices: ``unseen`` (compositions held out of training: the
zero-shot test), ``seen`` (compositions trained on), ``all`` (both, for generalized zero-shot; the
dataset's ``unseen_classes`` attribute lists the unseen labels); ``test`` is ``unseen``.

``world`` is the ``world:`` mapping of the model under test (its split and knobs; see
``data/models/zsclip.yaml``), so that test images are drawn from the same world as its training images
(:func:`zslab.evaluation.eval_dataset` passes a zslab model's own). Distractor objects in a test image
are drawn from the split's classes: the other choices can be in the picture, as in real photos. Test
images use a seed stream separate from training.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np

from ..world import captions, load_world_spec, render, sample_scenes
from ..world.corpus import world_setting
from . import DATASETS, dataset_factory
from .base import ArrayDataset, load_templates

SPLITS = ("unseen", "seen", "all", "test")  # "test" is the zero-shot test: the unseen classes


def _world_classes(split: str, world: Optional[Dict[str, Any]]):
    """What every zsworld dataset starts from: the split (``test`` is ``unseen``), the spec, the model's
    ``world`` mapping, its knobs and composition split, and the split's compositions."""
    split = "unseen" if split == "test" else split
    spec = load_world_spec()
    world = dict(world or {})
    knobs, comp = world_setting(world, spec)
    return split, spec, world, knobs, comp, comp.compositions(split)


def _identity(name: str, split: str, spec, world: Dict[str, Any], **draw: Any) -> Dict[str, Any]:
    """The cache identity of a zsworld dataset: the world's content, the model's setting of it, the draw."""
    return {"dataset": name, "split": split, "world": spec.fingerprint(), **draw,
            "world_setting": {k: v for k, v in sorted(world.items()) if k != "n_train"}}


@DATASETS.register("zsworld")
@dataset_factory(splits=SPLITS, classnames_file=False)
def zsworld(root: Optional[str] = None, split: str = "unseen", n_per_class: int = 100, seed: int = 0,
            world: Optional[Dict[str, Any]] = None, template_set: Optional[str] = None) -> ArrayDataset:
    """``n_per_class`` rendered images per class of ``split``; ``root`` is unused (the world is generated)."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    split, spec, world, knobs, comp, classes = _world_classes(split, world)

    def draw() -> np.ndarray:  # rendered on first access: a warm run with cached features never renders
        rng = np.random.default_rng([seed, 2])  # stream 2: evaluation images (training uses stream 1)
        return np.concatenate([render(spec, knobs, sample_scenes(spec, knobs, n_per_class, rng, [c],
                                                                 distractor_pool=classes), rng)
                               for c in classes])

    labels = np.repeat(np.arange(len(classes)), n_per_class)
    ds = ArrayDataset(
        draw, labels, name="zsworld", split=split,
        classes=[spec.class_name(c) for c in classes], templates=load_templates("zsworld", template_set),
        identity=_identity("zsworld", split, spec, world, n_per_class=n_per_class, seed=seed))
    unseen = set(comp.unseen)
    ds.unseen_classes = [i for i, c in enumerate(classes) if c in unseen]
    ds.seen_classes = [i for i, c in enumerate(classes) if c not in unseen]
    return ds


@DATASETS.register("zsworld_captions")
@dataset_factory(splits=SPLITS, classnames_file=False, templates_file="zsworld")
def zsworld_captions(root: Optional[str] = None, split: str = "unseen", n_pairs: int = 1000, seed: int = 0,
                     world: Optional[Dict[str, Any]] = None, template_set: Optional[str] = None) -> ArrayDataset:
    """``n_pairs`` image–caption pairs for retrieval: scenes of ``split``'s compositions (drawn with the world's
    concept frequencies), each rendered once and captioned once by the world's alt-text writer with the knobs
    of ``world`` (the model's own, as its training captions). ``ds.captions[i]`` belongs to image ``i``; the
    labels are the main object's composition (for analysis, not for retrieval). A separate seed stream from
    training and from ``zsworld``'s test images."""
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be >= 1, got {n_pairs}")
    split, spec, world, knobs, _, classes = _world_classes(split, world)
    rng = np.random.default_rng([seed, 3])  # stream 3: retrieval pairs
    scenes = sample_scenes(spec, knobs, n_pairs, rng, classes, distractor_pool=classes)
    images = render(spec, knobs, scenes, rng)
    texts = captions(spec, knobs, scenes, rng)
    index = {tuple(c): i for i, c in enumerate(classes)}
    labels = [index[(int(a), int(b), int(c))] for a, b, c in zip(scenes.color, scenes.pattern, scenes.shape)]
    ds = ArrayDataset(images, labels, name="zsworld_captions", split=split,
                      classes=[spec.class_name(c) for c in classes], templates=load_templates("zsworld", template_set),
                      identity=_identity("zsworld_captions", split, spec, world, n_pairs=n_pairs, seed=seed))
    ds.captions = texts
    return ds
