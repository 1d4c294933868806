"""Sweeps: notebooks × a parameter grid × seeds, each cell one :func:`run_notebooks` call, on Dask.

A sweep file (YAML) names what to run; every key but ``notebooks`` and ``grid`` is optional::

    notebooks: [clip_prompt_engineering]
    grid:                      # swept parameters: every combination is a cell (per seed)
      n_per_class: [10, 20]
    seeds: [0, 1, 2]           # one cell per seed, run with the notebook parameter seeds: [s]
    parameters: {n_bootstrap: 100}   # fixed in every cell
    test_params: true          # start from each paper's test_parameters (data/papers/<id>.yaml)
    mode: offline
    plot: {metric: top1, labels: {head: one template}}   # the figures: metric against each swept parameter

Each cell runs in a run folder of its own (``<out>/cells/<notebook>/<cell>``): its status file, records,
output notebook and report, so resume, errors and interruption work exactly as in ``zslab run``: a rerun
executes only the cells that are missing, failed or interrupted; a failed cell keeps its error and never
stops the others. Cells go to a Dask cluster: a ``LocalCluster`` of one single-threaded worker process
per core by default, or an existing scheduler (``scheduler="tcp://host:8786"``; start one with
``dask scheduler`` and ``dask worker tcp://host:8786 --nthreads 1``, or through dask-jobqueue / dask-kubernetes).
Workers must share the file system of ``out`` and ``ZSLAB_CACHE``; models are trained once per cache
(:meth:`~zslab.train.model_zoo.ModelZoo.build_once` locks per model).

The sweep's outputs: ``results.csv`` (every cell's ``results.csv`` rows plus one column per swept
parameter, ``sweep_seed`` and ``cell``), ``sweep.json`` (cells and their states) and ``sweep.html``
(states, one figure per swept parameter: the mean over seeds with its 95% t-interval).
"""
from __future__ import annotations

import hashlib
import html
import io
import itertools
import json
import logging
import os
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import pandas as pd
import yaml

from .. import papers as papers_mod
from ..errors import InvalidChoiceError, ZslabError
from ..io import atomic_write, atomic_write_json, atomic_write_text
from ..records import save_png
from ..metrics import across_seeds
from .execute import MODES, NotebookResult, _sigterm_as_interrupt, mark_interrupted, plan_runs, run_notebooks
from .report import collect_results, embedded_figure, write_report

SPEC_REQUIRED = ("notebooks", "grid")
SPEC_OPTIONAL = ("seeds", "parameters", "test_params", "mode", "plot")
#: The notebook parameter a cell's seed is passed as (a one-element list).
SEED_PARAMETER = "seeds"


class SweepSpecError(ZslabError, ValueError):
    """A sweep file that cannot be run; the message names the bad field and what is valid."""


@dataclass(frozen=True)
class SweepSpec:
    notebooks: List[str]
    grid: Dict[str, List[Any]]
    seeds: List[int] = field(default_factory=lambda: [0])
    parameters: Dict[str, Any] = field(default_factory=dict)
    test_params: bool = False
    mode: str = "offline"
    plot: Dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cell:
    """One notebook run: the swept values (``point``), its seed, every override passed, its run folder."""

    notebook: str
    point: Dict[str, Any]
    seed: int
    overrides: Dict[str, Any]
    name: str

    def folder(self, out: Path) -> Path:
        return Path(out) / "cells" / self.notebook / self.name


