"""Similarity-based zero-shot text classification (the setting evaluated by Schopf et al. 2022,
"Evaluating Unsupervised Text Classification: Zero-shot and Similarity-based Approaches", arXiv 2211.16285).

Documents and labels are embedded by the same encoder; each document gets the label whose
representation is most similar (cosine). No training and no hyper-parameters. A label can be
represented by its name, by a short description, or by both (:func:`label_prompts`; "name+description"
is the mean of the two normalised embeddings, as a prompt ensemble in
:func:`zslab.zeroshot.build_classifier`).

Also here: :func:`macro_f1`, the unweighted mean of per-class F1 (the paper's headline metric family).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..arrays import finite_2d
from ..errors import check_choice

if TYPE_CHECKING:
    import pandas as pd

LABEL_REPRESENTATIONS = ("name", "description", "name+description")


def _unit_rows(a: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(n > 0, n, 1.0)  # zero rows stay zero: cosine 0 with everything


def similarity_scores(text_emb: Any, label_emb: Any) -> np.ndarray:
    """Cosine similarities ``[N, C]`` between texts ``[N, D]`` and labels ``[C, D]`` (rows need not be unit)."""
    t, l = finite_2d(text_emb, "text_emb"), finite_2d(label_emb, "label_emb")
    if t.shape[1] != l.shape[1]:
        raise ValueError(f"dimension mismatch: text_emb {t.shape} vs label_emb {l.shape}")
    if l.shape[0] == 0:
        raise ValueError("label_emb has no labels")
    return _unit_rows(t) @ _unit_rows(l).T


def similarity_zero_shot(text_emb: Any, label_emb: Any) -> np.ndarray:
    """Predicted label index per text: the most cosine-similar label. Ties go to the lower label index."""
    return np.argmax(similarity_scores(text_emb, label_emb), axis=1).astype(np.int64)


def label_prompts(classes: Sequence[str], descriptions: Sequence[str], representation: str) -> Dict[str, List[str]]:
    """Per-class texts that represent each label, for :func:`zslab.zeroshot.build_classifier`:
    ``name`` → [name], ``description`` → [description], ``name+description`` → [name, description]
    (their normalised embeddings are averaged)."""
    check_choice("label representation", representation, LABEL_REPRESENTATIONS)
    if len(classes) != len(descriptions):
        raise ValueError(f"{len(classes)} classes but {len(descriptions)} descriptions")
    if len(set(classes)) != len(classes):
        raise ValueError(f"class names must be unique, got {list(classes)}")
    if representation == "name":
        return {c: [c] for c in classes}
    if representation == "description":
        return {c: [d] for c, d in zip(classes, descriptions)}
    return {c: [c, d] for c, d in zip(classes, descriptions)}


def label_embeddings(encode_text: Callable[[Sequence[str]], torch.Tensor], classes: Sequence[str],
                     descriptions: Sequence[str], representation: str) -> torch.Tensor:
    """``[C, D]`` unit label embeddings for ``representation`` (through ``build_classifier``)."""
    from ..zeroshot import build_classifier

    return build_classifier(encode_text, list(classes), label_prompts(classes, descriptions, representation))


def _labels_1d(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(a == np.round(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"{name} must be integer class indices, got dtype {a.dtype}")
    return a.astype(np.int64)


def per_class_f1(predictions: Any, labels: Any, n_classes: Optional[int] = None) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN) of each class ``0..C-1`` (``C`` = ``n_classes`` or 1 + the largest index
    seen); NaN for a class that is neither a label nor a prediction (its F1 is undefined)."""
    p, y = _labels_1d(predictions, "predictions"), _labels_1d(labels, "labels")
    if p.shape != y.shape:
        raise ValueError(f"shape mismatch: predictions {p.shape} vs labels {y.shape}")
    if y.size == 0:
        raise ValueError("no samples: macro-F1 is undefined")
    if (p < 0).any() or (y < 0).any():
        raise ValueError("class indices must be non-negative")
    c = int(n_classes) if n_classes is not None else int(max(p.max(), y.max())) + 1
    if p.max() >= c or y.max() >= c:
        raise ValueError(f"class indices must be < n_classes={c}, got max {int(max(p.max(), y.max()))}")
    tp = np.bincount(y[p == y], minlength=c).astype(np.float64)
    pred_count = np.bincount(p, minlength=c).astype(np.float64)
    true_count = np.bincount(y, minlength=c).astype(np.float64)
    denom = pred_count + true_count  # = 2TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2.0 * tp / denom, np.nan)


def macro_f1(predictions: Any, labels: Any, n_classes: Optional[int] = None) -> float:
    """Unweighted mean of per-class F1 over the classes that occur as a label or a prediction (as
    scikit-learn's ``f1_score(average="macro")``); with ``n_classes``, over all ``0..n_classes-1``, and a
    listed class that never occurs raises (its F1 is undefined)."""
    f1 = per_class_f1(predictions, labels, n_classes)
    if n_classes is not None:
        missing = np.flatnonzero(np.isnan(f1))
        if missing.size:
            raise ValueError(f"classes {missing[:10].tolist()} occur neither as labels nor as predictions; "
                             "their F1 is undefined")
    return float(np.nanmean(f1))


