"""CIFAR-10, CIFAR-100, MNIST and Fashion-MNIST, read from their published file formats.

Root: the ``root`` argument, else ``cache_dir("datasets")``. The usual layouts are searched (see each
loader). When the files are not there, ``ZSLAB_OFFLINE=1`` raises :class:`~zslab.errors.OfflineError` at
once, saying which files to put where; otherwise torchvision's own dataset class downloads them into the
root (``download=True``) and they are then read with the readers of :mod:`zslab.datasets.formats`.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..config import cache_dir, require_online
from ..errors import MissingAssetError, check_choice
from . import DATASETS, dataset_factory
from .base import ArrayDataset, files_identity, load_classnames, load_templates
from .formats import (CIFAR10_FILES, CIFAR100_FILES, MNIST_FILES, DatasetFormatError, find_idx,
                      read_cifar_batches, read_cifar_meta, read_idx)

SPLITS = ("train", "test")

#: Where Debian's package ``dataset-fashion-mnist`` installs the Fashion-MNIST idx files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def resolve_root(root: Optional[str]) -> Path:
    """``root`` (user-expanded, absolute) or the zslab cache's ``datasets`` folder."""
    return Path(root).expanduser().resolve() if root is not None else cache_dir("datasets").resolve()


def _download(what: str, how_to: str, fetch: Callable[[], object]) -> None:
    """Refuse at once offline; else run torchvision's download, turning its failure into a clear error."""
    require_online(what, how_to)
    try:
        fetch()
    except Exception as e:  # network errors, integrity errors: all mean "could not get the files"
        raise MissingAssetError(f"downloading {what} failed ({type(e).__name__}: {e}). {how_to}") from e


def _torchvision_class(name: str):
    import torchvision.datasets  # imported only to download: reading never needs it

    return getattr(torchvision.datasets, name)


def _base_identity(name: str, split: str, folder: Path, files: Sequence[Path]) -> dict:
    return {"dataset": name, "split": split, "root": str(folder), "files": files_identity(files, folder)}


# --------------------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------------------
def _cifar(name: str, root: Optional[str], split: str, template_set: Optional[str], folder_name: str,
           files: dict, label_keys: Tuple[str, ...], meta_keys: Tuple[str, ...], tv_class: str,
           archive: str) -> ArrayDataset:
    check_choice(f"{name} split", split, SPLITS)
    base = resolve_root(root)
    folder = base / folder_name
    needed = [folder / f for f in files[split]]
    how_to = (f"To supply {name} locally, put the extracted '{archive}' so that {folder} holds "
              f"{', '.join(files['train'] + files['test'] + [files['meta']])} (the {split} split needs "
              f"{', '.join(files[split])}), or pass root=<folder containing {folder_name}/>")
    if not all(p.is_file() for p in needed):
        missing = [p.name for p in needed if not p.is_file()]
        _download(f"{name} ({split} split; missing {missing} in {folder})", how_to,
                  lambda: _torchvision_class(tv_class)(str(base), train=(split == "train"), download=True))
        if not all(p.is_file() for p in needed):
            raise MissingAssetError(f"{name}: download finished but {needed} are still not all there. {how_to}")
    images, labels = read_cifar_batches(needed, label_keys)
    classes = load_classnames(name)
    read = list(needed)
    meta = folder / files["meta"]
    if meta.is_file():
        read.append(meta)
        on_disk = [n.replace("_", " ") for n in read_cifar_meta(meta, meta_keys)]
        if len(on_disk) != len(classes):
            raise DatasetFormatError(f"{meta}: {len(on_disk)} class names, but data/classnames/{name}.json "
                                     f"has {len(classes)}: not a {name} file")
        if on_disk != classes:
            warnings.warn(f"{meta}: class names differ from data/classnames/{name}.json; using the latter "
                          f"(first difference: {next((a, b) for a, b in zip(on_disk, classes) if a != b)})",
                          stacklevel=3)
    if len(labels) and labels.max() >= len(classes):
        raise DatasetFormatError(f"{folder}: label {int(labels.max())} found, but {name} has {len(classes)} classes")
    return ArrayDataset(images, labels, name=name, split=split, classes=classes,
                        templates=load_templates(name, template_set),
                        identity=_base_identity(name, split, folder, read))


@DATASETS.register("cifar10")
@dataset_factory(splits=SPLITS)
def cifar10(root: Optional[str] = None, split: str = "test", template_set: Optional[str] = None) -> ArrayDataset:
    """CIFAR-10 from ``<root>/cifar-10-batches-py`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``)."""
    return _cifar("cifar10", root, split, template_set, "cifar-10-batches-py", CIFAR10_FILES,
                  ("labels",), ("label_names",), "CIFAR10", "cifar-10-python.tar.gz")