def load_sweep(path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep file (see the module docstring)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SweepSpecError(f"no sweep file {path}") from None
    return parse_sweep(data, str(path))


def parse_sweep(data: Any, where: str = "sweep") -> SweepSpec:
    if not isinstance(data, dict):
        raise SweepSpecError(f"{where}: expected a mapping with {list(SPEC_REQUIRED)}, got {type(data).__name__}")
    unknown = sorted(set(data) - set(SPEC_REQUIRED) - set(SPEC_OPTIONAL))
    if unknown:
        raise SweepSpecError(f"{where}: unknown field(s) {unknown}; valid fields: {list(SPEC_REQUIRED + SPEC_OPTIONAL)}")
    missing = [k for k in SPEC_REQUIRED if k not in data]
    if missing:
        raise SweepSpecError(f"{where}: missing field(s) {missing}")
    notebooks = data["notebooks"]
    if isinstance(notebooks, str):
        notebooks = [notebooks]
    if not notebooks or not all(isinstance(n, str) for n in notebooks):
        raise SweepSpecError(f"{where}: 'notebooks' must be a non-empty list of notebook ids, got {notebooks!r}")
    grid = data["grid"] or {}
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise SweepSpecError(f"{where}: 'grid' must map parameter names to non-empty lists of values, got {grid!r}")
    if SEED_PARAMETER in grid:
        raise SweepSpecError(f"{where}: sweep seeds with the 'seeds' field (one cell per seed), not in 'grid'")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise SweepSpecError(f"{where}: 'seeds' must be a non-empty list of integers, got {seeds!r}")
    parameters = data.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise SweepSpecError(f"{where}: 'parameters' must be a mapping, got {parameters!r}")
    clash = sorted(set(parameters) & (set(grid) | {SEED_PARAMETER}))
    if clash:
        raise SweepSpecError(f"{where}: {clash} set both as fixed 'parameters' and by the sweep")
    mode = data.get("mode", "offline")
    if mode not in MODES:
        raise InvalidChoiceError(f"{where}: unknown mode {mode!r}; valid modes: {', '.join(MODES)}")
    plot = data.get("plot") or {}
    if not isinstance(plot, dict) or (plot and not isinstance(plot.get("metric"), str)):
        raise SweepSpecError(f"{where}: 'plot' must be a mapping with a 'metric' (and optional 'labels'), got {plot!r}")
    return SweepSpec(list(notebooks), dict(grid), list(seeds), dict(parameters), bool(data.get("test_params", False)),
                     mode, dict(plot))


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:40] or "x"


def plan_cells(spec: SweepSpec, notebooks_dir: Optional[str | os.PathLike] = None,
               papers_dir: Optional[str | os.PathLike] = None) -> List[Cell]:
    """Every cell of the sweep, each checked against its notebook's parameters before anything runs."""
    names = list(spec.grid)
    cells = []
    for notebook in spec.notebooks:
        base = dict(papers_mod.get_paper(notebook, papers_dir).test_parameters) if spec.test_params else {}
        for values in itertools.product(*(spec.grid[n] for n in names)):
            point = dict(zip(names, values))
            for seed in spec.seeds:
                overrides = {**base, **spec.parameters, **point, SEED_PARAMETER: [seed]}
                digest = hashlib.sha256(json.dumps(overrides, sort_keys=True, default=repr).encode()).hexdigest()[:8]
                label = ",".join(f"{k}={_slug(v)}" for k, v in point.items())
                name = f"{label + ',' if label else ''}seed={seed}-{digest}"
                plan_runs([notebook], {notebook: overrides}, spec.mode, notebooks_dir, papers_dir)  # raises on bad input
                cells.append(Cell(notebook, point, seed, overrides, name))
    return cells


def run_cell(cell: Cell, out: str, mode: str, notebooks_dir: Optional[str] = None,
             papers_dir: Optional[str] = None) -> Dict[str, Any]:
    """Run one cell in its own folder (on a worker) and write its report; never raises."""
    folder = cell.folder(Path(out))
    t0 = time.perf_counter()
    try:
        r = run_notebook_task(cell.notebook, str(folder), cell.overrides, mode, True, notebooks_dir, papers_dir)
        write_report(folder)
        return {"cell": cell.name, "notebook": cell.notebook, "status": r.status, "skipped": r.skipped,
                "error": r.error, "seconds": round(time.perf_counter() - t0, 1), "worker_pid": os.getpid()}
    except BaseException as exc:                    # a worker-side failure is this cell's, not the sweep's
        return {"cell": cell.name, "notebook": cell.notebook, "status": "failed", "skipped": False,
                "error": {"ename": type(exc).__name__, "evalue": str(exc)},
                "seconds": round(time.perf_counter() - t0, 1), "worker_pid": os.getpid()}


def run_notebook_task(notebook: str, out: str, overrides: Dict[str, Any], mode: str, resume: bool,
                      notebooks_dir: Optional[str] = None, papers_dir: Optional[str] = None) -> NotebookResult:
    """One notebook of ``zslab run --jobs N`` (on a worker): its result, its log kept in the status file."""
    return run_notebooks([notebook], out, {notebook: overrides}, mode=mode, resume=resume, progress=False,
                         notebooks_dir=notebooks_dir, papers_dir=papers_dir, stream=io.StringIO())[0]


@dataclass
class SweepResult:
    out: Path
    cells: List[Dict[str, Any]]
    wall_s: float
    workers: int

    @property
    def counts(self) -> Dict[str, int]:
        states = [c["status"] for c in self.cells]
        return {s: states.count(s) for s in dict.fromkeys(states)}


