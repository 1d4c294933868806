"""The dataset type every zslab loader returns, deterministic subsets, and the template / class-name data.

A :class:`ZSDataset` yields ``(PIL.Image in RGB, int label)`` and carries what zero-shot evaluation needs
besides the pixels: ``classes`` (the human-readable names that go into prompts), ``templates`` (prompt
wordings with one ``{c}`` placeholder) and ``identity`` (a JSON-able description of everything that
determines the content, used as part of cache keys and recorded with results).

Two concrete classes cover every loader: :class:`ArrayDataset` (uint8 images held in memory) and
:class:`FolderDataset` (a list of image files with labels). :func:`subsample` returns a view of either.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch.utils.data
from PIL import Image

from ..config import data_file
from ..errors import ZslabError, check_choice

__all__ = ["ZSDataset", "ArrayDataset", "FolderDataset", "subsample", "select", "select_classes", "load_templates", "load_classnames",
           "load_classnames_file", "validate_templates", "files_identity", "folder_fingerprint",
           "DataFileError"]


class DataFileError(ZslabError, ValueError):
    """A committed template or class-name file under ``data/`` is malformed; the message says how."""


# --------------------------------------------------------------------------------------------------------
# The dataset classes
# --------------------------------------------------------------------------------------------------------
class ZSDataset(torch.utils.data.Dataset):
    """A labelled image set for zero-shot evaluation: ``ds[i] -> (PIL RGB image, int label)``.

    Attributes: ``name``, ``split``, ``classes`` (prompt names, ``classes[label]``), ``templates``
    (each with one ``{c}``), ``identity`` (JSON-able content description), ``targets`` (int64 array),
    and ``transform`` (optional callable applied to the PIL image, e.g. a CLIP preprocess; ``None``
    returns the PIL image itself).
    """

    name: str
    split: str
    classes: List[str]
    templates: List[str]
    identity: Dict[str, Any]
    transform: Optional[Callable[[Image.Image], Any]]

    def __init__(self, *, name: str, split: str, classes: Sequence[str], templates: Sequence[str],
                 identity: Dict[str, Any], targets: Iterable[int],
                 transform: Optional[Callable[[Image.Image], Any]] = None):
        self.name = name
        self.split = split
        self.classes = [str(c) for c in classes]
        self.templates = validate_templates(templates, f"templates of dataset {name!r}")
        self.identity = dict(identity)
        self.transform = transform
        targets = np.asarray(list(targets) if not isinstance(targets, np.ndarray) else targets)
        if targets.ndim != 1:
            raise ValueError(f"{name}/{split}: targets must be one-dimensional, got shape {targets.shape}")
        targets = targets.astype(np.int64, copy=False)
        if len(targets) and (targets.min() < 0 or targets.max() >= len(self.classes)):
            raise ValueError(f"{name}/{split}: labels must lie in [0, {len(self.classes)}) (one per class "
                             f"name), found {int(targets.min())}..{int(targets.max())}")
        self._targets = targets

    # -- the part a subclass supplies -------------------------------------------------------------------
    def _image(self, index: int) -> Image.Image:  # pragma: no cover - abstract
        raise NotImplementedError

    def _take(self, indices: np.ndarray) -> "ZSDataset":  # pragma: no cover - abstract
        """A dataset of the same kind holding only ``indices`` (positions in ``self``), in that order."""
        raise NotImplementedError

    # -- the common part ----------------------------------------------------------------------------------
    @property
    def targets(self) -> np.ndarray:
        return self._targets

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __len__(self) -> int:
        return len(self._targets)

    def __getitem__(self, index: int) -> Tuple[Any, int]:
        n = len(self)
        index = int(index)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"{self.name}/{self.split}: index {index} out of range for {n} samples")
        image = self._image(index)
        if image.mode != "RGB":
            image = image.convert("RGB")
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self._targets[index])

    def prompts(self, templates: Optional[Sequence[str]] = None) -> List[List[str]]:
        """``prompts()[label]``: every template filled with that class's name."""
        from ..zeroshot import fill_templates

        return fill_templates(self.classes, list(templates or self.templates))

    def source_rows(self) -> Tuple[Dict[str, Any], np.ndarray]:
        """``(identity of the full dataset, row numbers in it)`` of these samples.

        A subset made by :func:`select` (or :func:`subsample`, :func:`select_classes`) knows which rows of
        its source it holds, so a per-image cache keyed by the source (:class:`zslab.cache.RowCache`) is
        shared by every subset of it. A dataset whose identity changed after the selection, or that was
        not made by ``select``, is its own source (rows ``0..n-1``).
        """
        source = vars(self).get("_source")
        if source is not None and source[2] == self.identity:
            return source[0], source[1]
        return self.identity, np.arange(len(self), dtype=np.int64)

    def identity_hash(self) -> str:
        """A short, stable hash of :attr:`identity` (for cache keys)."""
        blob = json.dumps(self.identity, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, split={self.split!r}, {len(self)} images, "
                f"{len(self.classes)} classes)")


