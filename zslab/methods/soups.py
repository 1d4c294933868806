"""Model soups on the offline world (arXiv 2203.05482): fine-tunes of one pretrained CLIP, averaged.

The task: classify the *seen* compositions of a zslab offline CLIP's world (the classes its captions
named). Each fine-tune (:mod:`zslab.train.finetune`) starts from the zero-shot head and differs in its
hyperparameters (learning rate, label smoothing, augmentation, data order). Every candidate model is
scored on four image sets drawn from separate seed streams:

* ``val`` — held-out images of the seen classes: what picks the best single model and grows the greedy soup
  (the paper's held-out 2% of ImageNet's training set);
* ``seen`` — test images of the seen classes (the paper's ImageNet);
* ``shifted`` — the same classes rendered with shifted world knobs (the paper's distribution shifts);
* ``held-out`` — zero-shot on the compositions held out of pretraining, through the fine-tuned image tower
  and the unchanged text tower (how much zero-shot transfer the fine-tune kept).

Fine-tuned weights are cached (:class:`zslab.cache.TensorCache`) under the pretrained weights, the
configuration and the training set, so a warm rerun only evaluates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import torch

from ..cache import TensorCache, tensor_digest
from ..datasets import ZSDataset, build_dataset, load_templates
from ..evaluation import model_world
from ..train.contrastive import images_to_tensor
from ..train.finetune import FinetuneConfig, finetune_classifier, zero_shot_init_classifier
from ..train.zoo import MEAN, STD
from ..zeroshot import build_classifier
from .weight_averaging import average_states, greedy_soup

#: The image sets every candidate is scored on (see the module docstring).
SETS = ("val", "seen", "shifted", "held-out")
ZERO_SHOT, BEST, UNIFORM, GREEDY, ENSEMBLE, CROSS = ("zero-shot (step 0)", "best single (val)", "uniform soup",
                                                     "greedy soup", "ensemble (K× inference)",
                                                     "cross-init soup (control)")
#: Offsets of the dataset seeds of the training and validation draws (test draws use the seed itself).
TRAIN_DRAW, VAL_DRAW = 1000, 2000


@dataclass
class FinetuneTask:
    """The sets of one pretrained model's fine-tuning task and its two zero-shot heads."""

    datasets: Dict[str, ZSDataset]
    seen_head: torch.Tensor
    heldout_head: torch.Tensor
    logit_scale: float


def finetune_task(lm: Any, seed: int, n_train: int, n_val: int, n_test: int, shift: Mapping[str, Any],
                  template_set: str = "ensemble") -> FinetuneTask:
    """The datasets (``train`` plus :data:`SETS`) of a zslab offline CLIP's world, drawn with ``seed``;
    ``shift`` are the world knobs of the shifted renders (e.g. ``{"noise": 40}``)."""
    from ..embeddings import cached_text_encoder

    world = dict(model_world(lm) or {})
    if not world:
        raise ValueError("model soups on zsworld need one of zslab's offline CLIP models (its manifest names "
                         "the world it was trained in)")

    def draw(split: str, n: int, draw_seed: int, knobs: Optional[Mapping[str, Any]] = None) -> ZSDataset:
        return build_dataset("zsworld", split=split, n_per_class=n, seed=draw_seed, world={**world, **(knobs or {})})

    sets = {"train": draw("seen", n_train, TRAIN_DRAW + seed), "val": draw("seen", n_val, VAL_DRAW + seed),
            "seen": draw("seen", n_test, seed), "shifted": draw("seen", n_test, seed, shift),
            "held-out": draw("unseen", n_test, seed)}
    templates = load_templates("zsworld", template_set)
    encode = cached_text_encoder(lm)
    return FinetuneTask(sets, build_classifier(encode, sets["seen"].classes, templates),
                        build_classifier(encode, sets["held-out"].classes, templates), lm.logit_scale)


def finetuned_state(lm: Any, task: FinetuneTask, cfg: FinetuneConfig, label: str = "",
                    cache: Optional[TensorCache] = None) -> Dict[str, torch.Tensor]:
    """The fine-tuned classifier's state dict (+ ``__loss__``, ``__seconds__``), from the cache when there."""
    train = task.datasets["train"]
    description = {"kind": "zero-shot-init fine-tune", "pretrained": lm.fingerprint, "config": cfg.as_dict(),
                   "train": train.identity, "head": tensor_digest({"seen": task.seen_head}),
                   "logit_scale": round(float(task.logit_scale), 6)}

    def compute() -> Dict[str, torch.Tensor]:
        classifier = zero_shot_init_classifier(lm.model, task.seen_head, task.logit_scale)
        history = finetune_classifier(classifier, torch.from_numpy(train.images), torch.from_numpy(train.targets),
                                      cfg, MEAN, STD, label=label)
        return {**classifier.state_dict(), "__loss__": torch.tensor(history["loss"]),
                "__seconds__": torch.tensor(history["seconds"])}

    return (cache or TensorCache()).get_or_compute(description, compute)