def run_sweep(spec: SweepSpec, out: str | os.PathLike, *, workers: Optional[int] = None,
              scheduler: Optional[str] = None, notebooks_dir: Optional[str | os.PathLike] = None,
              papers_dir: Optional[str | os.PathLike] = None,
              on_cell: Optional[Callable[[int, int, Dict[str, Any]], None]] = None) -> SweepResult:
    """Run every cell on Dask, then write the sweep's table, figures and page. ``workers`` sizes the
    LocalCluster (default: the number of cores); ``scheduler`` uses an existing cluster instead. Interrupted
    (Ctrl-C, SIGTERM), the cells that were running are marked ``interrupted`` and the interrupt propagates;
    a rerun resumes."""
    out = Path(out).absolute()
    cells = plan_cells(spec, notebooks_dir, papers_dir)
    nb_dir = str(notebooks_dir) if notebooks_dir else None
    pp_dir = str(papers_dir) if papers_dir else None
    t0 = time.perf_counter()
    done: Dict[str, Dict[str, Any]] = {}

    def collect(i: int, n: int, state: Dict[str, Any]) -> None:
        done[state["cell"]] = state
        if on_cell:
            on_cell(i, n, state)

    def mark(exc: BaseException, unfinished: List[int]) -> None:
        for i in unfinished:
            mark_interrupted(cells[i].folder(out), cells[i].notebook, exc)

    n_workers = run_on_cluster([(run_cell, (cell, str(out), spec.mode, nb_dir, pp_dir)) for cell in cells],
                               collect, workers=workers, scheduler=scheduler, on_interrupted=mark)
    states = [{**done[c.name], "point": c.point, "seed": c.seed} for c in cells]
    result = SweepResult(out, states, round(time.perf_counter() - t0, 1), n_workers)
    write_sweep_outputs(spec, cells, result)
    return result


def run_on_cluster(tasks: Sequence[tuple], on_result: Callable[[int, int, Any], None], *,
                   workers: Optional[int] = None, scheduler: Optional[str] = None,
                   on_interrupted: Optional[Callable[[BaseException, List[int]], None]] = None) -> int:
    """Run ``(function, args)`` tasks on Dask, calling ``on_result(i, n, result)`` as each finishes (in
    completion order); returns the number of workers. A ``LocalCluster`` of ``workers`` single-threaded
    processes (default: one per core) is started and closed here, unless ``scheduler`` names a cluster.

    Ctrl-C or SIGTERM (raised as :class:`~zslab.runner.execute.Terminated`) cancels what has not finished,
    shuts the local cluster down (its workers, and with them their kernels, stop), then calls
    ``on_interrupted(exc, unfinished task indices)`` so that the caller can mark those runs, and re-raises."""
    from distributed import Client, LocalCluster, as_completed

    if scheduler:
        client, cluster = Client(scheduler), None
    else:
        # Libraries imported earlier in this process (e.g. while models were trained first) may have set the
        # root logger to INFO; the cluster's own chatter is not the user's business.
        logging.getLogger("distributed").setLevel(logging.WARNING)
        n = workers or os.cpu_count() or 1
        threads = {k: str(kernel_threads(n)) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               env=threads)
        client = Client(cluster)
    futures: List[Any] = []
    finished: set = set()
    stopped: Optional[BaseException] = None
    try:
        with _sigterm_as_interrupt():
            n_workers = len(client.scheduler_info()["workers"])
            futures = [client.submit(function, *args, pure=False) for function, args in tasks]
            position = {future.key: i for i, future in enumerate(futures)}
            for i, future in enumerate(as_completed(futures), 1):
                result = future.result()
                finished.add(position[future.key])
                on_result(i, len(futures), result)
    except KeyboardInterrupt as exc:                  # Ctrl-C, or SIGTERM as Terminated
        stopped = exc
        client.cancel([f for i, f in enumerate(futures) if i not in finished])
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        if stopped is not None and on_interrupted is not None:
            on_interrupted(stopped, [i for i in range(len(tasks)) if i not in finished])
    return n_workers


