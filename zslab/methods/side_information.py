"""Class side information for the attribute-style ZSL models of :mod:`zslab.methods.gzsl`, in a registry.

* ``attributes``: the committed class-attribute matrix (``data/attributes/<dataset>.json``).
* ``glove-mean``, ``wordllama``, ``minilm``: the class name through a text encoder (word vectors averaged, a
  static-embedding model, a sentence encoder), the usual "word embedding" side information.
* ``wordnet hierarchy``: the class's WordNet synset (``data/wordnet/class_synsets.json``) as the indicator vector
  of its hypernym closure over every ancestor of the dataset's classes: two classes are as close as the share of
  the taxonomy they have in common (Akata et al.'s hierarchy embedding, arXiv 1409.8403).
* ``ontology``: OntoZSL's idea (Geng et al., arXiv 2102.07339) of side information from an ontology that ties
  the class hierarchy and the class attributes together, here as the two unit-normalised parts concatenated
  (the paper learns the ontology's embedding with a TransE-style model and a text-aware encoder; not built here).

Every source returns ``[C, D]`` float64 rows in the order of ``classes``.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Sequence

import numpy as np

from ..registry import Registry

SideSource = Callable[[str, Sequence[str]], np.ndarray]
SIDE_INFORMATION: Registry[SideSource] = Registry("side information")


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


@SIDE_INFORMATION.register("attributes")
def attributes(dataset: str, classes: Sequence[str]) -> np.ndarray:
    from .gzsl import attribute_side

    return attribute_side(dataset, classes)


def _text(encoder: str) -> SideSource:
    def source(dataset: str, classes: Sequence[str]) -> np.ndarray:
        from ..text.encoders import encode_cached, load_text_encoder

        return encode_cached(load_text_encoder(encoder), list(classes)).double().numpy()

    source.__doc__ = f"The class names through the {encoder!r} text encoder."
    return source


for _name in ("glove-mean", "wordllama", "minilm"):
    SIDE_INFORMATION.add(_name, _text(_name))


def hypernym_closures(dataset: str, classes: Sequence[str]) -> Dict[str, List[str]]:
    """``{class: [synset names of the class and all its hypernyms]}`` from the committed class→synset map."""
    from ..semantics.wordnet import class_synsets, load_wordnet

    wn = load_wordnet()
    mapping = class_synsets(dataset)
    missing = [c for c in classes if c not in mapping]
    if missing:
        raise ValueError(f"{dataset} classes without a WordNet synset in data/wordnet/class_synsets.json: {missing}")
    out = {}
    for c in classes:
        synset = wn.synset(mapping[c])
        out[c] = sorted({synset.name()} | {h.name() for h in synset.closure(lambda s: s.hypernyms())})
    return out


@SIDE_INFORMATION.register("wordnet hierarchy")
def wordnet_hierarchy(dataset: str, classes: Sequence[str]) -> np.ndarray:
    """Indicators of each class's hypernym closure over the union of the closures (ancestors every class shares,
    such as ``entity.n.01``, are dropped: they say nothing about which class it is)."""
    closures = hypernym_closures(dataset, classes)
    nodes = sorted({n for c in classes for n in closures[c]})
    m = np.array([[1.0 if n in closures[c] else 0.0 for n in nodes] for c in classes])
    return m[:, m.min(0) < 1]


@SIDE_INFORMATION.register("ontology")
def ontology(dataset: str, classes: Sequence[str]) -> np.ndarray:
    """The class hierarchy and the attributes, each part unit-normalised, side by side."""
    return np.concatenate([_unit(wordnet_hierarchy(dataset, classes)), _unit(attributes(dataset, classes))], axis=1)


def side_information(name: str, dataset: str, classes: Sequence[str]) -> np.ndarray:
    """``[C, D]`` side information ``name`` (:data:`SIDE_INFORMATION`) of ``classes``."""
    return np.asarray(SIDE_INFORMATION.get(name)(dataset, list(classes)), dtype=np.float64)


def side_information_rows(datasets: Sequence[str], features: Dict[str, str], unseen: Dict[str, Sequence[str]],
                          sources: Sequence[str], models: Sequence[str], seeds: Sequence[int], n_train, n_test,
                          device: str = "cpu") -> List[Dict]:
    """Every ZSL model with every kind of side information on the same images: A_U→U (``zsl_unseen``) and the
    calibrated GZSL H (``gzsl_harmonic``, γ from the class-split validation), labelled ``side`` and ``model``."""
    from ..records import record
    from .gzsl import dataset_problems, evaluate_model, with_side

    for name in sources:
        SIDE_INFORMATION.get(name)
    rows = []
    for dataset, seed, problem in dataset_problems(datasets, features, unseen, seeds, n_train, n_test, device=device):
        for source in sources:
            changed = with_side(problem, side_information(source, dataset, problem.classes), source)
            for model in models:
                result = evaluate_model(model, changed, seed)
                labels = {"dataset": dataset, "side": source, "model": model}
                record("zsl_unseen", result.zsl_unseen, seed=seed, **labels)
                record("gzsl_harmonic", result.calibrated["harmonic"], seed=seed, **labels)
                rows.append({**labels, "seed": seed, "zsl_unseen": result.zsl_unseen,
                             "harmonic": result.calibrated["harmonic"], "ausuc": result.ausuc,
                             "side_dim": changed.side.shape[1]})
    return rows
