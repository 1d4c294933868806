"""Datasets that are folders of image files: any ``root/<class>/*.jpg`` (``imagefolder``) and ImageNet.

Neither can be downloaded by zslab: ``root`` must point at the images.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..config import cache_dir
from ..errors import MissingAssetError, check_choice
from . import DATASETS, dataset_factory
from .base import FolderDataset, folder_fingerprint, load_classnames_file, load_templates
from .formats import DatasetFormatError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".gif", ".tif", ".tiff",
                              ".webp"})
WNID = re.compile(r"^n\d{8}$")


def _visible_dirs(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_under(folder: Path) -> List[Path]:
    """Image files anywhere under ``folder`` (following the folder tree), sorted, hidden ones skipped."""
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _scan(folder: Path, class_dirs: Sequence[Path]) -> Tuple[List[Tuple[Path, int]], List[str]]:
    samples: List[Tuple[Path, int]] = []
    empty: List[str] = []
    for label, d in enumerate(class_dirs):
        files = _images_under(d)
        if not files:
            empty.append(d.name)
        samples.extend((f, label) for f in files)
    return samples, empty


# --------------------------------------------------------------------------------------------------------
# imagefolder
# --------------------------------------------------------------------------------------------------------
@DATASETS.register("imagefolder")
@dataset_factory(splits=("test", "all"), classnames_file=False)
def imagefolder(root: Optional[str] = None, split: str = "test", template_set: Optional[str] = None
                ) -> FolderDataset:
    """Any ``root/<class>/**/*.{jpg,jpeg,png,...}``: one class per sub-folder, in sorted folder order;
    class names are the folder names with ``_`` as spaces. The whole folder is one split ("test"/"all")."""
    check_choice("imagefolder split", split, ("test", "all"))
    if root is None:
        raise MissingAssetError("imagefolder needs root=<folder with one sub-folder of images per class>")
    folder = Path(root).expanduser().resolve()
    if not folder.is_dir():
        raise MissingAssetError(f"imagefolder: {folder} is not a folder; point root at a folder with one "
                                "sub-folder of images per class (root/<class>/*.jpg)")
    class_dirs = _visible_dirs(folder)
    if not class_dirs:
        raise MissingAssetError(f"imagefolder: {folder} has no class sub-folders (expected root/<class>/*.jpg)")
    samples, empty = _scan(folder, class_dirs)
    if not samples:
        raise MissingAssetError(f"imagefolder: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) under "
                                f"{folder}'s class folders {[d.name for d in class_dirs]}")
    if empty:
        warnings.warn(f"imagefolder {folder}: class folders without images: {empty}", stacklevel=3)
    classes = [d.name.replace("_", " ") for d in class_dirs]
    identity = {"dataset": "imagefolder", "split": split, "root": str(folder),
                "class_folders": [d.name for d in class_dirs],
                **folder_fingerprint([p for p, _ in samples], folder)}
    return FolderDataset(samples, name="imagefolder", split=split, classes=classes,
                         templates=load_templates("imagefolder", template_set), identity=identity)


# --------------------------------------------------------------------------------------------------------
# imagenet
# --------------------------------------------------------------------------------------------------------
def imagenet_wnid_names() -> Dict[str, str]:
    """WordNet id → CLIP class name, for all 1000 ImageNet-1k classes (``data/classnames/imagenet.json``)."""
    raw = load_classnames_file("imagenet")
    wnids = raw.get("wnids")
    if not isinstance(wnids, list) or len(wnids) != len(raw["classnames"]):
        raise DatasetFormatError("data/classnames/imagenet.json needs 'wnids' in the order of 'classnames'")
    return dict(zip(wnids, raw["classnames"]))


_IMAGENET_HOW_TO = ("ImageNet cannot be downloaded automatically: obtain ILSVRC2012 yourself and pass "
                    "root=<the ImageNet root containing val/ (and train/)> or root=<the val folder itself>, "
                    "whose sub-folders are WordNet ids (val/n01440764/*.JPEG, ...; sort the flat val "
                    "archive into such folders first)")


@DATASETS.register("imagenet")
@dataset_factory(splits=("test", "val", "train"))
def imagenet(root: Optional[str] = None, split: str = "test", template_set: Optional[str] = None
             ) -> FolderDataset:
    """ImageNet-1k from ``root`` (the ImageNet root, or directly a folder of wnid sub-folders).

    ``split`` "test" and "val" both mean the 50,000-image validation set (the standard zero-shot test set;
    the official test labels are not public), "train" the training set. Labels index the wnids present,
    in sorted order (the standard order when all 1000 are present); a folder with only some wnids works,
    with a warning.
    """
    check_choice("imagenet split", split, ("test", "val", "train"))
    base = Path(root).expanduser().resolve() if root is not None else cache_dir("datasets").resolve() / "imagenet"
    if not base.is_dir():
        raise MissingAssetError(f"imagenet: no folder {base}. {_IMAGENET_HOW_TO}")
    sub = "train" if split == "train" else "val"
    if any(WNID.match(d.name) for d in _visible_dirs(base)):
        folder = base  # root is itself the folder of wnid sub-folders
    elif (base / sub).is_dir():
        folder = base / sub
    else:
        raise MissingAssetError(f"imagenet: {base} has neither wnid sub-folders nor a {sub}/ folder. "
                                f"{_IMAGENET_HOW_TO}")
    class_dirs = _visible_dirs(folder)
    if not class_dirs:
        loose = [p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS][:3]
        hint = f" (found loose images such as {loose}: sort them into wnid folders)" if loose else ""
        raise MissingAssetError(f"imagenet: {folder} has no wnid sub-folders{hint}. {_IMAGENET_HOW_TO}")
    names = imagenet_wnid_names()
    unknown = [d.name for d in class_dirs if d.name not in names]
    if unknown:
        raise DatasetFormatError(f"imagenet: {folder} has sub-folder(s) {unknown[:10]} that are not ImageNet-1k "
                                 f"WordNet ids (like 'n01440764'); remove them or point root elsewhere")
    if len(class_dirs) < len(names):
        warnings.warn(f"imagenet {folder}: only {len(class_dirs)} of the {len(names)} classes are present; "
                      "labels index the present classes (sorted wnid order), so accuracies are over those only",
                      stacklevel=3)
    samples, empty = _scan(folder, class_dirs)
    if not samples:
        raise MissingAssetError(f"imagenet: no image files in the wnid folders of {folder}. {_IMAGENET_HOW_TO}")
    if empty:
        warnings.warn(f"imagenet {folder}: wnid folders without images: {empty[:10]}", stacklevel=3)
    wnids = [d.name for d in class_dirs]
    identity = {"dataset": "imagenet", "split": split, "root": str(folder), "wnids": wnids,
                **folder_fingerprint([p for p, _ in samples], folder)}
    return FolderDataset(samples, name="imagenet", split=split, classes=[names[w] for w in wnids],
                         templates=load_templates("imagenet", template_set), identity=identity)
