"""Figures in one house style (seaborn), so every notebook's plots read alike in the report.

Notebooks draw nothing by hand: they call these functions, which return the figure for
:func:`zslab.records.record_figure` (and for display, as the last value of a cell).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def set_style() -> None:
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")


def panels(n: int, width: float = 5.5, height: float = 4.0, sharey: bool = False) -> Tuple[plt.Figure, np.ndarray]:
    """A row of ``n`` axes in the house style."""
    set_style()
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False, sharey=sharey)
    return fig, axes[0]


def bars_with_seeds(per_seed: pd.DataFrame, x: str, y: str, order: Optional[Sequence[str]] = None,
                    summary: Optional[pd.DataFrame] = None, chance: Optional[float] = None,
                    ax: Optional[plt.Axes] = None, ylabel: Optional[str] = None, title: str = "",
                    hue: Optional[str] = None, hue_order: Optional[Sequence[str]] = None,
                    zero_line: bool = False) -> plt.Axes:
    """Bars of the across-seed mean with its interval (``summary``: columns x[, hue], mean, low, high) and
    one dot per seed on top, optionally grouped by ``hue``: readers see both the effect and its spread."""
    set_style()
    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 4))[1]
    order = list(order or per_seed[x].unique())
    hues = list(hue_order or (per_seed[hue].unique() if hue else [None]))
    width = 0.8 / len(hues)
    colors = sns.color_palette("colorblind", max(len(hues), len(order)) if hue else len(order))
    for j, h in enumerate(hues):
        offset = (j - (len(hues) - 1) / 2) * width
        rows = per_seed if h is None else per_seed[per_seed[hue] == h]
        xs = np.arange(len(order)) + offset
        if summary is not None:
            s = summary if h is None else summary[summary[hue] == h]
            s = s.set_index(x).reindex(order)
            ax.bar(xs, s["mean"], width=width * 0.95, alpha=0.75, label=None if h is None else str(h),
                   color=colors[j] if hue else colors[:len(order)])
            has = s["low"].notna()
            ax.errorbar(xs[has.to_numpy()], s["mean"][has], yerr=[(s["mean"] - s["low"])[has], (s["high"] - s["mean"])[has]],
                        fmt="none", ecolor="black", capsize=4, lw=1.1)
        for i, name in enumerate(order):
            vals = rows.loc[rows[x] == name, y]
            ax.scatter([xs[i]] * len(vals), vals, color="black", s=14, zorder=3)
    if chance is not None:
        ax.axhline(chance, ls="--", color="gray", lw=1)
        ax.text(len(order) - 0.5, chance, " chance", va="bottom", ha="right", color="gray", fontsize=9)
    if zero_line:
        ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order, rotation=0 if max(len(str(o)) for o in order) < 14 else 15)
    ax.set_ylabel(ylabel or y)
    ax.set_xlabel("")
    ax.set_title(title, fontsize=10)
    if hue:
        ax.legend(fontsize=8, title=hue, title_fontsize=8)
    return ax


def line_with_intervals(summary: pd.DataFrame, x: str, hue: Optional[str] = None, ax: Optional[plt.Axes] = None,
                        ylabel: str = "", title: str = "", logx: bool = False) -> plt.Axes:
    """Mean (``mean``) against ``x`` with a shaded interval (``low``, ``high``), one line per ``hue``."""
    set_style()
    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 4))[1]
    for name, g in (summary.groupby(hue, sort=False) if hue else [(None, summary)]):
        g = g.sort_values(x)
        ax.plot(g[x], g["mean"], marker="o", label=None if name is None else str(name))
        if g["low"].notna().any():
            ax.fill_between(g[x], g["low"], g["high"], alpha=0.2)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if hue:
        ax.legend(fontsize=8)
    return ax



def scatter_groups(points: pd.DataFrame, x: str, y: str, hue: Optional[str] = None, ax: Optional[plt.Axes] = None,
                   xlabel: str = "", ylabel: str = "", title: str = "", chance: Optional[float] = None,
                   diagonal: str = "") -> plt.Axes:
    """One dot per row of ``points`` (e.g. a prompt's label-free score against its accuracy), coloured by
    ``hue``: for asking whether a score ranks items the way the labels would. ``diagonal`` draws y = x
    with that label (e.g. "bound = test error")."""
    set_style()
    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 4))[1]
    sns.scatterplot(data=points, x=x, y=y, hue=hue, ax=ax, s=30, alpha=0.8)
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle=":", linewidth=1, label="chance")
    if diagonal:
        lo = float(min(points[x].min(), points[y].min()))
        hi = float(max(points[x].max(), points[y].max()))
        ax.plot([lo, hi], [lo, hi], color="gray", linestyle="--", linewidth=1, label=diagonal)
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    ax.set_title(title, fontsize=10)
    if hue or chance is not None or diagonal:
        ax.legend(fontsize=8)
    return ax


def seen_unseen_curves(curves: pd.DataFrame, hue: str = "model", marks: Optional[pd.DataFrame] = None,
                       ax: Optional[plt.Axes] = None, title: str = "") -> plt.Axes:
    """Calibrated stacking's seen-unseen accuracy curves (Chao et al. 2016, Fig. 3's form): unseen accuracy on
    x, seen on y, one line per ``hue`` (``curves``: columns hue, unseen, seen, in the curve's order), and
    optional ``marks`` (columns hue, unseen, seen) drawn as dots, e.g. the naive stacking point (gamma = 0)."""
    set_style()
    ax = ax if ax is not None else plt.subplots(figsize=(5.5, 4))[1]
    colors = dict(zip(curves[hue].unique(), sns.color_palette("colorblind", curves[hue].nunique())))
    for name, g in curves.groupby(hue, sort=False):
        ax.step(g["unseen"], g["seen"], where="post", color=colors[name], label=str(name), lw=1.4)
    if marks is not None:
        for name, g in marks.groupby(hue, sort=False):
            ax.scatter(g["unseen"], g["seen"], color=colors.get(name, "black"), edgecolor="black", s=36, zorder=3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("unseen accuracy A_U→T")
    ax.set_ylabel("seen accuracy A_S→T")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return ax


def level_marks(ax: plt.Axes, levels: Sequence[float], label: str, width: float = 0.8) -> plt.Axes:
    """A black horizontal mark at ``levels[i]`` across category ``i`` of a bar chart (e.g. a bound that every
    bar of that category should reach), with one legend entry ``label``."""
    for i, level in enumerate(levels):
        ax.hlines(level, i - width / 2, i + width / 2, colors="black", linewidth=2.5, label=label if i == 0 else None)
    ax.legend(fontsize=8)
    return ax
