"""Tests for zslab.runner: parameter validation, batch execution with papermill, resume, and the report.

Real executions (a kernel each, a second or two) happen once, in the module-scoped ``batch`` fixture;
the resume and interrupt logic is checked with a stand-in for ``papermill.execute_notebook``.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from zslab.errors import InvalidChoiceError, ZslabError
from zslab.records import RECORDS_FORMAT
from zslab.runner import (CliString, ParameterError, collect_results, notebook_parameters, parameter_table,
                          read_status, run_notebooks, validate_overrides, write_report)
from zslab.runner.params import _annotation_type
from zslab.runner.report import COLUMNS

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOTEBOOKS = FIXTURES / "notebooks"
PAPERS = FIXTURES / "papers"
DIRS = dict(notebooks_dir=NOTEBOOKS, papers_dir=PAPERS)
TOY_OVERRIDES = {"toy_claim": {"n_points": 8, "tag": "t1"}}


@pytest.fixture(scope="module")
def params():
    return notebook_parameters(NOTEBOOKS / "toy_claim.ipynb")


# ---------------------------------------------------------------------------------------------- params

def test_parameters_are_inspected_with_types_defaults_help_and_choices(params):
    assert list(params) == ["n_points", "scale", "seeds", "method", "verbose", "mode", "tag"]
    assert {n: p.type for n, p in params.items()} == {
        "n_points": "int", "scale": "float", "seeds": "list", "method": "str", "verbose": "bool",
        "mode": "str", "tag": "any"}
    assert params["seeds"].default == [0, 1] and params["method"].default == "mean"
    assert params["method"].choices == ("mean", "median") and params["mode"].choices == ("offline", "real")
    assert params["n_points"].help == "points per seed" and params["tag"].nullable
    table = parameter_table(params)
    assert "n_points" in table and "mean, median" in table and "points per seed" in table


def test_unknown_parameter_names_the_valid_ones(params):
    with pytest.raises(InvalidChoiceError) as err:
        validate_overrides(params, {"n_pionts": 3}, "toy_claim")
    msg = str(err.value)
    assert "n_pionts" in msg and "toy_claim" in msg
    assert "n_points, scale, seeds, method, verbose, mode, tag" in msg


@pytest.mark.parametrize("name, value, expected_in_msg", [
    ("n_points", CliString("many"), ["n_points", "'many'", "int"]),
    ("n_points", 2.5, ["n_points", "2.5", "int"]),
    ("n_points", True, ["n_points", "True", "int"]),          # a bool is not an int here
    ("scale", CliString("[1]"), ["scale", "[1]", "float"]),
    ("seeds", CliString("3"), ["seeds", "3", "list"]),
    ("verbose", CliString("1"), ["verbose", "1", "bool"]),
    ("method", 3, ["method", "3", "str"]),
])
def test_bad_type_names_parameter_value_and_type(params, name, value, expected_in_msg):
    with pytest.raises(ParameterError) as err:
        validate_overrides(params, {name: value}, "toy_claim")
    for part in expected_in_msg:
        assert part in str(err.value)


def test_value_not_in_choices_names_the_choices(params):
    with pytest.raises(InvalidChoiceError, match=r"'method'.*'mode_of_all'.*one of: mean, median"):
        validate_overrides(params, {"method": CliString("mode_of_all")}, "toy_claim")
    with pytest.raises(InvalidChoiceError, match="one of: offline, real"):
        validate_overrides(params, {"mode": "fast"})


@pytest.mark.parametrize("name, value, expected", [
    ("seeds", CliString("[0,1]"), [0, 1]),
    ("seeds", CliString("[]"), []),
    ("seeds", (3, 4), [3, 4]),
    ("scale", CliString("0.01"), 0.01),
    ("scale", CliString("1e-3"), 0.001),                       # YAML 1.1 reads this as text
    ("scale", CliString("2"), 2.0),                            # int accepted where float
    ("scale", 3, 3.0),
    ("n_points", CliString("12"), 12),
    ("verbose", CliString("true"), True),
    ("verbose", False, False),
    ("method", CliString("median"), "median"),
    ("mode", CliString("real"), "real"),
    ("tag", CliString("null"), None),                          # None default: anything goes
    ("tag", CliString("[a, b]"), ["a", "b"]),
    ("tag", CliString("free text"), "free text"),
])
def test_good_values_are_parsed_and_normalised(params, name, value, expected):
    out = validate_overrides(params, {name: value})
    assert out == {name: expected} and type(out[name]) is type(expected)


def test_str_parameter_keeps_cli_text_that_yaml_would_read_otherwise():
    from zslab.runner.params import NotebookParameter, validate_value

    p = NotebookParameter(name="label", type="str", default="x", default_source='"x"')
    assert validate_value(p, CliString("123")) == "123"
    assert validate_value(p, CliString("yes")) == "yes"


def test_choices_apply_to_each_element_of_a_list():
    from zslab.runner.params import _parameter

    p = _parameter({"name": "sets", "inferred_type_name": "None", "default": '["a"]', "help": "one of: a, b, c."})
    assert p.choices == ("a", "b", "c")
    assert validate_overrides({"sets": p}, {"sets": CliString("[a, c]")}) == {"sets": ["a", "c"]}
    with pytest.raises(InvalidChoiceError, match="'d'"):
        validate_overrides({"sets": p}, {"sets": ["a", "d"]})
    k = _parameter({"name": "k", "inferred_type_name": "None", "default": "5", "help": "one of: 1, 5, 10"})
    assert k.choices == (1, 5, 10) and validate_overrides({"k": k}, {"k": CliString("10")}) == {"k": 10}


@pytest.mark.parametrize("annotation, expected", [
    ("float", ("float", False)), ("Optional[int]", ("int", True)), ("List[int]", ("list", False)),
    ("typing.Dict[str, int]", ("dict", False)), ("str | None", ("str", True)), ("None", (None, False)),
    ("np.ndarray", (None, False)),
])
def test_annotations(annotation, expected):
    assert _annotation_type(annotation) == expected


# --------------------------------------------------------------------------------- validation up front

def test_bad_overrides_stop_the_batch_before_anything_runs(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ZslabError, match="valid parameters: fail_message"):
        run_notebooks(["toy_claim", "toy_failing"], out, {"toy_claim": {"n_points": 3}, "toy_failing": {"x": 1}},
                      progress=False, stream=io.StringIO(), **DIRS)
    with pytest.raises(InvalidChoiceError, match="valid ids: toy_claim, toy_failing"):
        run_notebooks(["toy_claim", "nope"], out, progress=False, stream=io.StringIO(), **DIRS)
    with pytest.raises(InvalidChoiceError, match="mode"):
        run_notebooks(["toy_claim"], out, mode="online", progress=False, stream=io.StringIO(), **DIRS)
    with pytest.raises(ParameterError, match="--mode"):
        run_notebooks(["toy_claim"], out, {"mode": "real"}, progress=False, stream=io.StringIO(), **DIRS)
    with pytest.raises(InvalidChoiceError, match="no selected notebook has a parameter 'nope'"):
        run_notebooks(["toy_claim", "toy_failing"], out, {"nope": 1}, progress=False, stream=io.StringIO(), **DIRS)
    with pytest.raises(InvalidChoiceError, match="neither a selected notebook"):
        run_notebooks(["toy_claim"], out, {"toy_clam": {"n_points": 3}}, progress=False, stream=io.StringIO(), **DIRS)
    assert not out.exists()


def test_report_of_an_empty_run_folder(tmp_path):
    (tmp_path / "status").mkdir()
    df = collect_results(tmp_path)
    assert list(df.columns) == COLUMNS and df.empty
    _, html_path = write_report(tmp_path)
    assert "No notebooks in this run folder" in html_path.read_text()


# ---------------------------------------------------------------------------------------------- a real batch

@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """The raising notebook first, then the toy claim: executed once for all the tests below."""
    out = tmp_path_factory.mktemp("batch")
    stream = io.StringIO()
    saved = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    os.environ["MALLOC_TRIM_THRESHOLD_"] = "65536"  # as a Dask worker has it: the kernel must not inherit it
    try:
        results = run_notebooks(["toy_failing", "toy_claim"], out, TOY_OVERRIDES, progress=False, stream=stream,
                                **DIRS)
    finally:
        if saved is None:
            os.environ.pop("MALLOC_TRIM_THRESHOLD_")
        else:
            os.environ["MALLOC_TRIM_THRESHOLD_"] = saved
    assert os.environ.get("MALLOC_TRIM_THRESHOLD_") == saved
    csv_path, html_path = write_report(out)
    return {"out": out, "results": results, "log": stream.getvalue(), "csv": csv_path, "html": html_path}


def test_batch_results_and_progress_lines(batch):
    failing, toy = batch["results"]
    assert (failing.notebook, failing.status) == ("toy_failing", "failed")
    assert (toy.notebook, toy.status, toy.skipped) == ("toy_claim", "done", False)   # the batch went on
    lines = batch["log"].splitlines()
    assert lines[0].startswith("[1/2] toy_failing ... FAILED: ValueError: toy failure on purpose (after ")
    assert lines[1].startswith("[2/2] toy_claim ... done in ") and lines[1].endswith(" s")
    assert len(lines) == 2
    assert toy.parameters["n_points"] == 8 and toy.parameters["mode"] == "offline" and toy.parameters["seeds"] == [0, 1]


def test_failed_notebook_status_has_its_error(batch):
    status = read_status(batch["out"], "toy_failing")
    assert status["status"] == "failed"
    err = status["error"]
    assert err["ename"] == "ValueError" and err["evalue"] == "toy failure on purpose"
    assert "[fail_with](fail_message)" in err["source_excerpt"]
    assert "\x1b[" not in err["traceback"]
    assert (batch["out"] / "notebooks" / "toy_failing.ipynb").is_file()   # papermill's output, for debugging


def test_done_status_has_provenance(batch):
    status = read_status(batch["out"], "toy_claim")
    assert status["status"] == "done" and status["duration_s"] > 0
    assert status["parameters"]["tag"] == "t1" and status["passed_parameters"] == {
        "n_points": 8, "tag": "t1", "mode": "offline"}
    assert len(status["param_hash"]) == 16 and status["git_revision"]
    assert status["versions"]["papermill"] and status["started"] <= status["ended"]
    assert status["paper"]["id"] == "toy_claim"


def test_kernel_environment_and_records(batch):
    from zslab.records import load_records

    rec = load_records(batch["out"] / "records" / "toy_claim.json")
    assert [m["seed"] for m in rec["metrics"]] == [0, 1]
    labels = rec["metrics"][0]["labels"]
    assert labels["offline_env"] == "1" and labels["notebook_env"] == "toy_claim"
    assert labels["malloc_trim_env"] == "unset"      # Dask's trim threshold slows torch (KERNEL_ENV_UNSET)
    assert labels["cwd"] == "notebooks" and labels["mode"] == "offline" and labels["tag"] == "t1"
    assert (batch["out"] / "records" / rec["figures"][0]["path"]).is_file()
    assert rec["verdicts"][0]["status"] == "reproduced"


def test_results_csv_is_tidy(batch):
    df = pd.read_csv(batch["csv"])
    assert list(df.columns) == COLUMNS
    assert list(collect_results(batch["out"]).columns) == COLUMNS
    toy = df[df.notebook == "toy_claim"]
    assert len(toy) == 2 and set(toy.metric) == {"toy_score"} and list(toy.seed) == [0, 1]
    assert (toy.ci_low <= toy.value).all() and (toy.value <= toy.ci_high).all()
    assert toy.paper.iloc[0].startswith("A Toy Paper") and str(toy.arxiv.iloc[0]) == "2101.00001"
    assert json.loads(toy.labels.iloc[0])["method"] == "mean"
    assert json.loads(toy.parameters.iloc[0])["n_points"] == 8
    assert "papermill" in json.loads(toy.versions.iloc[0]) and (toy.status == "done").all()
    failing = df[df.notebook == "toy_failing"]
    assert len(failing) == 1 and failing.status.iloc[0] == "failed"
    assert failing.metric.isna().all() and failing.value.isna().all()   # its partial record is not reported


def test_report_html(batch):
    text = batch["html"].read_text(encoding="utf-8")
    assert "The toy statistic of the generated values is positive." in text          # the claim
    assert "The paper's numbers beside ours" in text and "never measured here" in text
    assert "Table 1, row 3" in text and "20 points, 2 seeds" in text                 # target with its source
    assert "data:image/png;base64," in text and "Toy values per seed" in text
    assert "https://arxiv.org/abs/2101.00001" in text and "Table 1 (toy)" in text
    assert "Statistics &lt;Are&gt; Positive &amp; Small" in text and "<Are>" not in text
    assert "reproduced" in text and "mean = 0.506 over 2 seeds x 8 points" in text  # verdict with evidence
    failing_section = text.split('id="nb-toy_failing"')[1]
    assert "toy failure on purpose" in failing_section and "[fail_with](fail_message)" in failing_section
    assert "Our numbers" not in failing_section                                      # no half-run numbers
    assert "t1" in text and "offline" in text                                      # provenance


def test_resume_skips_a_done_notebook(batch):
    status_file = batch["out"] / "status" / "toy_claim.json"
    before = status_file.stat().st_mtime_ns
    stream = io.StringIO()
    (result,) = run_notebooks(["toy_claim"], batch["out"], TOY_OVERRIDES, progress=False, stream=stream, **DIRS)
    assert result.skipped and result.status == "done"
    assert status_file.stat().st_mtime_ns == before
    assert "skipped" in stream.getvalue()


# ---------------------------------------------------------------------------------------------- resume logic

@pytest.fixture
def fake_papermill(monkeypatch):
    """Stands in for papermill.execute_notebook: records each call, writes a records file like a notebook."""
    import papermill

    calls = []

    def fake(input_path, output_path, parameters=None, **kwargs):
        calls.append({"notebook": Path(input_path).stem, "parameters": dict(parameters or {}),
                      "offline": os.environ.get("ZSLAB_OFFLINE"), "kwargs": kwargs})
        if getattr(fake, "interrupt", False):
            raise KeyboardInterrupt
        records = Path(os.environ["ZSLAB_RECORDS"])
        records.parent.mkdir(parents=True, exist_ok=True)
        records.write_text(json.dumps({"format": RECORDS_FORMAT, "notebook": os.environ["ZSLAB_NOTEBOOK"],
                                       "metrics": [{"metric": "fresh", "value": 1.0, "ci_low": None, "ci_high": None,
                                                    "seed": None, "labels": {}}], "figures": [], "verdicts": []}))
        Path(output_path).write_text("{}")

    monkeypatch.setattr(papermill, "execute_notebook", fake)
    fake.calls = calls
    return fake


def write_empty_records():
    """What a notebook that records nothing leaves: an empty records file where $ZSLAB_RECORDS says."""
    records = Path(os.environ["ZSLAB_RECORDS"])
    records.parent.mkdir(parents=True, exist_ok=True)
    records.write_text(json.dumps({"format": RECORDS_FORMAT, "notebook": os.environ["ZSLAB_NOTEBOOK"],
                                   "metrics": [], "figures": [], "verdicts": []}))


def copy_of(batch, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(batch["out"], out)
    return out


def test_running_status_is_rerun_and_stale_records_deleted(batch, tmp_path, fake_papermill):
    out = copy_of(batch, tmp_path)
    status = read_status(out, "toy_claim")
    status["status"] = "running"                                   # as an interrupted run leaves it
    (out / "status" / "toy_claim.json").write_text(json.dumps(status))
    (result,) = run_notebooks(["toy_claim"], out, TOY_OVERRIDES, progress=False, stream=io.StringIO(), **DIRS)
    assert len(fake_papermill.calls) == 1 and not result.skipped and result.status == "done"
    rec = json.loads((out / "records" / "toy_claim.json").read_text())
    assert [m["metric"] for m in rec["metrics"]] == ["fresh"]    # the old run's records are gone
    assert not (out / "records" / "figures" / "toy_claim").exists()
    assert read_status(out, "toy_claim")["status"] == "done"


def test_changed_parameters_failed_status_and_no_resume_rerun(batch, tmp_path, fake_papermill):
    out = copy_of(batch, tmp_path)
    run_notebooks(["toy_claim"], out, {"toy_claim": {"n_points": 9, "tag": "t1"}}, progress=False,
                  stream=io.StringIO(), **DIRS)
    assert fake_papermill.calls[-1]["parameters"] == {"n_points": 9, "tag": "t1", "mode": "offline"}
    assert read_status(out, "toy_claim")["param_hash"] != read_status(batch["out"], "toy_claim")["param_hash"]
    run_notebooks(["toy_failing", "toy_claim"], out, {"toy_claim": {"n_points": 9, "tag": "t1"}}, progress=False,
                  stream=io.StringIO(), **DIRS)
    assert [c["notebook"] for c in fake_papermill.calls] == ["toy_claim", "toy_failing"]   # failed: re-run
    run_notebooks(["toy_claim"], out, {"toy_claim": {"n_points": 9, "tag": "t1"}}, resume=False, progress=False,
                  stream=io.StringIO(), **DIRS)
    assert len(fake_papermill.calls) == 3
    # the records file of a done notebook gone: re-run
    (out / "records" / "toy_claim.json").unlink()
    run_notebooks(["toy_claim"], out, {"toy_claim": {"n_points": 9, "tag": "t1"}}, progress=False,
                  stream=io.StringIO(), **DIRS)
    assert len(fake_papermill.calls) == 4


def test_keyboard_interrupt_marks_interrupted_and_stops(tmp_path, fake_papermill):
    fake_papermill.interrupt = True
    stream = io.StringIO()
    results = run_notebooks(["toy_claim", "toy_failing"], tmp_path, progress=False, stream=stream, **DIRS)
    assert [(r.notebook, r.status) for r in results] == [("toy_claim", "interrupted")]
    assert len(fake_papermill.calls) == 1 and "INTERRUPTED (KeyboardInterrupt (Ctrl-C)) after" in stream.getvalue()
    status = read_status(tmp_path, "toy_claim")
    assert status["status"] == "interrupted" and status["ended"] >= status["started"]
    assert status["duration_s"] is not None and status["error"]["ename"] == "KeyboardInterrupt"
    assert results[0].error["ename"] == "KeyboardInterrupt"
    assert read_status(tmp_path, "toy_failing") is None                  # the batch stopped before it
    assert "ZSLAB_RECORDS" not in os.environ and "ZSLAB_PROGRESS" not in os.environ   # environment restored
    df = collect_results(tmp_path)
    assert list(df.status) == ["interrupted"] and df.metric.isna().all()
    _, html_path = write_report(tmp_path)
    assert "interrupted" in html_path.read_text()
    fake_papermill.interrupt = False
    (result,) = run_notebooks(["toy_claim"], tmp_path, progress=False, stream=io.StringIO(), **DIRS)
    assert result.status == "done" and not result.skipped and len(fake_papermill.calls) == 2


def test_interrupt_before_a_notebook_starts_leaves_its_status_alone(batch, tmp_path, fake_papermill, monkeypatch):
    from zslab.runner import execute

    out = copy_of(batch, tmp_path)
    before = (out / "status" / "toy_claim.json").read_text()

    def interrupted_read_status(out_dir, notebook):
        raise KeyboardInterrupt

    monkeypatch.setattr(execute, "read_status", interrupted_read_status)
    stream = io.StringIO()
    results = run_notebooks(["toy_claim", "toy_failing"], out, TOY_OVERRIDES, progress=False, stream=stream, **DIRS)
    assert [(r.notebook, r.status) for r in results] == [("toy_claim", "interrupted")] and not fake_papermill.calls
    assert stream.getvalue() == "[1/2] toy_claim ... INTERRUPTED (KeyboardInterrupt (Ctrl-C)) before it started; " \
                                "status file unchanged\n"
    assert (out / "status" / "toy_claim.json").read_text() == before


def test_interrupt_between_notebooks_is_reported_as_an_interrupted_result(tmp_path, fake_papermill, monkeypatch):
    from zslab.runner import execute

    real_run_one = execute._run_one

    def interrupted_on_second(plan, label, *args):
        if plan.notebook == "toy_failing":
            raise KeyboardInterrupt
        return real_run_one(plan, label, *args)

    monkeypatch.setattr(execute, "_run_one", interrupted_on_second)
    stream = io.StringIO()
    results = run_notebooks(["toy_claim", "toy_failing"], tmp_path, progress=False, stream=stream, **DIRS)
    assert [(r.notebook, r.status) for r in results] == [("toy_claim", "done"), ("toy_failing", "interrupted")]
    assert stream.getvalue().endswith("\nINTERRUPTED (KeyboardInterrupt (Ctrl-C)) between notebooks\n")
    assert read_status(tmp_path, "toy_failing") is None


@pytest.fixture
def sentinel_sigterm_handler():
    """A recognisable SIGTERM handler installed around the test, so that its restoration can be checked."""
    def sentinel(signum, frame):
        raise AssertionError("the runner's SIGTERM handler should have been active")

    previous = signal.signal(signal.SIGTERM, sentinel)
    yield sentinel
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_during_a_notebook_marks_it_interrupted_and_restores_the_handler(
        tmp_path, fake_papermill, sentinel_sigterm_handler):
    def terminated_midway(input_path, output_path, parameters=None, **kwargs):
        fake_papermill.calls.append({"notebook": Path(input_path).stem})
        assert signal.getsignal(signal.SIGTERM) is not sentinel_sigterm_handler
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)                                      # the handler raises out of this sleep
        raise AssertionError("SIGTERM did not stop the notebook")

    import papermill

    papermill.execute_notebook = terminated_midway        # fake_papermill's monkeypatch restores it
    stream = io.StringIO()
    t0 = time.monotonic()
    results = run_notebooks(["toy_claim", "toy_failing"], tmp_path, progress=False, stream=stream, **DIRS)
    assert time.monotonic() - t0 < 20
    assert [(r.notebook, r.status) for r in results] == [("toy_claim", "interrupted")]
    assert results[0].error == {"ename": "Terminated", "evalue": "received SIGTERM", "cell_index": None,
                                "source_excerpt": "", "traceback": ""}
    assert "INTERRUPTED (received SIGTERM)" in stream.getvalue()
    status = read_status(tmp_path, "toy_claim")
    assert status["status"] == "interrupted" and status["error"]["ename"] == "Terminated"
    assert signal.getsignal(signal.SIGTERM) is sentinel_sigterm_handler       # put back after the batch


def test_sigterm_handler_is_left_alone_outside_the_main_thread(tmp_path, fake_papermill, sentinel_sigterm_handler):
    seen = []

    def record_handler(input_path, output_path, parameters=None, **kwargs):
        seen.append(signal.getsignal(signal.SIGTERM))
        write_empty_records()

    import papermill

    papermill.execute_notebook = record_handler
    worker = threading.Thread(target=run_notebooks, args=(["toy_claim"], tmp_path),
                              kwargs=dict(progress=False, stream=io.StringIO(), **DIRS))
    worker.start()
    worker.join(60)
    assert seen == [sentinel_sigterm_handler] and read_status(tmp_path, "toy_claim")["status"] == "done"


def test_progress_of_a_running_notebook_is_shown_then_removed(tmp_path, fake_papermill, monkeypatch):
    from zslab import progress
    from zslab.runner import execute

    monkeypatch.setattr(execute, "PROGRESS_POLL_S", 0.05)
    progress.reset()
    seen = {}

    def reporting(input_path, output_path, parameters=None, **kwargs):
        seen["path"] = os.environ[progress.ENV_VAR]
        progress.report("training toy seed 1", 3, 10, "loss 1.250", unit="step")   # as the kernel would
        deadline = time.monotonic() + 20
        while "[1/1] toy_claim: training" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        write_empty_records()

    import papermill

    papermill.execute_notebook = reporting
    stream = io.StringIO()
    (result,) = run_notebooks(["toy_claim"], tmp_path, progress=True, stream=stream, **DIRS)
    assert result.status == "done"
    assert seen["path"] == str(tmp_path / "status" / "toy_claim.progress")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[1/1] toy_claim ... "
    assert lines[1] == "[1/1] toy_claim: training toy seed 1, step 3/10, loss 1.250"
    assert lines[2].startswith("[1/1] toy_claim ... done in ") and len(lines) == 3
    assert not Path(seen["path"]).exists() and progress.ENV_VAR not in os.environ


def test_mode_real_and_flat_overrides(tmp_path, fake_papermill, monkeypatch):
    monkeypatch.delenv("ZSLAB_OFFLINE", raising=False)
    results = run_notebooks(["toy_claim", "toy_failing"], tmp_path, {"n_points": 5}, mode="real", progress=False,
                            stream=io.StringIO(), **DIRS)
    by_nb = {c["notebook"]: c for c in fake_papermill.calls}
    assert by_nb["toy_claim"]["parameters"] == {"n_points": 5, "mode": "real"}   # flat: only where it exists
    assert by_nb["toy_failing"]["parameters"] == {}                             # no `mode` parameter there
    assert by_nb["toy_claim"]["offline"] is None
    assert by_nb["toy_claim"]["kwargs"]["kernel_name"] == "python3"
    assert by_nb["toy_claim"]["kwargs"]["cwd"] == str(NOTEBOOKS)
    assert all(r.status == "done" for r in results)
    assert read_status(tmp_path, "toy_claim")["mode"] == "real"


def test_a_missing_asset_is_reported_as_such_with_how_to_install(tmp_path):
    how = "the Debian package wordnet-base is missing: apt-get install -y wordnet-base (needs root)"
    results = run_notebooks(["toy_failing"], tmp_path, {"toy_failing": {"fail_with": "MissingAssetError",
                                                                        "fail_message": how}},
                            progress=False, stream=io.StringIO(), **DIRS)
    assert results[0].status == "missing asset" and not results[0].ok
    assert read_status(tmp_path, "toy_failing")["status"] == "missing asset"
    df = collect_results(tmp_path)
    assert df["status"].tolist() == ["missing asset"]
    _, html_path = write_report(tmp_path)
    html = Path(html_path).read_text()
    assert "missing asset" in html and "apt-get install -y wordnet-base" in html


# ---------------------------------------------------------------------------------------------- SIGTERM, for real

def write_waiting_notebook(folder: Path) -> Path:
    """A notebook that reports progress while a ``hold`` file exists (at most 120 s), then records how long
    it waited; it writes its kernel's pid next to ``hold``. Built like tests/fixtures/make_notebooks.py."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    cells = [new_code_cell('hold = ""  # keep waiting while this file exists', metadata={"tags": ["parameters"]}),
             new_code_cell('import os, time\nfrom pathlib import Path\nfrom zslab import progress\n'
                           'Path(hold + ".pid").write_text(str(os.getpid()))\n'
                           'ticks, deadline = 0, time.monotonic() + 120\n'
                           'while Path(hold).exists() and time.monotonic() < deadline:\n'
                           '    ticks += 1\n'
                           '    progress.report("waiting for the test", ticks, None, unit="tick")\n'
                           '    time.sleep(0.05)'),
             new_code_cell('from zslab.records import record\nrecord("waited_ticks", ticks)')]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}, "language_info": {"name": "python"}})
    nbformat.validate(nb)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "waiting.ipynb")
    return folder


