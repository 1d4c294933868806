"""Zero-shot transfer to classes held out of a model's training, by prompt head (LiT-style evaluation).

Two views of the same test images: the held-out classes' images choosing among the held-out classes only
(zero-shot transfer proper), and every image choosing among all classes (the generalized setting: seen
accuracy, unseen accuracy and their harmonic mean, where a model's bias to its seen classes shows).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..evaluation import correct_vector
from ..metrics import gzsl_metrics
from ..semantics.attributes import load_descriptions
from ..zeroshot import Templates, build_classifier, logits
from .prompting import CLASS_NAME_ONLY

HEADS = ("class name", "template ensemble", "descriptions")


def transfer_heads(dataset: str, classes: Sequence[str], templates: Sequence[str]) -> Dict[str, Templates]:
    """The class name alone, the dataset's template ensemble, and per-class descriptions (Menon & Vondrick,
    arXiv 2210.07183) from ``data/descriptions/<dataset>.json``."""
    descriptions = load_descriptions(dataset)
    return {"class name": CLASS_NAME_ONLY, "template ensemble": list(templates),
            "descriptions": {c: descriptions[c] for c in classes}}


@dataclass
class TransferScores:
    heldout_correct: Dict[str, np.ndarray]     # per head: 0/1 per held-out image, choosing among held-out classes
    gzsl: Dict[str, Dict[str, float]]          # per head: seen / unseen / harmonic over all classes


def _subset(prompts: Templates, classes: Sequence[str]) -> Templates:
    return {c: prompts[c] for c in classes} if isinstance(prompts, Mapping) else prompts


def heldout_view(classes: Sequence[str], heldout: Sequence[str], features: torch.Tensor,
                 labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The images of the held-out classes, labelled by their index in ``heldout``: zero-shot transfer proper,
    choosing among the held-out classes only."""
    missing = [c for c in heldout if c not in classes]
    if missing:
        raise ValueError(f"held-out classes {missing} are not classes of the dataset ({list(classes)})")
    unseen_idx = [list(classes).index(c) for c in heldout]
    y = labels.numpy()
    mask = np.isin(y, unseen_idx)
    return features[torch.as_tensor(mask)], torch.as_tensor([unseen_idx.index(int(t)) for t in y[mask]])


def heldout_transfer(encode_text: Callable[[Sequence[str]], torch.Tensor], classes: Sequence[str],
                     heldout: Sequence[str], heads: Mapping[str, Templates], features: torch.Tensor,
                     labels: torch.Tensor) -> TransferScores:
    """Score every head on held-out-only and generalized zero-shot classification of the same images."""
    held_features, y_held = heldout_view(classes, heldout, features, labels)
    unseen_idx = [list(classes).index(c) for c in heldout]
    seen_idx = [i for i in range(len(classes)) if i not in unseen_idx]
    y = labels.numpy()
    correct: Dict[str, np.ndarray] = {}
    gzsl: Dict[str, Dict[str, float]] = {}
    for head, prompts in heads.items():
        w_held = build_classifier(encode_text, list(heldout), _subset(prompts, heldout))
        correct[head] = correct_vector(held_features, y_held, w_held)
        w_all = build_classifier(encode_text, list(classes), prompts)
        gzsl[head] = gzsl_metrics(logits(features, w_all).argmax(1).numpy(), y, seen_idx, unseen_idx)
    return TransferScores(correct, gzsl)


def check_heldout_in_manifest(manifest: Mapping, heldout: List[str], model: str) -> None:
    """A zslab model records the classes it held out; evaluating it on other ones would not be zero-shot."""
    if manifest and sorted(manifest.get("heldout_classes", heldout)) != sorted(heldout):
        raise ValueError(f"{model} was trained with held-out classes {manifest['heldout_classes']}, not {heldout}")


def heldout_runs(models: Mapping[str, Sequence[str]], datasets: Sequence[str], heldout: Sequence[Sequence[str]],
                 seeds: Sequence[int], n_per_class: int, pretrained: str, device: str = "cpu",
                 n_bootstrap: int = 1000, key: str = "config",
                 overrides: Optional[Mapping[str, Mapping[str, Mapping[str, Any]]]] = None):
    """Every arm's models (``models[arm][i]`` is trained on ``datasets[i]`` with ``heldout[i]`` held out) on
    every seed: held-out top-1 rows per prompt head (recorded as ``heldout_top1``, labelled ``key=arm``), the
    per-image scores ``scores[dataset, seed]["<arm> / <head>"]`` for paired verdicts, and the generalized
    (all-class) rows, recorded as ``gzsl_seen``/``gzsl_unseen``/``gzsl_harmonic``. ``overrides[arm]``
    (optional) trains that arm's models from a changed entry (``{"train": {"loss": "cwcl"}}``)."""
    from ..analysis import record_scores
    from ..evaluation import encode_eval_set
    from ..records import record

    rows, scores, gzsl_rows = [], {}, []
    for arm, names in models.items():
        if len(names) != len(datasets) or len(heldout) != len(datasets):
            raise ValueError(f"each arm needs one model per dataset ({len(datasets)}) and heldout one list per "
                             f"dataset: {arm}={list(names)}, heldout={list(heldout)}")
        for model_name, dataset, held in zip(names, datasets, heldout):
            for seed in seeds:
                run = encode_eval_set(model_name, pretrained, dataset, "test", seed, n_per_class, device=device,
                                      overrides=dict((overrides or {}).get(arm) or {}))
                check_heldout_in_manifest(run.model.manifest, list(held), model_name)
                heads = transfer_heads(dataset, run.dataset.classes, run.dataset.templates)
                result = heldout_transfer(run.encode_text, run.dataset.classes, held, heads, run.features,
                                          run.labels)
                scores[dataset, seed] = {**scores.get((dataset, seed), {}),
                                         **{f"{arm} / {h}": c for h, c in result.heldout_correct.items()}}
                rows += record_scores(result.heldout_correct, seed, metric="heldout_top1", n_bootstrap=n_bootstrap,
                                      dataset=dataset, model=model_name, chance=1 / len(held), **{key: arm})
                for head, g in result.gzsl.items():
                    for k, v in g.items():
                        record(f"gzsl_{k}", v, seed=seed, dataset=dataset, head=head, model=model_name, **{key: arm})
                    gzsl_rows.append({key: arm, "dataset": dataset, "seed": seed, "head": head, **g})
    return rows, scores, gzsl_rows


def heldout_figure(per_seed, summary, datasets: Sequence[str], heldout: Sequence[Sequence[str]],
                   arms: Sequence[str], key: str = "arm"):
    """One panel per dataset: held-out top-1 per prompt head (:data:`HEADS`), one bar per arm (``key``),
    means over seeds with their intervals from ``summary``, seeds as dots, chance dashed."""
    from ..plotting import bars_with_seeds, panels

    fig, axes = panels(len(datasets), sharey=True)
    for ax, dataset, held in zip(axes, datasets, heldout):
        bars_with_seeds(per_seed[per_seed["dataset"] == dataset], "head", "heldout_top1", order=list(HEADS),
                        summary=summary[summary["dataset"] == dataset], hue=key, hue_order=list(arms),
                        chance=1 / len(held), ax=ax, ylabel="zero-shot top-1 among held-out classes",
                        title=f"{dataset}: held out {', '.join(held)}")
    return fig