class ArrayDataset(ZSDataset):
    """Images held in memory as uint8 ``N×H×W`` (gray) or ``N×H×W×3`` (RGB), converted to RGB on access.

    ``rows`` (optional) selects rows of ``images`` without copying them: subsets share the big array.
    ``images`` may also be a function that returns the array: it is called on first access, so a dataset
    whose features are already cached (generated worlds are keyed by their identity alone) never pays for
    rendering its images on a warm rerun.
    """

    def __init__(self, images: np.ndarray | Callable[[], np.ndarray], labels: Iterable[int], *, name: str,
                 split: str, classes: Sequence[str], templates: Sequence[str], identity: Dict[str, Any],
                 rows: Optional[np.ndarray] = None, transform: Optional[Callable] = None):
        self._make = images if callable(images) else None
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        labels = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels)
        super().__init__(name=name, split=split, classes=classes, templates=templates, identity=identity,
                         targets=labels, transform=transform)
        self._images = None if self._make is not None else self._checked(images)

    def _checked(self, images) -> np.ndarray:
        images = np.asarray(images)
        name, split = self.name, self.split
        if images.dtype != np.uint8:
            raise ValueError(f"{name}/{split}: images must be uint8, got {images.dtype}")
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
            raise ValueError(f"{name}/{split}: images must be N×H×W or N×H×W×3, got shape {images.shape}")
        n = len(images) if self.rows is None else len(self.rows)
        if len(self._targets) != n:
            raise ValueError(f"{name}/{split}: {n} images but {len(self._targets)} labels")
        return images

    @property
    def images(self) -> np.ndarray:
        if self._images is None:
            self._images = self._checked(self._make())
            self._make = None
        return self._images

    def _image(self, index: int) -> Image.Image:
        row = index if self.rows is None else int(self.rows[index])
        arr = np.ascontiguousarray(self.images[row])
        image = Image.fromarray(arr)  # 2-D uint8 -> "L", H×W×3 uint8 -> "RGB"
        return image.convert("RGB") if image.mode != "RGB" else image

    def _take(self, indices: np.ndarray) -> "ArrayDataset":
        rows = indices if self.rows is None else self.rows[indices]
        source = self._images if self._images is not None else (lambda: self.images)
        return ArrayDataset(source, self._targets[indices], name=self.name, split=self.split,
                            classes=self.classes, templates=self.templates, identity=self.identity,
                            rows=rows, transform=self.transform)


class FolderDataset(ZSDataset):
    """Images read from files on access: ``samples`` is a list of ``(path, label)``."""

    def __init__(self, samples: Sequence[Tuple[str | os.PathLike, int]], *, name: str, split: str,
                 classes: Sequence[str], templates: Sequence[str], identity: Dict[str, Any],
                 transform: Optional[Callable] = None):
        self.samples = [(str(p), int(y)) for p, y in samples]
        super().__init__(name=name, split=split, classes=classes, templates=templates, identity=identity,
                         targets=np.array([y for _, y in self.samples], dtype=np.int64),
                         transform=transform)

    def _image(self, index: int) -> Image.Image:
        path = self.samples[index][0]
        with Image.open(path) as im:
            return im.convert("RGB")

    def _take(self, indices: np.ndarray) -> "FolderDataset":
        return FolderDataset([self.samples[int(i)] for i in indices], name=self.name, split=self.split,
                             classes=self.classes, templates=self.templates, identity=self.identity,
                             transform=self.transform)


