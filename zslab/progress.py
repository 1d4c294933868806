"""A tiny progress channel from long loops inside a notebook kernel to the ``zslab run`` runner.

papermill only knows which cell runs; a cell that trains models for ten minutes looks stuck at
"4/12 cells". Long loops (training, feature encoding) call :func:`report`; when ``$ZSLAB_PROGRESS``
names a file (the runner sets it for the kernel), the current task's state is written there as one
JSON object, atomically, so the runner's :class:`ProgressPoller` can show it as one updating line.
Without the variable, :func:`report` returns at once: library code may call it unconditionally.

The file holds only the latest state (not a log): ``task``, ``done``, ``total``, ``unit``, ``detail``,
``time`` (ISO, UTC), ``unix`` (seconds), ``elapsed_s``, ``rate_per_s`` and ``eta_s`` (None until a rate
is known or when the total is unknown), and the writer's ``pid``.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Optional, Set, TextIO

from .io import atomic_write_text

ENV_VAR = "ZSLAB_PROGRESS"
#: Writes of a still-running task closer together than this are skipped (the reader polls every ~2 s).
MIN_WRITE_INTERVAL_S = 0.5
#: A state older than this is shown with its age, so a finished loop is not mistaken for a live one.
STALE_AFTER_S = 10.0


@dataclass
class _TaskClock:
    """When a task's current run started counting and where its count stood then."""

    started: float          # time.monotonic() at the first report
    start_done: int         # ``done`` at the first report
    last_done: int          # ``done`` at the latest report (a smaller one starts a new run of the task)


#: The clock of rates and throttling; a module attribute so that tests can drive it.
_monotonic = time.monotonic
_lock = threading.Lock()
_clocks: Dict[str, _TaskClock] = {}
_last_write: Dict[str, float] = {}              # path -> monotonic time of the last write
_warned_paths: Set[str] = set()


def eta_seconds(start_done: int, elapsed_s: float, done: int, total: Optional[int]) -> Optional[float]:
    """Seconds left at the rate observed so far, or None when it cannot be told yet.

    The rate is ``(done - start_done) / elapsed_s``: it counts from the task's first report, so start-up
    work before that report (data loading, the first compiled step) does not skew it.
    """
    if total is None or elapsed_s <= 0 or done <= start_done:
        return None
    rate = (done - start_done) / elapsed_s
    return max(0.0, (total - done) / rate)


def report(task: str, done: int, total: Optional[int] = None, detail: str = "", *,
           unit: str = "") -> Optional[Dict[str, Any]]:
    """Publish that ``task`` has done ``done`` of ``total`` units (``unit``: e.g. "step", "batch").

    A no-op returning None unless ``$ZSLAB_PROGRESS`` is set; otherwise returns the state it computed
    (written to the file unless the previous write was under :data:`MIN_WRITE_INTERVAL_S` ago and this
    is neither the task's first nor its last report). A count lower than the task's previous one starts
    its clock again (the same loop run for the next seed). Never raises for an unwritable file: progress
    must not stop a training run; it warns once per path instead.
    """
    path = os.environ.get(ENV_VAR)
    if not path:
        return None
    now = _monotonic()
    with _lock:
        clock = _clocks.get(task)
        first = clock is None or done < clock.last_done
        if first:
            clock = _clocks[task] = _TaskClock(started=now, start_done=done, last_done=done)
        clock.last_done = done
        elapsed = now - clock.started
        eta = eta_seconds(clock.start_done, elapsed, done, total)
        rate = (done - clock.start_done) / elapsed if elapsed > 0 and done > clock.start_done else None
        state = {"task": task, "done": done, "total": total, "unit": unit, "detail": detail,
                 "time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "unix": time.time(),
                 "elapsed_s": round(elapsed, 3), "rate_per_s": rate, "eta_s": eta, "pid": os.getpid()}
        final = total is not None and done >= total
        if not (first or final) and now - _last_write.get(path, float("-inf")) < MIN_WRITE_INTERVAL_S:
            return state
        _last_write[path] = now
    try:
        atomic_write_text(path, json.dumps(state) + "\n")
    except OSError as exc:
        if path not in _warned_paths:
            _warned_paths.add(path)
            warnings.warn(f"zslab.progress: cannot write ${ENV_VAR}={path!r} ({exc}); progress not reported",
                          RuntimeWarning, stacklevel=2)
    return state


