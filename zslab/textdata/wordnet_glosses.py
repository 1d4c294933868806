"""A real text-classification task from WordNet: noun glosses labelled by their lexicographer file.

Each item is the *definition* of a WordNet 3.0 noun synset (nltk's ``definition()``: the gloss with its
quoted usage examples stripped); its label is the synset's lexicographer file (``noun.animal`` →
``animal``, ...). The classes, their plain-word names and a short human description of each are in
``data/wordnet/gloss_task.json``.

Honesty rules:

* **No lemma leak.** A synset is left out when its definition contains one of its own lemmas (any of
  its lemma names, underscores read as spaces, case-insensitive, as whole words, also with a plural
  ``s``/``es``): "dog: a member of the genus Canis ..." stays, a gloss that names its own word goes.
* **Fixed splits.** Whether a synset is in ``validation`` or ``test`` depends only on its name:
  the first 8 bytes of SHA-256(synset name), read as an integer in [0, 1), below
  ``validation_fraction`` (0.5) → validation, else test. The same gloss is always in the same split,
  whatever the seed, the sample size or the classes chosen.
* **Seeds select the sample** only: ``n_per_class`` glosses per class drawn without replacement from
  the class's split (``np.random.default_rng(seed)``), so classes are balanced.

The full gloss table (about 46,000 glosses of the listed classes; ~15 s to extract with nltk) is built
once and kept under ``<cache>/textdata/``, keyed by the task file, the WordNet ``data.noun`` hash and
``TABLE_VERSION``.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..config import cache_dir, data_file
from ..errors import check_choice
from ..io import atomic_write_json

SPLITS = ("validation", "test")
#: Bump when the extraction or the lemma filter changes: every cached table then misses.
TABLE_VERSION = 1

_lock = threading.Lock()
_tables: Dict[str, List[Dict[str, str]]] = {}


@dataclass
class TextTask:
    """A text-classification task: ``texts[i]`` has label ``labels[i]``, an index into ``classes``."""

    texts: List[str]
    labels: np.ndarray
    classes: List[str]
    descriptions: List[str]
    split: str
    identity: Dict[str, Any]
    synsets: List[str] = field(default_factory=list)  # the WordNet synset of each text (same order)

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def name(self) -> str:
        return str(self.identity.get("task", "text task"))


def task_spec() -> Dict[str, Any]:
    """The committed task definition (``data/wordnet/gloss_task.json``)."""
    return json.loads(data_file("wordnet", "gloss_task.json").read_text(encoding="utf-8"))


def split_of(synset_name: str, validation_fraction: float = 0.5) -> str:
    """``validation`` or ``test``, from a stable hash of the synset name alone."""
    u = int.from_bytes(hashlib.sha256(synset_name.encode("utf-8")).digest()[:8], "big") / 2.0 ** 64
    return "validation" if u < validation_fraction else "test"


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def mentions_lemma(definition: str, lemmas: Sequence[str]) -> bool:
    """Does ``definition`` contain one of ``lemmas`` as whole words (case-insensitive, plural s/es too)?"""
    padded = _words(definition)
    for lemma in lemmas:
        w = _words(lemma.replace("_", " ")).strip()
        if w and any(f" {w}{suffix} " in padded for suffix in ("", "s", "es")):
            return True
    return False


def _table_key(spec: Dict[str, Any]) -> str:
    from ..semantics.wordnet import data_noun_digest

    blob = json.dumps({"spec": spec, "data_noun": data_noun_digest(), "version": TABLE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def gloss_table(spec: Optional[Dict[str, Any]] = None) -> List[Dict[str, str]]:
    """Every usable gloss of the task's classes as ``{"synset", "lexname", "definition"}``, sorted by synset
    name (cached in memory and on disk)."""
    spec = spec or task_spec()
    key = _table_key(spec)
    with _lock:
        if key in _tables:
            return _tables[key]
        path = cache_dir("textdata") / f"wordnet_glosses_{key}.json"
        rows = None
        if path.is_file():
            try:
                rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
            except (ValueError, KeyError):
                rows = None  # damaged: rebuild
        if rows is None:
            rows = _extract(spec)
            atomic_write_json(path, {"version": TABLE_VERSION, "rows": rows})
        _tables[key] = rows
        return rows


def _extract(spec: Dict[str, Any]) -> List[Dict[str, str]]:
    from ..semantics.wordnet import load_wordnet

    wn = load_wordnet()
    wanted = {entry["lexname"] for entry in spec["labels"]}
    rows = []
    for s in wn.all_synsets("n"):
        lexname = s.lexname()
        if lexname not in wanted:
            continue
        definition = s.definition().strip()
        if not definition or mentions_lemma(definition, s.lemma_names()):
            continue
        rows.append({"synset": s.name(), "lexname": lexname, "definition": definition})
    rows.sort(key=lambda r: r["synset"])
    return rows


def split_counts(spec: Optional[Dict[str, Any]] = None) -> Dict[str, Dict[str, int]]:
    """Usable glosses per class label in each split."""
    spec = spec or task_spec()
    label_of = {e["lexname"]: e["label"] for e in spec["labels"]}
    frac = float(spec.get("validation_fraction", 0.5))
    counts = {s: {e["label"]: 0 for e in spec["labels"]} for s in SPLITS}
    for r in gloss_table(spec):
        counts[split_of(r["synset"], frac)][label_of[r["lexname"]]] += 1
    return counts


def load_gloss_task(n_per_class: int = 200, seed: int = 0, split: str = "test") -> TextTask:
    """WordNet noun glosses of the ``split`` (``validation`` or ``test``), ``n_per_class`` per class (0 = all,
    then unbalanced), drawn with ``seed``. Texts are ordered by class, then by synset name."""
    check_choice("split", split, SPLITS)
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 0:
        raise ValueError(f"n_per_class must be a non-negative integer, got {n_per_class!r}")
    spec = task_spec()
    frac = float(spec.get("validation_fraction", 0.5))
    entries = spec["labels"]
    by_lexname: Dict[str, List[Dict[str, str]]] = {e["lexname"]: [] for e in entries}
    for r in gloss_table(spec):
        if split_of(r["synset"], frac) == split:
            by_lexname[r["lexname"]].append(r)
    short = {e["label"]: len(by_lexname[e["lexname"]]) for e in entries
             if n_per_class and len(by_lexname[e["lexname"]]) < n_per_class}
    if short:
        raise ValueError(f"n_per_class={n_per_class} exceeds the {split} glosses of {short}; use at most "
                         f"{min(short.values())} (or 0 for all)")
    rng = np.random.default_rng(seed)
    texts, labels, synsets = [], [], []
    for ci, e in enumerate(entries):
        pool = by_lexname[e["lexname"]]
        chosen = pool if not n_per_class else [pool[i] for i in np.sort(rng.choice(len(pool), n_per_class, replace=False))]
        texts += [r["definition"] for r in chosen]
        synsets += [r["synset"] for r in chosen]
        labels += [ci] * len(chosen)
    identity = {"task": "wordnet_glosses", "version": TABLE_VERSION, "split": split, "n_per_class": int(n_per_class),
                "seed": int(seed), "classes": [e["lexname"] for e in entries],
                "texts": hashlib.sha256(json.dumps(synsets).encode()).hexdigest()[:24]}
    return TextTask(texts=texts, labels=np.asarray(labels, dtype=np.int64), classes=[e["label"] for e in entries],
                    descriptions=[e["description"] for e in entries], split=split, identity=identity, synsets=synsets)
