"""Figures in one house style (seaborn), so every notebook's plots read alike in the report."""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def set_style() -> None:
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")


def bars_with_seeds(per_seed: pd.DataFrame, x: str, y: str, order: Optional[Sequence[str]] = None,
                    summary: Optional[pd.DataFrame] = None, chance: Optional[float] = None,
                    ax: Optional[plt.Axes] = None, ylabel: Optional[str] = None, title: str = "") -> plt.Axes:
    """Bars of the across-seed mean with its interval (``summary`` with columns x, mean, low, high) and
    one dot per seed on top: readers see both the effect and its spread."""
    set_style()
    ax = ax or plt.subplots(figsize=(5.5, 4))[1]
    order = list(order or per_seed[x].unique())
    if summary is not None:
        s = summary.set_index(x).loc[order]
        ax.bar(range(len(order)), s["mean"], color=sns.color_palette("colorblind", len(order)), alpha=0.75)
        ax.errorbar(range(len(order)), s["mean"], yerr=[s["mean"] - s["low"], s["high"] - s["mean"]],
                    fmt="none", ecolor="black", capsize=5, lw=1.2)
    for i, name in enumerate(order):
        vals = per_seed.loc[per_seed[x] == name, y]
        ax.scatter([i] * len(vals), vals, color="black", s=18, zorder=3)
    if chance is not None:
        ax.axhline(chance, ls="--", color="gray", lw=1)
        ax.text(len(order) - 0.5, chance, " chance", va="bottom", ha="right", color="gray", fontsize=9)
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels(order)
    ax.set_ylabel(ylabel or y)
    ax.set_title(title)
    return ax
