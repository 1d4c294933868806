"""Pretraining experiments on the offline world: train variants of one zoo model, then score them zero-shot.

A variant is a label and the changes to the zoo entry it trains from (``{"train": {"loss": "cloob"},
"model_cfg": {"init_logit_scale": 3.4}}``, as ``load_model(..., overrides=...)`` takes them). Every
variant is trained for each seed (the seed fixes the initialisation and the batch order, so the arms of one
seed are paired) and cached by content, so notebooks that name the same variant share it, and
``zslab run --jobs N`` trains them all before the notebooks start (:mod:`zslab.runner.prefetch`).

Comparisons of pretraining recipes are only fair at an equal budget: :func:`budget_table` lists what each
arm sees (steps × batch size) and :func:`check_equal_budget` refuses unequal ones.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..errors import ZslabError, check_choice

Overrides = Mapping[str, Mapping[str, Any]]


def variant_entry(model: str, overrides: Optional[Overrides]) -> Dict[str, Any]:
    """The zoo entry that variant ``overrides`` of ``model`` trains from (validated)."""
    from ..train.zoo import offline_model_entry, with_overrides

    return with_overrides(offline_model_entry(model), {k: dict(v) for k, v in (overrides or {}).items()})


def budget_table(model: str, variants: Mapping[str, Optional[Overrides]]) -> pd.DataFrame:
    """One row per variant: its loss, batch size, steps, the image–text pairs it sees (steps × batch),
    whether it learns its temperature and the initial inverse temperature ``1/τ``."""
    rows = []
    for label, overrides in variants.items():
        entry = variant_entry(model, overrides)
        train, cfg = entry["train"], entry["model_cfg"]
        rows.append({"variant": label, "loss": train.get("loss", "infonce"), "batch_size": train["batch_size"],
                     "steps": train["steps"], "pairs_seen": train["steps"] * train["batch_size"],
                     "learned_temperature": bool(train.get("learn_logit_scale", True)),
                     "initial_inverse_temperature": float(np.exp(cfg.get("init_logit_scale", np.log(1 / 0.07))))})
    return pd.DataFrame(rows)


def check_equal_budget(table: pd.DataFrame) -> int:
    """The common number of pairs seen; raises if the variants' budgets (steps × batch size) differ."""
    budgets = dict(zip(table["variant"], table["pairs_seen"]))
    if len(set(budgets.values())) != 1:
        raise ZslabError("the variants see different numbers of image–text pairs (steps × batch size), so "
                         f"they cannot be compared fairly: {budgets}")
    return int(next(iter(budgets.values())))


@dataclass
class VariantScores:
    """Per seed and variant: 0/1 correctness of each test image (zero-shot top-1) and what training cost."""

    correct: Dict[int, Dict[str, np.ndarray]] = field(default_factory=dict)
    train_seconds: List[Dict[str, Any]] = field(default_factory=list)
    models: Dict[tuple, Any] = field(default_factory=dict)     # (variant, seed) -> EncodedEval
    classes: Sequence[str] = ()


def zero_shot_variants(model: str, variants: Mapping[str, Optional[Overrides]], seeds: Sequence[int],
                       dataset: str = "zsworld", split: str = "unseen", n_per_class: int = 100,
                       template_set: str = "ensemble", batch_size: int = 256, device: str = "cpu",
                       keep_models: bool = False, prompt_modes: Optional[Mapping[str, str]] = None) -> VariantScores:
    """Train (or load) every variant for every seed and score it zero-shot on the same test images (drawn
    with the seed), with the templates ``template_set`` of ``dataset``. ``prompt_modes`` (variant label →
    ``caption`` or ``label``) puts that source's prefix word in front of the variant's prompts (models
    trained with prefix conditioning, ``zslab.train.label_data``); two labels may name one model."""
    from ..datasets import load_templates
    from ..evaluation import correct_vector, encode_eval_set
    from ..train.label_data import prefixed
    from ..zeroshot import build_classifier

    base_templates = load_templates(dataset, template_set)
    for label in prompt_modes or {}:
        check_choice("variant given a prompt mode", label, list(variants))
    out = VariantScores()
    for seed in seeds:
        out.correct[seed] = {}
        for label, overrides in variants.items():
            run = encode_eval_set(model, "", dataset, split, seed, n_per_class, overrides=dict(overrides or {}),
                                  batch_size=batch_size, device=device)
            mode = (prompt_modes or {}).get(label)
            templates = prefixed(base_templates, mode) if mode else base_templates
            classifier = build_classifier(run.encode_text, run.dataset.classes, templates)
            out.correct[seed][label] = correct_vector(run.features, run.labels, classifier)
            manifest = run.model.manifest or {}
            out.train_seconds.append({"variant": label, "seed": seed, "train_seconds": manifest.get("train_seconds"),
                                      "final_loss": manifest.get("final_loss")})
            out.classes = run.dataset.classes
            if keep_models:
                out.models[label, seed] = run
    return out


