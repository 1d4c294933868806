"""COSMO (Atzmon & Chechik, CVPR 2019, arXiv 1812.09903): adaptive confidence smoothing for GZSL.

Three modules, combined by the law of total probability:

* a **seen expert**: multinomial logistic regression over the seen classes (the authors' C = 1 logistic
  regression; :func:`zslab.train.probe.fit_linear_probe` here);
* a **zero-shot expert**: a model of :data:`zslab.methods.gzsl.ZSL_MODELS`, softmax over the unseen classes only,
  its temperature fitted (negative log-likelihood) on the validation's stand-in unseen classes;
* a **gate** ``p(seen | x)``: logistic regression on the experts' confidences, the top-K sorted probabilities of
  each (the seen expert's after a temperature T = 3), trained on a class-split validation where a fifth of the
  seen classes play unseen (:func:`zslab.methods.gzsl.class_split_validation`).

``p_u = sigmoid((θ − p(seen | x)) / T_cond)``; without smoothing (the "total probability" control),
``p(y | x) = p_u P_ZS(y | x) + (1 − p_u) P_S(y | x)``. **Adaptive confidence smoothing** adds to each expert a
uniform prior weighed by the gate's belief that the image lies *outside* that expert's domain:
``P(y | U, x) = P_ZS(y | x) + (1 − p_u) / |U|`` and ``P(y | S, x) = P_S(y | x) + p_u / |S|`` (the authors'
``adaptive_smoothing`` in ``src/GZSL_mixture.py``). θ and T_cond are chosen on the validation split to maximise
H, as the authors do; the gate is trained on two thirds of the validation images and θ, T_cond picked on the
rest.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch

from ..metrics import gzsl_metrics
from ..registry import Registry
from ..train.probe import LinearProbe, fit_linear_probe
from .gzsl import ZSL_MODELS, ZSLProblem, class_split_validation, evaluate_model, restricted

#: The authors' gate inputs: top-K sorted probabilities of each expert, the seen expert's at temperature 3.
GATE_TOP_K = 5
SEEN_TEMPERATURE = 3.0
#: θ and T_cond grids (θ: a probability; the authors refine it along the curve).
THRESHOLDS: Tuple[float, ...] = tuple(np.round(np.linspace(0.02, 0.98, 49), 2))
CONDITION_TEMPERATURES: Tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0)
#: The zero-shot expert's temperature grid (multiplies its scores before the softmax).
ZS_SCALES: Tuple[float, ...] = tuple(float(s) for s in np.logspace(-2, 3, 31))
GATE_TRAIN_SHARE = 2 / 3


def _local(labels: np.ndarray, classes: np.ndarray) -> torch.Tensor:
    index = {int(c): i for i, c in enumerate(classes)}
    return torch.as_tensor([index[int(t)] for t in labels])


@dataclass
class Experts:
    """The two experts' probabilities on some images: ``seen`` [N, |S|] and ``unseen`` [N, |U|], and the seen
    expert's logits (the gate reads them at its own temperature)."""

    seen: torch.Tensor
    unseen: torch.Tensor
    seen_logits: torch.Tensor


@dataclass
class FittedExperts:
    seen_expert: LinearProbe
    zero_shot: Callable[[torch.Tensor], torch.Tensor]  # features -> scores over every class
    zs_scale: float

    def __call__(self, problem: ZSLProblem, x: torch.Tensor) -> Experts:
        logits = self.seen_expert.logits(x)
        zs = self.zero_shot(x)[:, torch.as_tensor(problem.unseen)]
        return Experts(logits.softmax(1), (self.zs_scale * zs).softmax(1), logits)


def fit_experts(problem: ZSLProblem, zsl_model: str, hyper: Dict, seed: int, zs_scale: float,
                l2: float = 1e-3, zero_shot=None) -> FittedExperts:
    """The seen expert on the problem's seen classes and the zero-shot model with ``hyper`` (or ``zero_shot``,
    that model already fitted on this problem)."""
    probe = fit_linear_probe(problem.x_train, _local(problem.y_train, problem.seen), len(problem.seen), l2=l2)
    if zero_shot is None:
        zero_shot = ZSL_MODELS.get(zsl_model).fit(problem, seed=seed, **hyper)
    return FittedExperts(probe, zero_shot, zs_scale)


