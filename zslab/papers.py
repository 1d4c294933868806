"""Paper metadata: one YAML per notebook, ``data/papers/<id>.yaml``, beside ``notebooks/<id>.ipynb``.

Each file describes the paper claim its notebook reproduces::

    id: clip_prompt_engineering            # = the file stem = the notebook stem
    title: Learning Transferable Visual Models From Natural Language Supervision
    arxiv: "2103.00020"                    # a quoted string (unquoted, YAML reads a float)
    claim: Prompt ensembling raises zero-shot accuracy over the bare class name.
    mirrors: Figure 4
    family: training-free zero-shot
    related_arxiv: ["2203.05557"]          # optional: other papers whose claim the notebook also checks
    targets:                               # the paper's own numbers, shown beside ours, never as ours
      - metric: gain                       # the recorded metric this number corresponds to ...
        labels: {comparison: ensemble}     # ... and the labels that pick its row (the across-seed row)
        value: 5.0
        unit: pt
        scale: 100                         # ours × scale is in the paper's unit (fractions → points)
        tolerance: 1.0                     # real mode: |ours − paper| <= tolerance counts as a match
        compare: effect                    # effect: offline compares direction and size; level: real mode only
        setting: "ImageNet, ViT-L/14"
        source: "Fig. 4"
    test_parameters: {n_eval: 64}          # overrides the tests use for a fast run ({} if none)
    expected:                              # numbers the test parameters give, pinned for the tests
      - {metric: top1, labels: {head: ensemble}, value: 0.52, tolerance: 0.03}
    notes: optional free text

Where things are looked up (first match wins):

* papers: the ``papers_dir`` argument, else ``$ZSLAB_PAPERS_DIR``, else ``config.DATA_DIR / "papers"``;
* notebooks: the ``notebooks_dir`` argument, else ``$ZSLAB_NOTEBOOKS_DIR``, else
  ``config.DATA_DIR.parent / "notebooks"`` (the repository's ``notebooks/``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import yaml

from . import config
from .errors import InvalidChoiceError, ZslabError

PathLike = Union[str, "os.PathLike[str]"]

REQUIRED_FIELDS = ("id", "title", "arxiv", "claim", "mirrors", "family", "targets", "test_parameters")
OPTIONAL_FIELDS = ("notes", "related_arxiv", "expected")
TARGET_REQUIRED = ("metric", "value", "source")
TARGET_OPTIONAL = ("unit", "setting", "labels", "scale", "tolerance", "compare")
TARGET_COMPARE = ("effect", "level")
EXPECTED_REQUIRED = ("metric", "value", "tolerance")
EXPECTED_OPTIONAL = ("labels",)


class PaperMetadataError(ZslabError, ValueError):
    """A paper YAML is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Target:
    """A number the paper reports (with where it reports it). A target, never a measurement of ours.

    ``metric`` and ``labels`` name the recorded number of ours it corresponds to; ``scale`` converts ours
    into the paper's unit; ``tolerance`` (in the paper's unit) is how close a real-mode run must come to
    count as matching it; ``compare`` says whether an offline run can be compared at all: ``effect`` (a
    gain: its direction and size are compared) or ``level`` (an accuracy of the real setting: real mode only).
    """

    metric: str
    value: Any
    source: str
    unit: str = ""
    setting: str = ""
    labels: Dict[str, Any] = field(default_factory=dict)
    scale: float = 1.0
    tolerance: Optional[float] = None
    compare: str = "effect"


@dataclass(frozen=True)
class Expected:
    """A number the notebook gives at its test parameters, pinned so that the tests notice a change."""

    metric: str
    value: float
    tolerance: float
    labels: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    arxiv: str
    claim: str
    mirrors: str
    family: str
    targets: List[Target] = field(default_factory=list)
    test_parameters: Dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    related_arxiv: List[str] = field(default_factory=list)
    expected: List[Expected] = field(default_factory=list)
    path: Optional[Path] = None

    @property
    def arxiv_url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"


def resolve_papers_dir(override: Optional[PathLike] = None) -> Path:
    """The folder holding the paper YAMLs (see the module docstring for the lookup order)."""
    if override:
        return Path(override)
    env = os.environ.get("ZSLAB_PAPERS_DIR")
    return Path(env) if env else Path(config.DATA_DIR) / "papers"


def resolve_notebooks_dir(override: Optional[PathLike] = None) -> Path:
    """The folder holding the paper notebooks (see the module docstring for the lookup order)."""
    if override:
        return Path(override)
    env = os.environ.get("ZSLAB_NOTEBOOKS_DIR")
    return Path(env) if env else Path(config.DATA_DIR).parent / "notebooks"


def notebook_path(paper_id: str, notebooks_dir: Optional[PathLike] = None) -> Path:
    """``notebooks/<id>.ipynb``; raises naming the notebooks that exist if it is absent."""
    folder = resolve_notebooks_dir(notebooks_dir)
    path = folder / f"{paper_id}.ipynb"
    if not path.is_file():
        raise InvalidChoiceError(f"unknown notebook id {paper_id!r} (no {path}); valid ids: "
                                 f"{', '.join(list_notebooks(folder)) or '(none)'}")
    return path


