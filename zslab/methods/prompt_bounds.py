"""PAC-Bayes bounds for discrete prompts (Akinwande et al., arXiv 2310.03957).

A zero-shot classifier is fixed by its prompt: the image tower is frozen and the text tower maps a prompt to
the weights of a linear head. A prompt chosen on labelled training images is therefore a hypothesis from a
countable class, and the classic PAC-Bayes bound with a point-mass posterior (an Occam bound) applies:
with probability ≥ 1 − δ over the n training images, for every prompt h at once,

    test error(h) ≤ train error(h) + sqrt((KL + ln(2√n / δ)) / (2n)),      KL = −ln P(h)

(McAllester's form), or the tighter inverse of the binary kl (Langford–Seeger / Maurer). The bound is
tight when −ln P(h) is small: short prompts of common words under the prior. The paper's prior is a language
model; offline there is none, so :class:`PromptPrior` is uniform over a fixed word vocabulary (a prompt's
length, its class-name slot and each word drawn uniformly), chosen before any image is seen.

:func:`greedy_prompt_search` is the paper's simple search: grow the prompt one word at a time, keeping the
word that minimises the training error.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Sequence

import numpy as np
import torch

from ..errors import InvalidChoiceError
from ..evaluation import correct_vector

SLOT = "{c}"
_WORD = re.compile(r"\{c\}|[a-z0-9#'\-]+|[.,()]")


def prompt_words(template: str) -> List[str]:
    """A template as the prior sees it: lower-cased words and punctuation marks, with ``{c}`` as one slot."""
    words = _WORD.findall(template.lower())
    if words.count(SLOT) != 1:
        raise ValueError(f"a prompt template needs exactly one {SLOT} slot, got {template!r}")
    return words


def vocabulary_of(texts: Iterable[str]) -> List[str]:
    """The sorted distinct words of ``texts`` (placeholders such as ``{obj}`` dropped)."""
    words = set()
    for text in texts:
        words.update(w for w in _WORD.findall(re.sub(r"\{[a-z_]+\}", " ", text.lower())))
    return sorted(words)


def world_vocabulary(*extra_texts: Iterable[str]) -> List[str]:
    """Every word zsworld's caption language can use (its forms, fillers and factor names, synonyms too),
    plus the words of ``extra_texts`` (e.g. the hand-made templates, so that they have a prior
    probability): fixed by the world and the templates, never by the images the bound is computed on."""
    from ..world import load_world_spec

    spec = load_world_spec()
    texts: List[str] = [*spec.caption_forms, *spec.framing_forms, *spec.context_forms, *spec.distractor_forms,
                        *spec.fillers, *spec.phrase_orders, *spec.color_names, *spec.patterns, *spec.shapes,
                        *spec.size_names, *spec.background_names,
                        *(w for words in spec.synonyms.values() for w in words), "that is and"]
    for extra in extra_texts:
        texts.extend(extra)
    return vocabulary_of(texts)


@dataclass(frozen=True)
class PromptPrior:
    """A data-independent prior over prompt templates: the number of words L uniform on 0..``max_length``,
    the slot uniform among the L + 1 places, each word uniform over ``vocabulary``. ``−ln P`` is the
    description length in nats that the bound pays for a prompt."""

    vocabulary: tuple
    max_length: int

    def __post_init__(self):
        if not self.vocabulary:
            raise ValueError("the prior's vocabulary is empty")
        if self.max_length < 0:
            raise ValueError(f"max_length must be ≥ 0, got {self.max_length}")

    def neg_log_prob(self, template: str) -> float:
        words = [w for w in prompt_words(template) if w != SLOT]
        if len(words) > self.max_length:
            return math.inf
        if any(w not in self._index for w in words):
            return math.inf
        return (math.log(self.max_length + 1) + math.log(len(words) + 1)
                + len(words) * math.log(len(self.vocabulary)))

    @property
    def _index(self) -> frozenset:
        return frozenset(self.vocabulary)

    @classmethod
    def covering(cls, vocabulary: Sequence[str], templates: Sequence[str], max_length: int) -> "PromptPrior":
        """The prior over ``vocabulary`` whose length limit admits both ``max_length``-word searched prompts
        and every template of ``templates`` (so each hand-made prompt gets a finite bound)."""
        longest = max((sum(w != SLOT for w in prompt_words(t)) for t in templates), default=0)
        return cls(tuple(vocabulary), max(max_length, longest))


def flat_token_prior_nats(vocabulary_size: int, context_length: int) -> float:
    """−ln P of any prompt under a prior uniform over every token sequence of the tokenizer's full context
    (the naive prior the paper argues against: 77 · ln 49408 ≈ 833 nats for CLIP)."""
    return context_length * math.log(vocabulary_size)


def _complexity(kl: float, n: int, delta: float) -> float:
    if n < 1:
        raise ValueError(f"n must be ≥ 1, got {n}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    return kl + math.log(2 * math.sqrt(n) / delta)


def mcallester_bound(train_error: float, n: int, kl: float, delta: float = 0.05) -> float:
    """``train_error + sqrt((KL + ln(2√n/δ)) / 2n)``, capped at 1 (a bound on an error rate)."""
    if math.isinf(kl):
        return 1.0
    return min(1.0, train_error + math.sqrt(_complexity(kl, n, delta) / (2 * n)))


def binary_kl(q: float, p: float) -> float:
    """kl(q ‖ p) between Bernoulli(q) and Bernoulli(p), in nats."""
    eps = 1e-12
    p = min(max(p, eps), 1 - eps)
    out = 0.0
    if q > 0:
        out += q * math.log(q / p)
    if q < 1:
        out += (1 - q) * math.log((1 - q) / (1 - p))
    return out


def kl_inverse_bound(train_error: float, n: int, kl: float, delta: float = 0.05) -> float:
    """The largest p ≥ train error with kl(train error ‖ p) ≤ (KL + ln(2√n/δ)) / n (Langford–Seeger), by
    bisection; never looser than :func:`mcallester_bound` (Pinsker)."""
    if math.isinf(kl):
        return 1.0
    budget = _complexity(kl, n, delta) / n
    lo, hi = train_error, 1.0
    if binary_kl(train_error, hi) <= budget:
        return 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if binary_kl(train_error, mid) <= budget:
            lo = mid
        else:
            hi = mid
    return hi


#: The bounds a notebook can report, by name.
BOUNDS: Dict[str, Callable[[float, int, float, float], float]] = {
    "McAllester": mcallester_bound,
    "kl inverse": kl_inverse_bound,
}


def bound(name: str, train_error: float, n: int, kl: float, delta: float = 0.05) -> float:
    if name not in BOUNDS:
        raise InvalidChoiceError(f"unknown bound {name!r}; valid bounds: {', '.join(BOUNDS)}")
    return BOUNDS[name](train_error, n, kl, delta)


def prompt_errors(encode_text: Callable[[Sequence[str]], torch.Tensor], templates: Sequence[str],
                  classnames: Sequence[str], features: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
    """0/1 error per image for each template's single-prompt classifier: ``[T, N]`` (one text-tower call)."""
    texts = [t.replace(SLOT, c) for t in templates for c in classnames]
    emb = encode_text(texts).float().reshape(len(templates), len(classnames), -1)
    emb = emb / emb.norm(dim=-1, keepdim=True)
    return np.stack([1.0 - correct_vector(features, labels, emb[t]) for t in range(len(templates))])


