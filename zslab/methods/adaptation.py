"""Few-shot adaptation of a frozen CLIP on its image features: training-free heads and their searches.

* **GDA** (Wang et al., ICLR 2024, arXiv 2402.04087): Gaussian discriminant analysis with one covariance shared
  by all classes. Bayes' rule gives a linear classifier, ``w_k = Σ⁻¹ μ_k`` and ``b_k = log p_k − ½ μ_kᵀ Σ⁻¹ μ_k``,
  with no training; the precision is the authors' shrinkage estimate ``D · ((N − 1) Σ̂ + tr(Σ̂) I)⁻¹`` (their code's
  "KS estimator") and the class priors are uniform. It is ensembled with the zero-shot head:
  ``100 · cos(f, t_k) + α · (w_k · f + b_k)``, α picked on the validation split from their grid.
* **Class means** (the control for GDA's covariance): the same classifier with ``Σ = I``: nearest class mean.
* **Tip-Adapter** (Zhang et al., ECCV 2022, arXiv 2207.09519), training-free: a cache whose keys are the shots'
  features and whose values are their one-hot labels, ``100 · cos(f, t_k) + α · exp(−β (1 − f·K)) L``, with α and
  β searched on the validation split (:func:`zslab.methods.caption_cache.cache_logits` with image keys only).
* **Linear probe** (CLIP's few-shot baseline): logistic regression on the shots
  (:func:`zslab.train.probe.fit_linear_probe`), its L2 weight picked on the validation split.
* **ProLIP** (Fahes et al., arXiv 2410.05270): fine-tune only the image tower's last projection ``W`` (its
  ``visual.proj``) on the shots' pre-projection features, cross-entropy of ``100 · cos(f W, t_k)`` plus
  ``λ · mean((W − W₀)²)`` pulling it to its pretrained value, ``λ = 1/N`` for N shots (their validation-free
  rule), Adam (lr 10⁻³, ε 10⁻⁴) with cosine decay for 300 full-batch epochs, as the authors' code does.

Every head returns logits ``[N, C]``; :func:`evaluate_heads` scores them all on one seed's few-shot data.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Registry

#: CLIP's logit scale in the ensembles, as the authors' code writes it.
ZERO_SHOT_SCALE = 100.0
#: GDA's ensemble weights (the authors' grid).
GDA_ALPHAS: Tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
#: The linear probe's L2 weights.
PROBE_L2: Tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class LinearHead:
    """``logits = f @ weight.T + bias``."""

    weight: torch.Tensor
    bias: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return features.float() @ self.weight.T + self.bias


def class_means(features: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """``[C, D]`` mean feature of each class; every class needs at least one item."""
    counts = torch.bincount(labels, minlength=n_classes)
    if int(counts.min()) < 1:
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"every class needs a labelled feature; classes {missing[:5]} have none")
    sums = torch.zeros(n_classes, features.shape[1], dtype=torch.float64).index_add_(0, labels, features.double())
    return sums / counts[:, None].double()


def shrunk_precision(centered: torch.Tensor) -> torch.Tensor:
    """GDA's precision estimate from class-centred features ``[N, D]``: ``D · ((N − 1) Σ̂ + tr(Σ̂) I)⁺``. The
    ``tr(Σ̂) I`` term keeps it defined when N ≤ D (one shot per class gives N = C centred rows of zero)."""
    x = centered.double()
    n, d = x.shape
    cov = torch.cov(x.T) if n > 1 else torch.zeros(d, d, dtype=torch.float64)
    trace = torch.trace(cov)
    if float(trace) <= 0:             # every class seen once: no spread to estimate; fall back to Σ = I
        return torch.eye(d, dtype=torch.float64)
    return d * torch.linalg.pinv((n - 1) * cov + trace * torch.eye(d, dtype=torch.float64))


def gda_head(features: torch.Tensor, labels: torch.Tensor, n_classes: int, shared_covariance: bool = True) -> LinearHead:
    """GDA's linear classifier from labelled features (uniform priors). ``shared_covariance=False`` is the
    control: ``Σ = I`` (nearest class mean, with GDA's bias)."""
    mu = class_means(features, labels, n_classes)
    precision = (shrunk_precision(features.double() - mu[labels]) if shared_covariance
                 else torch.eye(features.shape[1], dtype=torch.float64))
    weight = mu @ precision
    bias = np.log(1.0 / n_classes) - 0.5 * (weight * mu).sum(dim=1)
    return LinearHead(weight.float(), bias.float())


def zero_shot_logits(features: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    return ZERO_SHOT_SCALE * F.normalize(features.float(), dim=-1) @ classifier.float().T


def tip_adapter_logits(features: torch.Tensor, shot_features: torch.Tensor, shot_labels: torch.Tensor,
                       n_classes: int, beta: float) -> torch.Tensor:
    """Tip-Adapter's cache logits ``exp(−β (1 − f·K)) L`` (image keys only)."""
    from .caption_cache import cache_logits

    keys = F.normalize(shot_features.float(), dim=-1)
    return cache_logits(features, keys, keys, shot_labels, n_classes, beta, delta=0.0)


def best_on_validation(candidates: Dict[Tuple, torch.Tensor], labels: torch.Tensor) -> Tuple[Tuple, float]:
    """The key of the candidate logits with the best validation top-1 (ties: the first in order) and that top-1."""
    best, best_acc = None, -1.0
    for key, logits in candidates.items():
        acc = float((logits.argmax(1) == labels).float().mean())
        if acc > best_acc + 1e-12:
            best, best_acc = key, acc
    return best, best_acc


#: A few-shot head: (zero-shot classifier, shot features, shot labels, val features, val labels) → (a function
#: from features to logits, the hyper-parameters chosen on validation).
FewShotHead = Callable[..., Tuple[Callable[[torch.Tensor], torch.Tensor], Dict[str, float]]]
FEW_SHOT_HEADS: Registry[FewShotHead] = Registry("few-shot head")


@FEW_SHOT_HEADS.register("zero-shot")
def _zero_shot(classifier, shot_x, shot_y, val_x, val_y):
    return (lambda f: zero_shot_logits(f, classifier)), {}


def _ensembled_linear(head: LinearHead, classifier, val_x, val_y):
    candidates = {(a,): zero_shot_logits(val_x, classifier) + a * head.logits(val_x) for a in GDA_ALPHAS}
    (alpha,), acc = best_on_validation(candidates, val_y)
    return (lambda f: zero_shot_logits(f, classifier) + alpha * head.logits(f)), {"alpha": alpha, "val_top1": acc}


@FEW_SHOT_HEADS.register("GDA + zero-shot")
def _gda_ensemble(classifier, shot_x, shot_y, val_x, val_y):
    return _ensembled_linear(gda_head(shot_x, shot_y, classifier.shape[0]), classifier, val_x, val_y)


@FEW_SHOT_HEADS.register("class means (Σ = I) + zero-shot")
def _means_ensemble(classifier, shot_x, shot_y, val_x, val_y):
    return _ensembled_linear(gda_head(shot_x, shot_y, classifier.shape[0], shared_covariance=False), classifier,
                             val_x, val_y)


@FEW_SHOT_HEADS.register("GDA alone")
def _gda_alone(classifier, shot_x, shot_y, val_x, val_y):
    head = gda_head(shot_x, shot_y, classifier.shape[0])
    return head.logits, {}


@FEW_SHOT_HEADS.register("Tip-Adapter")
def _tip_adapter(classifier, shot_x, shot_y, val_x, val_y):
    from .caption_cache import ALPHAS, BETAS

    c = classifier.shape[0]
    zs = zero_shot_logits(val_x, classifier)
    cache = {b: tip_adapter_logits(val_x, shot_x, shot_y, c, b) for b in BETAS}   # one per β, shared by every α
    candidates = {(a, b): zs + a * cache[b] for a, b in itertools.product(ALPHAS, BETAS)}
    (alpha, beta), acc = best_on_validation(candidates, val_y)
    return ((lambda f: zero_shot_logits(f, classifier) + alpha * tip_adapter_logits(f, shot_x, shot_y, c, beta)),
            {"alpha": alpha, "beta": beta, "val_top1": acc})


@FEW_SHOT_HEADS.register("linear probe")
def _linear_probe(classifier, shot_x, shot_y, val_x, val_y):
    from ..train.probe import fit_linear_probe

    probes = {(l2,): fit_linear_probe(shot_x, shot_y, classifier.shape[0], l2=l2) for l2 in PROBE_L2}
    (l2,), acc = best_on_validation({k: p.logits(val_x) for k, p in probes.items()}, val_y)
    return probes[(l2,)].logits, {"l2": l2, "val_top1": acc}


def evaluate_heads(data, classifier: torch.Tensor, shots: Sequence[int], heads: Sequence[str]
                   ) -> Tuple[Dict[int, Dict[str, np.ndarray]], List[Dict]]:
    """0/1 correctness per test image of every head at every shot count, ``{k: {head: [N]}}``, for one seed's
    :class:`zslab.fewshot.FewShotData`; and one row per (k, head) with the hyper-parameters chosen on validation."""
    for h in heads:
        FEW_SHOT_HEADS.get(h)                     # a bad name fails before any work, naming the valid ones
    correct: Dict[int, Dict[str, np.ndarray]] = {}
    chosen = []
    for k in shots:
        shot_x, shot_y = data.shots(k)
        correct[k] = {}
        for h in heads:
            predict, params = FEW_SHOT_HEADS.get(h)(classifier, shot_x, shot_y, data.val_features, data.val_labels)
            correct[k][h] = (predict(data.test_features).argmax(1) == data.test_labels).numpy().astype(float)
            chosen.append({"shots": k, "head": h, **params})
    return correct, chosen


@dataclass
class ProjectorConfig:
    """ProLIP's training of the last visual projection (the authors' validation-free defaults); ``pull`` is λ,
    ``None`` for their rule ``1/N`` with N the shots per class."""

    epochs: int = 300
    lr: float = 1e-3
    eps: float = 1e-4
    pull: Optional[float] = None
    seed: int = 0


def pre_projection_model(lm):
    """A copy of ``lm`` whose image tower stops before its last projection (``visual.proj`` removed): its
    ``encode_image`` gives the features ProLIP's projection is trained on (cached under their own key, since
    the copy's weights differ). open_clip vision transformers only."""
    import copy
    from dataclasses import replace

    visual = getattr(lm.model, "visual", None)
    if not isinstance(getattr(visual, "proj", None), torch.Tensor):
        raise ValueError(f"{lm.name}: the image tower has no projection matrix `visual.proj` to tune (an open_clip "
                         "vision transformer has one)")
    model = copy.deepcopy(lm.model)
    model.visual.proj = None
    return replace(lm, model=model, _fingerprint=None)


def train_projection(pre_features: torch.Tensor, labels: torch.Tensor, initial: torch.Tensor,
                     classifier: torch.Tensor, shots: int, cfg: ProjectorConfig = ProjectorConfig()) -> Dict:
    """ProLIP: the projection ``W`` ``[width, D]`` trained from ``initial`` on pre-projection ``features``; returns
    it, λ and the loss per epoch. Full batch, deterministic."""
    pull = 1.0 / shots if cfg.pull is None else float(cfg.pull)
    torch.manual_seed(cfg.seed)
    w0 = initial.detach().float()
    w = torch.nn.Parameter(w0.clone())
    opt = torch.optim.Adam([w], lr=cfg.lr, eps=cfg.eps)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    text = F.normalize(classifier.float(), dim=-1)
    x = pre_features.float()
    losses = []
    for _ in range(cfg.epochs):
        logits = zero_shot_logits(x @ w, text)
        loss = F.cross_entropy(logits, labels) + pull * F.mse_loss(w, w0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    return {"projection": w.detach().clone(), "pull": pull, "loss": losses}


def projected_logits(pre_features: torch.Tensor, projection: torch.Tensor, classifier: torch.Tensor) -> torch.Tensor:
    """Zero-shot logits of pre-projection features through ``projection`` (the pretrained one gives CLIP's)."""
    return zero_shot_logits(pre_features.float() @ projection.float(), F.normalize(classifier.float(), dim=-1))