def wait_for(condition, timeout_s: float, what: str, proc: subprocess.Popen = None, log: Path = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the runner exited ({proc.returncode}) before {what}:\n"
                                 + (log.read_text() if log else ""))
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}:\n"
                                 + (log.read_text() if log else ""))
        time.sleep(0.1)


def test_sigterm_to_zslab_run_marks_the_notebook_interrupted_and_a_second_run_resumes(tmp_path):
    nb_dir = write_waiting_notebook(tmp_path / "notebooks")
    out, hold, log = tmp_path / "run", tmp_path / "hold", tmp_path / "stdout.txt"
    hold.write_text("")
    command = [sys.executable, "-m", "zslab", "run", "waiting", "--notebooks-dir", str(nb_dir), "--papers-dir",
               str(nb_dir), "--out", str(out), "-p", "hold", str(hold)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]),
                                                                     os.environ.get("PYTHONPATH")]))}
    with open(log, "w") as stdout:
        proc = subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
        try:
            # the kernel is in the waiting loop, and the runner shows its progress (non-TTY: a new line)
            wait_for(lambda: "[1/1] waiting: waiting for the test, tick " in log.read_text(), 120,
                     "the progress line", proc, log)
            assert (out / "status" / "waiting.progress").is_file()
            assert read_status(out, "waiting")["status"] == "running"
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert proc.returncode == 143, text
    assert "INTERRUPTED (received SIGTERM) after" in text and "interrupted by SIGTERM" in text
    status = read_status(out, "waiting")
    assert status["status"] == "interrupted" and status["error"]["ename"] == "Terminated"
    assert status["ended"] >= status["started"] and status["duration_s"] > 0
    assert not (out / "status" / "waiting.progress").exists()
    kernel_pid = int((tmp_path / "hold.pid").read_text())

    def kernel_gone() -> bool:
        try:
            os.kill(kernel_pid, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(kernel_gone, 30, f"the kernel (pid {kernel_pid}) to end")
    assert collect_results(out).status.tolist() == ["interrupted"]
    assert "interrupted" in (out / "report.html").read_text()

    hold.unlink()                                          # the same command again: resumes and finishes
    again = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "[1/1] waiting ... done in " in again.stdout and "skipped" not in again.stdout
    assert read_status(out, "waiting")["status"] == "done"
    assert collect_results(out).metric.tolist() == ["waited_ticks"]