# --------------------------------------------------------------------------------------------------------
# Deterministic subsets
# --------------------------------------------------------------------------------------------------------
def subsample(ds: ZSDataset, n_per_class: Optional[int] = None, max_samples: Optional[int] = None,
              seed: int = 0) -> ZSDataset:
    """A deterministic subset of ``ds`` (same kind of dataset, sharing its data).

    ``n_per_class`` keeps at most that many samples of each class (drawn at random with ``seed``);
    ``max_samples`` then keeps at most that many of those (again at random). The kept samples stay in
    their original order. The result's ``identity`` adds a ``selection`` entry with the seed, the counts
    and a hash of the chosen indices (and the previous selection, when ``ds`` was itself a subset).
    """
    for what, value in (("n_per_class", n_per_class), ("max_samples", max_samples)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 0):
            raise ValueError(f"subsample: {what} must be a non-negative int or None, got {value!r}")
    rng = np.random.default_rng(seed)
    targets = ds.targets
    chosen = np.arange(len(ds), dtype=np.int64)
    if n_per_class is not None:
        keep = []
        for label in range(len(ds.classes)):
            members = np.flatnonzero(targets == label)
            if len(members) > n_per_class:
                members = rng.permutation(members)[:n_per_class]
            keep.append(members)
        chosen = np.sort(np.concatenate(keep)) if keep else chosen[:0]
    if max_samples is not None and len(chosen) > max_samples:
        chosen = np.sort(rng.permutation(chosen)[:max_samples])
    return select(ds, chosen, seed=int(seed), n_per_class=None if n_per_class is None else int(n_per_class),
                  max_samples=None if max_samples is None else int(max_samples))


def without_transform(ds: ZSDataset) -> ZSDataset:
    """A shallow copy of ``ds`` that yields PIL images (its own ``transform`` switched off): for code that
    applies a preprocessing of its own (a frozen backbone's, a resize)."""
    if getattr(ds, "transform", None) is None:
        return ds
    view = copy.copy(ds)
    view.transform = None
    return view


def select(ds: ZSDataset, indices: Sequence[int], **how: Any) -> ZSDataset:
    """The samples ``indices`` of ``ds`` as a view whose ``identity`` records the selection (a hash of the
    indices, their count, per-class counts, and ``how`` they were chosen), so caches keyed by identity
    never confuse two selections."""
    chosen = np.asarray(indices, dtype=np.int64)
    targets = ds.targets
    counts = np.bincount(targets[chosen], minlength=len(ds.classes))
    selection: Dict[str, Any] = {
        **how,
        "count": int(len(chosen)),
        "of": int(len(ds)),
        "indices_sha256": hashlib.sha256(chosen.astype("<i8").tobytes()).hexdigest(),
        "per_class_min": int(counts.min()) if len(counts) else 0,
        "per_class_max": int(counts.max()) if len(counts) else 0,
    }
    if "selection" in ds.identity:
        selection["parent"] = ds.identity["selection"]
    view = ds._take(chosen)
    # Extra per-class attributes a loader set on its dataset (e.g. zsworld's ``unseen_classes``) stay
    # valid, since the classes are unchanged: carry them over.
    for key, value in vars(ds).items():
        if key not in vars(view):
            setattr(view, key, value)
    view.identity = {**ds.identity, "selection": selection}
    source_identity, source_rows = ds.source_rows()
    view._source = (source_identity, source_rows[chosen], view.identity)
    return view


