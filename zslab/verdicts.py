"""Turning a claim into a computed check: reproduced, not reproduced, or inconclusive."""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

from .metrics import across_seeds


def improvement_verdict(differences: Sequence[float], level: float = 0.95) -> Tuple[str, Dict[str, float]]:
    """Verdict on "A beats B" from per-seed differences A − B.

    Reproduced when the Student-t interval of the mean difference lies above 0; not reproduced when it
    lies below 0; inconclusive when it contains 0 (or there is a single seed, whose interval says nothing).
    """
    stats = across_seeds(list(differences), level=level)
    if stats["n"] < 2:
        status = "inconclusive"
    elif stats["low"] > 0:
        status = "reproduced"
    elif stats["high"] < 0:
        status = "not reproduced"
    else:
        status = "inconclusive"
    return status, stats


def describe_interval(stats: Dict[str, float], scale: float = 100.0, unit: str = " pt") -> str:
    return (f"mean {stats['mean'] * scale:+.1f}{unit}, {int(stats['n'])} seeds, "
            f"95% interval [{stats['low'] * scale:+.1f}, {stats['high'] * scale:+.1f}]{unit}")