@DATASETS.register("cifar100")
@dataset_factory(splits=SPLITS)
def cifar100(root: Optional[str] = None, split: str = "test", template_set: Optional[str] = None) -> ArrayDataset:
    """CIFAR-100 (fine labels) from ``<root>/cifar-100-python`` (``train``, ``test``, ``meta``)."""
    return _cifar("cifar100", root, split, template_set, "cifar-100-python", CIFAR100_FILES,
                  ("fine_labels",), ("fine_label_names",), "CIFAR100", "cifar-100-python.tar.gz")


# --------------------------------------------------------------------------------------------------------
# IDX: MNIST, Fashion-MNIST
# --------------------------------------------------------------------------------------------------------
def _find_idx_pair(folders: Sequence[Path], split: str) -> Optional[Tuple[Path, Path, Path]]:
    stems = MNIST_FILES[split]
    for folder in folders:
        found = [find_idx(folder, s) for s in stems]
        if all(found):
            return folder, found[0], found[1]
    return None


def _idx_dataset(name: str, root: Optional[str], split: str, template_set: Optional[str], tv_class: str,
                 extra_folders: Sequence[Path], how_to_extra: str = "") -> ArrayDataset:
    check_choice(f"{name} split", split, SPLITS)
    base = resolve_root(root)
    folders: List[Path] = [base, base / tv_class / "raw", *extra_folders]
    stems = MNIST_FILES[split]
    how_to = (f"To supply {name} locally, put {stems[0]} and {stems[1]} (raw or .gz; all four "
              f"train-/t10k- files for both splits) in {base} or {base / tv_class / 'raw'} (torchvision's "
              f"layout), or pass root=<that folder>{how_to_extra}")
    hit = _find_idx_pair(folders, split)
    if hit is None:
        _download(f"{name} ({split} split; no {stems[0]}[.gz] + {stems[1]}[.gz] in any of "
                  f"{[str(f) for f in folders]})", how_to,
                  lambda: _torchvision_class(tv_class)(str(base), train=(split == "train"), download=True))
        hit = _find_idx_pair(folders, split)
        if hit is None:
            raise MissingAssetError(f"{name}: download finished but the idx files are still missing. {how_to}")
    folder, images_path, labels_path = hit
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetFormatError(f"{images_path}: expected uint8 images N×H×W, got {images.dtype} {images.shape}")
    if labels.ndim != 1:
        raise DatasetFormatError(f"{labels_path}: expected a 1-D label vector, got shape {labels.shape}")
    if len(labels) != len(images):
        raise DatasetFormatError(f"{images_path} has {len(images)} images but {labels_path} has "
                                 f"{len(labels)} labels")
    classes = load_classnames(name)
    if len(labels) and int(labels.max()) >= len(classes):
        raise DatasetFormatError(f"{labels_path}: label {int(labels.max())} found, but {name} has "
                                 f"{len(classes)} classes")
    return ArrayDataset(images, labels.astype(np.int64), name=name, split=split, classes=classes,
                        templates=load_templates(name, template_set),
                        identity=_base_identity(name, split, folder, [images_path, labels_path]))


@DATASETS.register("mnist")
@dataset_factory(splits=SPLITS)
def mnist(root: Optional[str] = None, split: str = "test", template_set: Optional[str] = None) -> ArrayDataset:
    """MNIST idx files from ``<root>`` or ``<root>/MNIST/raw`` (torchvision's layout)."""
    return _idx_dataset("mnist", root, split, template_set, "MNIST", [])


@DATASETS.register("fashion_mnist")
@dataset_factory(splits=SPLITS)
def fashion_mnist(root: Optional[str] = None, split: str = "test",
                  template_set: Optional[str] = None) -> ArrayDataset:
    """Fashion-MNIST idx files from ``<root>``, ``<root>/FashionMNIST/raw``, or Debian's
    ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``)."""
    return _idx_dataset("fashion_mnist", root, split, template_set, "FashionMNIST",
                        [DEBIAN_FASHION_MNIST, DEBIAN_FASHION_MNIST / "data" / "fashion"],
                        how_to_extra=(f"; or install Debian's package dataset-fashion-mnist, as root: "
                                      f"'apt-get install dataset-fashion-mnist', which puts the files in "
                                      f"{DEBIAN_FASHION_MNIST}"))
