"""Tests for zslab.progress: the kernel-side report (no-op, ETA, atomic file) and the runner-side poller."""
from __future__ import annotations

import io
import json
import os
import time
import warnings
from pathlib import Path

import pytest

from zslab import progress


@pytest.fixture(autouse=True)
def fresh_progress(monkeypatch):
    """Every test starts with no task clocks and no $ZSLAB_PROGRESS."""
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    progress.reset()
    yield
    progress.reset()


class FakeClock:
    """Stands in for zslab.progress's monotonic clock so that rates and ETAs can be checked exactly."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(progress, "_monotonic", fake)
    return fake


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


# ---------------------------------------------------------------------------------------------- report

def test_report_is_a_no_op_without_the_variable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert progress.report("training", 1, 10) is None
    assert list(tmp_path.iterdir()) == []
    assert progress._clocks == {}                                   # not even module state is touched


@pytest.mark.parametrize("start_done, elapsed, done, total, expected", [
    (0, 10.0, 20, 100, 40.0),          # 2 per second, 80 left
    (10, 10.0, 20, 100, 80.0),         # counts from the first report, not from zero
    (0, 10.0, 100, 100, 0.0),          # finished
    (0, 10.0, 120, 100, 0.0),          # overshoot never gives a negative ETA
    (5, 10.0, 5, 100, None),           # nothing done since the first report: no rate yet
    (0, 0.0, 5, 100, None),            # no time elapsed
    (0, 10.0, 20, None, None),         # unknown total
])
def test_eta_seconds(start_done, elapsed, done, total, expected):
    assert progress.eta_seconds(start_done, elapsed, done, total) == (
        pytest.approx(expected) if expected is not None else None)


def test_report_writes_one_json_state_with_rate_and_eta(tmp_path, monkeypatch, clock):
    path = tmp_path / "sub" / "nb.progress"
    monkeypatch.setenv(progress.ENV_VAR, str(path))
    first = progress.report("training zsclip-tiny seed 1", 10, 110, "loss 3.100", unit="step")
    on_disk = json.loads(path.read_text())
    assert on_disk == first and path.read_text().count("\n") == 1
    assert first["eta_s"] is None and first["rate_per_s"] is None and first["pid"] == os.getpid()
    clock.now += 20.0                                              # 50 more steps in 20 s: 2.5 per second
    state = progress.report("training zsclip-tiny seed 1", 60, 110, "loss 2.310", unit="step")
    assert json.loads(path.read_text()) == state
    assert state["rate_per_s"] == pytest.approx(2.5) and state["eta_s"] == pytest.approx(20.0)
    assert state["elapsed_s"] == pytest.approx(20.0) and state["detail"] == "loss 2.310"
    assert [p.name for p in path.parent.iterdir()] == ["nb.progress"]        # no temporary file left over


def test_report_throttles_writes_but_never_the_first_or_last(tmp_path, monkeypatch, clock):
    path = tmp_path / "nb.progress"
    monkeypatch.setenv(progress.ENV_VAR, str(path))
    progress.report("encoding cifar10/test", 1, 3, unit="batch")
    clock.now += progress.MIN_WRITE_INTERVAL_S / 10
    skipped = progress.report("encoding cifar10/test", 2, 3, unit="batch")
    assert skipped["done"] == 2 and json.loads(path.read_text())["done"] == 1     # too soon: not written
    clock.now += progress.MIN_WRITE_INTERVAL_S / 10
    progress.report("encoding cifar10/test", 3, 3, unit="batch")
    assert json.loads(path.read_text())["done"] == 3                            # the last one always is


def test_a_lower_count_restarts_the_task_clock(tmp_path, monkeypatch, clock):
    monkeypatch.setenv(progress.ENV_VAR, str(tmp_path / "p"))
    progress.report("training", 0, 100)
    clock.now += 50.0
    assert progress.report("training", 100, 100)["eta_s"] == 0.0
    clock.now += 1.0                                                # next seed, same loop: starts over
    again = progress.report("training", 1, 100)
    assert again["elapsed_s"] == 0.0 and again["eta_s"] is None
    clock.now += 2.0
    assert progress.report("training", 11, 100)["eta_s"] == pytest.approx(89 / 5)


def test_an_unwritable_file_warns_once_and_does_not_raise(tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("")
    monkeypatch.setenv(progress.ENV_VAR, str(blocker / "nb.progress"))   # its folder is a file
    with pytest.warns(RuntimeWarning, match="cannot write"):
        assert progress.report("training", 1, 2)["done"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        progress.report("training", 2, 2)                          # second failure: silent


# ---------------------------------------------------------------------------------------------- describe

@pytest.mark.parametrize("seconds, text", [(4.4, "4 s"), (95, "95 s"), (720, "12 min"), (5400, "90 min"),
                                           (9000, "2.5 h")])
def test_format_duration(seconds, text):
    assert progress.format_duration(seconds) == text


def test_describe_a_state():
    state = {"task": "training zsclip-tiny seed 1", "done": 120, "total": 500, "unit": "step",
             "detail": "loss 2.310", "eta_s": 95.2, "unix": 5000.0}
    assert progress.describe(state, now=5001.0) == "training zsclip-tiny seed 1, step 120/500, loss 2.310, ETA 95 s"
    bare = {"task": "warming up", "done": 3, "total": None, "unit": "", "detail": "", "eta_s": None, "unix": 5000.0}
    assert progress.describe(bare, now=5001.0) == "warming up, 3"
    assert progress.describe(bare, now=5040.0) == "warming up, 3 (updated 40 s ago)"   # stale: says so


def test_read_state_of_missing_partial_or_foreign_files(tmp_path):
    assert progress.read_state(tmp_path / "none") is None
    (tmp_path / "half").write_text('{"task": "tr')
    assert progress.read_state(tmp_path / "half") is None
    (tmp_path / "list").write_text("[1, 2]")
    assert progress.read_state(tmp_path / "list") is None


# ---------------------------------------------------------------------------------------------- poller

def _write_state(path: Path, done: int, total: int = 10, eta: float = 30.0) -> None:
    path.write_text(json.dumps({"task": "training toy", "done": done, "total": total, "unit": "step",
                                "detail": "", "eta_s": eta, "unix": time.time()}))


def test_poller_on_a_terminal_redraws_one_line_then_restores_the_pending_text(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")                            # wide enough: no truncation
    path = tmp_path / "nb.progress"
    stream = TtyStream()
    poller = progress.ProgressPoller(path, stream, "[2/4] toy", resume_text="[2/4] toy ... ")
    assert poller.tty
    assert poller.poll() is None and stream.getvalue() == ""        # no file yet: nothing shown
    _write_state(path, 120, 500, eta=95)
    assert poller.poll() == "\r[2/4] toy: training toy, step 120/500, ETA 95 s"
    assert poller.poll() is None                                    # unchanged: not redrawn
    _write_state(path, 5, 500, eta=9)                               # shorter line: the rest is blanked
    long_line = "[2/4] toy: training toy, step 120/500, ETA 95 s"
    short_line = "[2/4] toy: training toy, step 5/500, ETA 9 s"
    assert poller.poll() == "\r" + short_line + " " * (len(long_line) - len(short_line))
    poller.stop()
    assert stream.getvalue().endswith("\r" + " " * len(short_line) + "\r[2/4] toy ... ")


def test_poller_on_a_narrow_terminal_cuts_the_line_instead_of_wrapping(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")
    path = tmp_path / "nb.progress"
    _write_state(path, 120, 500)
    shown = progress.ProgressPoller(path, TtyStream(), "[2/4] toy").poll()
    assert shown == "\r" + "[2/4] toy: training toy, step 120/500, ETA 30 s"[:29]


def test_poller_in_a_log_writes_new_lines_at_most_every_interval(tmp_path, monkeypatch):
    path = tmp_path / "nb.progress"
    stream = io.StringIO()
    now = [100.0]
    monkeypatch.setattr(progress, "_monotonic", lambda: now[0])
    poller = progress.ProgressPoller(path, stream, "[1/1] toy", resume_text="[1/1] toy ... ", line_every_s=30)
    assert not poller.tty
    _write_state(path, 1)
    assert poller.poll() == "\n[1/1] toy: training toy, step 1/10, ETA 30 s\n"   # ends the pending "... " line
    _write_state(path, 2)
    now[0] += 29
    assert poller.poll() is None                                    # changed, but under 30 s since the last
    now[0] += 1
    assert poller.poll() == "[1/1] toy: training toy, step 2/10, ETA 30 s\n"
    now[0] += 60
    assert poller.poll() is None                                    # 30 s passed, but nothing new
    poller.stop()
    assert stream.getvalue().endswith("ETA 30 s\n[1/1] toy ... ")


def test_poller_thread_polls_and_stops_quickly(tmp_path):
    path = tmp_path / "nb.progress"
    _write_state(path, 7)
    stream = io.StringIO()
    poller = progress.ProgressPoller(path, stream, "[1/1] toy", resume_text="[1/1] toy ... ", interval_s=0.05)
    poller.start()
    deadline = time.monotonic() + 10
    while poller.lines_written == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    poller.stop()
    assert not poller.is_alive() and poller.daemon
    assert stream.getvalue() == "\n[1/1] toy: training toy, step 7/10, ETA 30 s\n[1/1] toy ... "


def test_poller_that_showed_nothing_leaves_the_stream_alone(tmp_path):
    stream = TtyStream()
    poller = progress.ProgressPoller(tmp_path / "never", stream, "[1/1] toy", resume_text="[1/1] toy ... ",
                                     interval_s=0.01)
    poller.start()
    poller.stop()
    assert stream.getvalue() == ""


# ---------------------------------------------------------------------------------------------- callers

@pytest.fixture
def spy_reports(monkeypatch, tmp_path):
    """Every progress.report call, recorded (and still written: the variable points into tmp_path)."""
    calls = []
    real = progress.report

    def spy(task, done, total=None, detail="", *, unit=""):
        calls.append({"task": task, "done": done, "total": total, "detail": detail, "unit": unit})
        return real(task, done, total, detail, unit=unit)

    monkeypatch.setenv(progress.ENV_VAR, str(tmp_path / "nb.progress"))
    monkeypatch.setattr(progress, "report", spy)
    return calls


def test_train_contrastive_reports_its_steps_and_loss(spy_reports, tmp_path):
    import torch

    from zslab.train import TrainConfig, train_contrastive

    class TinyPair(torch.nn.Module):
        """The smallest model the loop accepts (open_clip's output dict), so the test trains in milliseconds."""

        def __init__(self):
            super().__init__()
            self.image, self.text = torch.nn.Linear(4 * 4 * 3, 8), torch.nn.Embedding(64, 8)
            self.logit_scale = torch.nn.Parameter(torch.tensor(2.0))

        def forward(self, images, texts):
            norm = torch.nn.functional.normalize
            return {"image_features": norm(self.image(images.flatten(1)), dim=-1),
                    "text_features": norm(self.text(texts).mean(1), dim=-1), "logit_scale": self.logit_scale.exp()}

    torch.manual_seed(0)
    model = TinyPair()
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 4, 4, 3), generator=g, dtype=torch.uint8)
    tokens = torch.randint(1, 64, (16, 1, 8), generator=g)
    cfg = TrainConfig(steps=12, batch_size=4, warmup_steps=2)
    history = train_contrastive(model, images, tokens, cfg, seed=0, progress=False, label="toy seed 3")
    assert [c["done"] for c in spy_reports] == [1, 10, 12]                     # first, every 10th, last
    assert {(c["task"], c["total"], c["unit"]) for c in spy_reports} == {("training toy seed 3", 12, "step")}
    assert spy_reports[-1]["detail"] == f"loss {history['loss'][-1]:.3f}"
    assert json.loads((tmp_path / "nb.progress").read_text())["done"] == 12
    train_contrastive(model, images, tokens, TrainConfig(steps=1, batch_size=4, warmup_steps=1), progress=False)
    assert spy_reports[-1]["task"] == "training (infonce)"                     # no label: the loss names it


def test_image_features_reports_batches(spy_reports):
    import torch

    from zslab.embeddings import image_features

    class Model:
        fingerprint, preprocess = "fake", staticmethod(lambda image: torch.as_tensor(image, dtype=torch.float32))

        @staticmethod
        def encode_image(batch):
            return torch.nn.functional.normalize(batch, dim=-1)

    class Data:
        name, split, identity = "toyset", "test", {"name": "toyset"}

        def __len__(self):
            return 5

        def __getitem__(self, i):
            return [float(i), 1.0], i % 2

    features, labels = image_features(Model(), Data(), batch_size=2, use_cache=False, progress=False)
    assert features.shape == (5, 2) and labels.tolist() == [0, 1, 0, 1, 0]
    assert [(c["task"], c["done"], c["total"], c["unit"]) for c in spy_reports] == [
        ("encoding toyset/test", 1, 3, "batch"), ("encoding toyset/test", 2, 3, "batch"),
        ("encoding toyset/test", 3, 3, "batch")]