def reset() -> None:
    """Forget every task's clock and write time (a fresh start, e.g. between tests)."""
    with _lock:
        _clocks.clear()
        _last_write.clear()


def read_state(path: str | os.PathLike) -> Optional[Dict[str, Any]]:
    """The state last written to ``path``, or None if there is none (yet) or it is unreadable."""
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and "task" in state else None


def format_duration(seconds: float) -> str:
    """``95 s``, ``12 min``, ``1.5 h``: as precise as a person reading an ETA needs."""
    if seconds < 100:
        return f"{seconds:.0f} s"
    if seconds < 100 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def describe(state: Dict[str, Any], now: Optional[float] = None) -> str:
    """One line for a person: ``training zsclip-tiny seed 1, step 120/500, loss 2.31, ETA 95 s``.

    A state older than :data:`STALE_AFTER_S` says how old it is (the loop may have ended since).
    """
    done, total, unit = state.get("done"), state.get("total"), state.get("unit") or ""
    count = f"{done}/{total}" if total is not None else f"{done}"
    parts = [str(state.get("task", "")), f"{unit} {count}" if unit else count]
    if state.get("detail"):
        parts.append(str(state["detail"]))
    if state.get("eta_s") is not None:
        parts.append(f"ETA {format_duration(float(state['eta_s']))}")
    line = ", ".join(parts)
    age = (time.time() if now is None else now) - float(state.get("unix", 0) or 0)
    if age > STALE_AFTER_S:
        line += f" (updated {format_duration(age)} ago)"
    return line


class ProgressPoller(threading.Thread):
    """Show the latest state of a progress file on ``stream`` while a notebook runs.

    Polls every ``interval_s``. On a terminal the line ``prefix: <state>`` is redrawn in place (``\\r``);
    elsewhere (a log file, CI) a new line is written only when the state changed and at most every
    ``line_every_s``, so logs stay short. ``stop()`` ends the thread and leaves the stream where the
    runner expects it: with ``resume_text`` (the runner's pending ``"[i/n] id ... "``) as the last text.
    A daemon thread: it never keeps the process alive.
    """

    def __init__(self, path: str | os.PathLike, stream: TextIO, prefix: str, resume_text: str = "",
                 interval_s: float = 2.0, line_every_s: float = 30.0, tty: Optional[bool] = None) -> None:
        super().__init__(name=f"zslab-progress {prefix}", daemon=True)
        self.path, self.stream, self.prefix, self.resume_text = Path(path), stream, prefix, resume_text
        self.interval_s, self.line_every_s = interval_s, line_every_s
        self.tty = _isatty(stream) if tty is None else tty
        self.lines_written = 0
        self._stop_event = threading.Event()
        self._last_shown: Optional[str] = None
        self._last_line_at = float("-inf")
        self._width = 0                                   # length of the line drawn in place, to erase it

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.poll()

    def poll(self) -> Optional[str]:
        """Read the file once and show its state if due; returns what was written, if anything."""
        state = read_state(self.path)
        if state is None:
            return None
        line = f"{self.prefix}: {describe(state)}"
        now = _monotonic()
        if self.tty:
            line = line[:max(20, shutil.get_terminal_size().columns - 1)]
            if line == self._last_shown:
                return None
            text = "\r" + line + " " * max(0, self._width - len(line))
            self._width = len(line)
        else:
            if line == self._last_shown or now - self._last_line_at < self.line_every_s:
                return None
            text = ("\n" if self.lines_written == 0 else "") + line + "\n"
            self._last_line_at = now
        self._last_shown = line
        self.lines_written += 1
        self._write(text)
        return text

    def stop(self) -> None:
        """End polling (waits for the thread) and put the runner's pending text back on the stream."""
        self._stop_event.set()
        if self.is_alive():
            self.join()
        if not self.lines_written:
            return
        if self.tty:
            self._write("\r" + " " * self._width + "\r" + self.resume_text)
        else:
            self._write(self.resume_text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):                     # a closed stream must not kill the batch
            pass


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
