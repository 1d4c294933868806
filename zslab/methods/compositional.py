"""Compositional zero-shot learning on zsworld: attribute = colour, object = shape.

**Protocol** (after Purushwalkam et al., arXiv 1905.05908, and the open world of Mancini et al., arXiv
2101.12609). A label is a (colour, shape) pair; zsworld draws every one of the 8 × 6 = 48 pairs (with any of
its 4 patterns), so the dataset is *made* to miss some: per seed the pairs are split into **seen** pairs
(training images), **unseen** pairs (test images only) and **absent** pairs (never drawn). *Closed world*: the
label space is the dataset's pairs, seen and unseen (the absent ones are known not to exist). *Open world*: every
one of the 48 pairs, the absent ones included, so a model must also rule out compositions that never occur.
Test images are of seen and unseen pairs, a separate draw. Metrics: seen and unseen accuracy (mean per pair)
with a bias added to every non-seen pair's score, the best harmonic mean over that bias, and the area under the
seen-unseen curve: calibrated stacking and AUSUC of :mod:`zslab.metrics`, the seen pairs playing the seen classes.

**Models**, trained on the seen pairs' image features (registry :data:`COMPOSITIONAL_MODELS`):

* ``separate primitives`` (the "visual product" baseline): one softmax head for colour and one for shape,
  ``score(c, s) = log p(c | x) + log p(s | x)``; attribute and object never interact.
* ``object-conditioned attributes`` (the idea of CoT, arXiv 2308.04016: attribute experts guided by the object):
  the shape head, and a colour head that reads the image *and* the shape's learned embedding,
  ``score(c, s) = log p(s | x) + log p(c | x, s)``.
* ``pair embedding`` (a compatibility model with an interaction MLP, in the style of CompCos/CGE): learned
  primitive embeddings, ``g(c, s) = MLP([e_c; e_s])``, ``score = τ cos(W x, g(c, s))``, cross-entropy over the
  seen pairs.

PBadv's adversarial primitive training and CoT's minority-attribute augmentation are not built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics import ausuc, gzsl_metrics, seen_unseen_curve
from ..registry import Registry

WORLDS = ("closed", "open")


@dataclass
class PairSplit:
    """Which (colour, shape) pairs are seen, unseen and absent; pair index = colour × n_shapes + shape."""

    colors: List[str]
    shapes: List[str]
    seen: np.ndarray
    unseen: np.ndarray
    absent: np.ndarray

    @property
    def n_pairs(self) -> int:
        return len(self.colors) * len(self.shapes)

    def pair(self, color: int, shape: int) -> int:
        return color * len(self.shapes) + shape

    def name(self, pair: int) -> str:
        return f"{self.colors[pair // len(self.shapes)]} {self.shapes[pair % len(self.shapes)]}"

    def label_space(self, world: str) -> np.ndarray:
        """The pairs a prediction may name: the dataset's (closed) or all of them (open)."""
        if world not in WORLDS:
            raise ValueError(f"unknown world {world!r}; valid choices: {', '.join(WORLDS)}")
        return np.arange(self.n_pairs) if world == "open" else np.union1d(self.seen, self.unseen)


