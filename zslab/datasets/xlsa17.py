"""Xian et al.'s GZSL benchmark release (“xlsa17”, arXiv 1707.00600): AwA1/AwA2, aPY, CUB and SUN as ResNet-101
features with class attributes and the proposed splits, in MATLAB files.

Layout, one folder per dataset (``<root>/<DATASET>/``):

* ``res101.mat``: ``features`` (2048 × N, one column per image), ``labels`` (N × 1, **1-based** rows of
  ``allclasses_names``), ``image_files``.
* ``att_splits.mat``: ``att`` (D × C, one column per class, L2-normalised), ``original_att``, ``allclasses_names``
  (C × 1 cell array; AwA writes ``grizzly+bear``), and the **1-based** image indices ``trainval_loc``,
  ``test_seen_loc``, ``test_unseen_loc`` (also ``train_loc``/``val_loc``).

The files are read with :func:`scipy.io.loadmat` (MATLAB v5-v7.2; the release is v5). Nothing is downloaded: get
the release from the authors' page and pass its ``data`` folder as ``root``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

from .base import DataFileError

#: The datasets of the release (folder names).
XLSA17_DATASETS = ("AWA1", "AWA2", "APY", "CUB", "SUN")
#: The ``features`` name that selects these precomputed features in :func:`zslab.methods.gzsl.build_problem`.
XLSA17_FEATURES = "xlsa17-res101"
SPLIT_KEYS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")


@dataclass
class XlsaData:
    """One dataset of the release, 0-based throughout."""

    features: np.ndarray            # [N, 2048] float32
    labels: np.ndarray              # [N] class indices
    attributes: np.ndarray          # [C, D]
    classes: List[str]
    splits: Dict[str, np.ndarray]   # trainval_loc / test_seen_loc / test_unseen_loc -> image indices


def _load(path: Path) -> Dict[str, np.ndarray]:
    from scipy.io import loadmat

    if not path.is_file():
        raise DataFileError(f"{path} not found: expected the xlsa17 release's layout <root>/<DATASET>/res101.mat and "
                            f"att_splits.mat (datasets: {', '.join(XLSA17_DATASETS)})")
    try:
        return loadmat(str(path))
    except Exception as error:  # scipy raises several types for a corrupt or non-MATLAB file
        raise DataFileError(f"{path} is not a readable MATLAB file: {error}") from error


def _need(mat: Dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    if key not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataFileError(f"{path} has no variable {key!r}; it has {found}")
    return mat[key]


def _names(cells: np.ndarray) -> List[str]:
    """A MATLAB cell array of strings (C × 1 of 1-element arrays) as Python strings, ``+`` read as a space."""
    out = []
    for cell in np.asarray(cells, dtype=object).reshape(-1):
        value = cell
        while isinstance(value, np.ndarray):
            value = value.reshape(-1)[0] if value.size else ""
        out.append(str(value).replace("+", " "))
    return out


def read_xlsa17(root: str | Path, dataset: str) -> XlsaData:
    """The features, labels, attributes and proposed split of ``dataset`` under ``root`` (the release's ``data``
    folder), checked for consistency: indices in range, labels naming a class, splits disjoint."""
    from ..errors import check_choice

    check_choice("xlsa17 dataset", dataset, XLSA17_DATASETS)
    folder = Path(root) / dataset
    res_path, att_path = folder / "res101.mat", folder / "att_splits.mat"
    res, att = _load(res_path), _load(att_path)
    features = np.asarray(_need(res, "features", res_path), dtype=np.float32)
    labels = np.asarray(_need(res, "labels", res_path)).reshape(-1).astype(np.int64) - 1
    if features.shape[1] != len(labels) and features.shape[0] == len(labels):
        features = features.T                   # tolerate N × 2048
    if features.shape[1] != len(labels):
        raise DataFileError(f"{res_path}: features are {features.shape}, labels {len(labels)}: expected 2048 × N")
    attributes = np.asarray(_need(att, "att", att_path), dtype=np.float64).T
    classes = _names(_need(att, "allclasses_names", att_path))
    if attributes.shape[0] != len(classes):
        raise DataFileError(f"{att_path}: att has {attributes.shape[0]} class columns, allclasses_names "
                            f"{len(classes)} names")
    if labels.min() < 0 or labels.max() >= len(classes):
        raise DataFileError(f"{res_path}: labels must be 1-based class rows 1..{len(classes)}, got "
                            f"{labels.min() + 1}..{labels.max() + 1}")
    splits = {}
    for key in SPLIT_KEYS:
        rows = np.asarray(_need(att, key, att_path)).reshape(-1).astype(np.int64) - 1
        if rows.size and (rows.min() < 0 or rows.max() >= len(labels)):
            raise DataFileError(f"{att_path}: {key} must be 1-based image indices 1..{len(labels)}")
        splits[key] = rows
    if np.intersect1d(splits["trainval_loc"], splits["test_seen_loc"]).size:
        raise DataFileError(f"{att_path}: trainval_loc and test_seen_loc share images")
    return XlsaData(features.T.copy(), labels, attributes, classes, splits)


def per_class_subset(rows: np.ndarray, labels: np.ndarray, n_per_class: int, seed: int) -> np.ndarray:
    """At most ``n_per_class`` of ``rows`` per class (all of them when 0), seeded, in ascending order."""
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    if n_per_class == 0:
        return np.sort(rows)
    rng = np.random.default_rng([seed, 31])
    keep = []
    for c in np.unique(labels[rows]):
        of_class = rows[labels[rows] == c]
        keep.append(rng.permutation(of_class)[:n_per_class])
    return np.sort(np.concatenate(keep)) if keep else rows[:0]
