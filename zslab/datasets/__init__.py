"""The dataset registry: ``build_dataset("cifar10", root=..., split="test")`` → a :class:`ZSDataset`.

Every entry of :data:`DATASETS` is a factory ``f(root=None, split="test", **kwargs) -> ZSDataset``. A
factory may carry ``splits`` (the valid split names, checked by :func:`build_dataset` before it runs) and
``classnames_file = False`` when its class names come from the data rather than from
``data/classnames/<name>.json``; :func:`dataset_factory` sets both. Prompt templates always live in
``data/templates/<name>.json``.

Registered here: ``cifar10``, ``cifar100``, ``mnist``, ``fashion_mnist`` (:mod:`.torchvision_sets`),
``imagefolder``, ``imagenet`` (:mod:`.folders`) and, when present, ``zsworld`` (:mod:`.zsworld`).
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, TypeVar

from ..errors import check_choice
from ..registry import Registry
from .base import (ArrayDataset, DataFileError, FolderDataset, ZSDataset, load_classnames,
                   load_classnames_file, load_templates, select, select_classes, subsample, validate_templates,
                   without_transform)
from .export import export_imagefolder

F = TypeVar("F", bound=Callable[..., ZSDataset])

#: name → factory(root=None, split="test", **kwargs) -> ZSDataset
DATASETS: Registry[Callable[..., ZSDataset]] = Registry("dataset")


def dataset_factory(splits: Sequence[str], classnames_file: bool = True,
                    templates_file: Optional[str] = None) -> Callable[[F], F]:
    """Mark a factory with its valid ``splits``, whether ``data/classnames/<name>.json`` holds its names, and
    whose ``data/templates/<...>.json`` it uses when not its own (``templates_file``: e.g. a retrieval set of
    zsworld scenes prompts like zsworld)."""

    def deco(fn: F) -> F:
        fn.splits = tuple(splits)  # type: ignore[attr-defined]
        fn.classnames_file = classnames_file  # type: ignore[attr-defined]
        fn.templates_file = templates_file  # type: ignore[attr-defined]
        return fn

    return deco


def list_datasets() -> List[str]:
    """The registered dataset names, sorted."""
    return DATASETS.names()


def dataset_splits(name: str) -> Optional[List[str]]:
    """The splits a dataset declares (``None`` if its factory does not declare them)."""
    splits = getattr(DATASETS.get(name), "splits", None)
    return list(splits) if splits is not None else None


def build_dataset(name: str, root: Optional[str] = None, split: str = "test",
                  templates: Optional[Sequence[str]] = None, **kwargs: Any) -> ZSDataset:
    """Build the registered dataset ``name`` (its ``split``, read from ``root`` or the default place).

    Unknown names and splits raise :class:`~zslab.errors.InvalidChoiceError` listing the valid ones.
    ``templates`` replaces the dataset's prompt templates by your own list (each with one ``{c}``);
    other keyword arguments go to the factory (e.g. ``template_set="simple"`` picks another set of
    ``data/templates/<name>.json``).
    """
    factory = DATASETS.get(name)
    splits = getattr(factory, "splits", None)
    if splits is not None:
        check_choice(f"{name} split", split, splits)
    ds = factory(root=root, split=split, **kwargs)
    if templates is not None:
        ds.templates = validate_templates(templates, f"templates given for {name!r}")
    return ds


from . import folders, torchvision_sets  # noqa: E402,F401  (register their datasets)
from . import animal_mnist  # noqa: E402,F401  (registers "animal_mnist"; reads PyPI animal-mnist's files)

try:
    from . import zsworld  # noqa: F401  (registers "zsworld")
except ImportError:  # pragma: no cover
    pass

__all__ = ["DATASETS", "build_dataset", "export_imagefolder", "list_datasets", "dataset_splits", "dataset_factory", "ZSDataset",
           "ArrayDataset", "FolderDataset", "subsample", "select", "select_classes", "without_transform", "load_templates", "load_classnames",
           "load_classnames_file", "validate_templates", "DataFileError"]