# --------------------------------------------------------------------------------------------------------
# Identity helpers
# --------------------------------------------------------------------------------------------------------
def files_identity(paths: Iterable[Path], root: Path) -> List[Dict[str, Any]]:
    """``[{"file", "size", "mtime_ns"}]`` for each file read (names relative to ``root`` when inside it)."""
    out = []
    for path in paths:
        path = Path(path)
        st = path.stat()
        try:
            shown = str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            shown = str(path.resolve())
        out.append({"file": shown, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
    return out


def folder_fingerprint(paths: Sequence[Path], root: Path) -> Dict[str, Any]:
    """A compact identity for many files: their count and a hash of (relative path, size, mtime)."""
    h = hashlib.sha256()
    for path in paths:
        st = Path(path).stat()
        h.update(f"{Path(path).relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return {"num_files": len(paths), "files_sha256": h.hexdigest()}


# --------------------------------------------------------------------------------------------------------
# Templates and class names (data, not code: data/templates/<dataset>.json, data/classnames/<dataset>.json)
# --------------------------------------------------------------------------------------------------------
def validate_templates(templates: Iterable[str], where: str = "templates") -> List[str]:
    """Return ``templates`` as a list, checking each is a string with ``{c}`` exactly once, no other braces."""
    if isinstance(templates, str):
        raise DataFileError(f"{where}: expected a list of template strings, got the single string {templates!r}")
    out = list(templates)
    if not out:
        raise DataFileError(f"{where}: no templates")
    for t in out:
        if not isinstance(t, str):
            raise DataFileError(f"{where}: template {t!r} is not a string")
        if t.count("{c}") != 1:
            raise DataFileError(f"{where}: template {t!r} must contain the placeholder {{c}} exactly once")
        rest = t.replace("{c}", "")
        if "{" in rest or "}" in rest:
            raise DataFileError(f"{where}: template {t!r} has braces other than the {{c}} placeholder")
    return out


def read_data_json(kind: str, dataset: str) -> Tuple[Path, Dict[str, Any]]:
    """``data/<kind>/<dataset>.json`` as a dict (with its path), or a :class:`DataFileError` saying why not."""
    path = data_file(kind, f"{dataset}.json")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataFileError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(raw, dict):
        raise DataFileError(f"{path}: expected a JSON object")
    return path, raw


def load_templates(dataset: str, set_name: Optional[str] = None) -> List[str]:
    """The prompt templates of ``data/templates/<dataset>.json``: set ``set_name``, else its ``default``."""
    path, raw = read_data_json("templates", dataset)
    sets = raw.get("sets")
    if not isinstance(sets, dict) or not sets:
        raise DataFileError(f"{path}: needs a non-empty object 'sets' of template lists")
    name = set_name if set_name is not None else raw.get("default")
    if name is None:
        raise DataFileError(f"{path}: no 'default' set named; pass set_name, one of {sorted(sets)}")
    check_choice(f"template set of {dataset!r}", name, sets)
    return validate_templates(sets[name], f"{path} set {name!r}")


def load_classnames_file(dataset: str) -> Dict[str, Any]:
    """The whole of ``data/classnames/<dataset>.json`` (``classnames``, ``source``, and e.g. ``wnids``)."""
    path, raw = read_data_json("classnames", dataset)
    names = raw.get("classnames")
    if not isinstance(names, list) or not names or not all(isinstance(c, str) and c.strip() for c in names):
        raise DataFileError(f"{path}: 'classnames' must be a non-empty list of non-empty strings")
    for key, value in raw.items():
        if key not in ("classnames", "source") and isinstance(value, list) and len(value) != len(names):
            raise DataFileError(f"{path}: '{key}' has {len(value)} entries but 'classnames' has {len(names)}")
    return raw


def load_classnames(dataset: str) -> List[str]:
    """The prompt class names of ``data/classnames/<dataset>.json``, in label order."""
    return list(load_classnames_file(dataset)["classnames"])


def select_classes(ds: ZSDataset, classes: Sequence[str]) -> ZSDataset:
    """Only the samples of ``classes`` (names, in the given order), relabelled ``0..len(classes)-1``:
    the choice set of a zero-shot test on held-out classes."""
    for c in classes:
        check_choice(f"{ds.name} class", c, ds.classes)
    old = [ds.classes.index(c) for c in classes]
    rows = np.flatnonzero(np.isin(ds.targets, old))
    view = select(ds, rows, classes=list(classes))
    remap = {o: i for i, o in enumerate(old)}
    view.classes = list(classes)
    view._targets = np.array([remap[int(t)] for t in view.targets], dtype=np.int64)
    for attr in ("unseen_classes", "seen_classes"):  # indices into the old class list: no longer valid
        if attr in vars(view):
            delattr(view, attr)
    return view
