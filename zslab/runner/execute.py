"""Execute paper notebooks with papermill into a run folder, resumably.

Layout of a run folder ``out_dir``::

    notebooks/<id>.ipynb        the executed notebook (papermill output, also on failure)
    records/<id>.json           what the notebook recorded (zslab.records), figures under records/figures/<id>/
    status/<id>.json            running | done | failed | missing asset | interrupted, with parameters,
                                their hash, provenance and error
    status/<id>.progress        while it runs: the latest state its long loops publish (zslab.progress)

Every overrides set is validated for every notebook before the first one runs. A notebook whose status
is ``done`` with the same parameter hash (parameters + mode) and the same notebook file, and whose
records file exists, is not run again; anything else (``interrupted`` by Ctrl-C or SIGTERM, ``running``
left by a killed run, ``failed``, other parameters) is run again from scratch, its old records deleted
first.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, TextIO

from .. import papers as papers_mod
from .. import progress as progress_mod
from ..errors import InvalidChoiceError, check_choice
from ..io import atomic_write_json
from ..provenance import git_revision, package_versions
from ..records import RECORDS_FORMAT
from .params import NotebookParameter, ParameterError, effective_parameters, notebook_parameters, validate_overrides

MODES = ("offline", "real")
KERNEL = "python3"
#: Variables a kernel must not inherit from the process that starts it. Dask's nanny sets
#: MALLOC_TRIM_THRESHOLD_=65536 in its workers (``distributed.nanny.pre-spawn-environ``), and a kernel started
#: by a worker (``zslab run --jobs N``, sweeps) inherited it: a fixed trim threshold turns off glibc's dynamic
#: mmap threshold, so every large tensor is mmap-ed and page-faulted afresh. Measured: ZSCL's continual loop
#: for one seed, 31 s without it and 48 s with it (19 s of system time).
KERNEL_ENV_UNSET = ("MALLOC_TRIM_THRESHOLD_",)
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
    """Where a notebook's outputs go in a run folder; ``progress`` exists only while the notebook runs."""
    out = Path(out_dir)
    return {"status": out / "status" / f"{notebook}.json", "records": out / "records" / f"{notebook}.json",
            "figures": out / "records" / "figures" / notebook, "output": out / "notebooks" / f"{notebook}.ipynb",
            "progress": out / "status" / f"{notebook}.progress"}


