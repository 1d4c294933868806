"""Tests for the zslab command line on the fixture papers and notebooks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from zslab.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DIRS = ["--papers-dir", str(FIXTURES / "papers"), "--notebooks-dir", str(FIXTURES / "notebooks")]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_list_papers(capsys):
    assert main(["list", "papers", *DIRS]) == 0
    out = capsys.readouterr().out
    assert "toy_claim" in out and "2101.00001" in out and "A Toy Paper" in out
    assert "The toy statistic of the generated values is positive." in out and "toy_failing" in out
    assert main(["list", *DIRS]) == 0 and capsys.readouterr().out == out       # papers is the default


def test_list_notebooks(capsys):
    assert main(["list", "notebooks", *DIRS]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["toy_claim", "toy_failing"]


@pytest.mark.parametrize("what, module", [("models", "zslab.models"), ("datasets", "zslab.datasets")])
def test_list_models_datasets_when_the_module_is_missing(capsys, monkeypatch, what, module):
    monkeypatch.setitem(sys.modules, module, None)                       # import fails
    assert main(["list", what]) == 1
    err = capsys.readouterr().err
    assert module in err and "not available" in err and "Traceback" not in err


def test_list_models_formats_what_the_lister_returns(capsys, monkeypatch):
    import types

    fake = types.ModuleType("zslab.models")
    fake.list_models = lambda: [{"name": "tiny", "description": "a  small\nmodel"}, "plain"]
    monkeypatch.setitem(sys.modules, "zslab.models", fake)
    assert main(["list", "models"]) == 0
    assert capsys.readouterr().out.splitlines() == ["tiny  a small model", "plain"]


def test_params(capsys):
    assert main(["params", "toy_claim", *DIRS]) == 0
    out = capsys.readouterr().out
    for part in ("n_points", "float", "mean, median", "points per seed", "test_parameters", "n_points=8"):
        assert part in out


@pytest.mark.parametrize("argv, expected", [
    (["run", "toy_claim", "-p", "n_pionts", "3"], ["n_pionts", "method, mode, n_points, scale, seeds, tag, verbose"]),
    (["run", "toy_claim", "-p", "method", "fast"], ["method", "'fast'", "mean, median"]),
    (["run", "toy_claim", "-p", "seeds", "3"], ["seeds", "3", "list"]),
    (["run", "toy_clam"], ["toy_clam", "valid ids: toy_claim, toy_failing"]),
    (["run"], ["--all", "toy_claim, toy_failing"]),
    (["run", "--all", "toy_claim"], ["not both"]),
    (["run", "toy_claim", "-p", "mode", "real"], ["--mode"]),
    (["params", "nope"], ["valid ids: toy_claim, toy_failing"]),
])
def test_bad_input_exits_2_with_one_clear_line(capsys, tmp_path, argv, expected):
    out_dir = tmp_path / "run"
    assert main([*argv, *DIRS, "--out", str(out_dir)] if argv[0] == "run" else [*argv, *DIRS]) == 2
    line = one_error_line(capsys.readouterr().err)
    for part in expected:
        assert part in line
    assert not out_dir.exists()                                          # nothing ran


def test_argparse_errors_return_2(capsys):
    assert main(["run", "toy_claim", "--mode", "online"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["--help"]) == 0


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    argv = ["run", "toy_claim", "toy_failing", "--test-params", "-p", "seeds", "[0,1]", "-p", "scale", "2",
            "--out", str(out), "--no-progress", *DIRS]
    capture = {}
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        capture["rc"] = main(argv)
    capture.update(out=out, stdout=stdout.getvalue(), stderr=stderr.getvalue())
    return capture


def test_run_writes_report_and_exits_1_on_a_failure(cli_run):
    assert cli_run["rc"] == 1
    out = cli_run["out"]
    assert "[1/2] toy_claim ... done in" in cli_run["stdout"] and "[2/2] toy_failing ... FAILED" in cli_run["stdout"]
    assert "report: " in cli_run["stdout"] and (out / "report.html").is_file()
    df = pd.read_csv(out / "results.csv")
    toy = df[df.notebook == "toy_claim"]
    params = json.loads(toy.parameters.iloc[0])
    assert params["n_points"] == 8                 # from test_parameters
    assert params["seeds"] == [0, 1]               # -p wins over test_parameters' [0, 1, 2]
    assert params["scale"] == 2.0 and params["mode"] == "offline"
    assert len(toy) == 2
    assert df[df.notebook == "toy_failing"].status.tolist() == ["failed"]


def test_report_command(cli_run, capsys, tmp_path):
    html = cli_run["out"] / "report.html"
    html.unlink()
    assert main(["report", str(cli_run["out"])]) == 0
    assert html.is_file() and "report.html" in capsys.readouterr().out
    assert "The toy statistic of the generated values is positive." in html.read_text()
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in one_error_line(capsys.readouterr().err)


def test_python_dash_m_zslab():
    proc = subprocess.run([sys.executable, "-m", "zslab", "list", "papers", *DIRS], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "toy_claim" in proc.stdout