def pairs_by(table: pd.DataFrame, by: str, contrast: str, a: Any, b: Any) -> Dict[Any, tuple]:
    """For each value of ``by`` (e.g. the batch size), the labels of the variant with ``contrast == a`` and
    of the one with ``contrast == b`` (e.g. sigmoid and InfoNCE): ``{value: (label_a, label_b)}``. Values
    that lack one of the two are left out; two variants with the same setting raise."""
    out = {}
    for value, group in table.groupby(by, sort=True):
        labels = {}
        for side in (a, b):
            hits = group.loc[group[contrast] == side, "variant"].tolist()
            if len(hits) > 1:
                raise ZslabError(f"two variants have {by}={value} and {contrast}={side!r}: {hits}")
            labels[side] = hits[0] if hits else None
        if labels[a] is not None and labels[b] is not None:
            out[value] = (labels[a], labels[b])
    return out


def geometry_table(scores: VariantScores, n_pairs: int = 1000, split: str = "unseen",
                   batch_size: int = 256) -> pd.DataFrame:
    """One row per (variant, seed) of ``scores`` (made with ``keep_models=True``): the embedding geometry of
    :mod:`zslab.methods.geometry` on ``n_pairs`` image–caption pairs of the model's world (drawn with the
    seed), the tolerance of its test images' features, and its zero-shot top-1."""
    from ..evaluation import encode_pair_set
    from .geometry import pair_geometry, tolerance

    if not scores.models:
        raise ZslabError("geometry_table needs the models: score the variants with keep_models=True")
    rows = []
    for (label, seed), run in scores.models.items():
        pairs = encode_pair_set(run.model, "zsworld_captions", split, n_pairs, seed, batch_size)
        rows.append({"variant": label, "seed": seed, **pair_geometry(pairs.images, pairs.captions),
                     "tolerance": tolerance(run.features, run.labels),
                     "top1": float(np.mean(scores.correct[seed][label]))})
    return pd.DataFrame(rows)


def scores_of(table: pd.DataFrame, quantity: str, key: str = "variant", sign: float = 1.0
              ) -> Dict[Any, Dict[str, np.ndarray]]:
    """``{seed: {arm: [sign · quantity]}}`` from a table with one row per arm and seed, the shape
    :func:`zslab.analysis.check_gain` judges (one value per seed: a t-interval over seeds). ``sign=-1`` turns
    a lower-is-better quantity (gap, uniformity loss) into a gain."""
    return {seed: {row[key]: np.array([sign * float(row[quantity])]) for _, row in group.iterrows()}
            for seed, group in table.groupby("seed")}


def record_variant_scores(scores: VariantScores, n_bootstrap: int = 1000, **labels: Any) -> tuple:
    """Record each variant's top-1 per seed (bootstrap interval over the test images) and its mean training
    time; returns the per-seed table and the compute table (seconds and final loss per variant and seed)."""
    from ..analysis import record_scores
    from ..records import record

    rows = []
    for seed, by_variant in scores.correct.items():
        rows += record_scores(by_variant, seed, key="variant", n_bootstrap=n_bootstrap, **labels)
    compute = pd.DataFrame(scores.train_seconds)
    for label, seconds in compute.groupby("variant", sort=False)["train_seconds"].mean().items():
        record("train_seconds_mean", seconds, variant=label)
    return pd.DataFrame(rows), compute


def soft_target_summary(model: str, seed: int = 0, n_batches: int = 20) -> Dict[str, float]:
    """How far CWCL's targets are from one-hot for locked-text model ``model``: over ``n_batches`` batches
    drawn as its training draws them (its batch size, one caption per input), the mean cosine of two
    different captions in the frozen text space, the mean weight ``(cos + 1)/2`` CWCL gives them, and the
    mean target mass on an input's own caption (1 for one-hot InfoNCE; ``1/B`` for uniform targets)."""
    import torch

    from ..train.locked_text import locked_text_entry, training_caption_embeddings
    from ..train.losses import cwcl_weights

    table, ids = training_caption_embeddings(model, seed)
    batch = int(locked_text_entry(model)["train"]["batch_size"])
    gen = torch.Generator().manual_seed(seed)
    weight, own = [], []
    for _ in range(n_batches):
        rows = torch.randint(0, ids.shape[0], (batch,), generator=gen)
        caps = ids[rows, torch.randint(0, ids.shape[1], (batch,), generator=gen)]
        w = cwcl_weights(table[caps])
        weight.append(float(w[caps[:, None] != caps[None, :]].mean()))
        own.append(float((w.diagonal() / w.sum(dim=1)).mean()))
    mean_weight = float(np.mean(weight))
    return {"model": model, "batch_size": batch, "mean_cosine_of_different_captions": 2 * mean_weight - 1,
            "mean_cwcl_weight_of_different_captions": mean_weight,
            "own_caption_target_mass": float(np.mean(own)), "uniform_target_mass": 1 / batch}
