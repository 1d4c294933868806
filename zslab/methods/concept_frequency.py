"""Zero-shot accuracy against pretraining concept frequency, and REAL-Prompt (Parashar et al., *The Neglected
Tails in Vision-Language Models*, CVPR 2024, arXiv 2401.12425).

The paper counts how often each concept (any of its synonyms) occurs in the pretraining captions, finds that
zero-shot accuracy follows that frequency, and proposes REAL-Prompt: prompt with the concept's *most frequent*
synonym in the pretraining data instead of the name the benchmark happens to use.

Offline the concepts are zsworld's factor values (8 colors, 4 patterns, 6 shapes, drawn with Zipf-like
frequencies) and the counts come from the model's own training captions (:func:`training_corpus_statistics`).
A concept is recognised by a *factor head*: its class vector is the mean over every composition containing it
("a photo of a red solid circle.", "... red striped circle.", ...), so the other factors are averaged out.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from ..evaluation import correct_vector
from ..zeroshot import build_classifier

if TYPE_CHECKING:
    import pandas as pd


def training_corpus_statistics(lm) -> List[Dict]:
    """Per concept, how often it occurs in the training captions of the zslab offline model ``lm`` (its own
    corpus: the world, split, size and seed of its manifest), cached by the model's training key."""
    from ..config import cache_dir
    from ..io import atomic_write_json
    from ..world import corpus_statistics, load_world_spec

    manifest = getattr(lm, "manifest", None) or {}
    if "world" not in manifest or "cache_key" not in manifest:
        raise ValueError(f"{getattr(lm, 'name', lm)!r} is not one of zslab's offline CLIPs: its training captions "
                         "are unknown, so concept frequencies cannot be counted")
    path = cache_dir("corpus_statistics") / f"{manifest['cache_key']}.json"
    if path.is_file():
        return json.loads(path.read_text())
    from ..train.zoo import training_corpus

    rows = corpus_statistics(load_world_spec(), training_corpus(manifest["world"], int(manifest["seed"])))
    atomic_write_json(path, rows)
    return rows


def most_frequent_names(stats: Sequence[Mapping]) -> Dict[str, str]:
    """REAL-Prompt's choice: each concept's most frequent word (itself or a synonym) in the captions."""
    out = {}
    for row in stats:
        counts = {row["concept"]: row["n_exact_word"], **row["synonyms"]}
        out[row["concept"]] = max(counts, key=lambda w: (counts[w], w == row["concept"]))
    return out


def factor_prompts(spec, factor: str, names: Mapping[str, str], template: str = "a photo of a {c}.") -> Dict[str, List[str]]:
    """Per concept of ``factor``, ``template`` filled with every composition that contains it, the concept
    written as ``names[concept]`` (other factors in their canonical words)."""
    factors = ("color", "pattern", "shape")
    if factor not in factors:
        raise ValueError(f"unknown factor {factor!r}; valid: {', '.join(factors)}")
    values = {f: list(spec.factor_values(f)) for f in factors}
    out = {}
    for concept in values[factor]:
        prompts = []
        for color in ([concept] if factor == "color" else values["color"]):
            for pattern in ([concept] if factor == "pattern" else values["pattern"]):
                for shape in ([concept] if factor == "shape" else values["shape"]):
                    words = {"color": color, "pattern": pattern, "shape": shape}
                    words[factor] = names.get(concept, concept)
                    prompts.append(template.replace("{c}", f"{words['color']} {words['pattern']} {words['shape']}"))
        out[concept] = prompts
    return out


def concept_labels(classes: Sequence[str], labels: torch.Tensor, factor: str, spec) -> np.ndarray:
    """Each image's concept index within ``factor``, from its composition's (canonical) class name."""
    position = {"color": 0, "pattern": 1, "shape": 2}[factor]
    values = list(spec.factor_values(factor))
    per_class = [values.index(name.split()[position]) for name in classes]
    return np.asarray(per_class)[labels.numpy()]


def factor_correct(encode_text, features: torch.Tensor, concept_of_image: np.ndarray,
                   prompts: Mapping[str, Sequence[str]]) -> np.ndarray:
    """0/1 per image: is the image's concept the most similar among the factor's concepts?"""
    concepts = list(prompts)
    classifier = build_classifier(encode_text, concepts, {c: list(p) for c, p in prompts.items()})
    return correct_vector(features, torch.as_tensor(concept_of_image), classifier)


