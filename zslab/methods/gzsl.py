"""Classic attribute-based zero-shot learning, judged by the generalized (GZSL) protocol.

A model maps image features to class side information (attributes) using seen classes' images only, and then
scores *every* class, seen and unseen, through that side information. The models (Xian et al.'s benchmark,
arXiv 1707.00600, compares them all):

* **DAP** (Lampert et al., 2009/2014): one probabilistic (logistic) detector per binary attribute; a class's
  score is ``Σ_m log p(a_m = A[c, m] | x) − log p(a_m = A[c, m])``, the attribute priors taken over the
  seen classes.
* **ESZSL** (Romera-Paredes & Torr, ICML 2015): the closed-form bilinear map
  ``V = (XᵀX + γI)⁻¹ XᵀYS (SᵀS + λI)⁻¹`` (Y in {−1, 1}), score ``x V s_c``.
* **Bilinear compatibility** ``F(x, c) = xᵀ W s_c`` trained by SGD with a ranking loss (the margin is 1 for
  every wrong class): **DeViSE** (Frome et al., 2013) sums the hinge violations, **ALE** (Akata et al., 2013/
  2016) weighs them by the rank of the true class (WARP's ``Σ_{k≤r} 1/k`` over ``r`` violators), **SJE**
  (Akata et al., 2015) keeps only the largest.

Calibrated stacking (Chao et al., arXiv 1605.04253) subtracts ``gamma`` from the seen classes' scores; ``gamma``
and every model's hyper-parameters are chosen on a *class-split validation* built from the seen classes alone
(a fifth of them play unseen), never on the test classes. Features are L2-normalised, side information rows too
(DAP binarises the attributes instead).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..cache import tensor_digest
from ..metrics import ausuc, calibrated_stacking, gzsl_metrics, mean_per_class_accuracy, seen_unseen_curve
from ..registry import Registry
from .seen_cnn import SEEN_CNN

Scorer = Callable[[torch.Tensor], torch.Tensor]  # features [N, d] -> scores over every class [N, C]


@dataclass
class ZSLProblem:
    """Image features and class side information for one GZSL split.

    ``y_train`` and ``y_test`` index ``classes``; training images are of seen classes only, test images of
    both (Xian et al.'s ``test_seen`` + ``test_unseen``)."""

    classes: List[str]
    side: np.ndarray          # [C, D] side information per class, in the order of ``classes``
    seen: np.ndarray          # class indices
    unseen: np.ndarray
    x_train: torch.Tensor     # [N, d]
    y_train: np.ndarray       # [N]
    x_test: torch.Tensor      # [M, d]
    y_test: np.ndarray        # [M]
    about: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.seen = np.asarray(self.seen, dtype=np.int64)
        self.unseen = np.asarray(self.unseen, dtype=np.int64)
        self.y_train = np.asarray(self.y_train, dtype=np.int64)
        self.y_test = np.asarray(self.y_test, dtype=np.int64)
        self.side = np.asarray(self.side, dtype=np.float64)
        if self.side.shape[0] != len(self.classes):
            raise ValueError(f"side information has {self.side.shape[0]} rows for {len(self.classes)} classes")
        if np.intersect1d(self.seen, self.unseen).size or self.seen.size == 0 or self.unseen.size == 0:
            raise ValueError("seen and unseen classes must be disjoint and both non-empty")
        stray = np.setdiff1d(self.y_train, self.seen)
        if stray.size:
            raise ValueError(f"training images must be of seen classes only; found classes "
                             f"{[self.classes[i] for i in stray[:5]]}")
        if len(self.x_train) != len(self.y_train) or len(self.x_test) != len(self.y_test):
            raise ValueError("features and labels differ in length")

    def seen_positions(self) -> torch.Tensor:
        """The training labels as positions in ``seen`` (the label space of a model fitted on seen classes)."""
        position = {int(c): i for i, c in enumerate(self.seen)}
        return torch.as_tensor([position[int(t)] for t in self.y_train])

    @property
    def unseen_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.classes), dtype=bool)
        mask[self.unseen] = True
        return mask


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def _features(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.double(), dim=-1)


def standardised_side(side: np.ndarray) -> torch.Tensor:
    """Side information with every column at mean 0 and standard deviation 1 (float32), the input of the
    models that map side information through a network."""
    s = torch.as_tensor(side).float()
    return (s - s.mean(0)) / s.std(0).clamp_min(1e-6)


