"""Collect a run folder's records into a tidy table and a self-contained HTML report.

The status files (``status/<id>.json``) are the source of truth: a notebook is reported with the
records of its last run only when that run is ``done``; a ``failed`` run, or one left ``running`` by an
interruption, is reported as such with no numbers, so a half run never passes for a result.
The paper's own numbers (its ``targets``) are shown in a separate table, labelled as targets.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import pandas as pd

from ..io import atomic_write, atomic_write_text
from ..records import load_records
from .targets import compare_targets

COLUMNS = ["notebook", "paper", "arxiv", "metric", "value", "ci_low", "ci_high", "seed", "labels",
           "parameters", "git_revision", "versions", "duration_s", "status"]
_COLOURS = {"reproduced": ("#1a7f37", "#dafbe1"), "not reproduced": ("#cf222e", "#ffebe9"),
            "inconclusive": ("#9a6700", "#fff8c5"), "done": ("#1a7f37", "#dafbe1"),
            "failed": ("#cf222e", "#ffebe9"), "interrupted": ("#9a6700", "#fff8c5"),
            "running": ("#0969da", "#ddf4ff"), "missing asset": ("#8250df", "#fbefff")}


def _jdump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def load_run(out_dir: str | os.PathLike) -> List[Dict[str, Any]]:
    """One entry per status file (sorted by notebook): the status, the paper and (if done) the records."""
    out = Path(out_dir)
    entries = []
    for path in sorted((out / "status").glob("*.json")):
        try:
            status = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            status = {"notebook": path.stem, "status": "failed",
                      "error": {"ename": type(exc).__name__, "evalue": f"unreadable status file {path}: {exc}"}}
        notebook = status.get("notebook") or path.stem
        state = status.get("status", "failed")
        if state == "running" and not (_pid_alive(status.get("pid")) and status.get("pid") != os.getpid()):
            state = "interrupted"
        records, note = None, ""
        if state == "done":
            rec_path = out / status.get("records", f"records/{notebook}.json")
            try:
                records = load_records(rec_path)
                records["_dir"] = rec_path.parent
            except (OSError, ValueError) as exc:
                note = f"records unreadable: {exc}"
        entries.append({"notebook": notebook, "state": state, "status": status,
                        "paper": status.get("paper") or _paper_or_none(notebook), "records": records, "note": note})
    return entries


def _paper_or_none(notebook: str) -> Optional[Dict[str, Any]]:
    from dataclasses import asdict

    from .. import papers

    try:
        return asdict(papers.get_paper(notebook))
    except Exception:                                   # metadata is optional for the report
        return None


def collect_results(out_dir: str | os.PathLike) -> pd.DataFrame:
    """Tidy table, one row per recorded metric (one row with an empty metric for a notebook without any)."""
    rows = []
    for e in load_run(out_dir):
        st, paper = e["status"], e["paper"] or {}
        base = {"notebook": e["notebook"], "paper": paper.get("title", ""), "arxiv": paper.get("arxiv", ""),
                "parameters": _jdump(st.get("parameters", {})), "git_revision": st.get("git_revision", ""),
                "versions": _jdump(st.get("versions", {})), "duration_s": st.get("duration_s"), "status": e["state"]}
        metrics = (e["records"] or {}).get("metrics", [])
        if not metrics:
            rows.append({**base, "metric": None, "value": None, "ci_low": None, "ci_high": None, "seed": None,
                         "labels": None})
        for m in metrics:
            rows.append({**base, "metric": m.get("metric"), "value": m.get("value"), "ci_low": m.get("ci_low"),
                         "ci_high": m.get("ci_high"), "seed": m.get("seed"), "labels": _jdump(m.get("labels", {}))})
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("value", "ci_low", "ci_high", "duration_s"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["seed"] = pd.array(df["seed"], dtype="Int64")
    return df


def write_report(out_dir: str | os.PathLike) -> Tuple[Path, Path]:
    """Write ``results.csv`` and ``report.html`` (self-contained) into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    df = collect_results(out)
    csv_path = atomic_write(out / "results.csv", lambda p: df.to_csv(p, index=False))
    html_path = atomic_write_text(out / "report.html", render_html(out))
    return csv_path, html_path


# ---------------------------------------------------------------------------------------------- HTML

def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _badge(state: str) -> str:
    fg, bg = _COLOURS.get(state, ("#57606a", "#f6f8fa"))
    return f'<span class="badge" style="color:{fg};background:{bg};border-color:{fg}">{_e(state)}</span>'


