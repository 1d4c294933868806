"""Classification by description (Menon & Vondrick, arXiv 2210.07183) and descriptive prompts (CuPL, Pratt et
al., arXiv 2209.03320), with no training.

A class is represented by several short texts about it (descriptors) instead of one templated name. Two ways
to combine them, both here so they are compared on the same texts:

* **mean score** (2210.07183): a class's score is the mean over its descriptors of the image–descriptor
  similarity, so each decision decomposes into per-descriptor evidence, which is the paper's explanation;
* **mean embedding** (CuPL, and CLIP's prompt ensembles): the class vector is the renormalised mean of the
  descriptor embeddings.

Descriptor *sources* are a registry (``DESCRIPTOR_SOURCES``): hand-written sentences standing in for an
LLM's (``data/descriptions/``), phrases from the class-attribute table (``data/attributes/``), and WordNet
glosses of each class's synset (``data/wordnet/class_synsets.json``). Real mode can bring its own JSON
(``{"descriptions": {class: [text, ...]}}``, the format of ``data/descriptions/``) via :func:`load_descriptor_file`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..registry import Registry
from ..evaluation import correct_vector
from ..zeroshot import Templates, build_classifier

Descriptors = Dict[str, List[str]]
AGGREGATIONS = ("mean score", "mean embedding")
#: How a descriptor that is not a full sentence is attached to its class name (the paper: "{c} which has {d}").
DESCRIPTOR_FORM = "{c}, which {d}"

#: Descriptor sources: ``(dataset, classes) -> {class: [texts]}``, each text naming its class.
DESCRIPTOR_SOURCES: Registry[Callable[[str, Sequence[str]], Descriptors]] = Registry("descriptor source")


@DESCRIPTOR_SOURCES.register("hand-written")
def hand_written(dataset: str, classes: Sequence[str]) -> Descriptors:
    """The sentences of ``data/descriptions/<dataset>.json`` (written in the style of an LLM's answers)."""
    from ..semantics.attributes import load_descriptions

    table = load_descriptions(dataset)
    return {c: list(table[c]) for c in classes}


def attribute_phrases(dataset: str, classes: Sequence[str], threshold: float = 0.5) -> Descriptors:
    """Per class, the ``meaning`` of every attribute it has (value >= ``threshold``) in the attribute table:
    descriptor *content*, without the class name."""
    from ..semantics.attributes import load_attributes

    table = load_attributes(dataset)
    meaning = dict(zip(table.attributes, table.meanings))
    out = {}
    for c in classes:
        row = table.row(c)
        phrases = [meaning[a] for a, v in row.items() if float(v) >= threshold]
        if not phrases:
            raise ValueError(f"class {c!r} of {dataset} has no attribute >= {threshold}: no descriptor to give it")
        out[c] = phrases
    return out


def attach_names(content: Mapping[str, Sequence[str]], form: str = DESCRIPTOR_FORM) -> Descriptors:
    """``form`` filled with each class name ``{c}`` and each of its descriptor phrases ``{d}``."""
    return {c: [form.replace("{c}", c).replace("{d}", d) for d in phrases] for c, phrases in content.items()}


@DESCRIPTOR_SOURCES.register("attributes")
def from_attributes(dataset: str, classes: Sequence[str]) -> Descriptors:
    """One descriptor per attribute the class has, in the paper's form ("bear, which has a pair of wings")."""
    return attach_names(attribute_phrases(dataset, classes))


@DESCRIPTOR_SOURCES.register("WordNet gloss")
def from_wordnet(dataset: str, classes: Sequence[str]) -> Descriptors:
    """The definition of the class's WordNet synset as its one descriptor ("zebra, which is any of several ...")."""
    from ..semantics.wordnet import class_glosses

    glosses = class_glosses(dataset)
    return {c: [f"{c}: {glosses[c]}"] for c in classes}


def load_descriptor_file(path: str, classes: Sequence[str]) -> Descriptors:
    """Descriptors from a JSON file in the format of ``data/descriptions/`` (real mode: e.g. the paper's
    released GPT-3 descriptors converted to ``{"descriptions": {class: [text, ...]}}``)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    table = raw.get("descriptions", raw) if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        raise ValueError(f"{path}: expected {{'descriptions': {{class: [text, ...]}}}}")
    missing = [c for c in classes if not table.get(c)]
    if missing:
        raise ValueError(f"{path}: no descriptors for classes {missing[:5]}")
    return {c: [str(t) for t in table[c]] for c in classes}


def shuffled_content(content: Mapping[str, Sequence[str]], seed: int = 0) -> Dict[str, List[str]]:
    """The control: each class gets the descriptor phrases of another class (a seeded derangement), so names
    stay and class-specific knowledge goes; what is left is the effect of longer, descriptive prompts."""
    classes = list(content)
    if len(classes) < 2:
        raise ValueError("shuffling descriptors needs at least 2 classes")
    order = np.random.default_rng(seed).permutation(len(classes))
    donor = {classes[order[i]]: classes[order[(i + 1) % len(classes)]] for i in range(len(classes))}
    return {c: list(content[donor[c]]) for c in classes}


@dataclass(frozen=True)
class PromptHead:
    """A zero-shot head: per-class texts (or templates) and how their similarities are combined."""

    prompts: Templates
    aggregation: str = "mean embedding"

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; valid: {', '.join(AGGREGATIONS)}")

    def classifier(self, encode_text: Callable[[Sequence[str]], torch.Tensor], classes: Sequence[str]) -> torch.Tensor:
        """``[C, D]``; for ``mean score`` the rows are the plain mean of unit descriptor vectors, so an image's
        logit is the mean of its descriptor similarities (scaled)."""
        prompts = {c: self.prompts[c] for c in classes} if isinstance(self.prompts, Mapping) else self.prompts
        return build_classifier(encode_text, classes, prompts, renormalize=self.aggregation == "mean embedding")


def top1_correct(encode_text: Callable[[Sequence[str]], torch.Tensor], classes: Sequence[str],
                 heads: Mapping[str, PromptHead], features: torch.Tensor, labels: torch.Tensor) -> Dict[str, np.ndarray]:
    """Per head, 0/1 per image on the same images (paired comparisons)."""
    return {name: correct_vector(features, labels, head.classifier(encode_text, classes)) for name, head in heads.items()}


def explain(encode_text: Callable[[Sequence[str]], torch.Tensor], classes: Sequence[str], descriptors: Descriptors,
            features: torch.Tensor, labels: torch.Tensor, items: Sequence[int], top: int = 3) -> pd.DataFrame:
    """The paper's explanation of each decision: for each image in ``items``, the predicted class (mean
    descriptor score) and the ``top`` descriptors behind it, each with its similarity to the image."""
    x = torch.nn.functional.normalize(features.float(), dim=-1)
    rows = []
    per_class = {c: torch.nn.functional.normalize(encode_text(descriptors[c]).float(), dim=-1) for c in classes}
    for i in items:
        sims = {c: (per_class[c] @ x[i]).numpy() for c in classes}
        predicted = max(classes, key=lambda c: sims[c].mean())
        order = np.argsort(-sims[predicted])[:top]
        for rank, j in enumerate(order):
            rows.append({"image": int(i), "true class": classes[int(labels[i])], "predicted": predicted,
                         "class score": float(sims[predicted].mean()), "rank": rank + 1,
                         "descriptor": descriptors[predicted][j], "similarity": float(sims[predicted][j])})
    return pd.DataFrame(rows)