def _weights(state: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.startswith("__")}


@dataclass
class SoupResults:
    """``correct[set][seed][arm]``: per-image correctness (for paired verdicts); ``table``: top-1 per seed,
    arm and set; ``greedy``: the greedy soup's trace; ``compute``: each fine-tune's cost and validation."""

    correct: Dict[str, Dict[int, Dict[str, np.ndarray]]] = field(default_factory=lambda: {s: {} for s in SETS})
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    greedy: pd.DataFrame = field(default_factory=pd.DataFrame)
    compute: pd.DataFrame = field(default_factory=pd.DataFrame)
    arms: List[str] = field(default_factory=list)

    def points(self) -> pd.DataFrame:
        """One row per arm with each set's top-1 (mean over seeds) as a column and the arm's ``kind``
        (zero-shot, fine-tune, a soup, the ensemble, the control): the paper's Figure 1 plots ``seen``
        against ``shifted``."""
        wide = self.table.pivot_table(index="arm", columns="set", values="top1").loc[self.arms].reset_index()
        special = {ZERO_SHOT: "zero-shot", BEST: "best single (val)", UNIFORM: "uniform soup",
                   GREEDY: "greedy soup", ENSEMBLE: "ensemble", CROSS: "control"}
        wide["kind"] = [special.get(a, "fine-tune") for a in wide["arm"]]
        return wide

    def gains(self, reference: str = BEST) -> pd.DataFrame:
        """Per seed, arm and set: top-1 minus the ``reference`` arm's on the same images (paired by seed)."""
        ref = self.table[self.table["arm"] == reference].set_index(["seed", "set"])["top1"]
        out = self.table[self.table["arm"] != reference].copy()
        out["gain"] = [t - ref[(seed, s)] for seed, s, t in zip(out["seed"], out["set"], out["top1"])]
        return out.drop(columns="top1")


class _Scorer:
    """Scores state dicts of one task's classifier on its sets. Logits are cached under a digest of the
    weights and the sets asked for, and a set's images are rendered only when some logits are computed:
    a warm rerun, and a greedy soup equal to a single model, compute nothing."""

    def __init__(self, lm: Any, task: FinetuneTask, cache: Optional[TensorCache] = None, batch_size: int = 1024):
        self.task = task
        self.cache = cache or TensorCache()
        self.classifier = zero_shot_init_classifier(lm.model, task.seen_head, task.logit_scale).eval()
        self.initial = {k: v.clone() for k, v in self.classifier.state_dict().items()}  # step 0: zero-shot
        self._inputs: Dict[str, torch.Tensor] = {}
        self.labels = {s: torch.from_numpy(task.datasets[s].targets) for s in SETS}
        self.batch_size = batch_size
        self.identity = {"sets": {s: task.datasets[s].identity for s in SETS},
                         "heads": tensor_digest({"seen": task.seen_head, "held-out": task.heldout_head}),
                         "logit_scale": round(float(task.logit_scale), 6)}

    def _input(self, s: str) -> torch.Tensor:
        if s not in self._inputs:
            self._inputs[s] = images_to_tensor(torch.from_numpy(self.task.datasets[s].images), MEAN, STD)
        return self._inputs[s]

    @torch.no_grad()
    def _outputs(self, s: str) -> torch.Tensor:
        x = self._input(s)
        if s == "held-out":  # zero-shot on the held-out classes: fine-tuned image tower, unchanged text tower
            feats = torch.cat([self.classifier.features(x[i:i + self.batch_size])
                               for i in range(0, len(x), self.batch_size)])
            return self.task.logit_scale * feats @ self.task.heldout_head.T
        return torch.cat([self.classifier(x[i:i + self.batch_size]) for i in range(0, len(x), self.batch_size)])

    def logits(self, state: Mapping[str, torch.Tensor], sets: Sequence[str] = SETS) -> Dict[str, torch.Tensor]:
        weights = _weights(state)
        description = {"kind": "soup candidate logits", "weights": tensor_digest(weights), "scored": list(sets),
                       **self.identity}

        def compute() -> Dict[str, torch.Tensor]:
            self.classifier.load_state_dict(weights)
            return {s: self._outputs(s) for s in sets}

        return self.cache.get_or_compute(description, compute)

    def correct(self, logits: Mapping[str, torch.Tensor]) -> Dict[str, np.ndarray]:
        return {s: (logits[s].argmax(1) == self.labels[s]).numpy() for s in logits}

    def val_accuracy(self, state: Mapping[str, torch.Tensor]) -> float:
        """Top-1 on ``val`` only: a greedy soup's trials."""
        return float(self.correct(self.logits(state, ("val",)))["val"].mean())


