"""Conditional image similarity (GeneCIS, Vaze et al., CVPR 2023, arXiv 2306.07969) on zsworld.

One sample is a reference image, a condition text and a gallery with exactly one positive; the metric is
Recall@K of the positive (K = 1, 2, 3). GeneCIS's four task kinds become, on zsworld's objects (colour plays the
attribute, shape the object):

* **focus on colour** (condition ``"color"``): the positive shares the reference's colour and differs in pattern
  and shape; the hard distractors are the reference's pattern and shape in another colour (similar, but not
  *conditionally* similar).
* **change colour** (condition: a colour word, ``"blue"``): the positive is the reference's object in that
  colour; distractors are the reference's own composition (what image similarity prefers) and other objects in
  the new colour (what the condition text alone prefers).
* **focus on shape** / **change shape**: the same with the shape.

Every distractor differs from the positive's condition-relevant content, so exactly one gallery image is right.
Scores: **image only** ``<f(ref), f(g)>``; **text only** ``<t(cond), f(g)>``; **image + text** the normalised sum;
the **combiner** (CLIP4Cir's, as GeneCIS uses): projections of both features, an MLP on their concatenation and a
learned gate mixing the two inputs back in, trained with InfoNCE over the batch's targets on triplets *mined*
without labels from the training distribution (reference and target differ in one factor; the condition is the
target's word for it; seen compositions only). **Control**: the same combiner trained with the conditions
shuffled across triplets, so it cannot learn what a condition asks for.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Registry

#: Gallery size (GeneCIS: the positive and 14 distractors), and the share of distractors that are hard ones.
GALLERY_SIZE = 15
HARD_SHARE = 0.5
RECALL_AT = (1, 2, 3)
#: The factor of a zsworld composition (colour, pattern, shape) each task is about.
FACTOR_INDEX = {"color": 0, "pattern": 1, "shape": 2}


@dataclass(frozen=True)
class ConditionTask:
    """A GeneCIS task kind on one factor: ``kind`` is ``"focus"`` (keep this factor, anything else may change) or
    ``"change"`` (change this factor to the condition's value, keep everything else)."""

    kind: str
    factor: str


CONDITION_TASKS: Registry[ConditionTask] = Registry("conditional similarity task")
CONDITION_TASKS.add("focus color", ConditionTask("focus", "color"))
CONDITION_TASKS.add("change color", ConditionTask("change", "color"))
CONDITION_TASKS.add("focus shape", ConditionTask("focus", "shape"))
CONDITION_TASKS.add("change shape", ConditionTask("change", "shape"))


def task_compositions(task: ConditionTask, comps: np.ndarray, n: int, gallery_size: int,
                      rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(references [n, 3], condition values [n], galleries [n, G, 3])`` of compositions from ``comps`` (rows of
    (colour, pattern, shape)); the gallery's first entry is the positive, then hard and random distractors.
    The condition value is the factor's value of the positive (focus: the reference's; change: a new one)."""
    if gallery_size < 2:
        raise ValueError(f"gallery_size must be >= 2, got {gallery_size}")
    j = FACTOR_INDEX[task.factor]
    others = [i for i in range(3) if i != j]
    references, conditions, galleries = [], [], []
    n_hard = int(round(HARD_SHARE * (gallery_size - 1)))
    while len(references) < n:
        ref = comps[rng.integers(len(comps))]
        if task.kind == "focus":
            positives = comps[(comps[:, j] == ref[j]) & (comps[:, others] != ref[others]).any(1)]
            hard = comps[(comps[:, j] != ref[j]) & (comps[:, others] == ref[others]).all(1)]
            wrong = comps[comps[:, j] != ref[j]]
        else:
            new = comps[(comps[:, j] != ref[j]) & (comps[:, others] == ref[others]).all(1)]
            if len(new) == 0:
                continue
            positive = new[rng.integers(len(new))]
            positives = positive[None]
            # the reference itself and the new value on other objects: each right about one half of the query
            hard = comps[((comps == ref).all(1)) | ((comps[:, j] == positive[j]) & (comps[:, others] != ref[others]).any(1))]
            wrong = comps[~(comps == positive).all(1)]
        if len(positives) == 0 or len(wrong) == 0:
            continue
        positive = positives[rng.integers(len(positives))]
        pool_hard = hard if len(hard) else wrong
        distractors = np.concatenate([pool_hard[rng.integers(len(pool_hard), size=n_hard)],
                                      wrong[rng.integers(len(wrong), size=gallery_size - 1 - n_hard)]])
        references.append(ref)
        conditions.append(positive[j])
        galleries.append(np.concatenate([positive[None], distractors]))
    return np.stack(references), np.asarray(conditions), np.stack(galleries)


def condition_text(task: ConditionTask, value: int, spec) -> str:
    """GeneCIS's conditions: the factor's name for *focus*, the new value's word for *change*."""
    return task.factor if task.kind == "focus" else spec.factor_values(task.factor)[int(value)]


def _scenes_of(spec, knobs, comps: np.ndarray, pool: Sequence, rng: np.random.Generator):
    """Scenes whose main objects are exactly ``comps`` (rows), with the world's sizes, positions, backgrounds and
    distractor objects drawn as usual."""
    from ..world import sample_scenes

    scenes = sample_scenes(spec, knobs, len(comps), rng, pool, distractor_pool=pool)
    return dataclasses.replace(scenes, color=comps[:, 0].copy(), pattern=comps[:, 1].copy(), shape=comps[:, 2].copy())


def render_compositions(spec, knobs, comps: np.ndarray, pool: Sequence, rng: np.random.Generator) -> np.ndarray:
    from ..world import render

    return render(spec, knobs, _scenes_of(spec, knobs, comps, pool, rng), rng)


# --------------------------------------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------------------------------------
class Combiner(torch.nn.Module):
    """CLIP4Cir's combiner in small: ``normalise(MLP([P_i f, P_t t]) + λ t + (1 − λ) f)``, λ = a learned gate."""

    def __init__(self, dim: int, hidden_factor: int = 4):
        super().__init__()
        h = hidden_factor * dim
        self.image = torch.nn.Sequential(torch.nn.Linear(dim, h), torch.nn.ReLU())
        self.text = torch.nn.Sequential(torch.nn.Linear(dim, h), torch.nn.ReLU())
        self.mix = torch.nn.Sequential(torch.nn.Linear(2 * h, 2 * h), torch.nn.ReLU(), torch.nn.Linear(2 * h, dim))
        self.gate = torch.nn.Sequential(torch.nn.Linear(2 * h, h), torch.nn.ReLU(), torch.nn.Linear(h, 1))

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        both = torch.cat([self.image(image), self.text(text)], dim=1)
        gate = torch.sigmoid(self.gate(both))
        return F.normalize(self.mix(both) + gate * text + (1 - gate) * image, dim=1)


#: GeneCIS's InfoNCE scale (its ``lamda``; temperature 0.01), and the combiner's training.
INFONCE_SCALE = 100.0
COMBINER_EPOCHS = 10
COMBINER_BATCH = 256
COMBINER_LR = 1e-3


def train_combiner(reference: torch.Tensor, condition: torch.Tensor, target: torch.Tensor, seed: int,
                   epochs: int = COMBINER_EPOCHS) -> Combiner:
    """A :class:`Combiner` trained so that ``combine(reference, condition)`` retrieves its target among the batch's
    targets (one-directional InfoNCE at :data:`INFONCE_SCALE`, AdamW, seeded)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = Combiner(reference.shape[1])
    optimiser = torch.optim.AdamW(model.parameters(), lr=COMBINER_LR, weight_decay=0.0)
    for _ in range(int(epochs)):
        order = torch.randperm(len(reference), generator=generator)
        for start in range(0, len(order), COMBINER_BATCH):
            rows = order[start:start + COMBINER_BATCH]
            logits = INFONCE_SCALE * model(reference[rows], condition[rows]) @ target[rows].T
            optimiser.zero_grad()
            F.cross_entropy(logits, torch.arange(len(rows))).backward()
            optimiser.step()
    return model.eval()


def recall_at(scores: torch.Tensor, ks: Sequence[int] = RECALL_AT) -> Dict[int, float]:
    """Recall@K of the positive in column 0 of ``scores [N, G]`` (its rank: the gallery entries scoring strictly
    higher; ties count against it, so a constant scorer gets no credit)."""
    rank = (scores[:, 1:] >= scores[:, :1]).sum(1)
    return {k: float((rank < k).float().mean()) for k in ks}


@dataclass
class EncodedTask:
    """A task's samples through one model: reference, condition and gallery features (unit rows)."""

    reference: torch.Tensor       # [N, D]
    condition: torch.Tensor       # [N, D]
    gallery: torch.Tensor         # [N, G, D]; column 0 is the positive
    texts: List[str]


def zero_shot_scores(method: str, task: EncodedTask) -> torch.Tensor:
    """[N, G] gallery scores of the GeneCIS baselines."""
    query = {"image only": task.reference, "text only": task.condition,
             "image + text": F.normalize(task.reference + task.condition, dim=1)}[method]
    return torch.einsum("nd,ngd->ng", query, task.gallery)


ZERO_SHOT_METHODS = ("image only", "text only", "image + text")


def combiner_scores(combiner: Combiner, task: EncodedTask) -> torch.Tensor:
    with torch.no_grad():
        return torch.einsum("nd,ngd->ng", combiner(task.reference, task.condition), task.gallery)


# --------------------------------------------------------------------------------------------------------
# Samples through a model, cached
# --------------------------------------------------------------------------------------------------------
#: Bump when sampling, rendering or mining changes: every cached encoding then misses.
CONDITIONAL_VERSION = 1


def _world(lm):
    from ..evaluation import offline_world

    return offline_world(lm, "the zsworld conditional-similarity tasks need the model's world")


def _cached(lm, description: Dict[str, Any], compute):
    from ..cache import TensorCache

    key = {"kind": "conditional similarity", "version": CONDITIONAL_VERSION,
           "model": lm.name, "weights": getattr(lm, "fingerprint", None) or lm.name, **description}
    return TensorCache().get_or_compute(key, compute)


def encode_task(lm, task_name: str, n: int, seed: int, gallery_size: int = GALLERY_SIZE) -> EncodedTask:
    """``n`` samples of the named task over every composition of ``lm``'s world (seen and unseen: the benchmark is
    zero-shot), rendered from a seed stream apart from training and encoded by ``lm`` (cached)."""
    from ..embeddings import cached_text_encoder, rendered_image_features

    task = CONDITION_TASKS.get(task_name)
    spec, knobs, split = _world(lm)
    comps = np.asarray(split.compositions("all"))
    rng = np.random.default_rng([seed, 9, list(CONDITION_TASKS.names()).index(task_name)])
    references, values, galleries = task_compositions(task, comps, n, gallery_size, rng)
    texts = [condition_text(task, v, spec) for v in values]

    def compute() -> Dict[str, torch.Tensor]:
        pool = [tuple(c) for c in comps.tolist()]
        ref = rendered_image_features(lm, render_compositions(spec, knobs, references, pool, rng))
        gal = rendered_image_features(lm, render_compositions(spec, knobs, galleries.reshape(-1, 3), pool, rng))
        return {"reference": ref, "gallery": gal.view(n, gallery_size, -1)}

    tensors = _cached(lm, {"task": task_name, "n": int(n), "seed": int(seed), "gallery": int(gallery_size)}, compute)
    condition = F.normalize(cached_text_encoder(lm)(texts).float(), dim=1)
    return EncodedTask(tensors["reference"], condition, tensors["gallery"], texts)


def mined_triplets(lm, n: int, seed: int, shuffle_conditions: bool = False) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(reference, condition, target)`` features of ``n`` training triplets mined from ``lm``'s *seen*
    compositions: a reference and a target that differ in one factor (colour, pattern or shape), the condition
    being the target's word for it (GeneCIS mines subject-shared pairs from captions and conditions on the
    target's words). ``shuffle_conditions``: the control, conditions permuted across triplets."""
    from ..embeddings import cached_text_encoder, rendered_image_features

    spec, knobs, split = _world(lm)
    seen = np.asarray(split.compositions("seen"))
    rng = np.random.default_rng([seed, 10])
    references, targets, texts = [], [], []
    factors = list(FACTOR_INDEX)
    while len(references) < n:
        ref = seen[rng.integers(len(seen))]
        factor = factors[rng.integers(len(factors))]
        j = FACTOR_INDEX[factor]
        others = [i for i in range(3) if i != j]
        options = seen[(seen[:, j] != ref[j]) & (seen[:, others] == ref[others]).all(1)]
        if len(options) == 0:
            continue
        target = options[rng.integers(len(options))]
        references.append(ref)
        targets.append(target)
        texts.append(spec.factor_values(factor)[int(target[j])])
    references, targets = np.stack(references), np.stack(targets)

    def compute() -> Dict[str, torch.Tensor]:
        pool = [tuple(c) for c in seen.tolist()]
        return {"reference": rendered_image_features(lm, render_compositions(spec, knobs, references, pool, rng)),
                "target": rendered_image_features(lm, render_compositions(spec, knobs, targets, pool, rng))}

    tensors = _cached(lm, {"triplets": int(n), "seed": int(seed)}, compute)
    condition = F.normalize(cached_text_encoder(lm)(texts).float(), dim=1)
    if shuffle_conditions:
        condition = condition[torch.as_tensor(np.random.default_rng([seed, 11]).permutation(n))]
    return tensors["reference"], condition, tensors["target"]


COMBINER_ARMS = {"combiner": False, "combiner, shuffled conditions": True}
#: Bump when the combiner or its training changes: cached combiner scores then miss.
COMBINER_VERSION = 1


def cached_combiner_scores(lm, encoded: Dict[str, EncodedTask], n_triplets: int, seed: int, shuffle: bool,
                           epochs: int) -> Dict[str, torch.Tensor]:
    """Gallery scores of a combiner trained on ``lm``'s mined triplets, per task; cached under the model, the
    triplets' settings, the training recipe and the content of the encoded tasks (a warm rerun trains nothing)."""
    from ..cache import tensor_digest

    content = tensor_digest({f"{name}/{part}": getattr(t, part) for name, t in encoded.items()
                             for part in ("reference", "condition", "gallery")})
    description = {"combiner": COMBINER_VERSION, "triplets": int(n_triplets), "seed": int(seed),
                   "shuffle": bool(shuffle), "epochs": int(epochs), "tasks": content,
                   "recipe": [INFONCE_SCALE, COMBINER_BATCH, COMBINER_LR]}

    def compute() -> Dict[str, torch.Tensor]:
        combiner = train_combiner(*mined_triplets(lm, n_triplets, seed, shuffle), seed=seed, epochs=epochs)
        return {name: combiner_scores(combiner, t) for name, t in encoded.items()}

    return dict(_cached(lm, description, compute))


def conditional_rows(model: str, seeds: Sequence[int], tasks: Sequence[str], n_samples: int, n_triplets: int,
                     epochs: int = COMBINER_EPOCHS, device: str = "cpu") -> List[Dict[str, Any]]:
    """Recall@1/2/3 of the zero-shot baselines and the two combiners on every task, for ``model`` trained with
    each seed (the seed also draws the samples and triplets); each value recorded as ``recall_at_<k>``."""
    from ..models import load_model
    from ..records import record

    for name in tasks:
        CONDITION_TASKS.get(name)
    rows = []
    for seed in seeds:
        lm = load_model(model, seed=seed, device=device, progress=False)
        encoded = {name: encode_task(lm, name, n_samples, seed) for name in tasks}
        scorers = {method: {name: zero_shot_scores(method, t) for name, t in encoded.items()}
                   for method in ZERO_SHOT_METHODS}
        for arm, shuffle in COMBINER_ARMS.items():
            scorers[arm] = cached_combiner_scores(lm, encoded, n_triplets, seed, shuffle, epochs)
        for method, per_task in scorers.items():
            for name, scores in per_task.items():
                recalls = recall_at(scores)
                for k, value in recalls.items():
                    record(f"recall_at_{k}", value, method=method, task=name, seed=seed)
                rows.append({"method": method, "task": name, "seed": seed,
                             **{f"R@{k}": v for k, v in recalls.items()}})
    return rows
