"""The ``zslab`` command line: list what there is, run paper notebooks, write their report.

    zslab list [papers|notebooks|models|datasets]
    zslab params ID
    zslab run [IDS ...] [--all] [-p NAME VALUE]... [--mode offline|real] [--out DIR] [--no-resume]
              [--test-params] [--no-progress] [--jobs N]
    zslab report DIR
    zslab sweep SWEEP.yaml [--out DIR] [--workers N | --scheduler ADDRESS]

Every command also takes ``--papers-dir DIR`` and ``--notebooks-dir DIR`` (default: ``data/papers`` and
``notebooks/`` of the repository; also ``$ZSLAB_PAPERS_DIR`` / ``$ZSLAB_NOTEBOOKS_DIR``).
Bad input (unknown id, parameter or value) prints one line to stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from . import papers
from .errors import InvalidChoiceError, ZslabError

DEFAULT_OUT = Path("runs") / "latest"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: A batch stopped by SIGTERM exits as a shell reports a process killed by it (128 + 15), after marking
#: the notebook it stopped ``interrupted`` and writing the report.
EXIT_TERMINATED = 143


class UsageError(ZslabError):
    """Bad command-line input; printed as one line, exit status 2."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--papers-dir", metavar="DIR", help="folder of paper YAMLs (default: data/papers)")
    common.add_argument("--notebooks-dir", metavar="DIR", help="folder of paper notebooks (default: notebooks/)")

    parser = argparse.ArgumentParser(prog="zslab", description="Run zslab's paper notebooks and report on them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("list", parents=[common], help="list papers, notebooks, models or datasets")
    p.add_argument("what", nargs="?", default="papers", choices=["papers", "notebooks", "models", "datasets"])

    p = sub.add_parser("params", parents=[common], help="show a notebook's parameters")
    p.add_argument("id")

    p = sub.add_parser("run", parents=[common], help="execute notebooks and write the report",
                       description="Execute paper notebooks with papermill into --out, then write "
                                   "results.csv and report.html there.")
    p.add_argument("ids", nargs="*", metavar="ID", help="notebook ids (see `zslab list notebooks`)")
    p.add_argument("--all", action="store_true", help="run every notebook")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="override a parameter in every selected notebook that has it; VALUE is YAML "
                        "(e.g. -p seeds '[0,1]' -p lr 0.01 -p method mean)")
    p.add_argument("--mode", default="offline", choices=["offline", "real"],
                   help="offline: ZSLAB_OFFLINE=1, zslab's own models and data (default); real: may download")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"run folder (default: {DEFAULT_OUT})")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="run again notebooks already done with the same parameters")
    p.add_argument("--test-params", action="store_true",
                   help="apply each paper's test_parameters (fast settings) before the -p overrides")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress display: neither papermill's per-cell bar nor the line showing what a "
                        "running notebook's long loops (training, encoding) are at, with their ETA")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="run N notebooks at a time on a local Dask cluster (kernel start-ups overlap; the "
                        "per-notebook progress display is off); default 1: one after another, here")

    p = sub.add_parser("sweep", parents=[common], help="run notebooks x a parameter grid x seeds on Dask",
                       description="Run every cell of a sweep file (notebooks x grid x seeds; see "
                                   "zslab/runner/sweep.py) on a Dask cluster, each cell in its own run folder "
                                   "under --out, then write results.csv, sweep.json and sweep.html there. "
                                   "A rerun executes only missing, failed or interrupted cells.")
    p.add_argument("file", type=Path, metavar="SWEEP.yaml")
    p.add_argument("--out", type=Path, default=Path("runs") / "sweep", help="sweep folder (default: runs/sweep)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None,
                       help="worker processes of the local cluster (default: one per core)")
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="an existing Dask scheduler (e.g. tcp://host:8786) instead of a local cluster")

    p = sub.add_parser("report", parents=[common], help="(re)write results.csv and report.html of a run folder")
    p.add_argument("dir", type=Path)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:                    # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        return {"list": _cmd_list, "params": _cmd_params, "run": _cmd_run, "sweep": _cmd_sweep,
                "report": _cmd_report}[args.command](args)
    except ZslabError as exc:
        print(f"zslab {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


# ---------------------------------------------------------------------------------------------- list

def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "papers":
        items = papers.list_papers(args.papers_dir)
        if not items:
            print(f"no paper YAMLs in {papers.resolve_papers_dir(args.papers_dir)}")
        for paper in items:
            print(f"{paper.id}  arXiv:{paper.arxiv}  {paper.title}")
            print(f"    claim: {paper.claim}")
        return EXIT_OK
    if args.what == "notebooks":
        have_yaml = set(papers.paper_ids(args.papers_dir))
        ids = papers.list_notebooks(args.notebooks_dir)
        if not ids:
            print(f"no notebooks in {papers.resolve_notebooks_dir(args.notebooks_dir)}")
        width = max((len(i) for i in ids), default=0)
        for nb in ids:
            note = "" if nb in have_yaml else "  (no paper metadata: data/papers/" + nb + ".yaml missing)"
            print(f"{nb.ljust(width)}  {papers.resolve_notebooks_dir(args.notebooks_dir) / (nb + '.ipynb')}{note}")
        return EXIT_OK
    module, func = {"models": ("zslab.models", "list_models"), "datasets": ("zslab.datasets", "list_datasets")}[args.what]
    try:
        import importlib

        lister = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        print(f"zslab list {args.what}: {module}.{func} is not available ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        return EXIT_FAILED
    for line in _format_listing(lister()):
        print(line)
    return EXIT_OK


def _format_listing(items: Any) -> List[str]:
    """Names with a description where the lister gives one (strings, dicts, mappings or objects)."""
    if isinstance(items, dict):
        items = [{"name": k, "description": v} if not isinstance(v, dict) else {"name": k, **v}
                 for k, v in items.items()]
    lines = []
    for item in items:
        if isinstance(item, str):
            lines.append(item)
            continue
        get = item.get if isinstance(item, dict) else (lambda k, d=None, o=item: getattr(o, k, d))
        name = get("name") or get("id") or str(item)
        desc = get("description") or ""
        desc = " ".join(str(desc).split()) if not isinstance(desc, str) else " ".join(desc.split())
        lines.append(f"{name}  {desc}".rstrip())
    return lines


# ---------------------------------------------------------------------------------------------- params

def _cmd_params(args: argparse.Namespace) -> int:
    from .runner.params import notebook_parameters, parameter_table

    path = papers.notebook_path(args.id, args.notebooks_dir)
    params = notebook_parameters(path)
    print(f"{args.id} ({path})")
    print(parameter_table(params) if params else "(no parameters cell)")
    if (papers.resolve_papers_dir(args.papers_dir) / f"{args.id}.yaml").is_file():
        test = papers.get_paper(args.id, args.papers_dir).test_parameters
        if test:
            print("test_parameters (zslab run --test-params): "
                  + ", ".join(f"{k}={v!r}" for k, v in test.items()))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- run

def _selected_ids(args: argparse.Namespace) -> List[str]:
    valid = papers.list_notebooks(args.notebooks_dir)
    if args.all and args.ids:
        raise UsageError("give notebook ids or --all, not both")
    if args.all:
        if not valid:
            raise UsageError(f"no notebooks in {papers.resolve_notebooks_dir(args.notebooks_dir)}")
        return valid
    if not args.ids:
        raise UsageError(f"name the notebooks to run or use --all; valid ids: {', '.join(valid) or '(none)'}")
    unknown = [i for i in args.ids if i not in valid]
    if unknown:
        raise InvalidChoiceError(f"unknown notebook id{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(repr(u) for u in unknown)}; valid ids: {', '.join(valid) or '(none)'}")
    return list(dict.fromkeys(args.ids))


def build_overrides(ids: Sequence[str], cli_params: Sequence[Sequence[str]], test_params: bool = False,
                    notebooks_dir: Optional[str] = None, papers_dir: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """Per-notebook overrides: each paper's test_parameters (if asked), then every ``-p NAME VALUE`` given
    to each selected notebook that has NAME (an error if none has it). Values stay unparsed
    (:class:`~zslab.runner.params.CliString`) until validated against each notebook's own parameter."""
    from .runner.params import CliString, notebook_parameters

    per: Dict[str, Dict[str, Any]] = {nb: {} for nb in ids}
    if test_params:
        for nb in ids:
            if (papers.resolve_papers_dir(papers_dir) / f"{nb}.yaml").is_file():
                per[nb].update(papers.get_paper(nb, papers_dir).test_parameters)
    if cli_params:
        params = {nb: notebook_parameters(papers.notebook_path(nb, notebooks_dir)) for nb in ids}
        for name, value in cli_params:
            having = [nb for nb in ids if name in params[nb]]
            if not having:
                valid = sorted({p for nb in ids for p in params[nb]})
                raise InvalidChoiceError(f"-p {name}: no selected notebook has a parameter {name!r}; valid "
                                         f"parameters: {', '.join(valid) or '(none)'}")
            for nb in having:
                per[nb][name] = CliString(value)
    return per


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner.execute import Terminated, plan_runs, run_notebooks
    from .runner.report import write_report

    ids = _selected_ids(args)
    overrides = build_overrides(ids, args.param, args.test_params, args.notebooks_dir, args.papers_dir)
    plans = plan_runs(ids, overrides, args.mode, args.notebooks_dir, args.papers_dir)   # bad input: exit 2, nothing run
    if args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    print(f"zslab run: {len(ids)} notebook(s), mode {args.mode}, into {args.out}"
          + (f", {args.jobs} at a time" if args.jobs > 1 else ""), flush=True)
    if args.jobs > 1:
        if args.mode == "offline":
            from .runner.prefetch import train_named_models

            print(f"training the zoo models the notebooks name that are not in the cache, {args.jobs} at a time:",
                  flush=True)
            train_named_models([p.parameters for p in plans], progress=args.progress, processes=args.jobs)
        results = _run_in_parallel(plans, args)
    else:
        results = run_notebooks(ids, args.out, overrides, mode=args.mode, resume=args.resume,
                                progress=args.progress, notebooks_dir=args.notebooks_dir, papers_dir=args.papers_dir)
    csv_path, html_path = write_report(args.out)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "failed", "missing asset", "interrupted")}
    skipped = sum(r.skipped for r in results)
    print(f"{counts['done']} done ({skipped} from an earlier run), {counts['failed']} failed"
          + (f", {counts['missing asset']} missing an asset (see the report for how to install it)"
             if counts["missing asset"] else "")
          + (f", interrupted after {len(results)} of {len(ids)}" if counts["interrupted"] else ""))
    print(f"report: {html_path}\nresults: {csv_path}")
    if counts["interrupted"]:
        stopped = [r for r in results if r.status == "interrupted"]
        terminated = any((r.error or {}).get("ename") == Terminated.__name__ for r in stopped)
        print(f"interrupted{' by SIGTERM' if terminated else ''}: run the same command again to resume "
              f"(notebooks done with the same parameters are skipped)")
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    return EXIT_FAILED if counts["failed"] or counts["missing asset"] else EXIT_OK


def _run_in_parallel(plans: list, args: argparse.Namespace) -> list:
    """``zslab run --jobs N``: each notebook a task on a local Dask cluster of N workers, into the same
    run folder (status files are per notebook); results in the order of ``plans``."""
    from .runner.execute import STATUS_INTERRUPTED, NotebookResult, interrupt_error, mark_interrupted
    from .runner.sweep import run_notebook_task, run_on_cluster

    out = str(Path(args.out).absolute())
    nb_dir = str(args.notebooks_dir) if args.notebooks_dir else None
    pp_dir = str(args.papers_dir) if args.papers_dir else None
    finished = {}

    def show(i: int, n: int, r) -> None:
        finished[r.notebook] = r
        note = ("done earlier with the same parameters, skipped" if r.skipped else
                f"{r.status} in {r.duration_s} s" + (f": {r.error.get('ename')}: {r.error.get('evalue')}"
                                                     if r.error else ""))
        print(f"[{i}/{n}] {r.notebook} ... {note}", flush=True)

    def mark(exc: BaseException, unfinished: List[int]) -> None:
        for i in unfinished:                          # the status file changes only if the notebook was running
            mark_interrupted(out, plans[i].notebook, exc)
            finished.setdefault(plans[i].notebook, NotebookResult(plans[i].notebook, STATUS_INTERRUPTED,
                                                                 error=interrupt_error(exc)))

    tasks = [(run_notebook_task, (p.notebook, out, p.passed, args.mode, args.resume, nb_dir, pp_dir)) for p in plans]
    try:
        run_on_cluster(tasks, show, workers=args.jobs, on_interrupted=mark)
    except KeyboardInterrupt:                         # reported below like a sequential run's interruption
        pass
    return [finished[p.notebook] for p in plans]


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .runner.execute import Terminated
    from .runner.sweep import load_sweep, plan_cells, run_sweep

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
    spec = load_sweep(args.file)
    cells = plan_cells(spec, args.notebooks_dir, args.papers_dir)       # bad input: exit 2, nothing run
    where = args.scheduler or f"a local cluster of {args.workers or os.cpu_count()} worker(s)"
    print(f"zslab sweep: {len(cells)} cell(s) of {', '.join(spec.notebooks)}, mode {spec.mode}, on {where}, "
          f"into {args.out}", flush=True)

    def show(i: int, n: int, state: dict) -> None:
        note = "done earlier, skipped" if state.get("skipped") else f"{state['status']} in {state['seconds']} s"
        err = state.get("error") or {}
        extra = f": {err.get('ename')}: {err.get('evalue')}" if state["status"] != "done" and err else ""
        print(f"[{i}/{n}] {state['notebook']} {state['cell']} ... {note}{extra}", flush=True)

    try:
        result = run_sweep(spec, args.out, workers=args.workers, scheduler=args.scheduler,
                           notebooks_dir=args.notebooks_dir, papers_dir=args.papers_dir, on_cell=show)
    except KeyboardInterrupt as exc:              # the running cells are marked interrupted; nothing is lost
        terminated = isinstance(exc, Terminated)
        print(f"interrupted{' by SIGTERM' if terminated else ''}: run the same command again to resume "
              "(cells done are skipped)", flush=True)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    print(", ".join(f"{n} {s}" for s, n in result.counts.items()) + f" in {result.wall_s} s on {result.workers} worker(s)")
    print(f"sweep: {args.out / 'sweep.html'}\nresults: {args.out / 'results.csv'}")
    return EXIT_OK if set(result.counts) <= {"done"} else EXIT_FAILED


def _cmd_report(args: argparse.Namespace) -> int:
    from .runner.report import write_report

    if not (args.dir / "status").is_dir():
        raise UsageError(f"{args.dir} is not a run folder (no status/ in it); run `zslab run --out DIR` first")
    csv_path, html_path = write_report(args.dir)
    print(f"report: {html_path}\nresults: {csv_path}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