def soup_experiment(model: str, seeds: Sequence[int], finetunes: Mapping[str, Mapping[str, Any]], n_train: int,
                    n_val: int, n_test: int, shift: Mapping[str, Any], template_set: str = "ensemble",
                    cache: Optional[TensorCache] = None) -> SoupResults:
    """Fine-tune ``model`` (one pretrained run per seed) with each of ``finetunes`` (label → FinetuneConfig
    fields; the data-order seed is the config's ``seed`` plus the pretraining seed), then score the
    zero-shot start, each fine-tune, the best one on ``val``, the uniform and greedy soups, the output
    ensemble (K forward passes), and the control: the soup of this seed's and the next seed's best
    fine-tunes (two *different* pretrained starts), which the paper's mechanism says fails."""
    from ..models import load_model

    if not finetunes:
        raise ValueError("soup_experiment needs at least one fine-tune configuration")
    names = list(finetunes)
    out = SoupResults(arms=[ZERO_SHOT, *names, BEST, UNIFORM, GREEDY, ENSEMBLE] + ([CROSS] if len(seeds) > 1 else []))
    rows, traces, costs, best_states, scorers = [], [], [], {}, {}
    for seed in seeds:
        lm = load_model(model, seed=seed, progress=False)
        task = finetune_task(lm, seed, n_train, n_val, n_test, shift, template_set)
        scorer = scorers[seed] = _Scorer(lm, task, cache)
        states = []
        for name in names:
            fields = dict(finetunes[name])
            cfg = FinetuneConfig(**{**fields, "seed": int(fields.get("seed", 0)) + int(seed)})
            states.append(finetuned_state(lm, task, cfg, label=f"{name} (seed {seed})", cache=cache))
        logits = {ZERO_SHOT: scorer.logits(scorer.initial)}
        for name, state in zip(names, states):
            logits[name] = scorer.logits(state)
        val = [float(scorer.correct(logits[n])["val"].mean()) for n in names]
        best = int(np.argmax(val))
        best_states[seed] = _weights(states[best])
        logits[BEST] = logits[names[best]]
        logits[UNIFORM] = scorer.logits(average_states([_weights(s) for s in states]))
        soup = greedy_soup([_weights(s) for s in states], val, scorer.val_accuracy)
        logits[GREEDY] = scorer.logits(soup.state)
        logits[ENSEMBLE] = {s: torch.stack([logits[n][s] for n in names]).mean(0) for s in SETS}
        for s in SETS:
            out.correct[s][seed] = {}
        for arm, lg in logits.items():
            for s, c in scorer.correct(lg).items():
                out.correct[s][seed][arm] = c
                rows.append({"seed": seed, "arm": arm, "set": s, "top1": float(c.mean())})
        traces += [{"seed": seed, "candidate": names[t["candidate"]], "soup val top1": t["val"],
                    "kept": bool(t["kept"])} for t in soup.trace]
        costs += [{"seed": seed, "fine-tune": n, "train_seconds": float(st["__seconds__"][0]),
                   "final_loss": float(st["__loss__"][-10:].mean()), "val top1": v, "best": i == best}
                  for i, (n, st, v) in enumerate(zip(names, states, val))]
    for i, seed in enumerate(seeds if len(seeds) > 1 else []):
        partner = seeds[(i + 1) % len(seeds)]
        scorer = scorers[seed]
        mixed = scorer.logits(average_states([best_states[seed], best_states[partner]]))
        for s, c in scorer.correct(mixed).items():
            out.correct[s][seed][CROSS] = c
            rows.append({"seed": seed, "arm": CROSS, "set": s, "top1": float(c.mean())})
    out.table, out.greedy, out.compute = pd.DataFrame(rows), pd.DataFrame(traces), pd.DataFrame(costs)
    return out