def greedy_prompt_search(encode_text: Callable[[Sequence[str]], torch.Tensor], classnames: Sequence[str],
                         vocabulary: Sequence[str], features: torch.Tensor, labels: torch.Tensor,
                         max_length: int) -> List[Dict[str, object]]:
    """Grow a prefix ``w1 … wL {c}`` one word at a time, each time appending the vocabulary word whose prompt
    has the lowest error on (``features``, ``labels``); ties go to the earlier word. Returns one row per
    length 1..``max_length``: the template and its training error."""
    if max_length < 1:
        raise ValueError(f"max_length must be ≥ 1, got {max_length}")
    prefix: List[str] = []
    steps = []
    for _ in range(max_length):
        candidates = [" ".join(prefix + [w, SLOT]) for w in vocabulary]
        errors = prompt_errors(encode_text, candidates, classnames, features, labels).mean(axis=1)
        best = int(np.argmin(errors))
        prefix.append(vocabulary[best])
        steps.append({"template": candidates[best], "length": len(prefix), "train_error": float(errors[best])})
    return steps


def cached_greedy_prompt_search(encode_text: Callable[[Sequence[str]], torch.Tensor], text_tower: str,
                                classnames: Sequence[str], vocabulary: Sequence[str], features: torch.Tensor,
                                labels: torch.Tensor, max_length: int, cache: Any = None) -> List[Dict[str, object]]:
    """:func:`greedy_prompt_search`, its result read from the tensor cache when the same text tower (``text_tower``:
    a content fingerprint of the model behind ``encode_text``), classes, vocabulary, training images and length
    were searched before: a warm rerun otherwise re-reads ~15,000 cached prompt embeddings per search."""
    from ..cache import TensorCache, tensor_digest

    vocabulary = list(vocabulary)
    description = {"kind": "greedy prompt search", "text_tower": text_tower, "classnames": list(classnames),
                   "vocabulary": vocabulary, "max_length": int(max_length),
                   "train": tensor_digest({"features": features, "labels": labels})}

    def search() -> Dict[str, torch.Tensor]:
        steps = greedy_prompt_search(encode_text, classnames, vocabulary, features, labels, max_length)
        return {"word_index": torch.tensor([vocabulary.index(str(s["template"]).split()[-2]) for s in steps]),
                "train_error": torch.tensor([float(s["train_error"]) for s in steps], dtype=torch.float64)}

    found = (cache or TensorCache()).get_or_compute(description, search)
    prefix: List[str] = []
    steps = []
    for index, error in zip(found["word_index"].tolist(), found["train_error"].tolist()):
        prefix.append(vocabulary[index])
        steps.append({"template": " ".join(prefix + [SLOT]), "length": len(prefix), "train_error": float(error)})
    return steps