def read_status(out_dir: str | os.PathLike, notebook: str) -> Optional[Dict[str, Any]]:
    """The status file of ``notebook`` in ``out_dir``, or None if it has none (or an unreadable one)."""
    path = run_paths(out_dir, notebook)["status"]
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def mark_interrupted(out_dir: str | os.PathLike, notebook: str, exc: BaseException) -> bool:
    """Write ``interrupted`` (with the interrupt as its error) into a status file that still says
    ``running``: for a notebook stopped from outside its process, e.g. on a Dask worker that was shut down
    when the sweep was interrupted. A notebook that finished, failed, or never started is left as it is;
    returns whether the file was changed."""
    status = read_status(out_dir, notebook)
    if status is None or status.get("status") != STATUS_RUNNING:
        return False
    status.update(status=STATUS_INTERRUPTED, ended=_now(), error=interrupt_error(exc))
    atomic_write_json(run_paths(out_dir, notebook)["status"], status)
    return True


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
    stop the batch. A KeyboardInterrupt, or SIGTERM (turned into :class:`Terminated` while the batch runs,
    when called from the main thread), stops it: the current notebook's kernel is shut down, its status
    is written as ``interrupted`` (with end time and duration) and the next run with ``resume`` runs it
    again. ``progress`` shows papermill's per-cell bar and, while a notebook runs, the latest state its
    long loops publish through :mod:`zslab.progress` (``$ZSLAB_PROGRESS``, see :func:`run_paths`).
    """
    stream = stream or sys.stdout
    out_dir = Path(out_dir).absolute()               # papermill changes the working folder while it runs
    plans = plan_runs(ids, overrides, mode, notebooks_dir, papers_dir)   # every notebook, before any runs
    provenance = {"git_revision": git_revision(), "versions": package_versions()}
    results: List[NotebookResult] = []
    with _sigterm_as_interrupt():
        current: Optional[_Plan] = None
        try:
            for i, plan in enumerate(plans, 1):
                current = plan
                results.append(_run_one(plan, f"[{i}/{len(plans)}] {plan.notebook}", out_dir, mode, resume,
                                         progress, provenance, stream))
                current = None
                if results[-1].status == STATUS_INTERRUPTED:
                    break
        except KeyboardInterrupt as exc:            # outside _run_one's own handling (between notebooks)
            if current is not None:
                paths = run_paths(out_dir, current.notebook)
                results.append(NotebookResult(notebook=current.notebook, status=STATUS_INTERRUPTED,
                                              parameters=current.parameters, param_hash=current.param_hash,
                                              error=interrupt_error(exc), status_path=paths["status"],
                                              records_path=paths["records"], output_path=paths["output"]))
            stream.write(f"\nINTERRUPTED ({interrupt_error(exc)['evalue']}) between notebooks\n")
            stream.flush()
    return results


def _run_one(plan: _Plan, label: str, out_dir: Path, mode: str, resume: bool, progress: bool,
             provenance: Mapping[str, Any], stream: TextIO) -> NotebookResult:
    """Run (or skip, if done earlier with the same parameters) one notebook and write its status file.

    A KeyboardInterrupt while the notebook runs is caught here and recorded; one before its status file
    says ``running`` (while deciding to skip it) is caught and returned the same way, its status untouched.
    """
    import papermill

    paths = run_paths(out_dir, plan.notebook)
    base = dict(notebook=plan.notebook, parameters=plan.parameters, param_hash=plan.param_hash,
                status_path=paths["status"], records_path=paths["records"], output_path=paths["output"])
    status: Optional[Dict[str, Any]] = None
    t0 = time.monotonic()
    try:
        stream.write(f"{label} ... ")
        stream.flush()
        old = read_status(out_dir, plan.notebook) if resume else None
        if (old and old.get("status") == STATUS_DONE and old.get("param_hash") == plan.param_hash
                and old.get("notebook_sha256") == plan.notebook_sha256 and paths["records"].is_file()):
            stream.write("done earlier with the same parameters, skipped (--no-resume runs it again)\n")
            stream.flush()
            return NotebookResult(status=STATUS_DONE, duration_s=old.get("duration_s"), skipped=True, **base)

        paths["records"].unlink(missing_ok=True)                      # never report a half run's records
        shutil.rmtree(paths["figures"], ignore_errors=True)
        status = {"notebook": plan.notebook, "status": STATUS_RUNNING, "mode": mode,
                  "parameters": plan.parameters, "passed_parameters": plan.passed, "param_hash": plan.param_hash,
                  "notebook_sha256": plan.notebook_sha256, "input": str(plan.input_path),
                  "output_notebook": os.path.relpath(paths["output"], out_dir),
                  "records": os.path.relpath(paths["records"], out_dir), "paper": plan.paper,
                  **provenance, "started": _now(), "ended": None,
                  "duration_s": None, "error": None, "pid": os.getpid()}
        atomic_write_json(paths["status"], status)
        paths["output"].parent.mkdir(parents=True, exist_ok=True)
        env = {"ZSLAB_RECORDS": str(paths["records"].resolve()), "ZSLAB_NOTEBOOK": plan.notebook,
               progress_mod.ENV_VAR: str(paths["progress"]),
               "PYTHONPATH": os.pathsep.join(p for p in (str(_REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
        if mode == "offline":
            env["ZSLAB_OFFLINE"] = "1"
        env.update({name: None for name in KERNEL_ENV_UNSET})
        t0 = time.monotonic()
        try:
            with _environ(env), _showing_progress(paths["progress"], stream, label, f"{label} ... ", progress):
                papermill.execute_notebook(str(plan.input_path), str(paths["output"]), parameters=plan.passed,
                                           kernel_name=KERNEL, progress_bar=progress,
                                           cwd=str(plan.input_path.parent))
        except Exception as exc:                                      # the batch goes on
            duration = round(time.monotonic() - t0, 1)
            error = describe_error(exc)
            state = STATUS_MISSING_ASSET if error["ename"] in MISSING_ASSET_ERRORS else STATUS_FAILED
            status.update(status=state, ended=_now(), duration_s=duration, error=error)
            atomic_write_json(paths["status"], status)
            stream.write(f"{state.upper()}: {error['ename']}: {_one_line(error['evalue'])} (after {duration:.1f} s)\n")
            stream.flush()
            return NotebookResult(status=state, duration_s=duration, error=error, **base)
        duration = round(time.monotonic() - t0, 1)
        if not paths["records"].is_file():                            # recorded nothing: say so explicitly
            atomic_write_json(paths["records"], {"format": RECORDS_FORMAT, "notebook": plan.notebook,
                                                 "metrics": [], "figures": [], "verdicts": []})
        status.update(status=STATUS_DONE, ended=_now(), duration_s=duration)
        atomic_write_json(paths["status"], status)
        stream.write(f"done in {duration:.1f} s\n")
        stream.flush()
        return NotebookResult(status=STATUS_DONE, duration_s=duration, **base)
    except KeyboardInterrupt as exc:
        duration = round(time.monotonic() - t0, 1)
        error = interrupt_error(exc)
        if status is not None:
            status.update(status=STATUS_INTERRUPTED, ended=_now(), duration_s=duration, error=error)
            atomic_write_json(paths["status"], status)
            stream.write(f"INTERRUPTED ({error['evalue']}) after {duration:.1f} s; status '{STATUS_INTERRUPTED}', "
                         "run again to resume\n")
        else:
            stream.write(f"INTERRUPTED ({error['evalue']}) before it started; status file unchanged\n")
        stream.flush()
        return NotebookResult(status=STATUS_INTERRUPTED, duration_s=duration, error=error, **base)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived while a batch ran: it stops the batch the way Ctrl-C does.

    A KeyboardInterrupt subclass so that papermill and nbclient unwind exactly as for Ctrl-C (shutting
    the kernel down on the way), and callers that catch KeyboardInterrupt catch it too.
    """