# --------------------------------------------------------------------------------------------------------
# Models: fit(problem, seed, **hyper) -> scorer over every class of the problem
# --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ZSLModel:
    """A model's fitting function, the grid its hyper-parameters are chosen from on validation, and what they
    are chosen by: ``"zsl_unseen"`` (A_U→U of the stand-in unseen classes, the usual choice) or ``"harmonic"``
    (the best calibrated H; SABR's cross-validation against the seen-class bias). ``version``: bump when the
    model's fitting changes, so that its cached fits (and only its) miss."""

    fit: Callable[..., Scorer]
    grid: Mapping[str, Sequence[Any]]
    selection: str = "zsl_unseen"
    version: int = 0

    def __post_init__(self) -> None:
        if self.selection not in SELECTIONS:
            raise ValueError(f"unknown selection {self.selection!r}; valid choices: {', '.join(SELECTIONS)}")

    def settings(self) -> List[Dict[str, Any]]:
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*(self.grid[k] for k in keys))]


ZSL_MODELS: Registry[ZSLModel] = Registry("zero-shot model")
#: What a model's hyper-parameters may be chosen by on the class-split validation.
SELECTIONS = ("zsl_unseen", "harmonic")

#: DAP's attribute threshold and the probability floor that keeps a never-varying attribute finite.
DAP_THRESHOLD = 0.5
DAP_EPS = 1e-3