def _num(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return f"{x:.4g}"
    return str(x)


def _table(headers: List[str], rows: List[List[str]], cls: str = "") -> str:
    """Rows are HTML already (escape cells before)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _verdict_summary(e: Dict[str, Any]) -> str:
    verdicts = (e["records"] or {}).get("verdicts", [])
    return " ".join(_badge(v.get("status", "")) for v in verdicts) or "&mdash;"


def _half_width(verdict: Dict[str, Any]) -> str:
    est = verdict.get("estimate") or {}
    if est.get("half_width") is None:
        return "<br><span class='muted'>no interval: nothing is ruled out</span>" if est else ""
    return (f"<br><span class='muted'>interval half-width {_num(est['half_width'])} "
            f"({_e(est.get('method'))}): effects outside the interval are ruled out at its level</span>")


def _figure_html(fig: Dict[str, Any], rec_dir: Path) -> str:
    if not fig.get("path"):
        return f"<p class='muted'>figure {_e(fig.get('name'))}: not saved (no records file)</p>"
    return embedded_figure(rec_dir / fig["path"], fig.get("name"), fig.get("caption") or fig.get("name"))


def embedded_figure(path: Path, name: Any, caption: Any) -> str:
    """A PNG file as a self-contained ``<figure>`` (base64 data URI), or a note that the file is missing."""
    try:
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    except OSError:
        return f"<p class='muted'>figure {_e(name)}: file {_e(path)} missing</p>"
    return (f'<figure><img alt="{_e(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _section(e: Dict[str, Any]) -> str:
    st, paper, rec = e["status"], e["paper"] or {}, e["records"] or {}
    nb = e["notebook"]
    parts = [f'<section id="nb-{_e(nb)}">']
    title = _e(paper.get("title") or nb)
    parts.append(f"<h2>{title} {_badge(e['state'])}</h2>")
    meta = [f"<b>notebook</b> <code>{_e(nb)}</code>"]
    if paper.get("arxiv"):
        url = f"https://arxiv.org/abs/{paper['arxiv']}"
        meta.append(f'<b>arXiv</b> <a href="{_e(url)}">{_e(paper["arxiv"])}</a>')
    if paper.get("family"):
        meta.append(f"<b>family</b> {_e(paper['family'])}")
    if paper.get("mirrors"):
        meta.append(f"<b>mirrors</b> {_e(paper['mirrors'])}")
    parts.append("<p class='meta'>" + " &middot; ".join(meta) + "</p>")
    if paper.get("claim"):
        parts.append(f"<p class='claim'><b>Claim.</b> {_e(paper['claim'])}</p>")
    elif not paper:
        parts.append("<p class='muted'>No paper metadata (data/papers/&lt;id&gt;.yaml) for this notebook.</p>")

    if e["state"] in ("failed", "missing asset", "interrupted", "running"):
        err = st.get("error") or {}
        if e["state"] in ("failed", "missing asset"):
            title = "Missing asset (how to install it is in the message)" if e["state"] == "missing asset" else "Failure"
            parts.append(f"<div class='failure'><h3>{title}</h3>"
                         f"<p><b>{_e(err.get('ename'))}</b>: {_e(err.get('evalue'))}</p>")
            if err.get("source_excerpt"):
                parts.append(f"<p>failing cell{' ' + _e(err.get('cell_index')) if err.get('cell_index') is not None else ''}"
                             f":</p><pre>{_e(err['source_excerpt'])}</pre>")
            if err.get("traceback"):
                parts.append(f"<details><summary>traceback</summary><pre>{_e(err['traceback'])}</pre></details>")
            parts.append("</div>")
        else:
            parts.append(f"<div class='failure'><p>The run {'is still running' if e['state'] == 'running' else 'was interrupted'} "
                         f"(status <code>{_e(st.get('status'))}</code>); no numbers are reported. Run again to resume.</p></div>")
    if e["note"]:
        parts.append(f"<p class='failure'>{_e(e['note'])}</p>")

    if e["state"] == "done":
        metrics = rec.get("metrics", [])
        parts.append("<h3>Our numbers (measured in this run)</h3>")
        if metrics:
            rows = []
            for m in metrics:
                interval = (f"[{_num(m.get('ci_low'))}, {_num(m.get('ci_high'))}]"
                            if m.get("ci_low") is not None else "")
                labels = ", ".join(f"{k}={v}" for k, v in (m.get("labels") or {}).items())
                rows.append([_e(m.get("metric")), _e(_num(m.get("value"))), _e(interval),
                             _e(m.get("seed")), _e(labels)])
            parts.append(_table(["metric", "value", "interval", "seed", "labels"], rows, "ours"))
        else:
            parts.append("<p class='muted'>No metrics recorded.</p>")

    targets = paper.get("targets") or []
    if targets:
        parts.append("<h3>The paper's numbers beside ours</h3><p class='muted'>The paper's values are quoted from "
                     "the source named, never measured here; ours are this run's, converted to the paper's unit. "
                     + ("Real mode: ours is checked against the paper within the stated tolerance."
                        if st.get("mode") == "real" else "Offline: the world is not the paper's, so an effect is "
                        "compared by direction and size, and a level of the real setting is not compared.") + "</p>")
        compared = compare_targets(targets, rec.get("metrics", []) if e["state"] == "done" else [],
                                   st.get("mode", "offline"))
        rows = []
        for t in compared:
            ours = "" if t["ours"] is None else _num(t["ours"]) + (
                f" [{_num(t['ours_low'])}, {_num(t['ours_high'])}]" if t["ours_low"] is not None else "")
            labels = ", ".join(f"{k}={v}" for k, v in (t.get("labels") or {}).items())
            rows.append([_e(t.get("metric")) + (f"<br><span class='muted'>{_e(labels)}</span>" if labels else ""),
                         _e(t.get("setting")), f"<i>{_e(_num(t.get('value')))}</i>", _e(ours), _e(t.get("unit")),
                         _e(t["comparison"]), _e(t.get("source"))])
        parts.append(_table(["metric", "paper's setting", "paper", "ours", "unit", "comparison", "source"], rows,
                            "targets"))

    if e["state"] == "done":
        figures = rec.get("figures", [])
        if figures:
            parts.append("<h3>Figures</h3>")
            parts.extend(_figure_html(f, rec["_dir"]) for f in figures)
        verdicts = rec.get("verdicts", [])
        parts.append("<h3>Verdicts</h3>")
        if verdicts:
            parts.append("<ul class='verdicts'>" + "".join(
                f"<li>{_badge(v.get('status', ''))} <b>{_e(v.get('claim'))}</b><br>"
                f"<span class='evidence'>{_e(v.get('evidence'))}</span>{_half_width(v)}</li>" for v in verdicts)
                + "</ul>")
        else:
            parts.append("<p class='muted'>No verdict recorded.</p>")

    if paper.get("notes"):
        parts.append(f"<p class='muted'><b>Notes.</b> {_e(paper['notes'])}</p>")
    versions = ", ".join(f"{k} {v}" for k, v in sorted((st.get("versions") or {}).items()))
    prov = [["git revision", f"<code>{_e(st.get('git_revision'))}</code>"], ["mode", _e(st.get("mode"))],
            ["parameters", f"<pre>{_e(json.dumps(st.get('parameters', {}), indent=1, sort_keys=True, default=str))}</pre>"],
            ["parameter hash", f"<code>{_e(st.get('param_hash'))}</code>"],
            ["started / ended", _e(f"{st.get('started')} / {st.get('ended')}")],
            ["duration", _e(f"{_num(st.get('duration_s'))} s" if st.get("duration_s") is not None else "")],
            ["package versions", _e(versions)],
            ["executed notebook", f"<code>{_e(st.get('output_notebook'))}</code>"]]
    parts.append("<details class='prov'><summary>Provenance</summary>"
                 + _table(["", ""], prov, "prov") + "</details>")
    parts.append("</section>")
    return "\n".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#1f2328}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #d0d7de;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}.badge{border:1px solid;border-radius:1em;padding:0 .6em;font-size:.85em;white-space:nowrap}
section{border-top:2px solid #d0d7de;margin-top:2em}.claim{font-size:1.05em}.muted{color:#57606a}
.failure{background:#ffebe9;border-left:4px solid #cf222e;padding:.2em 1em}
table.targets{background:#f6f8fa}pre{white-space:pre-wrap;margin:0}
figure img{max-width:100%}figcaption{color:#57606a}.verdicts li{margin:.4em 0}
"""


def render_html(out_dir: str | os.PathLike) -> str:
    out = Path(out_dir)
    entries = load_run(out)
    summary = [[f'<a href="#nb-{_e(e["notebook"])}">{_e(e["notebook"])}</a>', _e((e["paper"] or {}).get("title", "")),
                _badge(e["state"]), _verdict_summary(e) if e["state"] == "done" else "&mdash;",
                _e(f"{_num(e['status'].get('duration_s'))} s" if e["status"].get("duration_s") is not None else "")]
               for e in entries]
    counts = {s: sum(e["state"] == s for e in entries)
              for s in ("done", "failed", "missing asset", "interrupted", "running")}
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    body = [f"<h1>zslab run report</h1><p class='muted'>run folder <code>{_e(out.resolve())}</code> &middot; "
            f"generated {_e(generated)} &middot; " + ", ".join(f"{v} {k}" for k, v in counts.items() if v) + "</p>"]
    if entries:
        body.append(_table(["notebook", "paper", "status", "verdict", "duration"], summary, "summary"))
    else:
        body.append("<p>No notebooks in this run folder (no status/*.json).</p>")
    body.extend(_section(e) for e in entries)
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>zslab run report</title>"
            f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