# ------------------------------------------------------------------------------------------------------
# The experiment of the notebook: encoders × label representations × document controls × seeds
# ------------------------------------------------------------------------------------------------------
@dataclass
class SimilarityRun:
    """Per-seed scores (``table``), the predictions behind them, the labels of each seed's sample."""

    table: "pd.DataFrame"
    preds: Dict[tuple, np.ndarray]
    labels: Dict[Any, np.ndarray]
    n_classes: int

    def gains(self, a: str, b: str, representation: str) -> "pd.DataFrame":
        """Per seed and control, macro-F1 of encoder ``a`` minus ``b`` (rows: arm=control, seed, comparison, gain)."""
        import pandas as pd

        t = self.table[self.table["representation"] == representation].set_index(["control", "seed", "encoder"])
        rows = [{"arm": c, "seed": s, "comparison": f"{a} − {b}",
                 "gain": t.loc[(c, s, a), "macro_f1"] - t.loc[(c, s, b), "macro_f1"]}
                for c, s in {(c, s) for c, s, _ in t.index}]
        return pd.DataFrame(rows).sort_values(["arm", "seed"]).reset_index(drop=True)


def score_encoders(models: Dict[str, Any], task: str, split: str, representations: Sequence[str],
                   controls: Sequence[str], seeds: Sequence[int], n_per_class: int, n_bootstrap: int = 1000,
                   batch_size: int = 64) -> SimilarityRun:
    """Similarity-based zero-shot classification of ``task``'s texts by every encoder, label representation
    and document control, per seed; records ``accuracy`` and ``macro_f1`` with bootstrap intervals."""
    import pandas as pd

    from ..metrics import bootstrap_ci, bootstrap_mean_ci
    from ..records import record
    from ..tasks import TEXT_TASKS
    from ..text import encode_cached
    from ..textdata import apply_controls

    rows, preds, labels = [], {}, {}
    for seed in seeds:
        data = TEXT_TASKS.get(task)(n_per_class=n_per_class, seed=seed, split=split)
        y = labels[seed] = np.asarray(data.labels)
        for control, texts in apply_controls(data.texts, controls, seed).items():
            for name, enc in models.items():
                text_emb = encode_cached(enc, texts, batch_size=batch_size)
                for rep in representations:
                    p = preds[seed, control, name, rep] = similarity_zero_shot(
                        text_emb, label_embeddings(enc.encode, data.classes, data.descriptions, rep))
                    correct = (p == y).astype(np.float64)
                    f1 = macro_f1(p, y)
                    f1_ci = bootstrap_ci(macro_f1, p, y, n_resamples=n_bootstrap, seed=seed)
                    labels_ = dict(encoder=name, representation=rep, control=control, task=task, split=split)
                    record("accuracy", correct.mean(), interval=bootstrap_mean_ci(correct, n_resamples=n_bootstrap,
                                                                                  seed=seed), seed=seed, **labels_)
                    record("macro_f1", f1, interval=f1_ci, seed=seed, **labels_)
                    rows.append({"seed": seed, **labels_, "accuracy": correct.mean(), "macro_f1": f1,
                                 "f1_low": f1_ci[0], "f1_high": f1_ci[1]})
    return SimilarityRun(pd.DataFrame(rows), preds, labels, len(data.classes))


def check_encoder_gain(run: SimilarityRun, a: str, b: str, representations: Sequence[str], seeds: Sequence[int],
                       n_bootstrap: int = 1000, control: str = "none") -> Dict[str, Any]:
    """The notebook's verdict: "``a`` beats ``b`` in macro-F1" under every label representation (paired
    over seeds, or over texts for a single distinct run); decided by the weakest representation."""
    from ..records import record, record_verdict
    from ..verdicts import paired_metric_gain, print_verdict, status_of

    parts, worst, statuses = [], None, []
    for rep in representations:
        est = paired_metric_gain(macro_f1, [run.preds[s, control, a, rep] for s in seeds],
                                 [run.preds[s, control, b, rep] for s in seeds], [run.labels[s] for s in seeds],
                                 n_resamples=n_bootstrap)
        statuses.append(status_of(est))
        record("macro_f1_gain", est.mean, interval=est.interval,
               comparison=f"{a} − {b}", representation=rep, n=est.n, method=est.method)
        parts.append(f"{rep}: {est.describe()} ({statuses[-1]})")
        worst = est if worst is None or est.low < worst.low else worst
    status = ("reproduced" if all(s == "reproduced" for s in statuses)
              else "not reproduced" if "not reproduced" in statuses else "inconclusive")
    claim = (f"Similarity-based zero-shot classification with SBERT embeddings ({a}) beats the same method with a "
             f"simpler text representation ({b}) in macro-F1.")
    evidence = f"macro-F1 gain {a} − {b}: " + "; ".join(parts)
    print_verdict(claim, status, evidence)
    return record_verdict(claim, status, evidence, estimate=worst.as_dict())