def fit_dap(problem: ZSLProblem, seed: int = 0, l2: float = 1e-3, iterations: int = 100) -> Scorer:
    """Direct attribute prediction: logistic detectors of the binarised attributes on seen classes' images."""
    torch.manual_seed(seed)
    attributes = torch.as_tensor((problem.side >= DAP_THRESHOLD).astype(np.float64))
    x = _features(problem.x_train)
    targets = attributes[torch.as_tensor(problem.y_train)]
    weight = torch.zeros(x.shape[1], attributes.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(attributes.shape[1], dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ weight + bias, targets) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    prior = attributes[torch.as_tensor(problem.seen)].mean(0).clamp(DAP_EPS, 1 - DAP_EPS)
    log_prior = attributes * prior.log() + (1 - attributes) * (1 - prior).log()  # [C, A]
    w, b = weight.detach(), bias.detach()

    def score(features: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(_features(features) @ w + b).clamp(DAP_EPS, 1 - DAP_EPS)  # [N, A]
        log_p = p.log() @ attributes.T + (1 - p).log() @ (1 - attributes).T        # [N, C]
        return (log_p - log_prior.sum(1)).float()

    return score


def fit_eszsl(problem: ZSLProblem, seed: int = 0, image_reg: float = 1.0, side_reg: float = 1.0) -> Scorer:
    """ESZSL's closed form; ``image_reg`` and ``side_reg`` are the paper's γ and λ (seed unused: there is
    nothing random in it)."""
    side = torch.as_tensor(_unit_rows(problem.side))
    seen = torch.as_tensor(problem.seen)
    x = _features(problem.x_train)
    y = -torch.ones(len(x), len(seen), dtype=torch.float64)
    y[torch.arange(len(x)), problem.seen_positions()] = 1.0
    s = side[seen]
    left = torch.linalg.solve(x.T @ x + image_reg * torch.eye(x.shape[1], dtype=torch.float64), x.T @ y @ s)
    v = torch.linalg.solve(s.T @ s + side_reg * torch.eye(s.shape[1], dtype=torch.float64), left.T).T  # [d, D]

    def score(features: torch.Tensor) -> torch.Tensor:
        return (_features(features) @ v @ side.T).float()

    return score


def _ranking_loss(kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def loss(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        true = scores.gather(1, target[:, None])
        violation = (1.0 + scores - true).clamp_min(0.0).scatter(1, target[:, None], 0.0)  # [B, Cs]
        if kind == "devise":
            return violation.sum(1).mean()
        if kind == "sje":
            return violation.max(1).values.mean()
        rank = (violation > 0).sum(1)  # ALE: weigh by the rank the true class fell to
        harmonic = torch.cumsum(1.0 / torch.arange(1, scores.shape[1] + 1, dtype=scores.dtype), 0)
        weight = torch.where(rank > 0, harmonic[(rank - 1).clamp_min(0)] / rank.clamp_min(1), torch.zeros_like(true[:, 0]))
        return (weight * violation.sum(1)).mean()

    return loss


BILINEAR_LOSSES = ("devise", "ale", "sje")


def fit_bilinear(problem: ZSLProblem, seed: int = 0, loss: str = "ale", lr: float = 1e-2, epochs: int = 30,
                 batch_size: int = 64, weight_decay: float = 1e-4) -> Scorer:
    """``F(x, c) = xᵀ W s_c`` trained with a ranking loss over the seen classes (Adam, seeded minibatches)."""
    if loss not in BILINEAR_LOSSES:
        raise ValueError(f"unknown ranking loss {loss!r}; valid choices: {', '.join(BILINEAR_LOSSES)}")
    generator = torch.Generator().manual_seed(seed)
    side = torch.as_tensor(_unit_rows(problem.side)).float()
    x = _features(problem.x_train).float()
    y = problem.seen_positions()
    seen_side = side[torch.as_tensor(problem.seen)]
    w = (torch.randn(x.shape[1], side.shape[1], generator=generator) / x.shape[1] ** 0.5).requires_grad_()
    optimiser = torch.optim.Adam([w], lr=lr, weight_decay=weight_decay)
    objective = _ranking_loss(loss)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            batch = order[start:start + batch_size]
            optimiser.zero_grad()
            objective(x[batch] @ w @ seen_side.T, y[batch]).backward()
            optimiser.step()
    w = w.detach()

    def score(features: torch.Tensor) -> torch.Tensor:
        return _features(features).float() @ w @ side.T

    return score


ZSL_MODELS.add("DAP", ZSLModel(fit_dap, {"l2": (1e-4, 1e-3, 1e-2)}))
ZSL_MODELS.add("ESZSL", ZSLModel(fit_eszsl, {"image_reg": (1e-2, 1e-1, 1.0, 10.0), "side_reg": (1e-2, 1e-1, 1.0, 10.0)}))
ZSL_MODELS.add("DeViSE", ZSLModel(lambda p, seed=0, **h: fit_bilinear(p, seed, loss="devise", **h),
                                  {"lr": (1e-3, 1e-2)}))
ZSL_MODELS.add("ALE", ZSLModel(lambda p, seed=0, **h: fit_bilinear(p, seed, loss="ale", **h), {"lr": (1e-3, 1e-2)}))
ZSL_MODELS.add("SJE", ZSLModel(lambda p, seed=0, **h: fit_bilinear(p, seed, loss="sje", **h), {"lr": (1e-3, 1e-2)}))


# --------------------------------------------------------------------------------------------------------
# Validation by class split, and the evaluation of one fitted model
# --------------------------------------------------------------------------------------------------------
#: The share of seen classes that play unseen in the validation split, and of their images held out.
VALIDATION_CLASS_FRACTION = 0.2
VALIDATION_IMAGE_FRACTION = 0.2
#: At least this many stand-in unseen classes (with 7 seen classes a fifth would be one: no choice to make).
MIN_VALIDATION_UNSEEN = 2


def class_split_validation(problem: ZSLProblem, seed: int = 0,
                           class_fraction: float = VALIDATION_CLASS_FRACTION,
                           image_fraction: float = VALIDATION_IMAGE_FRACTION) -> ZSLProblem:
    """A GZSL problem made from the seen classes' training images alone: a random ``class_fraction`` of the
    seen classes (at least :data:`MIN_VALIDATION_UNSEEN`) play unseen (all their images go to the validation test set), and ``image_fraction`` of
    every other seen class's images are held out as validation-seen. The true unseen classes do not occur."""
    if not 0 < class_fraction < 1 or not 0 < image_fraction < 1:
        raise ValueError(f"fractions must be in (0, 1), got class_fraction={class_fraction}, "
                         f"image_fraction={image_fraction}")
    rng = np.random.default_rng([seed, 7])
    seen = rng.permutation(problem.seen)
    n_fake = max(MIN_VALIDATION_UNSEEN, int(round(class_fraction * len(seen))))
    if n_fake >= len(seen):
        raise ValueError(f"{len(seen)} seen classes are too few for a class-split validation")
    fake_unseen, fake_seen = np.sort(seen[:n_fake]), np.sort(seen[n_fake:])
    train_rows, test_rows = [], []
    for c in fake_seen:
        rows = rng.permutation(np.flatnonzero(problem.y_train == c))
        n_held = max(1, int(round(image_fraction * len(rows))))
        test_rows.append(rows[:n_held])
        train_rows.append(rows[n_held:])
    test_rows.append(np.flatnonzero(np.isin(problem.y_train, fake_unseen)))
    train, test = np.sort(np.concatenate(train_rows)), np.sort(np.concatenate(test_rows))
    return ZSLProblem(problem.classes, problem.side, fake_seen, fake_unseen,
                      problem.x_train[torch.as_tensor(train)], problem.y_train[train],
                      problem.x_train[torch.as_tensor(test)], problem.y_train[test],
                      {**problem.about, "validation": "class split of the seen classes"})


def restricted(problem: ZSLProblem) -> ZSLProblem:
    """The problem over its seen and unseen classes only (a validation split drops the classes it does not use,
    so that its scores compete among the same kind of label space as the test's)."""
    keep = np.union1d(problem.seen, problem.unseen)
    index = {int(c): i for i, c in enumerate(keep)}

    def remap(y: np.ndarray) -> np.ndarray:
        return np.asarray([index[int(t)] for t in y], dtype=np.int64)

    return ZSLProblem([problem.classes[i] for i in keep], problem.side[keep], remap(problem.seen),
                      remap(problem.unseen), problem.x_train, remap(problem.y_train), problem.x_test,
                      remap(problem.y_test), dict(problem.about))


def zsl_accuracy(scores: torch.Tensor, labels: np.ndarray, classes: np.ndarray) -> float:
    """Mean per-class accuracy of the images of ``classes`` choosing among ``classes`` only (A_U→U, the
    conventional ZSL number)."""
    rows = np.isin(labels, classes)
    picked = classes[scores[torch.as_tensor(rows)][:, torch.as_tensor(classes)].argmax(1).numpy()]
    return mean_per_class_accuracy(picked, labels[rows])


@dataclass
class GZSLResult:
    """One fitted model's test scores and every number the GZSL protocol asks of them."""

    model: str
    hyper: Dict[str, Any]
    gamma: float              # calibration chosen on the validation split
    scores: torch.Tensor      # [M, C] test scores
    zsl_unseen: float         # A_U→U
    zsl_seen: float           # A_S→S
    naive: Dict[str, float]   # S, U, H at gamma = 0 (stacked as they are)
    calibrated: Dict[str, float]  # S, U, H at the validation gamma
    curve: Dict[str, np.ndarray]
    ausuc: float
    prototypes: Optional[torch.Tensor] = None  # [C, D] class prototypes, for models that have them


def best_calibration(scores: torch.Tensor, problem: ZSLProblem) -> Tuple[float, float]:
    """The gamma of the curve's points with the highest H on ``problem``'s test set, and that H. The curve's
    end points (γ = ±∞: everything seen, everything unseen) become finite γs one unit beyond every image's
    seen-minus-unseen margin, so a model whose margins are all equal (e.g. classes with identical side
    information) still gets a usable γ."""
    s_np = scores.numpy()
    curve = seen_unseen_curve(s_np, problem.y_test, problem.seen, problem.unseen)
    margin = s_np[:, problem.seen].max(1) - s_np[:, problem.unseen].max(1)
    gammas = np.where(curve["gamma"] == -np.inf, float(margin.min()) - 1.0,
                      np.where(curve["gamma"] == np.inf, float(margin.max()) + 1.0, curve["gamma"]))
    s, u = curve["seen"], curve["unseen"]
    h = np.where(s + u > 0, 2 * s * u / np.where(s + u > 0, s + u, 1), 0.0)
    best = int(np.argmax(h))
    return float(gammas[best]), float(h[best])


def select_on_validation(name: str, problem: ZSLProblem, seed: int = 0,
                         fixed: Optional[Mapping[str, Any]] = None) -> Tuple[Dict[str, Any], float]:
    """The model's hyper-parameters (best A_U→U of the validation's stand-in unseen classes, or best calibrated H
    when the model's ``selection`` says so) and its calibration gamma (best H on the same validation split), both
    from the seen classes alone. ``fixed``: settings passed to every fit, not chosen (e.g. a training length
    that a test shortens)."""
    model = ZSL_MODELS.get(name)
    fixed = dict(fixed or {})
    validation = restricted(class_split_validation(problem, seed))
    best: Tuple[float, Dict[str, Any], torch.Tensor] = (-1.0, {}, torch.empty(0))
    for hyper in model.settings():
        scores = model.fit(validation, seed=seed, **hyper, **fixed)(validation.x_test)
        if model.selection == "harmonic":
            quality = best_calibration(scores, validation)[1]
        else:
            quality = zsl_accuracy(scores, validation.y_test, validation.unseen)
        if quality > best[0]:
            best = (quality, hyper, scores)
    gamma, _ = best_calibration(best[2], validation)
    return best[1], gamma


#: Bump when a model's fitting, its grid's meaning or the validation split changes: every cached fit then misses.
FIT_VERSION = 2


def problem_digest(problem: ZSLProblem) -> str:
    """The content of a problem (features, labels, side information, split), for cache keys."""
    return tensor_digest({"x_train": problem.x_train, "y_train": torch.as_tensor(problem.y_train),
                          "x_test": problem.x_test, "y_test": torch.as_tensor(problem.y_test),
                          "side": torch.as_tensor(problem.side), "seen": torch.as_tensor(problem.seen),
                          "unseen": torch.as_tensor(problem.unseen)})


def evaluate_model(name: str, problem: ZSLProblem, seed: int = 0, use_cache: bool = True,
                   fixed: Optional[Mapping[str, Any]] = None) -> GZSLResult:
    """Choose hyper-parameters and gamma on the class-split validation, refit on every seen class, and score
    the test set: A_U→U, A_S→S, naive and calibrated S/U/H, the seen-unseen curve and its AUSUC.

    The fit (test scores, chosen hyper-parameters, gamma, prototypes) is cached under the problem's content,
    the model, its grid, ``fixed`` (settings given to every fit, not chosen), the seed and :data:`FIT_VERSION`, so
    a warm rerun only recomputes the metrics."""
    model = ZSL_MODELS.get(name)
    keys = sorted(model.grid)
    fixed = dict(fixed or {})
    overlap = sorted(set(fixed) & set(keys))
    if overlap:
        raise ValueError(f"{name}: {overlap} are chosen on validation from its grid and cannot also be fixed")

    def compute() -> Dict[str, torch.Tensor]:
        hyper, gamma = select_on_validation(name, problem, seed, fixed)
        scorer = model.fit(problem, seed=seed, **hyper, **fixed)
        out = {"scores": scorer(problem.x_test).float(), "gamma": torch.tensor(gamma, dtype=torch.float64),
               "hyper": torch.tensor([float(hyper[k]) for k in keys], dtype=torch.float64)}
        prototypes = getattr(scorer, "prototypes", None)
        if prototypes is not None:
            out["prototypes"] = prototypes.float()
        return out

    if use_cache:
        from ..cache import TensorCache

        description = {"kind": "gzsl model fit", "version": FIT_VERSION, "model": name,
                       "grid": {k: list(map(float, model.grid[k])) for k in keys}, "seed": int(seed),
                       "problem": problem_digest(problem), "validation": [VALIDATION_CLASS_FRACTION,
                                                                          VALIDATION_IMAGE_FRACTION,
                                                                          MIN_VALIDATION_UNSEEN]}
        if model.version or model.selection != "zsl_unseen":
            description.update(model_version=model.version, selection=model.selection)
        if fixed:
            description["fixed"] = {k: fixed[k] for k in sorted(fixed)}
        fitted = TensorCache().get_or_compute(description, compute)
    else:
        fitted = compute()
    hyper = {k: float(v) for k, v in zip(keys, fitted["hyper"].tolist())}
    result = score_result(name, hyper, float(fitted["gamma"]), fitted["scores"], problem)
    result.prototypes = fitted.get("prototypes")
    return result


def score_result(name: str, hyper: Dict[str, Any], gamma: float, scores: torch.Tensor,
                 problem: ZSLProblem) -> GZSLResult:
    """Every GZSL number of one model's test scores (``gamma``: its calibration, chosen elsewhere)."""
    y = problem.y_test
    naive = gzsl_metrics(scores.argmax(1).numpy(), y, problem.seen, problem.unseen)
    calibrated = gzsl_metrics(calibrated_stacking(scores, problem.unseen_mask, gamma).argmax(1).numpy(), y,
                              problem.seen, problem.unseen)
    curve = seen_unseen_curve(scores.numpy(), y, problem.seen, problem.unseen)
    return GZSLResult(name, hyper, gamma, scores, zsl_accuracy(scores, y, problem.unseen),
                      zsl_accuracy(scores, y, problem.seen), naive, calibrated, curve,
                      ausuc(curve["seen"], curve["unseen"]))


def shuffled_calibration_mask(problem: ZSLProblem, seed: int) -> np.ndarray:
    """The control for calibrated stacking: a random set of classes, as many as the unseen ones, to be
    favoured instead of the unseen classes (it knows nothing of which classes lacked training images)."""
    rng = np.random.default_rng([seed, 11])
    mask = np.zeros(len(problem.classes), dtype=bool)
    mask[rng.choice(len(problem.classes), size=len(problem.unseen), replace=False)] = True
    return mask


def shuffled_calibration(result: GZSLResult, problem: ZSLProblem, seed: int) -> Dict[str, float]:
    """S/U/H when the validation's gamma is subtracted from every class outside a random class set
    (:func:`shuffled_calibration_mask`) instead of from the seen classes."""
    mask = shuffled_calibration_mask(problem, seed)
    predictions = calibrated_stacking(result.scores, mask, result.gamma).argmax(1).numpy()
    return gzsl_metrics(predictions, problem.y_test, problem.seen, problem.unseen)


def with_side(problem: ZSLProblem, side: np.ndarray, about: str) -> ZSLProblem:
    """The same images with other side information (e.g. an ontology embedding instead of attributes)."""
    return replace(problem, side=np.asarray(side, dtype=np.float64), about={**problem.about, "side": about})


# --------------------------------------------------------------------------------------------------------
# Problems from the lab's datasets
# --------------------------------------------------------------------------------------------------------
#: The feature extractor that is not a zslab/open_clip model: ImageNet EfficientNet-Lite0 (the classic ZSL
#: benchmarks' ImageNet ResNet, in small), at the image size zslab's LiT models use for the MNIST-style sets.
EFFICIENTNET = "efficientnet-lite0"
EFFICIENTNET_IMAGE_SIZE = 96
#: The seed offset of the training images' draw (disjoint from the test draw of the same seed).
TRAIN_DRAW_OFFSET = 10_000


def encode_images(features: str, dataset: str, split: str, n_per_class: int, seed: int, draw_seed: int,
                  pretrained: Optional[str] = None, root: Optional[str] = None, device: str = "cpu",
                  classes: Optional[Sequence[str]] = None):
    """``(features [N, d], labels [N], dataset)`` of ``n_per_class`` images per class of ``dataset/split``
    (drawn with ``draw_seed``; only ``classes`` when given, relabelled in that order) through ``features``:
    :data:`EFFICIENTNET`, or a model name for :func:`zslab.models.load_model` (training run ``seed``; zsworld
    is then drawn from that model's world)."""
    from ..datasets.base import select_classes
    from ..evaluation import eval_dataset

    model = None
    if features != EFFICIENTNET:
        from ..models import load_model

        model = load_model(features, pretrained or None, seed=seed, device=device, progress=False)
    ds = eval_dataset(dataset, root, split, n_per_class=n_per_class, seed=draw_seed, model=model)
    if classes is not None:
        ds = select_classes(ds, classes)
    if model is None:
        from ..assets import efficientnet_features

        return efficientnet_features(ds, image_size=EFFICIENTNET_IMAGE_SIZE), torch.as_tensor(ds.targets), ds
    from ..embeddings import image_features

    x, y = image_features(model, ds, progress=False)
    return x, y, ds


def _seen_cnn_draws(dataset: str, unseen: Sequence[str], n_train: int, n_test: int, seed: int,
                    root: Optional[str] = None):
    """The draws of :func:`encode_images` for a stored dataset, encoded by a CNN trained on the drawn training
    images of the seen classes (:mod:`zslab.methods.seen_cnn`): ``(x_train, y_train, train, x_test, y_test,
    test)``."""
    from ..datasets.base import select_classes
    from ..errors import check_choice
    from ..evaluation import eval_dataset
    from .seen_cnn import seen_cnn_features

    test = eval_dataset(dataset, root, "test", n_per_class=n_test, seed=seed)
    for name in unseen:
        check_choice(f"{dataset} class", name, list(test.classes))
    seen_names = [c for c in test.classes if c not in set(unseen)]
    train = select_classes(eval_dataset(dataset, root, "train", n_per_class=n_train, seed=seed), seen_names)
    x_train, x_test = seen_cnn_features(train, test, seed)
    return x_train, torch.as_tensor(train.targets), train, x_test, torch.as_tensor(test.targets), test


def xlsa17_problem(dataset: str, root: Optional[str], seed: int, n_train: int, n_test: int) -> ZSLProblem:
    """A GZSL problem from Xian et al.'s release (:mod:`zslab.datasets.xlsa17`): its ResNet-101 features, its
    attributes, and its proposed split (``trainval_loc`` for training, ``test_seen_loc`` + ``test_unseen_loc``
    for testing), at most ``n_train``/``n_test`` images per class (0: all), drawn with ``seed``."""
    from ..datasets.xlsa17 import XLSA17_FEATURES, per_class_subset, read_xlsa17

    if not root:
        raise ValueError(f"features={XLSA17_FEATURES!r} reads precomputed files: pass root, the release's data "
                         "folder (holding AWA2/, CUB/, SUN/, ...)")
    data = read_xlsa17(root, dataset)
    splits = data.splits
    train = per_class_subset(splits["trainval_loc"], data.labels, n_train, seed)
    test = per_class_subset(np.concatenate([splits["test_seen_loc"], splits["test_unseen_loc"]]), data.labels,
                            n_test, seed)
    return ZSLProblem(data.classes, data.attributes, np.unique(data.labels[splits["trainval_loc"]]),
                      np.unique(data.labels[splits["test_unseen_loc"]]), torch.as_tensor(data.features[train]),
                      data.labels[train], torch.as_tensor(data.features[test]), data.labels[test],
                      {"dataset": dataset, "features": XLSA17_FEATURES, "seed": seed, "side": "attributes"})


def attribute_side(dataset: str, classes: Sequence[str]) -> np.ndarray:
    """The committed class-attribute matrix's rows of ``classes`` (data/attributes/<dataset>.json)."""
    from ..semantics.attributes import load_attributes

    return np.array(load_attributes(dataset).select(list(classes)).matrix)


def build_problem(dataset: str, features: str, seed: int, n_train: int, n_test: int,
                  unseen: Optional[Sequence[str]] = None, pretrained: Optional[str] = None,
                  root: Optional[str] = None, device: str = "cpu") -> ZSLProblem:
    """A GZSL problem on a lab dataset: training images of the seen classes (``n_train`` per class) and test
    images of every class (``n_test`` per class, a disjoint draw), with the attribute matrix as side
    information. zsworld's seen/unseen split is the world's (the compositions ``features``' model never saw
    when it is a zsclip model); stored datasets take ``unseen`` (class names) and draw the training images
    from their train split, the test images from their test split. ``features`` is :data:`EFFICIENTNET`,
    :data:`SEEN_CNN` (a CNN trained on the drawn seen-class training images only; stored datasets) or a model
    name."""
    from ..datasets.xlsa17 import XLSA17_FEATURES
    from ..fewshot import _is_generated

    if features == XLSA17_FEATURES:
        if unseen:
            raise ValueError(f"xlsa17's unseen classes are its proposed split's; do not pass unseen={list(unseen)}")
        return xlsa17_problem(dataset, root, seed, n_train, n_test)
    if _is_generated(dataset):
        if unseen:
            raise ValueError(f"{dataset}'s unseen classes are its world's; do not pass unseen={list(unseen)}")
        if features == SEEN_CNN:
            raise ValueError(f"features={SEEN_CNN!r} is built for stored datasets; {dataset}'s seen-only features "
                             "are those of a zsclip model trained in its world (e.g. zsclip-tiny)")
        x_test, y_test, test = encode_images(features, dataset, "all", n_test, seed, seed, pretrained, root, device)
        x_train, y_local, train = encode_images(features, dataset, "seen", n_train, seed,
                                                TRAIN_DRAW_OFFSET + seed, pretrained, root, device)
        classes, seen, unseen_idx = list(test.classes), test.seen_classes, test.unseen_classes
    else:
        if not unseen:
            raise ValueError(f"{dataset} needs its unseen classes named (e.g. the held-out classes of "
                             "data/models/lit.yaml)")
        from ..errors import check_choice

        if features == SEEN_CNN:
            x_train, y_local, train, x_test, y_test, test = _seen_cnn_draws(dataset, unseen, n_train, n_test, seed,
                                                                           root)
        else:
            x_test, y_test, test = encode_images(features, dataset, "test", n_test, seed, seed, pretrained, root,
                                                 device)
        classes = list(test.classes)
        for name in unseen:
            check_choice(f"{dataset} class", name, classes)
        unseen_idx = [classes.index(c) for c in unseen]
        seen = [i for i in range(len(classes)) if i not in unseen_idx]
        if features != SEEN_CNN:
            x_train, y_local, train = encode_images(features, dataset, "train", n_train, seed, seed, pretrained,
                                                    root, device, classes=[classes[i] for i in seen])
    index = {c: i for i, c in enumerate(classes)}
    y_train = np.asarray([index[train.classes[int(t)]] for t in y_local], dtype=np.int64)
    return ZSLProblem(classes, attribute_side(dataset, classes), np.asarray(seen), np.asarray(unseen_idx),
                      x_train.float(), y_train, x_test.float(), y_test.numpy(),
                      {"dataset": dataset, "features": features, "seed": seed, "side": "attributes"})


# --------------------------------------------------------------------------------------------------------
# The notebooks' loop: every dataset, model and seed
# --------------------------------------------------------------------------------------------------------
@dataclass
class GZSLRuns:
    """Per-seed rows (one per dataset × model × seed), the seen-unseen curves' points, and the problems."""

    rows: List[Dict[str, Any]]
    curves: List[Dict[str, Any]]
    problems: Dict[Tuple[str, int], ZSLProblem]


def per_dataset(value: Mapping[str, int] | int, datasets: Sequence[str], what: str) -> Dict[str, int]:
    """A notebook's size parameter as one number per dataset (given as one number, or as a mapping)."""
    per = dict(value) if isinstance(value, Mapping) else {d: value for d in datasets}
    missing = [d for d in datasets if d not in per]
    if missing:
        raise ValueError(f"{what} has no entry for {missing}; it has {sorted(per)}")
    return per


def dataset_problems(datasets: Sequence[str], features: Mapping[str, str], unseen: Mapping[str, Sequence[str]],
                     seeds: Sequence[int], n_train: Mapping[str, int] | int, n_test: Mapping[str, int] | int,
                     pretrained: Optional[str] = None, device: str = "cpu", root: Optional[str] = None):
    """``(dataset, seed, problem)`` for every dataset and seed (:func:`build_problem`): the loop every classic-ZSL
    notebook runs."""
    train, test = per_dataset(n_train, datasets, "n_train"), per_dataset(n_test, datasets, "n_test")
    for dataset in datasets:
        for seed in seeds:
            yield dataset, seed, build_problem(dataset, features[dataset], seed, train[dataset], test[dataset],
                                               unseen=unseen.get(dataset) or None, pretrained=pretrained,
                                               root=root or None, device=device)


def gzsl_runs(datasets: Sequence[str], features: Mapping[str, str], unseen: Mapping[str, Sequence[str]],
              models: Sequence[str], seeds: Sequence[int], n_train: Mapping[str, int] | int,
              n_test: Mapping[str, int] | int, pretrained: Optional[str] = None, device: str = "cpu",
              fixed: Optional[Mapping[str, Mapping[str, Any]]] = None,
              diagnostics: Optional[Callable[[GZSLResult, ZSLProblem], Dict[str, float]]] = None,
              root: Optional[str] = None) -> GZSLRuns:
    """Fit and score every model on every dataset and seed (:func:`evaluate_model`), with the shuffled-class
    calibration control, and record each number: ``gzsl_seen``/``gzsl_unseen``/``gzsl_harmonic`` labelled
    ``stacking`` = naive, calibrated or shuffled control, ``zsl_unseen`` (A_U→U), ``zsl_seen`` (A_S→S) and
    ``ausuc``. ``n_train``/``n_test`` (images per class) are one number or one per dataset. ``fixed``: per model,
    settings given to every fit (:func:`evaluate_model`); ``diagnostics(result, problem)``: more numbers per
    fit, recorded under their names and added to the rows (a name whose value is None is skipped). ``root``: the
    datasets' folder in real mode (e.g. the xlsa17 release's ``data`` folder)."""
    from ..records import record

    for name in models:
        ZSL_MODELS.get(name)
    rows, curves, problems = [], [], {}
    for dataset, seed, problem in dataset_problems(datasets, features, unseen, seeds, n_train, n_test, pretrained,
                                                   device, root):
        problems[dataset, seed] = problem
        for name in models:
            result = evaluate_model(name, problem, seed, fixed=(fixed or {}).get(name))
            labels = {"dataset": dataset, "model": name, "seed": seed}
            stackings = {"naive": result.naive, "calibrated": result.calibrated,
                         "shuffled control": shuffled_calibration(result, problem, seed)}
            row = {**labels, "gamma": result.gamma, "zsl_unseen": result.zsl_unseen,
                   "zsl_seen": result.zsl_seen, "ausuc": result.ausuc}
            for stacking, metrics in stackings.items():
                for part, value in metrics.items():
                    row[f"{stacking} {part}"] = value
                    record(f"gzsl_{part}", value, stacking=stacking, **labels)
            for metric in ("zsl_unseen", "zsl_seen", "ausuc"):
                record(metric, row[metric], **labels)
            record("calibration_gamma", result.gamma, **labels)
            for metric, value in (diagnostics(result, problem) if diagnostics else {}).items():
                if value is not None:
                    row[metric] = value
                    record(metric, value, **labels)
            rows.append(row)
            curves += [{**labels, "gamma": g, "seen": s_, "unseen": u}
                       for g, s_, u in zip(result.curve["gamma"], result.curve["seen"], result.curve["unseen"])]
    return GZSLRuns(rows, curves, problems)


from . import feature_generation, semantic_relations  # noqa: E402,F401  (register their models in ZSL_MODELS)