def split_pairs(colors: Sequence[str], shapes: Sequence[str], seed: int, n_unseen: int, n_absent: int) -> PairSplit:
    """A seeded split of the pairs. Every colour and every shape keeps at least one seen pair, so each primitive
    is learnable: the unseen pairs are new *compositions* of known primitives."""
    n = len(colors) * len(shapes)
    if n_unseen < 1 or n_absent < 0 or n_unseen + n_absent > n - max(len(colors), len(shapes)):
        raise ValueError(f"need 1 ≤ n_unseen and n_unseen + n_absent ≤ {n - max(len(colors), len(shapes))} "
                         f"(the {n} pairs minus one seen pair per primitive); got {n_unseen} and {n_absent}")
    rng = np.random.default_rng([seed, 23])
    for _ in range(1000):
        order = rng.permutation(n)
        held, seen = order[:n_unseen + n_absent], np.sort(order[n_unseen + n_absent:])
        if len({p // len(shapes) for p in seen}) == len(colors) and len({p % len(shapes) for p in seen}) == len(shapes):
            return PairSplit(list(colors), list(shapes), seen, np.sort(held[:n_unseen]), np.sort(held[n_unseen:]))
    raise RuntimeError("could not draw a split keeping every primitive seen")  # pragma: no cover


@dataclass
class CompositionalData:
    """Image features with their colour and shape labels: training images of seen pairs, test images of seen
    and unseen pairs."""

    split: PairSplit
    x_train: torch.Tensor
    color_train: torch.Tensor
    shape_train: torch.Tensor
    x_test: torch.Tensor
    pair_test: np.ndarray
    about: Dict[str, Any] = field(default_factory=dict)

    @property
    def pair_train(self) -> torch.Tensor:
        return self.color_train * len(self.split.shapes) + self.shape_train


# --------------------------------------------------------------------------------------------------------
# Models: fit(data, seed) -> scorer features -> [N, n_pairs] scores over every pair
# --------------------------------------------------------------------------------------------------------
Scorer = Callable[[torch.Tensor], torch.Tensor]
COMPOSITIONAL_MODELS: Registry[Callable[..., Scorer]] = Registry("compositional model")
EPOCHS = 60
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
BATCH_SIZE = 128
EMBED_DIM = 64
HIDDEN = 128
TEMPERATURE = 0.05


def _standardiser(x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    return lambda f: (f.float() - mean) / std


def _train(module: torch.nn.Module, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
           rows: int, seed: int, epochs: int = EPOCHS) -> None:
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(module.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    for _ in range(epochs):
        order = torch.randperm(rows, generator=generator)
        for start in range(0, rows, BATCH_SIZE):
            batch = order[start:start + BATCH_SIZE]
            optimiser.zero_grad()
            loss_fn(x[batch], batch).backward()
            optimiser.step()


@COMPOSITIONAL_MODELS.register("separate primitives")
def fit_separate_primitives(data: CompositionalData, seed: int = 0) -> Scorer:
    torch.manual_seed(seed)
    scale = _standardiser(data.x_train)
    x = scale(data.x_train)
    n_c, n_s = len(data.split.colors), len(data.split.shapes)
    heads = torch.nn.ModuleDict({"color": torch.nn.Linear(x.shape[1], n_c), "shape": torch.nn.Linear(x.shape[1], n_s)})
    _train(heads, lambda xb, rows: F.cross_entropy(heads["color"](xb), data.color_train[rows])
           + F.cross_entropy(heads["shape"](xb), data.shape_train[rows]), x, len(x), seed)

    @torch.no_grad()
    def score(features: torch.Tensor) -> torch.Tensor:
        f = scale(features)
        lc, ls = heads["color"](f).log_softmax(1), heads["shape"](f).log_softmax(1)
        return (lc[:, :, None] + ls[:, None, :]).reshape(len(f), -1)

    return score


class _ConditionedColor(torch.nn.Module):
    def __init__(self, dim: int, n_colors: int, n_shapes: int):
        super().__init__()
        self.shape_head = torch.nn.Linear(dim, n_shapes)
        self.shape_embedding = torch.nn.Embedding(n_shapes, EMBED_DIM)
        self.color_head = torch.nn.Sequential(torch.nn.Linear(dim + EMBED_DIM, HIDDEN), torch.nn.ReLU(),
                                              torch.nn.Linear(HIDDEN, n_colors))

    def color_logits(self, f: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        return self.color_head(torch.cat([f, self.shape_embedding(shape)], dim=1))


@COMPOSITIONAL_MODELS.register("object-conditioned attributes")
def fit_object_conditioned(data: CompositionalData, seed: int = 0) -> Scorer:
    torch.manual_seed(seed)
    scale = _standardiser(data.x_train)
    x = scale(data.x_train)
    n_c, n_s = len(data.split.colors), len(data.split.shapes)
    model = _ConditionedColor(x.shape[1], n_c, n_s)
    _train(model, lambda xb, rows: F.cross_entropy(model.shape_head(xb), data.shape_train[rows])
           + F.cross_entropy(model.color_logits(xb, data.shape_train[rows]), data.color_train[rows]), x, len(x), seed)

    @torch.no_grad()
    def score(features: torch.Tensor) -> torch.Tensor:
        f = scale(features)
        ls = model.shape_head(f).log_softmax(1)  # [N, S]
        lc = torch.stack([model.color_logits(f, torch.full((len(f),), s, dtype=torch.long)).log_softmax(1)
                          for s in range(n_s)], dim=2)  # [N, C, S]
        return (lc + ls[:, None, :]).reshape(len(f), -1)

    return score


class _PairEmbedding(torch.nn.Module):
    def __init__(self, dim: int, n_colors: int, n_shapes: int):
        super().__init__()
        self.image = torch.nn.Linear(dim, EMBED_DIM)
        self.colors = torch.nn.Embedding(n_colors, EMBED_DIM)
        self.shapes = torch.nn.Embedding(n_shapes, EMBED_DIM)
        self.compose = torch.nn.Sequential(torch.nn.Linear(2 * EMBED_DIM, HIDDEN), torch.nn.ReLU(),
                                           torch.nn.Linear(HIDDEN, EMBED_DIM))
        self.n_shapes = n_shapes

    def pairs(self, pair_index: torch.Tensor) -> torch.Tensor:
        c, s = pair_index // self.n_shapes, pair_index % self.n_shapes
        return F.normalize(self.compose(torch.cat([self.colors(c), self.shapes(s)], dim=1)), dim=1)

    def logits(self, f: torch.Tensor, pair_index: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image(f), dim=1) @ self.pairs(pair_index).T / TEMPERATURE


@COMPOSITIONAL_MODELS.register("pair embedding")
def fit_pair_embedding(data: CompositionalData, seed: int = 0) -> Scorer:
    torch.manual_seed(seed)
    scale = _standardiser(data.x_train)
    x = scale(data.x_train)
    model = _PairEmbedding(x.shape[1], len(data.split.colors), len(data.split.shapes))
    seen = torch.as_tensor(data.split.seen)
    position = torch.full((data.split.n_pairs,), -1, dtype=torch.long)
    position[seen] = torch.arange(len(seen))
    target = position[data.pair_train]
    _train(model, lambda xb, rows: F.cross_entropy(model.logits(xb, seen), target[rows]), x, len(x), seed)

    @torch.no_grad()
    def score(features: torch.Tensor) -> torch.Tensor:
        return model.logits(scale(features), torch.arange(data.split.n_pairs))

    return score


# --------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------
def compositional_metrics(scores: torch.Tensor, data: CompositionalData, world: str) -> Dict[str, float]:
    """Seen and unseen pair accuracy (mean per pair, no bias), the best H over a bias on the non-seen pairs,
    and the AUC of the seen-unseen curve, in the ``world``'s label space."""
    space = data.split.label_space(world)
    s = scores[:, torch.as_tensor(space)].numpy()
    index = {int(p): i for i, p in enumerate(space)}
    y = np.array([index[int(p)] for p in data.pair_test])
    seen = np.array([index[int(p)] for p in data.split.seen])
    others = np.setdiff1d(np.arange(len(space)), seen)
    plain = gzsl_metrics(s.argmax(1), y, seen, others)
    curve = seen_unseen_curve(s, y, seen, others)
    h = np.where(curve["seen"] + curve["unseen"] > 0,
                 2 * curve["seen"] * curve["unseen"] / np.maximum(curve["seen"] + curve["unseen"], 1e-12), 0.0)
    return {"seen": plain["seen"], "unseen": plain["unseen"], "best_harmonic": float(h.max()),
            "auc": ausuc(curve["seen"], curve["unseen"])}


def build_compositional_data(features: str, seed: int, n_train: int, n_test: int, n_unseen: int, n_absent: int,
                             world: Optional[Dict[str, Any]] = None, device: str = "cpu") -> CompositionalData:
    """Render zsworld (with ``world`` knobs on top of the feature model's world, e.g. ``contextual_color``),
    encode it with ``features`` (a zslab model name, training run ``seed``), and split its (colour, shape) pairs:
    ``n_train`` training images per seen (colour, pattern, shape) class and ``n_test`` test images per class of
    the seen and unseen pairs."""
    from ..evaluation import eval_dataset, model_world
    from ..embeddings import image_features
    from ..models import load_model
    from ..world.spec import load_world_spec

    spec = load_world_spec()
    split = split_pairs(spec.color_names, spec.shapes, seed, n_unseen, n_absent)
    model = load_model(features, None, seed=seed, device=device, progress=False)
    knobs = {**(model_world(model) or {}), **dict(world or {})}
    draws = {}
    for part, n, draw_seed in (("train", n_train, 20_000 + seed), ("test", n_test, 30_000 + seed)):
        ds = eval_dataset("zsworld", None, "all", n_per_class=n, seed=draw_seed, model=model,
                          **({"world": knobs} if knobs else {}))
        x, labels = image_features(model, ds, progress=False)
        names = [ds.classes[int(t)] for t in labels]
        color = np.array([spec.color_names.index(n.split()[0]) for n in names])
        shape = np.array([spec.shapes.index(n.split()[-1]) for n in names])
        pair = color * len(spec.shapes) + shape
        keep = np.isin(pair, split.seen if part == "train" else np.union1d(split.seen, split.unseen))
        draws[part] = (x[torch.as_tensor(keep)].float(), color[keep], shape[keep], pair[keep])
    x_tr, c_tr, s_tr, _ = draws["train"]
    x_te, _, _, p_te = draws["test"]
    return CompositionalData(split, x_tr, torch.as_tensor(c_tr), torch.as_tensor(s_tr), x_te, p_te,
                             {"features": features, "seed": seed, "world": dict(world or {})})


def _pair_index(attrs: Sequence[str], objs: Sequence[str], pair: Tuple[str, str]) -> int:
    return attrs.index(pair[0]) * len(objs) + objs.index(pair[1])


def czsl_pair_split(attrs: Sequence[str], objs: Sequence[str], pairs: Dict[str, List[Tuple[str, str]]]) -> PairSplit:
    """A CZSL dataset's split as a :class:`PairSplit`: seen = the training pairs, unseen = the test pairs that are
    not training pairs, absent = every other attribute-object pair (the open world's distractors)."""
    seen = sorted({_pair_index(attrs, objs, p) for p in pairs["train"]})
    unseen = sorted({_pair_index(attrs, objs, p) for p in pairs["test"]} - set(seen))
    if not unseen:
        raise ValueError("the test pairs are all training pairs: no unseen composition to test")
    absent = sorted(set(range(len(attrs) * len(objs))) - set(seen) - set(unseen))
    return PairSplit(list(attrs), list(objs), np.asarray(seen, dtype=np.int64), np.asarray(unseen, dtype=np.int64),
                     np.asarray(absent, dtype=np.int64))


def build_czsl_data(root: str, features: str, seed: int, n_train: int, n_test: int,
                    pretrained: Optional[str] = None, device: str = "cpu") -> CompositionalData:
    """Real mode: a CZSL dataset folder (MIT-States / UT-Zappos, :mod:`zslab.datasets.czsl`) encoded by
    ``features`` (any model :func:`zslab.models.load_model` knows, with ``pretrained``): at most ``n_train`` training
    images per seen pair (its ``train`` set) and ``n_test`` test images per seen or unseen test pair (its
    ``test`` set; 0: all), drawn with ``seed``."""
    from ..datasets.base import FolderDataset, files_identity
    from ..datasets.czsl import read_czsl
    from ..embeddings import image_features
    from ..models import load_model

    data = read_czsl(root)
    split = czsl_pair_split(data.attrs, data.objs, data.pairs)
    model = load_model(features, pretrained or None, seed=seed, device=device, progress=False)
    rng = np.random.default_rng([seed, 41])
    draws = {}
    for part, n, allowed in (("train", n_train, split.seen), ("test", n_test, np.union1d(split.seen, split.unseen))):
        by_pair: Dict[int, List[str]] = {}
        wanted = set(allowed.tolist())
        for image in data.images:
            pair = _pair_index(data.attrs, data.objs, (image["attr"], image["obj"]))
            if image["set"] == part and pair in wanted:
                by_pair.setdefault(pair, []).append(image["path"])
        samples = [(path, pair) for pair in sorted(by_pair)
                   for path in (rng.permutation(by_pair[pair])[:n] if n else by_pair[pair])]
        if not samples:
            raise ValueError(f"{root}: no {part} images of the split's pairs")
        paths = [Path(p) for p, _ in samples]
        ds = FolderDataset(samples, name=f"czsl:{Path(root).name}", split=part,
                           classes=[split.name(p) for p in range(split.n_pairs)], templates=["a photo of {c}."],
                           identity={"name": f"czsl:{Path(root).name}", "split": part,
                                     "files": files_identity(paths, Path(root))})
        x, labels = image_features(model, ds, progress=False)
        pair = labels.numpy()
        draws[part] = (x.float(), pair // len(split.shapes), pair % len(split.shapes), pair)
    x_tr, c_tr, s_tr, _ = draws["train"]
    x_te, _, _, p_te = draws["test"]
    return CompositionalData(split, x_tr, torch.as_tensor(c_tr), torch.as_tensor(s_tr), x_te, p_te,
                             {"features": features, "seed": seed, "root": str(root)})


#: Bump when a model or the training recipe changes: every cached score then misses.
MODEL_VERSION = 1


def cached_scores(data: CompositionalData, model: str, seed: int) -> torch.Tensor:
    """The model fitted on ``data`` and applied to its test images, cached under the data's content."""
    from ..cache import TensorCache, tensor_digest

    split = data.split
    content = tensor_digest({"x_train": data.x_train, "color": data.color_train, "shape": data.shape_train,
                             "x_test": data.x_test, "pair_test": torch.as_tensor(data.pair_test),
                             "seen": torch.as_tensor(split.seen), "unseen": torch.as_tensor(split.unseen),
                             "absent": torch.as_tensor(split.absent)})
    description = {"kind": "compositional scores", "version": MODEL_VERSION, "model": model, "seed": int(seed),
                   "data": content, "recipe": [EPOCHS, LEARNING_RATE, WEIGHT_DECAY, BATCH_SIZE, EMBED_DIM, HIDDEN,
                                               TEMPERATURE]}
    return TensorCache().get_or_compute(
        description, lambda: {"scores": COMPOSITIONAL_MODELS.get(model)(data, seed=seed)(data.x_test)})["scores"]


def compositional_rows(features: str, worlds: Dict[str, Dict[str, Any]], models: Sequence[str], seeds: Sequence[int],
                       n_train: int, n_test: int, n_unseen: int, n_absent: int, device: str = "cpu",
                       data_root: str = "", pretrained: str = "") -> List[Dict]:
    """Every model in every rendered world setting (``worlds``: a name -> world knobs) and seed, scored in the
    closed and the open world; each number recorded with labels ``setting``, ``model`` and ``world``. Real mode
    (``data_root``: a CZSL dataset folder): that dataset, named by its folder, is the one setting (``worlds``,
    ``n_unseen`` and ``n_absent`` are the dataset's own then)."""
    from ..records import record

    for name in models:
        COMPOSITIONAL_MODELS.get(name)
    if data_root:
        settings = [(Path(data_root).name, None)]
    else:
        settings = list(worlds.items())
    rows = []
    for setting, knobs in settings:
        for seed in seeds:
            if data_root:
                data = build_czsl_data(data_root, features, seed, n_train, n_test, pretrained or None, device)
            else:
                data = build_compositional_data(features, seed, n_train, n_test, n_unseen, n_absent, knobs, device)
            for name in models:
                scores = cached_scores(data, name, seed)
                for world in WORLDS:
                    metrics = compositional_metrics(scores, data, world)
                    for metric, value in metrics.items():
                        record(f"czsl_{metric}", value, seed=seed, setting=setting, model=name, world=world)
                    rows.append({"setting": setting, "seed": seed, "model": name, "world": world, **metrics})
    return rows