def list_notebooks(notebooks_dir: Optional[PathLike] = None) -> List[str]:
    """Stems of the ``*.ipynb`` files in the notebooks folder, sorted."""
    folder = resolve_notebooks_dir(notebooks_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def paper_ids(papers_dir: Optional[PathLike] = None) -> List[str]:
    """Ids of the paper YAMLs (file stems), without parsing them."""
    folder = resolve_papers_dir(papers_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yaml") if not p.name.startswith("."))


def list_papers(papers_dir: Optional[PathLike] = None) -> List[Paper]:
    """Every paper YAML in the folder, parsed and validated, sorted by id."""
    return [load_paper(_yaml_path(pid, papers_dir)) for pid in paper_ids(papers_dir)]


def get_paper(paper_id: str, papers_dir: Optional[PathLike] = None) -> Paper:
    """The paper ``paper_id``; an unknown id raises naming the valid ids."""
    path = _yaml_path(paper_id, papers_dir)
    if not path.is_file():
        valid = paper_ids(papers_dir)
        raise InvalidChoiceError(f"unknown paper id {paper_id!r} (no {path}); valid ids: "
                                 f"{', '.join(valid) or '(none)'}")
    return load_paper(path)


def _yaml_path(paper_id: str, override: Optional[PathLike]) -> Path:
    return resolve_papers_dir(override) / f"{paper_id}.yaml"


def load_paper(path: PathLike) -> Paper:
    """Parse and validate one paper YAML; errors name the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PaperMetadataError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PaperMetadataError(f"{path}: expected a mapping of fields {list(REQUIRED_FIELDS)}, got {type(data).__name__}")

    def fail(fld: str, msg: str) -> PaperMetadataError:
        return PaperMetadataError(f"{path}: field {fld!r}: {msg}")

    unknown = sorted(set(data) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
    if unknown:
        raise fail(unknown[0], f"unknown field; valid fields: {', '.join(REQUIRED_FIELDS + OPTIONAL_FIELDS)}")
    for fld in REQUIRED_FIELDS:
        if fld not in data or data[fld] is None:
            raise fail(fld, "missing (required fields: " + ", ".join(REQUIRED_FIELDS) + ")")
    for fld in ("id", "title", "claim", "mirrors", "family"):
        if not isinstance(data[fld], str) or not data[fld].strip():
            raise fail(fld, f"must be a non-empty string, got {data[fld]!r}")
    if not isinstance(data["arxiv"], str) or not data["arxiv"].strip():
        raise fail("arxiv", f"must be a string; quote it, e.g. arxiv: \"2103.00020\" (got {data['arxiv']!r})")
    if data["id"] != path.stem:
        raise fail("id", f"{data['id']!r} differs from the file name {path.stem!r}; they must match "
                         f"(and match notebooks/{path.stem}.ipynb)")
    if not isinstance(data["test_parameters"], dict):
        raise fail("test_parameters", f"must be a mapping of parameter name to value ({{}} if none), "
                                      f"got {data['test_parameters']!r}")
    notes = data.get("notes") or ""
    if not isinstance(notes, str):
        raise fail("notes", f"must be a string, got {notes!r}")
    if not isinstance(data["targets"], list):
        raise fail("targets", "must be a list of {metric, value, unit, setting, source}")
    targets = []
    for where, t in _checked_entries(data["targets"], "targets", TARGET_REQUIRED, TARGET_OPTIONAL, fail,
                                     "the paper's number needs metric, value and source"):
        labels = t.get("labels") or {}
        if not isinstance(labels, dict):
            raise fail(f"{where}.labels", f"must be a mapping of label name to value, got {labels!r}")
        compare = t.get("compare", "effect")
        if compare not in TARGET_COMPARE:
            raise fail(f"{where}.compare", f"unknown value {compare!r}; valid: {', '.join(TARGET_COMPARE)}")
        targets.append(Target(metric=str(t["metric"]), value=t["value"], source=str(t["source"]),
                              unit=str(t.get("unit") or ""), setting=str(t.get("setting") or ""), labels=dict(labels),
                              scale=_number(t.get("scale", 1.0), f"{where}.scale", fail),
                              tolerance=None if t.get("tolerance") is None
                              else _number(t["tolerance"], f"{where}.tolerance", fail), compare=compare))
    related = data.get("related_arxiv") or []
    if not isinstance(related, list) or not all(isinstance(a, str) and a.strip() for a in related):
        raise fail("related_arxiv", f"must be a list of quoted arXiv ids, e.g. [\"2203.05557\"], got {related!r}")
    expected = []
    for where, x in _checked_entries(data.get("expected") or [], "expected", EXPECTED_REQUIRED, EXPECTED_OPTIONAL,
                                     fail, "a pinned number needs metric, value and tolerance"):
        expected.append(Expected(str(x["metric"]), _number(x["value"], f"{where}.value", fail),
                                 _number(x["tolerance"], f"{where}.tolerance", fail), dict(x.get("labels") or {})))
    return Paper(id=data["id"], title=data["title"].strip(), arxiv=data["arxiv"].strip(),
                 claim=data["claim"].strip(), mirrors=data["mirrors"].strip(), family=data["family"].strip(),
                 targets=targets, test_parameters=dict(data["test_parameters"]), notes=notes.strip(),
                 related_arxiv=[a.strip() for a in related], expected=expected, path=path)


def _checked_entries(entries: Any, field: str, required: tuple, optional: tuple,
                     fail: Callable[[str, str], Exception], why: str):
    """``(where, entry)`` for each mapping of a list field, after checking its field names and required values."""
    for i, entry in enumerate(entries):
        where = f"{field}[{i}]"
        if not isinstance(entry, dict):
            raise fail(where, f"must be a mapping {{{', '.join(required + optional)}}}")
        bad = sorted(set(entry) - set(required) - set(optional))
        if bad:
            raise fail(f"{where}.{bad[0]}", f"unknown field; valid: {', '.join(required + optional)}")
        for key in required:
            if entry.get(key) is None or entry.get(key) == "":
                raise fail(f"{where}.{key}", f"missing ({why})")
        yield where, entry


def _number(value: Any, where: str, fail: Callable[[str, str], Exception]) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise fail(where, f"must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise fail(where, f"must be finite, got {value!r}")
    return out
