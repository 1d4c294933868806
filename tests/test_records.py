"""Records (metrics, figures, verdicts), verdicts from per-seed differences, and atomic writes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import zslab.records as records  # noqa: E402
from zslab.errors import InvalidChoiceError  # noqa: E402
from zslab.io import atomic_write, atomic_write_json, atomic_write_text  # noqa: E402


@pytest.fixture(autouse=True)
def fresh_recorder(monkeypatch):
    """Each test starts without a recorder and leaves none behind."""
    monkeypatch.setattr(records, "_current", None)
    monkeypatch.delenv("ZSLAB_RECORDS", raising=False)
    monkeypatch.delenv("ZSLAB_NOTEBOOK", raising=False)


def read(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def test_record_writes_the_file_after_each_call(tmp_path):
    path = tmp_path / "records" / "nb.json"
    records.reset(path, notebook="nb")
    assert not path.exists()
    records.record("top1", 0.5, seed=0, head="ensemble")
    data = read(path)
    assert data["format"] == 1 == records.RECORDS_FORMAT and data["notebook"] == "nb"
    assert data["metrics"] == [{"metric": "top1", "value": 0.5, "ci_low": None, "ci_high": None, "seed": 0,
                                "labels": {"head": "ensemble"}}]
    assert data["figures"] == [] and data["verdicts"] == []
    records.record("top1", 0.625, interval=(0.5, 0.75), seed=1, head="single", k=3)
    data = read(path)
    assert len(data["metrics"]) == 2
    second = data["metrics"][1]
    assert (second["value"], second["ci_low"], second["ci_high"], second["seed"]) == (0.625, 0.5, 0.75, 1)
    assert second["labels"] == {"head": "single", "k": 3}
    assert records.load_records(path) == data
    assert [p.name for p in path.parent.iterdir()] == ["nb.json"]        # no temporary files


def test_notebook_name_defaults_to_the_file_stem(tmp_path):
    records.reset(tmp_path / "my_notebook.json")
    records.record("x", 1)
    assert read(tmp_path / "my_notebook.json")["notebook"] == "my_notebook"


def test_labels_are_plain_values(tmp_path):
    import numpy as np

    path = tmp_path / "nb.json"
    records.reset(path)
    row = records.record("acc", np.float32(0.25), n=np.int64(7), path=Path("a/b"), flag=True, none=None)
    assert row["value"] == 0.25 and type(row["value"]) is float
    assert row["labels"] == {"n": 7, "path": str(Path("a/b")), "flag": True, "none": None}
    assert read(path)["metrics"][0]["labels"]["n"] == 7


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_value_raises_and_is_not_recorded(tmp_path, bad):
    path = tmp_path / "nb.json"
    records.reset(path)
    records.record("ok", 1.0)
    with pytest.raises(ValueError, match="'top1' is not finite"):
        records.record("top1", bad)
    assert [m["metric"] for m in read(path)["metrics"]] == ["ok"]


def test_unordered_interval_raises(tmp_path):
    records.reset(tmp_path / "nb.json")
    with pytest.raises(ValueError, match="not ordered"):
        records.record("top1", 0.5, interval=(0.7, 0.3))
    assert records.recorder().metrics == []
    records.record("top1", 0.5, interval=(0.5, 0.5))          # a degenerate interval is fine


def test_record_figure_saves_a_png_beside_the_records(tmp_path):
    path = tmp_path / "records" / "nb.json"
    records.reset(path, notebook="nb")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    out = records.record_figure(fig, "curve", caption="a line")
    plt.close(fig)
    assert out == path.parent / "figures" / "nb" / "curve.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (entry,) = read(path)["figures"]
    assert entry == {"name": "curve", "path": "figures/nb/curve.png", "caption": "a line"}
    assert (path.parent / entry["path"]).resolve() == out.resolve()
    assert not [p for p in out.parent.iterdir() if p.name != "curve.png"]
    # the same name again replaces the entry rather than listing it twice
    fig2, _ = plt.subplots()
    records.record_figure(fig2, "curve", caption="v2")
    plt.close(fig2)
    assert [f["caption"] for f in read(path)["figures"]] == ["v2"]


def test_record_verdict(tmp_path):
    path = tmp_path / "nb.json"
    records.reset(path)
    records.record_verdict("A beats B", "reproduced", "mean +3 pt")
    assert read(path)["verdicts"] == [{"claim": "A beats B", "status": "reproduced", "evidence": "mean +3 pt",
                                         "estimate": None}]
    with pytest.raises(InvalidChoiceError) as err:
        records.record_verdict("A beats B", "confirmed", "")
    msg = str(err.value)
    assert "'confirmed'" in msg and all(repr(v) in msg for v in records.VERDICTS)
    assert len(read(path)["verdicts"]) == 1


def test_without_a_path_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rec = records.reset(None)
    records.record("top1", 0.5)
    fig, _ = plt.subplots()
    assert records.record_figure(fig, "f") is None
    plt.close(fig)
    records.record_verdict("c", "inconclusive", "one seed")
    assert list(tmp_path.iterdir()) == []
    assert rec.notebook == "interactive" and len(rec.metrics) == 1
    assert rec.figures == [{"name": "f", "path": None, "caption": ""}] and len(rec.verdicts) == 1


def test_recorder_follows_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "env.json"
    monkeypatch.setenv("ZSLAB_RECORDS", str(path))
    monkeypatch.setenv("ZSLAB_NOTEBOOK", "from_env")
    records.record("x", 2.0)
    assert read(path)["notebook"] == "from_env" and read(path)["metrics"][0]["value"] == 2.0


def test_load_records_rejects_an_unknown_format(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"format": 2, "metrics": []}))
    with pytest.raises(ValueError, match="format 2, expected 1"):
        records.load_records(path)
    path.write_text(json.dumps({"metrics": []}))
    with pytest.raises(ValueError, match="format None"):
        records.load_records(path)


# ------------------------------------------------------------------------------------------ verdicts

def test_a_nan_interval_is_recorded_as_no_interval(tmp_path):
    rec = records.Recorder(tmp_path / "r.json", "nb")
    row = rec.metric("top1", 0.5, interval=(float("nan"), float("nan")))
    assert row["ci_low"] is None and row["ci_high"] is None


def test_verdict_records_its_estimate_with_the_half_width(tmp_path):
    rec = records.Recorder(tmp_path / "r.json", "nb")
    rec.verdict("A beats B", "inconclusive", "evidence", estimate={"mean": 0.01, "low": -0.02, "high": 0.04,
                                                                  "half_width": 0.03, "n": 5, "method": "t"})
    saved = records.load_records(tmp_path / "r.json")["verdicts"][0]
    assert saved["estimate"]["half_width"] == 0.03 and saved["estimate"]["n"] == 5
    rec.verdict("one seed", "inconclusive", "no interval", estimate={"mean": 0.1, "low": float("nan"),
                                                                     "high": float("nan"), "half_width": float("nan")})
    assert records.load_records(tmp_path / "r.json")["verdicts"][1]["estimate"]["half_width"] is None


# ------------------------------------------------------------------------------------------ atomic writes

def test_atomic_write_text_replaces_the_file(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]
    atomic_write_json(tmp_path / "x.json", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2], "b": 1}


def test_atomic_write_text_leaves_the_old_file_when_the_writer_raises(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    atomic_write_text(path, "old contents")
    original = Path.write_text

    def half_then_fail(self, data, *args, **kwargs):
        original(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new contents that never fully arrive")
    assert path.read_text() == "old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]       # the temporary file is gone


def test_atomic_write_leaves_the_old_file_on_keyboard_interrupt(tmp_path):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def writer(p):
        p.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, writer)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