def within_group_slope(x: Sequence[float], y: Sequence[float], groups: Sequence[str]) -> float:
    """Least-squares slope of ``y`` on ``x`` after removing each group's mean from both (a fixed effect per
    group: here per factor, whose chance levels differ)."""
    x, y, g = np.asarray(x, float), np.asarray(y, float), np.asarray(groups)
    xc, yc = x.copy(), y.copy()
    for group in np.unique(g):
        m = g == group
        xc[m] -= x[m].mean()
        yc[m] -= y[m].mean()
    denominator = float((xc ** 2).sum())
    if denominator == 0:
        raise ValueError("x does not vary within any group: the slope is undefined")
    return float((xc * yc).sum() / denominator)


def per_concept_recall(correct: np.ndarray, concept_of_image: np.ndarray, concepts: Sequence[str]) -> Dict[str, float]:
    """Recall per concept (mean correctness over its images); NaN for a concept with no image."""
    return {c: float(correct[concept_of_image == i].mean()) if (concept_of_image == i).any() else float("nan")
            for i, c in enumerate(concepts)}


def renamed(names: Mapping[str, str], reference: Optional[Mapping[str, str]] = None) -> List[str]:
    """Concepts whose name differs from ``reference`` (default: their canonical word)."""
    return sorted(c for c, n in names.items() if n != (reference or {}).get(c, c))


def frequency_table(per_concept: "pd.DataFrame", naming: str) -> "pd.DataFrame":
    """One row per concept under ``naming``: its recall and caption count averaged over seeds, and
    ``log10_captions`` (the x axis of an accuracy-versus-frequency plot)."""
    rows = per_concept[per_concept["naming"] == naming]
    if rows.empty:
        raise ValueError(f"no rows for naming {naming!r}; present: {sorted(per_concept['naming'].unique())}")
    table = rows.groupby(["factor", "concept"], as_index=False)[["recall", "n_captions"]].mean()
    table["log10_captions"] = np.log10(table["n_captions"])
    return table


def concept_recall_rows(run, spec, template: str = "a photo of a {c}.",
                        names: Optional[Mapping[str, str]] = None) -> List[Dict]:
    """Per concept of each class factor (color, pattern, shape): its recall on ``run``'s images (is the image's
    concept the best match among the factor's concepts, prompts by :func:`factor_prompts`) and how many of
    the model's training captions name it (``n_captions``, synonyms included)."""
    count = {r["concept"]: r["n_captions"] for r in training_corpus_statistics(run.model)}
    rows = []
    for factor in ("color", "pattern", "shape"):
        concept_of_image = concept_labels(run.dataset.classes, run.labels, factor, spec)
        concepts = list(spec.factor_values(factor))
        hit = factor_correct(run.encode_text, run.features, concept_of_image,
                             factor_prompts(spec, factor, names or {}, template))
        rows += [{"factor": factor, "concept": c, "recall": r, "n_captions": count[c]}
                 for c, r in per_concept_recall(hit, concept_of_image, concepts).items()]
    return rows


def paired_frequency_slope(table: "pd.DataFrame", arm: str, reference: str) -> float:
    """Within one seed: the within-factor slope of the change in a concept's recall on the change in its
    log10 caption count between two training arms (``arm`` minus ``reference``). Each concept is its own
    control, so the slope measures what frequency does, not which concepts happen to be easy."""
    import pandas as pd

    a = table[table["arm"] == arm].set_index(["factor", "concept"])
    b = table[table["arm"] == reference].set_index(["factor", "concept"])
    both = a.add_suffix("_arm").join(b.add_suffix("_ref"), how="inner")
    if both.empty:
        raise ValueError(f"no concept is in both arms {arm!r} and {reference!r}")
    d_log = np.log10(np.maximum(both["n_captions_arm"], 1)) - np.log10(np.maximum(both["n_captions_ref"], 1))
    d_recall = both["recall_arm"] - both["recall_ref"]
    factors = pd.Series(both.index.get_level_values("factor"), index=both.index)
    return within_group_slope(d_log, d_recall, factors)
