"""Turning a claim into a computed check: reproduced, not reproduced, or inconclusive.

Every verdict carries the interval that decided it and that interval's half-width, so that an
inconclusive verdict still says what it rules out ("no effect larger than ±1.2 pt").

Two kinds of interval, chosen by what varies:

* **over seeds** (Student t): when each seed is a separate run (a model trained per seed, or a new
  sample of images), the spread between seeds is the uncertainty that matters;
* **over images** (paired bootstrap): when there is only one distinct run, e.g. one pretrained model on
  a fixed test set (real mode with ``n_per_class=0``), the seeds change nothing and an interval over
  seeds would have zero width; the paired difference is resampled over the images instead.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from .arrays import to_numpy
from .metrics import across_seeds, bootstrap_ci, bootstrap_mean_ci, student_t_ppf


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval: ``n`` runs (or items) and the ``method`` that gave the interval."""

    mean: float
    low: float
    high: float
    n: int
    method: str
    level: float = 0.95

    @property
    def half_width(self) -> float:
        """The larger distance from the mean to an end of the interval (NaN when there is no interval)."""
        return max(self.high - self.mean, self.mean - self.low)

    @property
    def has_interval(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def interval(self) -> Optional[tuple]:
        """``(low, high)`` as :func:`zslab.records.record` takes it; ``None`` when there is none."""
        return (self.low, self.high) if self.has_interval else None

    def describe(self, scale: float = 100.0, unit: str = " pt") -> str:
        """``"+3.1 pt, 95% interval [+1.2, +5.0] (half-width 1.9 pt; t over 5 seeds)"``; one decimal, or as
        many as show two digits of a half-width below 1 (a squared distance of 0.004 is not printed as 0.0)."""
        size = abs(self.half_width * scale) if self.has_interval else abs(self.mean * scale)
        d = 1 if not size or size >= 1 or not math.isfinite(size) else min(4, max(1, math.ceil(-math.log10(size)) + 1))
        if not self.has_interval:
            return f"{self.mean * scale:+.{d}f}{unit}, no interval ({self.method})"
        return (f"{self.mean * scale:+.{d}f}{unit}, {self.level:.0%} interval [{self.low * scale:+.{d}f}, "
                f"{self.high * scale:+.{d}f}]{unit} (half-width {self.half_width * scale:.{d}f}{unit}; {self.method})")

    def as_dict(self) -> Dict[str, Any]:
        return {**asdict(self), "half_width": self.half_width}


def over_seeds(values: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean of per-seed values with a Student-t interval (no interval from a single seed)."""
    s = across_seeds(list(values), level=level)
    return Estimate(s["mean"], s["low"], s["high"], int(s["n"]), f"t over {int(s['n'])} seeds", level)


def difference_of_means(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> Estimate:
    """Mean of ``a`` minus mean of ``b`` for two independent groups of runs (e.g. models trained on two
    worlds), with Welch's t-interval (unequal variances, Welch–Satterthwaite degrees of freedom)."""
    x, y = np.asarray(list(a), dtype=np.float64), np.asarray(list(b), dtype=np.float64)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"Welch's interval needs >= 2 runs per group, got {x.size} and {y.size}")
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    diff = float(x.mean() - y.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        return Estimate(diff, diff, diff, int(x.size + y.size), f"Welch t, {x.size} vs {y.size} runs", level)
    df = (va + vb) ** 2 / (va ** 2 / (x.size - 1) + vb ** 2 / (y.size - 1))
    half = student_t_ppf(1 - (1 - level) / 2, df) * se
    return Estimate(diff, diff - half, diff + half, int(x.size + y.size), f"Welch t, {x.size} vs {y.size} runs", level)


PerRun = Union[Mapping[Any, Any], Sequence[Any]]


def _runs(x: PerRun) -> list:
    return [to_numpy(v).astype(np.float64).ravel() for v in (x.values() if isinstance(x, Mapping) else x)]


def _digest(a: np.ndarray, b: np.ndarray) -> str:
    return hashlib.sha256(a.tobytes() + b"|" + b.tobytes()).hexdigest()


def paired_gain(a: PerRun, b: PerRun, level: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Estimate:
    """The mean gain of A over B, each given per run (seed) as per-item scores on the same items.

    Runs whose (A, B) scores are identical are one run counted once. With two or more distinct runs, the
    interval is a t-interval over the runs' mean gains; with one, a paired bootstrap over its items.
    """
    runs_a, runs_b = _runs(a), _runs(b)
    if len(runs_a) != len(runs_b) or not runs_a:
        raise ValueError(f"need the same number (>= 1) of runs for A and B, got {len(runs_a)} and {len(runs_b)}")
    distinct: Dict[str, tuple] = {}
    for ra, rb in zip(runs_a, runs_b):
        if ra.shape != rb.shape:
            raise ValueError(f"A and B must score the same items in each run, got shapes {ra.shape} and {rb.shape}")
        distinct.setdefault(_digest(ra, rb), (ra, rb))
    if len(distinct) >= 2:
        return over_seeds([float(np.mean(ra - rb)) for ra, rb in distinct.values()], level)
    ra, rb = next(iter(distinct.values()))
    diff = ra - rb
    low, high = bootstrap_mean_ci(diff, n_resamples=n_resamples, level=level, seed=seed)
    repeats = f", {len(runs_a)} identical runs" if len(runs_a) > 1 else ""
    return Estimate(float(diff.mean()), low, high, int(diff.size),
                    f"paired bootstrap over {diff.size} items{repeats}", level)


def paired_metric_gain(metric: Callable[[np.ndarray, np.ndarray], float], a: PerRun, b: PerRun, labels: PerRun,
                       level: float = 0.95, n_resamples: int = 1000, seed: int = 0) -> Estimate:
    """Like :func:`paired_gain` for a metric that is not a mean over items (e.g. macro-F1): ``a``/``b``
    are each run's predictions, ``labels`` its labels; ``metric(predictions, labels)``."""
    runs = list(zip(_runs(a), _runs(b), _runs(labels)))
    if not runs or len({len(_runs(a)), len(_runs(b)), len(_runs(labels))}) != 1:
        raise ValueError("need the same number (>= 1) of runs of predictions A, B and labels")
    distinct: Dict[str, tuple] = {}
    for pa, pb, y in runs:
        distinct.setdefault(_digest(np.concatenate([pa, pb]), y), (pa, pb, y))
    if len(distinct) >= 2:
        return over_seeds([metric(pa, y) - metric(pb, y) for pa, pb, y in distinct.values()], level)
    pa, pb, y = next(iter(distinct.values()))
    low, high = bootstrap_ci(lambda x, z, t: metric(x, t) - metric(z, t), pa, pb, y, n_resamples=n_resamples,
                             level=level, seed=seed)
    return Estimate(metric(pa, y) - metric(pb, y), low, high, int(y.size), f"paired bootstrap over {y.size} items",
                    level)


def status_of(estimate: Estimate) -> str:
    """Reproduced when the interval lies above 0, not reproduced when below, else inconclusive."""
    if not estimate.has_interval:
        return "inconclusive"
    if estimate.low > 0:
        return "reproduced"
    if estimate.high < 0:
        return "not reproduced"
    return "inconclusive"


def equivalence_status(estimate: Estimate, margin: float) -> str:
    """For "A and B agree within ±margin" (an equivalence test, two one-sided intervals in one): reproduced
    when the whole interval lies inside ±margin, not reproduced when it lies wholly outside, else
    inconclusive (the interval is too wide to tell)."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin!r}")
    if not estimate.has_interval:
        return "inconclusive"
    if -margin < estimate.low and estimate.high < margin:
        return "reproduced"
    if estimate.low >= margin or estimate.high <= -margin:
        return "not reproduced"
    return "inconclusive"


def print_verdict(claim: str, status: str, evidence: str) -> None:
    """The verdict as a notebook shows it: the status, the claim, and the evidence beneath."""
    print(f"{status.upper():>15}: {claim}\n{'':>17}{evidence}")


def judge(claim: str, estimate: Estimate, *, metric: str = "gain", scale: float = 100.0, unit: str = " pt",
          context: str = "", record: bool = True, equivalence_margin: Optional[float] = None,
          **labels: Any) -> Dict[str, Any]:
    """Decide ``claim`` ("A beats B") from the estimate of A − B, print it, and record the number (as
    ``metric`` with its interval) and the verdict (with the estimate, so the report shows the half-width).
    With ``equivalence_margin`` the claim is "A and B agree within ± that margin" instead
    (:func:`equivalence_status`)."""
    from .records import record as record_metric, record_verdict

    if equivalence_margin is None:
        status = status_of(estimate)
        evidence = estimate.describe(scale, unit)
    else:
        status = equivalence_status(estimate, equivalence_margin)
        evidence = f"{estimate.describe(scale, unit)}; equivalence margin ±{equivalence_margin * scale:g}{unit}"
    evidence += f"; {context}" if context else ""
    print_verdict(claim, status, evidence)
    if record:
        record_metric(metric, estimate.mean, interval=estimate.interval, n=estimate.n, method=estimate.method,
                      **labels)
        return record_verdict(claim, status, evidence, estimate=estimate.as_dict())
    return {"claim": claim, "status": status, "evidence": evidence, "estimate": estimate.as_dict()}
