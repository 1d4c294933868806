"""The paper's numbers beside ours: each target of ``data/papers/<id>.yaml`` matched to the recorded number
it names, and compared as the run's mode allows.

* real mode: ours (in the paper's unit) against the paper's, "within tolerance" or not;
* offline: the world is not the paper's, so only an *effect* is compared, by its direction and size
  (same sign? how large relative to the paper's?); a *level* (an accuracy of the real setting) is not.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence


def find_metric(metrics: Sequence[Mapping[str, Any]], metric: str, labels: Mapping[str, Any]
                ) -> Optional[Mapping[str, Any]]:
    """The recorded row of ``metric`` whose labels include ``labels``; the across-seed row (no seed)
    is preferred over per-seed ones."""
    rows = [m for m in metrics if m.get("metric") == metric
            and all((m.get("labels") or {}).get(k) == v for k, v in labels.items())]
    rows.sort(key=lambda m: m.get("seed") is not None)
    return rows[0] if rows else None


def compare_target(target: Mapping[str, Any], metrics: Sequence[Mapping[str, Any]], mode: str) -> Dict[str, Any]:
    """One row for the report: the paper's value, ours (scaled, with its interval) and the comparison."""
    row = find_metric(metrics, target["metric"], target.get("labels") or {})
    scale = float(target.get("scale") or 1.0)
    paper = float(target["value"])
    out: Dict[str, Any] = {"paper": paper, "ours": None, "ours_low": None, "ours_high": None, "comparison": ""}
    if row is None:
        out["comparison"] = "not measured in this run"
        return out
    ours = float(row["value"]) * scale
    out["ours"] = ours
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        out["ours_low"], out["ours_high"] = float(row["ci_low"]) * scale, float(row["ci_high"]) * scale
    if mode == "real":
        tol = target.get("tolerance")
        if tol is None:
            out["comparison"] = f"difference {ours - paper:+.3g} (no tolerance given)"
        else:
            verdict = "within tolerance" if abs(ours - paper) <= float(tol) else "outside tolerance"
            out["comparison"] = f"{verdict}: |ours − paper| = {abs(ours - paper):.3g} (tolerance {float(tol):.3g})"
        return out
    if target.get("compare", "effect") == "level":
        out["comparison"] = "offline world: a level of the real setting, compared in real mode only"
        return out
    if paper == 0 or not math.isfinite(ours):
        out["comparison"] = f"ours {ours:+.3g}"
        return out
    same = math.copysign(1, ours) == math.copysign(1, paper)
    sign = "resolved" if out["ours_low"] is not None and (out["ours_low"] > 0 or out["ours_high"] < 0) else \
        "not resolved from 0"
    out["comparison"] = (f"{'same' if same else 'opposite'} direction as the paper ({sign}); "
                         f"ours is {abs(ours / paper):.2g}× the paper's size")
    return out


def compare_targets(targets: Sequence[Mapping[str, Any]], metrics: Sequence[Mapping[str, Any]],
                    mode: str) -> List[Dict[str, Any]]:
    return [{**dict(t), **compare_target(t, metrics, mode)} for t in targets]
