"""Continual fine-tuning of a CLIP image tower over a sequence of tasks, and what keeps its zero-shot transfer.

ZSCL (arXiv 2303.06628) and momentum-based weight interpolation (2211.03186) start from the same
observation: fine-tuning a zero-shot model task after task erodes its zero-shot transfer. The loop here
follows ZSCL's code in its image-tower mode (``--train-mode image``): each task's logits are CLIP's, the
scaled cosine between the fine-tuned image features and the *fixed* text embeddings of that task's class
prompts (no new head), trained with cross-entropy. What a method adds (:class:`ContinualMethod`):

* ``distill`` — ZSCL's feature-space part: on a batch of unlabelled reference images, the current image
  tower's similarities to a pool of reference texts are pulled toward the *initial* model's, with a
  temperature, in both directions (image→text and text→image: ZSCL's ``--image_loss --text_loss``);
* ``average="weight-ensemble"`` — ZSCL's parameter-space part (``--we``): every ``avg_every`` steps the
  running mean of the sampled weights is updated, and that mean is the model the task hands on;
* ``average="momentum"`` — a slow copy of the weights, ``slow ← m·slow + (1−m)·fast`` after every step,
  kept across tasks and used for prediction while the fast weights go on training (momentum-based weight
  interpolation as its abstract describes it; our reading of the schedule, see the notebook).

Reference data are the world's own captioned scenes of the *seen* compositions (unlabelled use; the paper
uses ImageNet images and Conceptual Captions texts): never the held-out compositions the transfer is
measured on. Results are cached per pretrained model, method and tasks, so a warm rerun only reads them.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image

from ..cache import TensorCache, tensor_digest
from ..datasets import ZSDataset, build_dataset, load_templates, without_transform
from ..errors import check_choice
from ..evaluation import eval_dataset, model_world
from ..train.contrastive import images_to_tensor
from ..train.finetune import FinetuneConfig, ZeroShotInitClassifier, finetune_classifier
from ..train.zoo import MEAN, STD
from ..zeroshot import build_classifier

AVERAGING = ("none", "weight-ensemble", "momentum")
#: The zero-shot model before any task: the row every method starts from.
START = "start"
#: The set every step is scored on besides the tasks: zero-shot on compositions held out of pretraining.
HELD_OUT = "held-out"
#: Seed offsets of the training and reference draws (test draws use the seed itself).
TRAIN_DRAW, REFERENCE_DRAW = 1000, 3000


@dataclass(frozen=True)
class ContinualMethod:
    """What a continual learner adds to plain sequential fine-tuning (see the module docstring)."""

    distill: bool = False
    average: str = "none"
    avg_every: int = 10
    momentum: float = 0.99
    temperature: float = 2.0

    def __post_init__(self) -> None:
        check_choice("average", self.average, AVERAGING)
        if int(self.avg_every) < 1:
            raise ValueError(f"avg_every must be >= 1, got {self.avg_every!r}")
        if not 0.0 < float(self.momentum) < 1.0:
            raise ValueError(f"momentum must be in (0, 1), got {self.momentum!r}")
        if not float(self.temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")


@dataclass
class Task:
    """One task: its images (uint8, at the model's input size), labels and fixed zero-shot head."""

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    head: torch.Tensor
    identity: Dict[str, Any]


def uint8_images(ds: ZSDataset, size: int) -> torch.Tensor:
    """``[N, size, size, 3]`` uint8 RGB images of a dataset (resized bicubically where they differ)."""
    images = getattr(ds, "images", None)
    rows = getattr(ds, "rows", None)
    if images is not None and images.ndim == 4 and images.shape[1:] == (size, size, 3):
        return torch.from_numpy(np.ascontiguousarray(images if rows is None else images[rows]))
    view = without_transform(ds)
    out = np.stack([np.asarray(view[i][0].convert("RGB").resize((size, size), Image.BICUBIC)) for i in range(len(ds))])
    return torch.from_numpy(out)


def _head(encode, ds: ZSDataset, template_set: str) -> torch.Tensor:
    """The zero-shot head of a task: zsworld's ``template_set``; another dataset's own default templates
    (their files hold one set; zsworld's hold several)."""
    templates = load_templates("zsworld", template_set) if ds.name == "zsworld" else ds.templates
    return build_classifier(encode, ds.classes, templates)


def build_task(lm: Any, dataset: str, seed: int, n_train: int, n_test: int, template_set: str = "ensemble",
               split_train: str = "train", split_test: str = "test") -> Task:
    """A classification task on ``dataset`` for a zslab offline CLIP: ``n_train``/``n_test`` images per
    class (zsworld: its seen compositions in the model's world; others: their train and test splits)."""
    from ..embeddings import cached_text_encoder

    size = int(lm.model.visual.image_size[0] if isinstance(lm.model.visual.image_size, tuple)
               else lm.model.visual.image_size)
    if dataset == "zsworld":
        split_train = split_test = "seen"
    train = eval_dataset(dataset, split=split_train, n_per_class=n_train, seed=TRAIN_DRAW + seed, model=lm)
    test = eval_dataset(dataset, split=split_test, n_per_class=n_test, seed=seed, model=lm)
    head = _head(cached_text_encoder(lm), test, template_set)
    return Task(dataset, uint8_images(train, size), torch.from_numpy(train.targets.copy()), uint8_images(test, size),
                torch.from_numpy(test.targets.copy()), head, {"train": train.identity, "test": test.identity})


def held_out_task(lm: Any, seed: int, n_test: int, template_set: str = "ensemble") -> Task:
    """Zero-shot on the compositions held out of pretraining (no training images)."""
    from ..embeddings import cached_text_encoder

    test = eval_dataset("zsworld", split="unseen", n_per_class=n_test, seed=seed, model=lm)
    size = int(test.images.shape[1])
    return Task(HELD_OUT, torch.empty(0, size, size, 3, dtype=torch.uint8), torch.empty(0, dtype=torch.long),
                uint8_images(test, size), torch.from_numpy(test.targets.copy()),
                _head(cached_text_encoder(lm), test, template_set), {"test": test.identity})


@dataclass
class ReferenceData:
    """Unlabelled reference images, reference texts, and the initial model's features of both."""

    images: torch.Tensor
    initial_features: torch.Tensor
    text_features: torch.Tensor
    identity: Dict[str, Any]


def reference_data(lm: Any, seed: int, n_pairs: int) -> ReferenceData:
    """``n_pairs`` captioned scenes of the seen compositions from a stream of their own: the images and the
    captions are both used, not as pairs (ZSCL needs neither labels nor matched pairs)."""
    from ..embeddings import cached_text_encoder, encode_rendered

    world = dict(model_world(lm) or {})
    ds = build_dataset("zsworld_captions", split="seen", n_pairs=n_pairs, seed=REFERENCE_DRAW + seed, world=world)
    images = torch.from_numpy(np.ascontiguousarray(ds.images))
    feats = encode_rendered(lm.model.encode_image, images)
    texts = F.normalize(cached_text_encoder(lm)(list(ds.captions)).float(), dim=-1)
    return ReferenceData(images, feats, texts, ds.identity)


def distillation_loss(current: torch.Tensor, initial: torch.Tensor, temperature: float) -> torch.Tensor:
    """Soft cross-entropy of the current logits to the initial model's, at ``temperature``, rows and columns
    (image→text and text→image), scaled by T² so its gradient does not shrink with the temperature."""
    t = float(temperature)

    def soft_ce(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return -(F.softmax(teacher / t, dim=1) * F.log_softmax(student / t, dim=1)).sum(1).mean()

    return (soft_ce(current, initial) + soft_ce(current.T, initial.T)) * t * t


class _Averager:
    """The weights a method predicts with: the fast ones, their running mean (weight ensemble) or a slow
    momentum copy."""

    def __init__(self, method: ContinualMethod, visual: torch.nn.Module):
        self.method = method
        self.slow = copy.deepcopy(visual) if method.average == "momentum" else None
        self.mean: Optional[torch.nn.Module] = None
        self.samples = 0

    def start_task(self, visual: torch.nn.Module) -> None:
        if self.method.average == "weight-ensemble":
            self.mean, self.samples = copy.deepcopy(visual), 0

    @torch.no_grad()
    def step(self, visual: torch.nn.Module, step: int) -> None:
        if self.method.average == "momentum":
            m = float(self.method.momentum)
            for s, f in zip(self.slow.parameters(), visual.parameters()):
                s.mul_(m).add_(f.detach(), alpha=1.0 - m)
        elif self.method.average == "weight-ensemble" and step % int(self.method.avg_every) == 0:
            self.samples += 1
            for s, f in zip(self.mean.parameters(), visual.parameters()):
                s.add_(f.detach() - s, alpha=1.0 / self.samples)

    def predicting(self, visual: torch.nn.Module) -> torch.nn.Module:
        if self.method.average == "momentum":
            return self.slow
        if self.method.average == "weight-ensemble":
            return self.mean
        return visual


def _distillation_term(visual: torch.nn.Module, ref: ReferenceData, scale: float, temperature: float,
                       ref_batch: int) -> Callable[[int, torch.Generator], torch.Tensor]:
    """The fine-tuning loop's extra loss for ZSCL: :func:`distillation_loss` on a batch of reference images
    (drawn with the loop's generator) against all reference texts."""

    def term(step: int, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, len(ref.images), (ref_batch,), generator=gen)
        current = F.normalize(visual(images_to_tensor(ref.images[idx], MEAN, STD)), dim=-1)
        return distillation_loss(scale * current @ ref.text_features.T,
                                 scale * ref.initial_features[idx] @ ref.text_features.T, temperature)

    return term


def _correct(visual: torch.nn.Module, task: Task, batch_size: int = 1024) -> np.ndarray:
    from ..embeddings import encode_rendered

    feats = encode_rendered(visual, task.test_images, batch_size)
    return ((feats @ task.head.T).argmax(1) == task.test_labels).numpy()


def run_continual(lm: Any, tasks: Sequence[Task], held_out: Task, method: ContinualMethod, cfg: FinetuneConfig,
                  reference: Optional[ReferenceData] = None, ref_batch: int = 64,
                  label: str = "") -> Dict[str, np.ndarray]:
    """Learn ``tasks`` in order with ``method``; ``{"<after>/<set>": correct}`` for every point (``start``,
    then each task's name) and every set (each task's test set and ``held-out``)."""
    if method.distill and reference is None:
        raise ValueError("a distilling method needs reference data")
    scale = float(lm.logit_scale)
    visual = copy.deepcopy(lm.model.visual)
    visual.eval()
    averager = _Averager(method, visual)
    sets = [*tasks, held_out]
    out = {f"{START}/{t.name}": _correct(visual, t) for t in sets}
    for k, task in enumerate(tasks):
        classifier = ZeroShotInitClassifier(visual, task.head, scale)
        classifier.head.requires_grad_(False)  # CLIP's logits against the fixed text embeddings
        averager.start_task(visual)
        extra = _distillation_term(visual, reference, scale, method.temperature, ref_batch) if method.distill else None
        task_cfg = FinetuneConfig(**{**cfg.as_dict(), "seed": int(cfg.seed) + 100 * k})
        finetune_classifier(classifier, task.train_images, task.train_labels, task_cfg, MEAN, STD,
                            label=f"{label} task {k + 1}/{len(tasks)}: {task.name}", extra_loss=extra,
                            after_step=lambda step: averager.step(visual, step))
        if method.average == "weight-ensemble":  # ZSCL hands the averaged model to the next task
            visual.load_state_dict(averager.mean.state_dict())
        predicting = averager.predicting(visual)
        predicting.eval()
        for t in sets:
            out[f"{task.name}/{t.name}"] = _correct(predicting, t)
    return out


@dataclass
class ContinualResults:
    """``table``: top-1 per seed, method, point (``after``) and set; ``correct[set][seed][method]``: per-image
    correctness after the last task (and ``start``), for paired verdicts; ``tasks``: the task order."""

    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    correct: Dict[str, Dict[int, Dict[str, np.ndarray]]] = field(default_factory=dict)
    tasks: List[str] = field(default_factory=list)
    methods: List[str] = field(default_factory=list)

    def steps(self) -> pd.DataFrame:
        """``table`` with ``tasks learned`` (0 at the zero-shot start, k after the k-th task) for plotting."""
        order = {name: k for k, name in enumerate([START, *self.tasks])}
        return self.table.assign(**{"tasks learned": self.table["after"].map(order)})

    def summary_scores(self) -> pd.DataFrame:
        """Per seed and method, MTIL's scores (ZSCL Sec. 5): ``transfer`` — mean top-1 on each task before it
        is learned (zero-shot on tasks to come), ``last`` — mean over tasks after the last one, and the
        held-out zero-shot after the last task."""
        rows = []
        order = [START, *self.tasks]
        for (seed, method), g in self.table.groupby(["seed", "method"], sort=False):
            acc = {(a, s): v for a, s, v in zip(g["after"], g["set"], g["top1"])}
            transfer = [np.mean([acc[(order[j], t)] for j in range(i + 1)]) for i, t in enumerate(self.tasks)
                        if i >= 1] or [acc[(START, self.tasks[0])]]
            rows.append({"seed": seed, "method": method, "transfer": float(np.mean(transfer)),
                         "last": float(np.mean([acc[(self.tasks[-1], t)] for t in self.tasks])),
                         HELD_OUT: acc[(self.tasks[-1], HELD_OUT)]})
        return pd.DataFrame(rows)


def continual_experiment(model: str, seeds: Sequence[int], datasets: Sequence[str],
                         methods: Mapping[str, Mapping[str, Any]], finetune: Mapping[str, Any], n_train: int,
                         n_test: int, n_reference: int, template_set: str = "ensemble",
                         cache: Optional[TensorCache] = None) -> ContinualResults:
    """Every method (label → :class:`ContinualMethod` fields) on the task sequence ``datasets``, for each
    pretrained run (seed) of ``model``; ``finetune`` are the :class:`FinetuneConfig` fields of every task."""
    from ..models import load_model

    if not datasets or not methods:
        raise ValueError("continual_experiment needs at least one task and one method")
    cache = cache or TensorCache()
    parsed = {name: ContinualMethod(**dict(fields)) for name, fields in methods.items()}
    cfg = FinetuneConfig(**dict(finetune))
    out = ContinualResults(tasks=list(datasets), methods=list(methods))
    rows = []
    for seed in seeds:
        lm = load_model(model, seed=seed, progress=False)
        tasks = [build_task(lm, d, seed, n_train, n_test, template_set) for d in datasets]
        held_out = held_out_task(lm, seed, n_test, template_set)
        reference = reference_data(lm, seed, n_reference) if any(m.distill for m in parsed.values()) else None
        for name, method in parsed.items():
            description = {"kind": "continual fine-tuning", "pretrained": lm.fingerprint, "method": asdict(method),
                           "config": cfg.as_dict(), "tasks": [t.identity for t in tasks],
                           "held_out": held_out.identity, "heads": tensor_digest({t.name: t.head for t in tasks}),
                           "reference": reference.identity if method.distill else None}
            cfg_seed = FinetuneConfig(**{**cfg.as_dict(), "seed": int(cfg.seed) + int(seed)})
            correct = cache.get_or_compute(description, lambda: {
                k: torch.from_numpy(v) for k, v in run_continual(lm, tasks, held_out, method, cfg_seed, reference,
                                                                  label=f"{name} (seed {seed})").items()})
            for key, value in correct.items():
                after, set_name = key.split("/", 1)
                c = value.numpy().astype(bool)
                rows.append({"seed": seed, "method": name, "after": after, "set": set_name, "top1": float(c.mean())})
                if after in (START, datasets[-1]):
                    arm = START if after == START else name
                    out.correct.setdefault(set_name, {}).setdefault(seed, {})[arm] = c
    out.table = pd.DataFrame(rows).drop_duplicates(["seed", "method", "after", "set"])
    return out