def fit_zs_scale(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """The softmax temperature (a multiplier) of the grid with the lowest NLL of ``labels``."""
    nll = [float(torch.nn.functional.cross_entropy(s * scores.float(), labels)) for s in ZS_SCALES]
    return ZS_SCALES[int(np.argmin(nll))]


def gate_features(experts: Experts, top_k: int = GATE_TOP_K) -> torch.Tensor:
    """The gate's input: each expert's top-K probabilities, sorted (the seen expert's at temperature 3), padded
    with zeros where an expert has fewer than K classes (validation has fewer unseen classes than the test)."""
    seen = (experts.seen_logits / SEEN_TEMPERATURE).softmax(1)

    def top(p: torch.Tensor) -> torch.Tensor:  # zeros stand in for the missing ranks of a small label set
        values = p.topk(min(top_k, p.shape[1]), dim=1).values
        return torch.nn.functional.pad(values, (0, top_k - values.shape[1]))

    return torch.cat([top(seen), top(experts.unseen)], dim=1)


# --------------------------------------------------------------------------------------------------------
# Combiners: (experts, p_unseen [N, 1], problem) -> scores over every class [N, C]
# --------------------------------------------------------------------------------------------------------
Combiner = Callable[[Experts, torch.Tensor, ZSLProblem], torch.Tensor]
COMBINERS: Registry[Combiner] = Registry("GZSL combiner")


def _place(problem: ZSLProblem, seen: torch.Tensor, unseen: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(len(seen), len(problem.classes), dtype=seen.dtype)
    out[:, torch.as_tensor(problem.seen)] = seen
    out[:, torch.as_tensor(problem.unseen)] = unseen
    return out


@COMBINERS.register("adaptive smoothing")
def adaptive_smoothing(experts: Experts, p_unseen: torch.Tensor, problem: ZSLProblem) -> torch.Tensor:
    """COSMO: each expert smoothed towards uniform by the gate's belief that the image is not its own."""
    given_unseen = experts.unseen + (1 - p_unseen) / len(problem.unseen)
    given_seen = experts.seen + p_unseen / len(problem.seen)
    return _place(problem, (1 - p_unseen) * given_seen, p_unseen * given_unseen)


@COMBINERS.register("total probability")
def total_probability(experts: Experts, p_unseen: torch.Tensor, problem: ZSLProblem) -> torch.Tensor:
    """The same gate without smoothing (the authors' ``vanilla_total_prob``)."""
    return _place(problem, (1 - p_unseen) * experts.seen, p_unseen * experts.unseen)


def unseen_probability(p_seen: torch.Tensor, threshold: float, temperature: float, hard: bool = False) -> torch.Tensor:
    """``sigmoid((θ − p(seen | x)) / T_cond)`` as a column; a hard gate rounds it to 0 or 1."""
    p = torch.sigmoid((threshold - p_seen) / temperature)
    return (p > 0.5).to(p.dtype)[:, None] if hard else p[:, None]


@dataclass
class COSMOFit:
    """Everything chosen on validation: the zero-shot expert's hyper-parameters and temperature, the gate,
    and per combiner (and gate kind) the θ, T_cond with the best validation H."""

    zsl_hyper: Dict
    zs_scale: float
    gate: LinearProbe
    choices: Dict[Tuple[str, bool], Tuple[float, float]]


def fit_cosmo(problem: ZSLProblem, zsl_model: str, seed: int, combiners: Sequence[str],
              hard: Sequence[bool] = (False,)) -> COSMOFit:
    """Choose every hyper-parameter of the combination on the class-split validation of ``problem``."""
    for name in combiners:
        COMBINERS.get(name)
    hyper = evaluate_model(zsl_model, problem, seed).hyper  # the same choice, from the cached fit
    val = restricted(class_split_validation(problem, seed))
    unseen_rows = torch.as_tensor(np.isin(val.y_test, val.unseen))
    zero_shot = ZSL_MODELS.get(zsl_model).fit(val, seed=seed, **hyper)  # fitted once: the temperature and the experts
    raw = zero_shot(val.x_test)[:, torch.as_tensor(val.unseen)]
    zs_scale = fit_zs_scale(raw[unseen_rows], _local(val.y_test[unseen_rows.numpy()], val.unseen))
    experts = fit_experts(val, zsl_model, hyper, seed, zs_scale, zero_shot=zero_shot)(val, val.x_test)
    is_seen = torch.as_tensor(np.isin(val.y_test, val.seen)).long()
    order = np.random.default_rng([seed, 17]).permutation(len(val.y_test))
    n_gate = int(round(GATE_TRAIN_SHARE * len(order)))
    gate_rows, pick_rows = np.sort(order[:n_gate]), np.sort(order[n_gate:])
    features = gate_features(experts)
    gate = fit_linear_probe(features[torch.as_tensor(gate_rows)], is_seen[torch.as_tensor(gate_rows)], 2)
    p_seen = gate.logits(features).softmax(1)[:, 1]
    pick = torch.as_tensor(pick_rows)
    picked = Experts(experts.seen[pick], experts.unseen[pick], experts.seen_logits[pick])
    choices = {}
    for name in combiners:
        for is_hard in hard:
            best = (-1.0, (0.5, 0.1))
            for threshold in THRESHOLDS:
                for temperature in CONDITION_TEMPERATURES:
                    p_u = unseen_probability(p_seen[pick], threshold, temperature, is_hard)
                    scores = COMBINERS.get(name)(picked, p_u, val)
                    h = gzsl_metrics(scores.argmax(1).numpy(), val.y_test[pick_rows], val.seen, val.unseen)["harmonic"]
                    if np.isfinite(h) and h > best[0]:
                        best = (h, (float(threshold), float(temperature)))
                    if is_hard:
                        break  # a hard gate does not depend on T_cond
            choices[name, is_hard] = best[1]
    return COSMOFit(hyper, zs_scale, gate, choices)


def cosmo_scores(problem: ZSLProblem, zsl_model: str, seed: int, fit: COSMOFit) -> Dict[str, torch.Tensor]:
    """Test scores of every combiner (and gate kind) in ``fit``, with the experts refitted on every seen
    class, plus the seen expert alone and the zero-shot expert's probabilities over unseen classes."""
    experts = fit_experts(problem, zsl_model, fit.zsl_hyper, seed, fit.zs_scale)(problem, problem.x_test)
    p_seen = fit.gate.logits(gate_features(experts)).softmax(1)[:, 1]
    out: Dict[str, torch.Tensor] = {}
    for (name, is_hard), (threshold, temperature) in fit.choices.items():
        label = f"{name}{' (hard gate)' if is_hard else ''}"
        out[label] = COMBINERS.get(name)(experts, unseen_probability(p_seen, threshold, temperature, is_hard), problem)
    out["seen expert alone"] = _place(problem, experts.seen, torch.zeros_like(experts.unseen))
    out["gate"] = p_seen
    return out


#: Bump when the combination, the gate or their searches change: every cached COSMO run then misses.
COSMO_VERSION = 2


def cached_cosmo_scores(problem: ZSLProblem, zsl_model: str, seed: int, combiners: Sequence[str],
                        hard: Sequence[bool]) -> Dict[str, torch.Tensor]:
    """:func:`fit_cosmo` then :func:`cosmo_scores` (plus the fitted ``zs_scale``), cached under the problem's
    content, the zero-shot expert, the seed, the combiners and every grid."""
    from ..cache import TensorCache
    from .gzsl import FIT_VERSION, problem_digest

    description = {"kind": "cosmo scores", "version": COSMO_VERSION, "fit_version": FIT_VERSION,
                   "model": zsl_model, "seed": int(seed), "problem": problem_digest(problem),
                   "combiners": list(combiners), "hard": [bool(h) for h in hard],
                   "grids": {"thresholds": list(THRESHOLDS), "t_cond": list(CONDITION_TEMPERATURES),
                             "zs_scales": list(ZS_SCALES), "top_k": GATE_TOP_K, "t_seen": SEEN_TEMPERATURE,
                             "gate_share": GATE_TRAIN_SHARE}}

    def compute() -> Dict[str, torch.Tensor]:
        fit = fit_cosmo(problem, zsl_model, seed, combiners, hard)
        return {**cosmo_scores(problem, zsl_model, seed, fit), "zs_scale": torch.tensor(fit.zs_scale)}

    return TensorCache().get_or_compute(description, compute)


def gate_auroc(p_seen: torch.Tensor, problem: ZSLProblem) -> float:
    """How well the gate tells test images of seen classes from unseen ones (AUROC, 0.5 = chance)."""
    from ..metrics import auroc

    is_seen = np.isin(problem.y_test, problem.seen)
    return auroc(p_seen.numpy()[is_seen], p_seen.numpy()[~is_seen])


def combiner_names(combiners: Sequence[str], hard: Sequence[bool]) -> List[str]:
    return [f"{c}{' (hard gate)' if h else ''}" for c in combiners for h in hard]


def cosmo_runs(datasets: Sequence[str], features: Dict[str, str], unseen: Dict[str, Sequence[str]], zsl_model: str,
               seeds: Sequence[int], n_train, n_test, combiners: Sequence[str], hard: Sequence[bool] = (False, True),
               device: str = "cpu") -> List[Dict]:
    """COSMO and its controls against the single models on every dataset and seed, one row per method with S, U
    and H (recorded as ``gzsl_seen``/``gzsl_unseen``/``gzsl_harmonic`` labelled ``method``), and the gate's
    AUROC (``gate_auroc``). Single models: the zero-shot expert's model stacked naively and with calibrated
    stacking (γ from the same validation), and the seen expert alone."""
    from ..records import record
    from .gzsl import dataset_problems, evaluate_model

    rows = []
    for dataset, seed, problem in dataset_problems(datasets, features, unseen, seeds, n_train, n_test, device=device):
        single = evaluate_model(zsl_model, problem, seed)
        scores = dict(cached_cosmo_scores(problem, zsl_model, seed, combiners, hard))
        zs_scale = float(scores.pop("zs_scale"))
        results = {f"{zsl_model}, naive stacking": single.naive,
                   f"{zsl_model}, calibrated stacking": single.calibrated}
        for name, s in scores.items():
            if name != "gate":
                results[name] = gzsl_metrics(s.argmax(1).numpy(), problem.y_test, problem.seen, problem.unseen)
        auc = gate_auroc(scores["gate"], problem)
        record("gate_auroc", auc, dataset=dataset, seed=seed)
        for method, metrics in results.items():
            for part, value in metrics.items():
                record(f"gzsl_{part}", value, dataset=dataset, seed=seed, method=method)
            rows.append({"dataset": dataset, "seed": seed, "method": method, **metrics, "gate_auroc": auc,
                         "zs_scale": zs_scale})
    return rows