def interrupt_error(exc: BaseException) -> Dict[str, Any]:
    """The ``error`` entry of an interrupted notebook: which interrupt it was, in the status file's shape."""
    reason = str(exc) if isinstance(exc, Terminated) and str(exc) else "KeyboardInterrupt (Ctrl-C)"
    return {"ename": type(exc).__name__, "evalue": reason, "cell_index": None, "source_excerpt": "",
            "traceback": ""}


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Raise :class:`Terminated` on SIGTERM while the block runs, then restore the previous handler.

    ``kill``, a job scheduler's stop and a container shutdown send SIGTERM; by default it kills the
    runner on the spot, leaving the notebook's status ``running`` and its kernel orphaned. Only the first
    SIGTERM raises: repeats while the batch winds down are ignored, so that they cannot cut the status write
    or the kernel's shutdown short (a supervisor that cannot wait sends SIGKILL). Python installs signal
    handlers only in the main thread: called from another thread, this changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    received: List[int] = []

    def _raise(signum: int, frame: Any) -> None:
        if received:                      # already stopping: let the status be written and the kernel shut down
            return
        received.append(signum)
        raise Terminated(f"received {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


#: How often the runner reads a running notebook's progress file, and how often it may write a new
#: progress line when its stream is not a terminal (a log file); module-level so tests can shorten them.
PROGRESS_POLL_S = 2.0
PROGRESS_LINE_EVERY_S = 30.0


@contextmanager
def _showing_progress(path: Path, stream: TextIO, prefix: str, resume_text: str, enabled: bool) -> Iterator[None]:
    """While the block runs, show the notebook's progress file on ``stream`` (if ``enabled``); remove the
    file before (a stale one from a killed run must not be shown) and after (the state is over)."""
    path.unlink(missing_ok=True)
    poller = None
    if enabled:
        poller = progress_mod.ProgressPoller(path, stream, prefix, resume_text, interval_s=PROGRESS_POLL_S,
                                             line_every_s=PROGRESS_LINE_EVERY_S)
        poller.start()
    try:
        yield
    finally:
        if poller is not None:
            poller.stop()
        path.unlink(missing_ok=True)


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
def _environ(changes: Mapping[str, Optional[str]]) -> Iterator[None]:
    """Set (``None``: unset) environment variables for the kernel papermill starts (it inherits ours), then
    restore them."""
    saved = {k: os.environ.get(k) for k in changes}
    for k, v in changes.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
