"""What a notebook calls to record a number, a figure or a verdict.

The runner points ``ZSLAB_RECORDS`` at ``<run>/records/<notebook>.json`` before executing a notebook; each
call rewrites that file atomically, so a crash leaves the records of the calls made so far and never a
half-written file. Outside the runner (JupyterLab, plain papermill) records are kept in memory and shown
in the notebook; set ``ZSLAB_RECORDS`` yourself to keep them.

File format (``RECORDS_FORMAT`` = 1)::

    {"format": 1, "notebook": "...",
     "metrics":  [{"metric", "value", "ci_low", "ci_high", "seed", "labels": {...}}],
     "figures":  [{"name", "path" (relative to the records file), "caption"}],
     "verdicts": [{"claim", "status", "evidence", "estimate": {"mean", "low", "high", "half_width", "n",
                   "method", "level"} or null}]}
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from .errors import check_choice
from .io import atomic_write, atomic_write_json

RECORDS_FORMAT = 1
VERDICTS = ("reproduced", "not reproduced", "inconclusive")


class Recorder:
    """Collects one notebook's records and mirrors them to ``path`` (if given) after every call."""

    def __init__(self, path: Optional[Path] = None, notebook: str = ""):
        self.path = Path(path) if path else None
        self.notebook = notebook or (self.path.stem if self.path else "interactive")
        self.metrics: List[Dict[str, Any]] = []
        self.figures: List[Dict[str, Any]] = []
        self.verdicts: List[Dict[str, Any]] = []

    def as_dict(self) -> Dict[str, Any]:
        return {"format": RECORDS_FORMAT, "notebook": self.notebook, "metrics": self.metrics,
                "figures": self.figures, "verdicts": self.verdicts}

    def _flush(self) -> None:
        if self.path is not None:
            atomic_write_json(self.path, self.as_dict())

    def metric(self, metric: str, value: float, *, interval: Optional[Sequence[float]] = None,
               seed: Optional[int] = None, **labels: Any) -> Dict[str, Any]:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"metric {metric!r} is not finite: {value}")
        lo, hi = (None, None) if interval is None else (float(interval[0]), float(interval[1]))
        if lo is not None and math.isnan(lo) and math.isnan(hi):
            lo, hi = None, None  # no interval (e.g. a single seed): recorded as none, never as zero width
        if lo is not None and not (lo <= hi):
            raise ValueError(f"interval of {metric!r} is not ordered: {interval}")
        row = {"metric": metric, "value": value, "ci_low": lo, "ci_high": hi,
               "seed": None if seed is None else int(seed), "labels": {k: _plain(v) for k, v in labels.items()}}
        self.metrics.append(row)
        self._flush()
        return row

    def figure(self, fig: Any, name: str, caption: str = "") -> Optional[Path]:
        out = None
        if self.path is not None:
            out = self.path.parent / "figures" / self.notebook / f"{name}.png"
            save_png(fig, out)
            rel = os.path.relpath(out, self.path.parent)
        else:
            rel = None
        self.figures = [f for f in self.figures if f["name"] != name]
        self.figures.append({"name": name, "path": rel, "caption": caption})
        self._flush()
        return out

    def verdict(self, claim: str, status: str, evidence: str,
                estimate: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        check_choice("verdict status", status, VERDICTS)
        row = {"claim": claim, "status": status, "evidence": evidence,
               "estimate": None if estimate is None else {k: _finite_or_none(v) for k, v in estimate.items()}}
        self.verdicts.append(row)
        self._flush()
        return row


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return _plain(value)


def _plain(value: Any) -> Any:
    """Labels go to JSON and CSV: keep them to plain scalars and strings."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


_current: Optional[Recorder] = None


def recorder() -> Recorder:
    """The notebook's recorder, created on first use from ``ZSLAB_RECORDS`` / ``ZSLAB_NOTEBOOK``."""
    global _current
    if _current is None:
        path = os.environ.get("ZSLAB_RECORDS")
        _current = Recorder(Path(path) if path else None, os.environ.get("ZSLAB_NOTEBOOK", ""))
    return _current


def reset(path: Optional[Path] = None, notebook: str = "") -> Recorder:
    """Start a fresh recorder (tests; or a notebook that wants its records in a file of its choosing)."""
    global _current
    _current = Recorder(path, notebook)
    return _current


def record(metric: str, value: float, *, interval: Optional[Sequence[float]] = None,
           seed: Optional[int] = None, **labels: Any) -> Dict[str, Any]:
    """Record one number: its metric name, value, optional (low, high) interval, seed and labels."""
    return recorder().metric(metric, value, interval=interval, seed=seed, **labels)


def save_png(fig: Any, path: Path) -> Path:
    """Write a matplotlib figure as the PNG every zslab page embeds (atomically: no half-written file)."""
    return atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110, bbox_inches="tight"))


def record_figure(fig: Any, name: str, caption: str = "") -> Optional[Path]:
    """Save a matplotlib figure as PNG beside the records and list it for the report."""
    return recorder().figure(fig, name, caption)


def record_verdict(claim: str, status: str, evidence: str, estimate: Optional[Dict[str, Any]] = None
                   ) -> Dict[str, Any]:
    """Record the paper's claim as checked in this run: reproduced, not reproduced or inconclusive, with
    the estimate that decided it (see :func:`zslab.verdicts.judge`, which calls this)."""
    return recorder().verdict(claim, status, evidence, estimate)


def load_records(path: str | os.PathLike) -> Dict[str, Any]:
    """Read a records file written by :class:`Recorder`."""
    import json

    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != RECORDS_FORMAT:
        raise ValueError(f"{path}: records format {data.get('format')!r}, expected {RECORDS_FORMAT}")
    return data
