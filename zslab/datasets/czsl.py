"""MIT-States and UT-Zappos in the compositional zero-shot layout (Purushwalkam et al., ICCV 2019, “Task-driven
modular networks”; the layout the CZSL benchmark code, ExplainableML/czsl, reads).

Under one dataset folder (``mit-states/`` or ``ut-zap50k/``):

* ``images/<attr>_<obj>/<file>.jpg``: the images (MIT-States' original folders are ``"attr obj"``; the download
  script renames them);
* ``compositional-split-natural/{train,val,test}_pairs.txt``: one ``attr obj`` pair per line;
* ``metadata_compositional-split-natural.t7``: a ``torch.save``d list of ``{"image": path under images/,
  "attr", "obj", "set": train|val|test|NA}``.

As the benchmark code does, images whose attribute or set is ``NA`` or whose pair is in no split file are skipped.
Nothing is downloaded: the folder must be there.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Tuple

from .base import DataFileError

#: The split the CZSL papers report on.
CZSL_SPLIT = "compositional-split-natural"
SETS = ("train", "val", "test")
Pair = Tuple[str, str]


@dataclass
class CZSLData:
    """Attribute and object vocabularies (sorted), each set's pairs, and the usable images."""

    root: Path
    attrs: List[str]
    objs: List[str]
    pairs: Dict[str, List[Pair]]          # train / val / test -> pairs of that split file
    images: List[Dict[str, str]]          # {"path", "attr", "obj", "set"}


def _read_pairs(path: Path) -> List[Pair]:
    if not path.is_file():
        raise DataFileError(f"{path} not found: expected the CZSL layout <root>/{CZSL_SPLIT}/{{train,val,test}}"
                            "_pairs.txt (MIT-States or UT-Zappos as the czsl download script leaves them)")
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        words = line.split()
        if not words:
            continue
        if len(words) != 2:
            raise DataFileError(f"{path}, line {number}: expected 'attr obj', got {line!r}")
        pairs.append((words[0], words[1]))
    return pairs


def read_czsl(root: str | Path, split: str = CZSL_SPLIT) -> CZSLData:
    """The split files and metadata of a CZSL dataset folder, filtered as the benchmark code filters them."""
    import torch

    root = Path(root)
    pairs = {name: _read_pairs(root / split / f"{name}_pairs.txt") for name in SETS}
    every = {p for ps in pairs.values() for p in ps}
    meta_path = root / f"metadata_{split}.t7"
    if not meta_path.is_file():
        raise DataFileError(f"{meta_path} not found: the CZSL metadata (a list of image/attr/obj/set records)")
    try:
        metadata = torch.load(meta_path, weights_only=True)
    except Exception as error:
        raise DataFileError(f"{meta_path} could not be read as a list of records: {error}") from error
    images = []
    for record in metadata:
        try:
            attr, obj, which, image = record["attr"], record["obj"], record["set"], record["image"]
        except (KeyError, TypeError) as error:
            raise DataFileError(f"{meta_path}: records need image, attr, obj and set; got {record!r}") from error
        if attr == "NA" or which == "NA" or (attr, obj) not in every:
            continue
        images.append({"path": str(root / "images" / image), "attr": attr, "obj": obj, "set": which})
    attrs = sorted({a for a, _ in every})
    objs = sorted({o for _, o in every})
    return CZSLData(root, attrs, objs, pairs, images)
