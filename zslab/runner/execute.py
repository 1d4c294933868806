"""Execute paper notebooks with papermill into a run folder, resumably.

Layout of a run folder ``out_dir``::

    notebooks/<id>.ipynb        the executed notebook (papermill output, also on failure)
    records/<id>.json           what the notebook recorded (zslab.records), figures under records/figures/<id>/
    status/<id>.json            running | done | failed, with parameters, their hash, provenance and error

Every overrides set is validated for every notebook before the first one runs. A notebook whose status
is ``done`` with the same parameter hash (parameters + mode) and the same notebook file, and whose
records file exists, is not run again; anything else (``running`` left by an interrupted run,
``failed``, other parameters) is run again from scratch, its old records deleted first.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, TextIO

from .. import papers as papers_mod
from ..errors import InvalidChoiceError, check_choice
from ..io import atomic_write_json
from ..provenance import git_revision, package_versions
from ..records import RECORDS_FORMAT
from .params import NotebookParameter, ParameterError, effective_parameters, notebook_parameters, validate_overrides

MODES = ("offline", "real")
KERNEL = "python3"
STATUS_RUNNING, STATUS_DONE, STATUS_FAILED, STATUS_INTERRUPTED = "running", "done", "failed", "interrupted"
#: A notebook stopped by a missing local asset (a Debian package, a dataset folder, a checkpoint): the
#: error message says how to install or supply it. Reported apart from failures, re-run like them.
STATUS_MISSING_ASSET = "missing asset"
MISSING_ASSET_ERRORS = ("MissingAssetError", "OfflineError")
_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


@dataclass
class NotebookResult:
    """The outcome of one notebook in a batch."""

    notebook: str
    status: str                                   # done | failed | missing asset | interrupted
    duration_s: Optional[float] = None
    parameters: Dict[str, Any] = field(default_factory=dict)
    param_hash: str = ""
    error: Optional[Dict[str, Any]] = None        # ename, evalue, cell_index, source_excerpt, traceback
    skipped: bool = False                         # done in an earlier run with the same parameters
    status_path: Optional[Path] = None
    records_path: Optional[Path] = None
    output_path: Optional[Path] = None

    @property
    def ok(self) -> bool:
        return self.status == STATUS_DONE


@dataclass
class _Plan:
    notebook: str
    input_path: Path
    passed: Dict[str, Any]                        # what papermill injects
    parameters: Dict[str, Any]                    # every parameter's value in this run
    param_hash: str
    notebook_sha256: str
    paper: Optional[Dict[str, Any]]


def run_paths(out_dir: str | os.PathLike, notebook: str) -> Dict[str, Path]:
    out = Path(out_dir)
    return {"status": out / "status" / f"{notebook}.json", "records": out / "records" / f"{notebook}.json",
            "figures": out / "records" / "figures" / notebook, "output": out / "notebooks" / f"{notebook}.ipynb"}


def read_status(out_dir: str | os.PathLike, notebook: str) -> Optional[Dict[str, Any]]:
    """The status file of ``notebook`` in ``out_dir``, or None if it has none (or an unreadable one)."""
    path = run_paths(out_dir, notebook)["status"]
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def split_overrides(ids: Sequence[str], overrides: Optional[Mapping[str, Any]],
                    params: Mapping[str, Mapping[str, NotebookParameter]]) -> Dict[str, Dict[str, Any]]:
    """Per-notebook overrides from either form ``run_notebooks`` accepts.

    ``{id: {name: value}}`` (every key a selected id, every value a mapping) is taken per notebook, each
    name required to exist in its notebook. A flat ``{name: value}`` goes to every selected notebook that
    has that parameter, and is an error if none of them has it.
    """
    overrides = dict(overrides or {})
    per = {nb: {} for nb in ids}
    if overrides and all(k in per and isinstance(v, Mapping) for k, v in overrides.items()):
        for nb, values in overrides.items():
            per[nb].update(values)
        return per
    for name, value in overrides.items():
        having = [nb for nb in ids if name in params[nb]]
        if not having:
            valid = ", ".join(sorted({p for nb in ids for p in params[nb]})) or "(none)"
            if isinstance(value, Mapping):
                raise InvalidChoiceError(f"overrides given for {name!r}, which is neither a selected notebook "
                                         f"({', '.join(ids)}) nor a parameter of one; valid parameters: {valid}")
            raise InvalidChoiceError(f"no selected notebook has a parameter {name!r}; valid parameters: {valid}")
        for nb in having:
            per[nb][name] = value
    return per


def plan_runs(ids: Sequence[str], overrides: Optional[Mapping[str, Any]] = None, mode: str = "offline",
              notebooks_dir: Optional[str | os.PathLike] = None,
              papers_dir: Optional[str | os.PathLike] = None) -> List[_Plan]:
    """Resolve and validate everything about a batch without executing anything (raises on bad input)."""
    check_choice("mode", mode, MODES)
    ids = list(dict.fromkeys(ids))
    inputs = {nb: papers_mod.notebook_path(nb, notebooks_dir).resolve() for nb in ids}
    params = {nb: notebook_parameters(path) for nb, path in inputs.items()}
    per = split_overrides(ids, overrides, params)
    plans = []
    for nb in ids:
        passed = validate_overrides(params[nb], per[nb], nb)
        if "mode" in params[nb]:
            if "mode" in passed and passed["mode"] != mode:
                raise ParameterError(f"notebook {nb!r}: parameter 'mode' is set by the run's mode "
                                     f"({mode!r}); pass --mode {passed['mode']} (mode={passed['mode']!r}) instead")
            passed = {**passed, **validate_overrides(params[nb], {"mode": mode}, nb)}
        values = effective_parameters(params[nb], passed)
        digest = hashlib.sha256(json.dumps({"parameters": values, "mode": mode}, sort_keys=True,
                                           default=repr).encode()).hexdigest()[:16]
        paper = None
        if (papers_mod.resolve_papers_dir(papers_dir) / f"{nb}.yaml").is_file():
            paper = _paper_dict(papers_mod.get_paper(nb, papers_dir))
        plans.append(_Plan(nb, inputs[nb], passed, values, digest,
                           hashlib.sha256(inputs[nb].read_bytes()).hexdigest(), paper))
    return plans


def _paper_dict(paper: papers_mod.Paper) -> Dict[str, Any]:
    d = asdict(paper)
    d["path"] = str(paper.path) if paper.path else None
    return d


def run_notebooks(ids: Sequence[str], out_dir: str | os.PathLike,
                  overrides: Optional[Mapping[str, Any]] = None, mode: str = "offline", resume: bool = True,
                  progress: bool = True, *, notebooks_dir: Optional[str | os.PathLike] = None,
                  papers_dir: Optional[str | os.PathLike] = None, stream: Optional[TextIO] = None,
                  ) -> List[NotebookResult]:
    """Run the notebooks ``ids`` into ``out_dir``; returns one result per notebook reached.

    ``overrides`` is ``{id: {name: value}}`` or a flat ``{name: value}`` (see :func:`split_overrides`);
    values may be :class:`~zslab.runner.params.CliString` to be parsed. ``mode`` is ``offline`` (sets
    ``ZSLAB_OFFLINE=1`` for the kernel) or ``real`` (leaves ``ZSLAB_OFFLINE`` as it is in this process);
    it is also passed as the parameter ``mode`` to notebooks that have one. A failing notebook does not
    stop the batch; a KeyboardInterrupt stops it, leaving the current notebook's status ``running``
    (its result says ``interrupted``) so that the next run with ``resume`` runs it again.
    """
    import papermill

    stream = stream or sys.stdout
    plans = plan_runs(ids, overrides, mode, notebooks_dir, papers_dir)   # every notebook, before any runs
    revision, versions = git_revision(), package_versions()
    results: List[NotebookResult] = []
    for i, plan in enumerate(plans, 1):
        paths = run_paths(out_dir, plan.notebook)
        stream.write(f"[{i}/{len(plans)}] {plan.notebook} ... ")
        stream.flush()
        base = dict(notebook=plan.notebook, parameters=plan.parameters, param_hash=plan.param_hash,
                    status_path=paths["status"], records_path=paths["records"], output_path=paths["output"])
        old = read_status(out_dir, plan.notebook) if resume else None
        if (old and old.get("status") == STATUS_DONE and old.get("param_hash") == plan.param_hash
                and old.get("notebook_sha256") == plan.notebook_sha256 and paths["records"].is_file()):
            results.append(NotebookResult(status=STATUS_DONE, duration_s=old.get("duration_s"), skipped=True, **base))
            stream.write("done earlier with the same parameters, skipped (--no-resume runs it again)\n")
            stream.flush()
            continue

        paths["records"].unlink(missing_ok=True)                      # never report a half run's records
        shutil.rmtree(paths["figures"], ignore_errors=True)
        status = {"notebook": plan.notebook, "status": STATUS_RUNNING, "mode": mode,
                  "parameters": plan.parameters, "passed_parameters": plan.passed, "param_hash": plan.param_hash,
                  "notebook_sha256": plan.notebook_sha256, "input": str(plan.input_path),
                  "output_notebook": os.path.relpath(paths["output"], out_dir),
                  "records": os.path.relpath(paths["records"], out_dir), "paper": plan.paper,
                  "git_revision": revision, "versions": versions, "started": _now(), "ended": None,
                  "duration_s": None, "error": None, "pid": os.getpid()}
        atomic_write_json(paths["status"], status)
        paths["output"].parent.mkdir(parents=True, exist_ok=True)
        env = {"ZSLAB_RECORDS": str(paths["records"].resolve()), "ZSLAB_NOTEBOOK": plan.notebook,
               "PYTHONPATH": os.pathsep.join(p for p in (str(_REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
        if mode == "offline":
            env["ZSLAB_OFFLINE"] = "1"
        t0 = time.monotonic()
        try:
            with _environ(env):
                papermill.execute_notebook(str(plan.input_path), str(paths["output"]), parameters=plan.passed,
                                           kernel_name=KERNEL, progress_bar=progress,
                                           cwd=str(plan.input_path.parent))
        except KeyboardInterrupt:
            duration = round(time.monotonic() - t0, 1)
            results.append(NotebookResult(status=STATUS_INTERRUPTED, duration_s=duration, **base))
            stream.write(f"INTERRUPTED after {duration:.1f} s (status left as 'running'; "
                         "run again to resume)\n")
            stream.flush()
            break
        except Exception as exc:                                      # the batch goes on
            duration = round(time.monotonic() - t0, 1)
            error = describe_error(exc)
            state = STATUS_MISSING_ASSET if error["ename"] in MISSING_ASSET_ERRORS else STATUS_FAILED
            status.update(status=state, ended=_now(), duration_s=duration, error=error)
            atomic_write_json(paths["status"], status)
            results.append(NotebookResult(status=state, duration_s=duration, error=error, **base))
            stream.write(f"{state.upper()}: {error['ename']}: {_one_line(error['evalue'])} (after {duration:.1f} s)\n")
        else:
            duration = round(time.monotonic() - t0, 1)
            if not paths["records"].is_file():                        # recorded nothing: say so explicitly
                atomic_write_json(paths["records"], {"format": RECORDS_FORMAT, "notebook": plan.notebook,
                                                     "metrics": [], "figures": [], "verdicts": []})
            status.update(status=STATUS_DONE, ended=_now(), duration_s=duration)
            atomic_write_json(paths["status"], status)
            results.append(NotebookResult(status=STATUS_DONE, duration_s=duration, **base))
            stream.write(f"done in {duration:.1f} s\n")
        stream.flush()
    return results


def describe_error(exc: BaseException) -> Dict[str, Any]:
    """ename, evalue, failing cell index and source excerpt, and the traceback (colour codes stripped)."""
    from papermill.exceptions import PapermillExecutionError, strip_color

    if isinstance(exc, PapermillExecutionError):
        return {"ename": exc.ename, "evalue": strip_color(str(exc.evalue)), "cell_index": exc.cell_index,
                "source_excerpt": _excerpt(exc.source or ""),
                "traceback": strip_color("\n".join(exc.traceback or []))[-4000:]}
    return {"ename": type(exc).__name__, "evalue": str(exc), "cell_index": None, "source_excerpt": "",
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]}


def _excerpt(source: str, max_lines: int = 25, max_chars: int = 2000) -> str:
    lines = source.splitlines()
    text = "\n".join(lines[:max_lines]) + ("\n..." if len(lines) > max_lines else "")
    return text if len(text) <= max_chars else text[:max_chars] + "..."


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit] + "..."


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@contextmanager
def _environ(changes: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the kernel papermill starts (it inherits ours), then restore them."""
    saved = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
