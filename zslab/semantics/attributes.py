"""Class-attribute matrices and per-class visual descriptions, read from committed data files.

``data/attributes/<dataset>.json``::

    {"about": "how the values were set",
     "attributes": [{"name": "has_stripes", "meaning": "coat has stripes"}, ...],
     "classes": [... the dataset's class names, in label order ...],
     "matrix": [[one value in [0, 1] per attribute] per class]}

``data/descriptions/<dataset>.json``::

    {"source": "...", "descriptions": {"zebra": ["a zebra, a horse-like animal with ...", ...], ...}}

:func:`load_attributes` returns an :class:`AttributeTable` and :func:`load_descriptions` a
``{class: [descriptions]}`` dict, both in the dataset's label order and both checked against the
dataset's class names (``data/classnames/<dataset>.json``; for ``zsworld`` every
composition of ``data/zsworld/world.json``, color-major, as in ``build_dataset("zsworld", split="all")``).
Use :meth:`AttributeTable.select` to take the rows of a split's classes (e.g. zsworld's unseen ones).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..config import DATA_DIR
from ..datasets.base import DataFileError, read_data_json

__all__ = ["AttributeTable", "load_attributes", "load_descriptions", "expected_classes",
           "list_attribute_datasets", "list_description_datasets"]


@dataclass(frozen=True, eq=False)
class AttributeTable:
    """A class × attribute matrix: ``matrix[i, j]`` is how much ``classes[i]`` has ``attributes[j]``."""

    dataset: str
    classes: List[str]
    attributes: List[str]
    meanings: List[str]
    matrix: np.ndarray  # [num_classes, num_attributes] float64, values in [0, 1], read-only
    about: str = ""
    source: Optional[str] = None  # the file it was read from

    @property
    def shape(self) -> Tuple[int, int]:
        return tuple(self.matrix.shape)  # type: ignore[return-value]

    @property
    def is_binary(self) -> bool:
        """True when every value is exactly 0 or 1."""
        return bool(np.isin(self.matrix, (0.0, 1.0)).all())

    def column(self, attribute: str) -> np.ndarray:
        """The values of one attribute, per class."""
        return self.matrix[:, self._index(self.attributes, attribute, "attribute")]

    def row(self, cls: str) -> Dict[str, float]:
        """``{attribute: value}`` of one class."""
        i = self._index(self.classes, cls, "class")
        return {a: float(v) for a, v in zip(self.attributes, self.matrix[i])}

    def select(self, classes: Sequence[str]) -> "AttributeTable":
        """The rows of ``classes`` (any subset, any order: e.g. a split's ``ds.classes``)."""
        rows = [self._index(self.classes, c, "class") for c in classes]
        m = self.matrix[rows]
        m.setflags(write=False)
        return AttributeTable(self.dataset, [self.classes[r] for r in rows], list(self.attributes),
                              list(self.meanings), m, self.about, self.source)

    def binarize(self, threshold: float = 0.5) -> "AttributeTable":
        """A 0/1 copy: 1 where the value is at least ``threshold``."""
        m = (self.matrix >= threshold).astype(np.float64)
        m.setflags(write=False)
        return AttributeTable(self.dataset, list(self.classes), list(self.attributes), list(self.meanings), m,
                              f"{self.about} [binarized at {threshold}]", self.source)

    def duplicate_rows(self) -> List[Tuple[str, str]]:
        """Pairs of classes whose attribute rows are identical (indistinguishable by attributes)."""
        out = []
        for i in range(len(self.classes)):
            for j in range(i + 1, len(self.classes)):
                if np.array_equal(self.matrix[i], self.matrix[j]):
                    out.append((self.classes[i], self.classes[j]))
        return out

    def to_dict(self) -> Dict[str, Any]:
        return {"about": self.about, "attributes": [{"name": n, "meaning": m} for n, m in
                                                   zip(self.attributes, self.meanings)],
                "classes": list(self.classes), "matrix": self.matrix.tolist()}

    @staticmethod
    def _index(names: Sequence[str], name: str, what: str) -> int:
        try:
            return list(names).index(name)
        except ValueError:
            raise KeyError(f"no {what} {name!r}; known: {list(names)}") from None

    def __repr__(self) -> str:
        kind = "binary" if self.is_binary else "graded"
        return (f"AttributeTable({self.dataset!r}, {len(self.classes)} classes × {len(self.attributes)} "
                f"{kind} attributes)")


# --------------------------------------------------------------------------------------------------------
# Class order of a dataset
# --------------------------------------------------------------------------------------------------------
def expected_classes(dataset: str) -> Optional[List[str]]:
    """The class names, in label order, that ``dataset``'s attribute/description files must list.

    From ``data/classnames/<dataset>.json`` when it exists; for ``zsworld`` every
    composition (color-major); ``None`` when zslab has no fixed class list for the dataset.
    """
    if (DATA_DIR / "classnames" / f"{dataset}.json").exists():
        from ..datasets.base import load_classnames

        return load_classnames(dataset)
    if dataset == "zsworld":
        from ..world import load_world_spec

        spec = load_world_spec()
        return [spec.class_name(comp) for comp in spec.compositions]
    return None


def _check_order(path: Path, dataset: str, classes: List[str]) -> None:
    expected = expected_classes(dataset)
    if expected is None:
        return
    if classes != expected:
        missing = [c for c in expected if c not in classes]
        extra = [c for c in classes if c not in expected]
        if missing or extra:
            detail = f"missing {missing}, not classes of {dataset}: {extra}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(classes, expected)) if a != b)
            detail = f"same names in another order (position {i}: {classes[i]!r}, expected {expected[i]!r})"
        raise DataFileError(f"{path}: classes must be {dataset}'s class names in label order; {detail}")


def _names(kind: str) -> List[str]:
    folder = DATA_DIR / kind
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def list_attribute_datasets() -> List[str]:
    """Datasets with a ``data/attributes/<name>.json``."""
    return _names("attributes")


def list_description_datasets() -> List[str]:
    """Datasets with a ``data/descriptions/<name>.json``."""
    return _names("descriptions")


# --------------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------------
def load_attributes(dataset: str) -> AttributeTable:
    """The class-attribute table of ``data/attributes/<dataset>.json``, validated.

    Checks: attribute names unique and non-empty, each with a meaning; ``classes`` equal to the
    dataset's class names in label order; ``matrix`` of shape [classes, attributes] with finite values in
    [0, 1]. Raises :class:`~zslab.datasets.DataFileError` saying what is wrong.
    """
    path, raw = read_data_json("attributes", dataset)
    for key in ("about", "attributes", "classes", "matrix"):
        if key not in raw:
            raise DataFileError(f"{path}: missing key {key!r} (needs about, attributes, classes, matrix)")
    about = raw["about"]
    if not isinstance(about, str) or not about.strip():
        raise DataFileError(f"{path}: 'about' must say how the values were set")
    attrs = raw["attributes"]
    if not isinstance(attrs, list) or not attrs:
        raise DataFileError(f"{path}: 'attributes' must be a non-empty list of {{name, meaning}}")
    names, meanings = [], []
    for i, a in enumerate(attrs):
        if not (isinstance(a, dict) and isinstance(a.get("name"), str) and a["name"].strip()
                and isinstance(a.get("meaning"), str) and a["meaning"].strip()):
            raise DataFileError(f"{path}: attribute {i} must be {{\"name\": str, \"meaning\": str}}, got {a!r}")
        names.append(a["name"])
        meanings.append(a["meaning"])
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataFileError(f"{path}: attribute names repeat: {dupes}")
    classes = raw["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise DataFileError(f"{path}: 'classes' must be a non-empty list of class names")
    if len(set(classes)) != len(classes):
        raise DataFileError(f"{path}: class names repeat")
    _check_order(path, dataset, classes)
    rows = raw["matrix"]
    if not isinstance(rows, list) or len(rows) != len(classes):
        raise DataFileError(f"{path}: 'matrix' must have one row per class ({len(classes)}), "
                            f"got {len(rows) if isinstance(rows, list) else type(rows).__name__}")
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) != len(names):
            raise DataFileError(f"{path}: matrix row {i} ({classes[i]!r}) must have {len(names)} values "
                                f"(one per attribute), got {len(r) if isinstance(r, list) else r!r}")
        bad = [v for v in r if isinstance(v, bool) or not isinstance(v, (int, float))]
        if bad:
            raise DataFileError(f"{path}: matrix row {i} ({classes[i]!r}) has non-numbers {bad}")
    matrix = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(matrix)) or matrix.min() < 0 or matrix.max() > 1:
        i, j = np.argwhere(~np.isfinite(matrix) | (matrix < 0) | (matrix > 1))[0]
        raise DataFileError(f"{path}: values must lie in [0, 1]; {classes[i]!r} / {names[j]!r} is {matrix[i, j]}")
    matrix.setflags(write=False)
    return AttributeTable(dataset, list(classes), names, meanings, matrix, about, str(path))


def load_descriptions(dataset: str) -> Dict[str, List[str]]:
    """``{class: [short visual descriptions]}`` of ``data/descriptions/<dataset>.json``, in label order.

    Every class of the dataset must have at least one non-empty description, and no other class may
    appear; raises :class:`~zslab.datasets.DataFileError` otherwise.
    """
    path, raw = read_data_json("descriptions", dataset)
    desc = raw.get("descriptions")
    if not isinstance(desc, dict) or not desc:
        raise DataFileError(f"{path}: needs a non-empty object 'descriptions' {{class: [str, ...]}}")
    for cls, items in desc.items():
        if (not isinstance(items, list) or not items
                or not all(isinstance(s, str) and s.strip() for s in items)):
            raise DataFileError(f"{path}: descriptions of {cls!r} must be a non-empty list of non-empty strings")
    expected = expected_classes(dataset)
    if expected is None:
        return {c: list(v) for c, v in desc.items()}
    missing = [c for c in expected if c not in desc]
    extra = [c for c in desc if c not in expected]
    if missing or extra:
        raise DataFileError(f"{path}: descriptions must cover exactly {dataset}'s classes; missing {missing}, "
                            f"unknown {extra}")
    return {c: list(desc[c]) for c in expected}