def kernel_threads(workers: int) -> int:
    """Math-library threads for each of ``workers`` concurrent kernels on this machine: the cores shared
    out (at least one). Every kernel's torch otherwise starts one thread per core, and N kernels on N cores
    oversubscribe the machine, which slows training down more than it parallelises; Dask's own default (1)
    would leave cores idle when there are fewer workers than cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def sweep_results(spec: SweepSpec, cells: Sequence[Cell], out: Path) -> pd.DataFrame:
    """Every cell's tidy rows, with the swept parameters, the seed and the cell name as columns."""
    frames = []
    for cell in cells:
        df = collect_results(cell.folder(out))
        if df.empty:
            continue
        df = df.assign(**{k: [v] * len(df) if isinstance(v, (list, dict)) else v for k, v in cell.point.items()})
        frames.append(df.assign(sweep_seed=cell.seed, cell=cell.name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def summarise(table: pd.DataFrame, parameter: str, metric: str, labels: Mapping[str, Any]) -> pd.DataFrame:
    """Mean of ``metric`` (rows whose labels include ``labels``) over seeds per value of ``parameter``
    and per remaining label set, with the 95% t-interval (NaN with one seed)."""
    if table.empty:
        return pd.DataFrame(columns=[parameter, "series", "mean", "low", "high", "n"])
    rows = table[table["metric"] == metric]
    parsed = rows["labels"].map(lambda s: json.loads(s) if isinstance(s, str) and s else {})
    keep = parsed.map(lambda l: all(l.get(k) == v for k, v in labels.items()))
    rows, parsed = rows[keep], parsed[keep]
    series = parsed.map(lambda l: ", ".join(f"{k}={v}" for k, v in sorted(l.items())
                                           if k not in labels and not k.startswith("n_")))
    rows = rows.assign(series=series.values, _x=rows[parameter].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v))
    out = []
    for (x, s), g in rows.groupby(["_x", "series"], sort=False):
        stats = across_seeds(g["value"].astype(float).tolist())
        out.append({parameter: x, "series": s, **{k: stats[k] for k in ("mean", "low", "high", "n")}})
    return pd.DataFrame(out)


def write_sweep_outputs(spec: SweepSpec, cells: Sequence[Cell], result: SweepResult) -> Dict[str, Path]:
    """``results.csv``, ``sweep.json``, one PNG per swept parameter (if ``plot`` is set) and ``sweep.html``."""
    from ..plotting import line_with_intervals

    out = result.out
    table = sweep_results(spec, cells, out)
    paths = {"results": atomic_write(out / "results.csv", lambda p: table.to_csv(p, index=False))}
    paths["json"] = atomic_write_json(out / "sweep.json", {"spec": asdict(spec), "wall_s": result.wall_s,
                                                           "workers": result.workers, "cells": result.cells})
    figures = []
    if spec.plot:
        import matplotlib.pyplot as plt

        for parameter in spec.grid:
            summary = summarise(table, parameter, spec.plot["metric"], spec.plot.get("labels") or {})
            if summary.empty:
                continue
            numeric = pd.api.types.is_numeric_dtype(summary[parameter])
            if not numeric:
                order = {json.dumps(v) if isinstance(v, (list, dict)) else v: i for i, v in enumerate(spec.grid[parameter])}
                summary = summary.assign(**{parameter: summary[parameter].map(order)})
            ax = line_with_intervals(summary, parameter, hue="series" if summary["series"].nunique() > 1 else None,
                                     ylabel=spec.plot["metric"],
                                     title=f"{spec.plot['metric']} against {parameter}: mean over seeds, 95% t-interval")
            if not numeric:
                ax.set_xticks(range(len(order)), [str(k) for k in order])
            png = save_png(ax.figure, out / "figures" / f"{_slug(parameter)}.png")
            plt.close(ax.figure)
            figures.append((parameter, png))
    paths["html"] = atomic_write_text(out / "sweep.html", _sweep_html(spec, result, figures))
    return paths


def _sweep_html(spec: SweepSpec, result: SweepResult, figures: Iterable[tuple]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(c['notebook'])}</td><td>{e(json.dumps(c['point']))}</td><td>{c['seed']}</td>"
        f"<td>{e(c['status'])}{' (earlier run)' if c.get('skipped') else ''}</td><td>{c['seconds']}</td>"
        f"<td>{e((c.get('error') or {}).get('ename', ''))} {e(str((c.get('error') or {}).get('evalue', ''))[:200])}</td>"
        f"<td><a href='cells/{e(c['notebook'])}/{e(c['cell'])}/report.html'>report</a></td></tr>"
        for c in result.cells)
    figs = "".join(embedded_figure(png, p, f"{spec.plot['metric']} against {p}") for p, png in figures)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts.items())
    return (f"<!doctype html><meta charset='utf-8'><title>zslab sweep</title>"
            f"<h1>zslab sweep</h1><p>{len(result.cells)} cells ({e(counts)}) on {result.workers} worker(s), "
            f"{result.wall_s} s; grid {e(json.dumps(spec.grid))}, seeds {spec.seeds}, mode {e(spec.mode)}.</p>"
            f"{figs}<table border='1' cellspacing='0' cellpadding='4'><tr><th>notebook</th><th>point</th>"
            f"<th>seed</th><th>status</th><th>s</th><th>error</th><th></th></tr>{rows}</table>")
