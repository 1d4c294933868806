"""The steps every paper notebook repeats, so that notebooks stay a list of calls.

* :func:`record_scores` — one run's per-item scores of each method → recorded means with bootstrap intervals;
* :func:`mean_over_seeds` — per-seed results → across-seed mean with its interval, recorded;
* :func:`paired_gains` — per-seed gains of one method over another on the same items, for figures;
* :func:`check_gain` — "A beats B" judged from per-item scores of both (see :mod:`zslab.verdicts`).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from .metrics import bootstrap_mean_ci
from .records import record
from .verdicts import difference_of_means, judge, over_seeds, paired_gain

#: ``{seed: {method: per-item scores}}`` (e.g. 0/1 correctness of each head on the same test images).
PerSeedScores = Mapping[Any, Mapping[str, np.ndarray]]


def record_scores(scores: Mapping[str, np.ndarray], seed: Any, metric: str = "top1", key: str = "head",
                  n_bootstrap: int = 1000, **labels: Any) -> list:
    """Record the mean of each method's per-item scores in one run (seed), with a bootstrap interval over
    the items; returns rows ``{key, seed, metric, low, high, **labels}`` for a per-seed table."""
    rows = []
    for name, values in scores.items():
        values = np.asarray(values, dtype=np.float64)
        low, high = bootstrap_mean_ci(values, n_resamples=n_bootstrap, seed=int(seed) if seed is not None else 0)
        record(metric, float(values.mean()), interval=(low, high), seed=seed, n_items=len(values),
               **{key: name}, **labels)
        rows.append({key: name, "seed": seed, metric: float(values.mean()), "low": low, "high": high, **labels})
    return rows


def mean_over_seeds(per_seed: pd.DataFrame, value: str, by: Sequence[str], metric: Optional[str] = None,
                    level: float = 0.95, **labels: Any) -> pd.DataFrame:
    """One row per group of ``by``: the mean of ``value`` over its rows (one per seed) with a t-interval.

    Each group is recorded as ``metric`` (default ``<value>_mean_over_seeds``) with the group's values and
    ``labels`` as labels; a single seed gets no interval (NaN), never a zero-width one.
    """
    rows = []
    for key, group in per_seed.groupby(list(by), sort=False):
        key = key if isinstance(key, tuple) else (key,)
        est = over_seeds(group[value].tolist(), level)
        names = dict(zip(by, key))
        rows.append({**names, "mean": est.mean, "low": est.low, "high": est.high, "half_width": est.half_width,
                     "n": est.n})
        record(metric or f"{value}_mean_over_seeds", est.mean,
               interval=est.interval, n_seeds=est.n, **names, **labels)
    return pd.DataFrame(rows)


def paired_gains(scores: PerSeedScores, comparisons: Mapping[str, Sequence[str]], **columns: Any) -> pd.DataFrame:
    """Per seed, the mean gain of ``a`` over ``b`` for each ``{name: (a, b)}``: rows ``seed, comparison, gain``."""
    return pd.DataFrame([{**columns, "seed": seed, "comparison": name,
                          "gain": float(np.mean(np.asarray(by_method[a], float) - np.asarray(by_method[b], float)))}
                         for seed, by_method in scores.items() for name, (a, b) in comparisons.items()])


def check_gain(claim: str, scores: PerSeedScores, a: str, b: str, *, n_resamples: int = 2000, level: float = 0.95,
               metric: str = "gain", context: str = "", scale: float = 100.0, unit: str = " pt",
               equivalence_margin: Optional[float] = None, **labels: Any) -> Dict[str, Any]:
    """Judge "``a`` beats ``b``" from per-item scores per seed: a t-interval over seeds when the seeds are
    distinct runs, a paired bootstrap over items when they are one run; recorded with its half-width.
    ``scale``/``unit`` say how the evidence is printed (fractions as points by default). With
    ``equivalence_margin`` the claim is "``a`` and ``b`` agree within ± that margin" instead."""
    est = paired_gain({s: m[a] for s, m in scores.items()}, {s: m[b] for s, m in scores.items()},
                      level=level, n_resamples=n_resamples)
    return judge(claim, est, metric=metric, context=context, scale=scale, unit=unit, comparison=f"{a} − {b}",
                 equivalence_margin=equivalence_margin, **labels)


def control_arms(mode: str, control: Optional[Mapping[str, Any]], main: str = "mechanism on") -> Dict[str, Any]:
    """The arms of a mechanism experiment: ``{main: None}`` plus, offline, a control arm whose model is
    trained with the world ``control`` knobs (the mechanism turned off). Real mode has no control arm: the
    mechanism is a property of data that real mode cannot turn, and the notebook says so."""
    arms: Dict[str, Any] = {main: None}
    if mode == "offline" and control:
        arms["control: " + ", ".join(f"{k}={v}" for k, v in control.items())] = {"world": dict(control)}
    elif control:
        print(f"{mode} mode: no control arm (the knobs {dict(control)} belong to zslab's offline world)")
    return arms


def check_mechanism(claim: str, gains: pd.DataFrame, comparison: str, on: str, off: str, paired: bool = True,
                    level: float = 0.95, **labels: Any) -> Dict[str, Any]:
    """Judge "the gain ``comparison`` is larger with the mechanism on than off" from per-seed gains of the
    two arms. ``paired``: both arms use the same models and inputs per seed (a control applied at test
    time), so the per-seed differences are judged (t over seeds). Unpaired: each arm has models of its own
    (a control world trained separately), so the arms are two independent groups (Welch's t over all
    their seeds)."""
    g = gains[gains["comparison"] == comparison]
    a = g[g["arm"] == on].set_index("seed")["gain"]
    b = g[g["arm"] == off].set_index("seed")["gain"]
    if paired:
        common = [s for s in a.index if s in b.index]
        if not common:
            raise ValueError(f"no seed has both arms {on!r} and {off!r} for {comparison!r}")
        est = over_seeds([a[s] - b[s] for s in common], level)
    else:
        est = difference_of_means(a.tolist(), b.tolist(), level)
    return judge(claim, est, metric="gain_on_minus_off", comparison=comparison, on=on, off=off, **labels)


def relative_reduction(per_seed: pd.DataFrame, value: str, key: str, baseline: str, by: Sequence[str]) -> pd.DataFrame:
    """Per seed and group of ``by``, ``1 − value / value(baseline)`` for every other ``key`` (e.g. each rule's
    expected squared distance relative to argmax): the "x% improvement" papers quote, as rows for
    :func:`mean_over_seeds`."""
    table = per_seed.dropna(subset=[value]).pivot_table(index=[*by, "seed"], columns=key, values=value)
    if baseline not in table.columns:
        raise ValueError(f"no {key} {baseline!r} among {list(table.columns)}")
    return pd.DataFrame([{**dict(zip([*by, "seed"], idx if isinstance(idx, tuple) else (idx,))), key: name,
                          "relative_reduction": float(1 - row[name] / row[baseline])}
                         for idx, row in table.iterrows() for name in table.columns if name != baseline])