def rank_agreement(bounds: Sequence[float], test_errors: Sequence[float]) -> float:
    """Spearman's rank correlation between the bounds and the test errors of a set of prompts: does the
    prompt with the best bound also test best (the paper's model-selection use)?"""
    from scipy.stats import spearmanr

    b, t = np.asarray(bounds, dtype=float), np.asarray(test_errors, dtype=float)
    if len(b) != len(t) or len(b) < 3:
        raise ValueError(f"need ≥ 3 paired values, got {len(b)} bounds and {len(t)} test errors")
    return float(spearmanr(b, t).statistic)


def evaluate_prompts(encode_text: Callable[[Sequence[str]], torch.Tensor], classnames: Sequence[str],
                     prompts: Sequence[Dict[str, object]], train: tuple, test: tuple, prior: PromptPrior,
                     flat_nats: float, delta: float = 0.05):
    """One row per prompt (``{"template", "kind"}``): its error on the training images (``train`` =
    (features, labels), where it was chosen), on the held-out test images, its description length
    ``−ln P`` under ``prior``, every bound of :data:`BOUNDS`, and McAllester's bound under the flat
    token prior (``flat_nats``), the control that shows what the prior buys; ``excess: <bound>`` is the
    bound minus the test error (≥ 0 when the bound holds) and ``overfit`` the test minus train error."""
    import pandas as pd

    templates = [str(p["template"]) for p in prompts]
    train_err = prompt_errors(encode_text, templates, classnames, *train).mean(axis=1)
    test_err = prompt_errors(encode_text, templates, classnames, *test).mean(axis=1)
    n = int(len(train[1]))
    rows = []
    for p, tr, te in zip(prompts, train_err, test_err):
        kl = prior.neg_log_prob(str(p["template"]))
        row = {**p, "n_train": n, "neg_log_prior": kl, "train_error": float(tr), "test_error": float(te)}
        row.update({f"bound: {name}": f(float(tr), n, kl, delta) for name, f in BOUNDS.items()})
        row["bound: flat tokens"] = mcallester_bound(float(tr), n, flat_nats, delta)
        rows.append(row)
    table = pd.DataFrame(rows)
    for name in [*BOUNDS, "flat tokens"]:        # how far each bound sits above the error it bounds
        table[f"excess: {name}"] = table[f"bound: {name}"] - table["test_error"]
    table["overfit"] = table["test_error"] - table["train_error"]
    return table
