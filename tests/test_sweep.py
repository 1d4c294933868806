"""Sweeps on a 2-worker Dask LocalCluster: every cell in its own run folder, a failing cell that keeps its
error and stops nothing, a resume that runs only missing and failed cells, and the tidy table with the
swept parameter as a column and its figure with intervals over seeds."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from zslab.cli import main as cli_main
from zslab.errors import ZslabError
from zslab.runner import read_status
from zslab.runner.report import load_run
from zslab.runner.sweep import kernel_threads, parse_sweep, plan_cells, run_on_cluster, run_sweep, summarise

FIXTURES = Path(__file__).resolve().parent / "fixtures"
DIRS = dict(notebooks_dir=FIXTURES / "notebooks", papers_dir=FIXTURES / "papers")
#: n_points 0 makes the toy notebook fail (the mean of no values): a failing cell on purpose.
SPEC = {"notebooks": ["toy_claim"], "grid": {"n_points": [0, 6, 12]}, "seeds": [0, 1],
        "parameters": {"scale": 2.0}, "plot": {"metric": "toy_score"}}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    spec = parse_sweep(SPEC)
    first = run_sweep(spec, out, workers=2, **DIRS)
    missing = plan_cells(spec, **DIRS)[-1]                 # n_points=12, seed 1: as if never run
    shutil.rmtree(missing.folder(out))
    second = run_sweep(spec, out, workers=2, **DIRS)
    return {"out": out, "spec": spec, "first": first, "second": second, "missing": missing.name}


def test_every_cell_runs_in_its_own_folder_and_a_failing_cell_stops_nothing(sweep):
    first = sweep["first"]
    assert first.workers == 2 and len(first.cells) == 6
    assert first.counts == {"failed": 2, "done": 4} or first.counts == {"done": 4, "failed": 2}
    for cell in first.cells:
        assert cell["status"] == ("failed" if cell["point"]["n_points"] == 0 else "done"), cell
    failed = [c for c in first.cells if c["status"] == "failed"]
    assert all(c["error"]["ename"] == "StatisticsError" for c in failed)
    folder = sweep["out"] / "cells" / "toy_claim" / failed[0]["cell"]
    assert read_status(folder, "toy_claim")["error"]["ename"] == "StatisticsError"   # kept in the cell's status
    assert len({c["worker_pid"] for c in first.cells}) == 2                            # both workers took cells


def test_a_rerun_executes_only_missing_and_failed_cells(sweep):
    second = {c["cell"]: c for c in sweep["second"].cells}
    ran = {name for name, c in second.items() if not c["skipped"]}
    expected = {sweep["missing"]} | {c["cell"] for c in sweep["first"].cells if c["status"] == "failed"}
    assert ran == expected
    assert second[sweep["missing"]]["status"] == "done"


def test_results_table_has_the_swept_parameter_and_seed(sweep):
    df = pd.read_csv(sweep["out"] / "results.csv")
    scores = df[df["metric"] == "toy_score"]
    assert sorted(scores["n_points"].unique()) == [6, 12] and sorted(scores["sweep_seed"].unique()) == [0, 1]
    assert len(scores) == 4 and (df.loc[df["n_points"] == 0, "status"] == "failed").all()
    params = scores["parameters"].map(json.loads)
    assert (params.map(lambda p: p["scale"]) == 2.0).all()
    assert (params.map(lambda p: p["seeds"]) == scores["sweep_seed"].map(lambda s: [s])).all()


def test_summary_is_the_mean_over_seeds_with_a_t_interval(sweep):
    df = pd.read_csv(sweep["out"] / "results.csv")
    summary = summarise(df, "n_points", "toy_score", {})
    assert sorted(summary["n_points"]) == [6, 12] and (summary["n"] == 2).all()
    six = df[(df["metric"] == "toy_score") & (df["n_points"] == 6)]["value"]
    row = summary[summary["n_points"] == 6].iloc[0]
    assert row["mean"] == pytest.approx(six.mean()) and row["low"] < row["mean"] < row["high"]


def test_sweep_page_and_figure(sweep):
    out = sweep["out"]
    assert (out / "figures" / "n_points.png").stat().st_size > 1000
    page = (out / "sweep.html").read_text()
    assert "6 cells" in page and "StatisticsError" in page and "data:image/png;base64," in page
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["workers"] == 2 and len(meta["cells"]) == 6


@pytest.mark.parametrize("bad, message", [
    ({"grid": {"n_points": [1]}}, "missing field(s) ['notebooks']"),
    ({**SPEC, "grid": {"n_points": []}}, "non-empty lists"),
    ({**SPEC, "grid": {"seeds": [[0]]}}, "sweep seeds with the 'seeds' field"),
    ({**SPEC, "sede": [0]}, "unknown field(s) ['sede']"),
    ({**SPEC, "parameters": {"n_points": 3}}, "set both as fixed 'parameters' and by the sweep"),
    ({**SPEC, "mode": "cloud"}, "valid modes: offline, real"),
])
def test_bad_sweep_files_name_the_field(bad, message):
    with pytest.raises(ZslabError) as err:
        parse_sweep(bad)
    assert message in str(err.value)


def test_bad_parameter_values_stop_the_sweep_before_anything_runs(tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps({**SPEC, "grid": {"method": ["mean", "mode"]}}))
    code = cli_main(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "1",
                     "--notebooks-dir", str(DIRS["notebooks_dir"]), "--papers-dir", str(DIRS["papers_dir"])])
    assert code == 2 and "'mode'" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_run_with_jobs_runs_notebooks_on_workers_into_one_folder(tmp_path, capsys):
    args = ["run", "toy_failing", "toy_claim", "--jobs", "2", "--out", str(tmp_path / "run"),
            "--notebooks-dir", str(DIRS["notebooks_dir"]), "--papers-dir", str(DIRS["papers_dir"])]
    assert cli_main(args) == 1                                  # one notebook failed, the other ran
    assert read_status(tmp_path / "run", "toy_failing")["status"] == "failed"
    assert read_status(tmp_path / "run", "toy_claim")["status"] == "done"
    df = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(df["notebook"]) == {"toy_failing", "toy_claim"}
    assert cli_main(args) == 1 and "toy_claim ... done earlier with the same parameters, skipped" in capsys.readouterr().out


def test_local_workers_share_the_cores_out_among_their_kernels():
    """Kernels started by a worker inherit its OMP_NUM_THREADS: one worker gets every core, N workers on N
    cores one each (not Dask's default of 1 everywhere, nor torch's default of every core in each)."""
    assert kernel_threads(1) == (os.cpu_count() or 1) and kernel_threads(10 ** 6) == 1
    seen = []
    run_on_cluster([(os.getenv, ("OMP_NUM_THREADS",))], lambda i, n, r: seen.append(r), workers=1)
    assert seen == [str(kernel_threads(1))]


def test_sigterm_stops_a_sweep_and_marks_its_running_cell_interrupted(tmp_path):
    """SIGTERM to `zslab sweep` (a job scheduler's stop): the worker's running cell ends up `interrupted`
    in its own status file (which a rerun runs again, as test_runner checks for interrupted notebooks), and
    the command exits 143 and says how to resume."""
    path = tmp_path / "sweep.yaml"
    slow = {**SPEC, "grid": {"n_points": [3_000_000]}, "seeds": [0]}    # statistics.mean over 3M values: slow
    path.write_text(json.dumps(slow))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "zslab", "sweep", str(path), "--out", str(out), "--workers", "1",
           "--notebooks-dir", str(DIRS["notebooks_dir"]), "--papers-dir", str(DIRS["papers_dir"])]
    cell = plan_cells(parse_sweep(slow), **DIRS)[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while (read_status(cell.folder(out), "toy_claim") or {}).get("status") != "running":
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, output
    assert "interrupted by SIGTERM" in output and "run the same command again" in output
    status = read_status(cell.folder(out), "toy_claim")
    assert status["status"] == "interrupted" and status["error"]["ename"] == "Terminated", status
    assert [e["state"] for e in load_run(cell.folder(out))] == ["interrupted"]       # as the report shows it


def test_parallel_runs_train_the_named_zoo_models_first():
    """``--jobs N`` trains the models the notebooks name (model/models × seeds, offline runs only) before the
    kernels start, once each, in a fixed order."""
    from zslab.runner.prefetch import zoo_models_named

    zoo = ["zsclip-tiny", "lit-a", "lit-b"]
    runs = [{"model": "zsclip-tiny", "seeds": [1, 0]},
            {"model": "zsclip-tiny", "seeds": [0, 2], "mode": "offline"},
            {"models": {"x": ["lit-a", "ViT-B-32"], "y": ["lit-b"]}, "seeds": [0]},
            {"model": "zsclip-tiny", "seeds": [5], "mode": "real"},           # real mode trains nothing
            {"model": "ViT-B-32"}]
    assert zoo_models_named(runs, zoo) == [("lit-a", 0), ("lit-b", 0), ("zsclip-tiny", 0), ("zsclip-tiny", 1),
                                           ("zsclip-tiny", 2)]


def test_prefetch_includes_control_worlds_once_each():
    from zslab.runner.prefetch import ModelTarget, model_targets

    runs = [{"model": "zsclip-tiny", "seeds": [0], "control": {"offtopic_rate": 0.0}, "control_seeds": [1, 0]},
            {"model": "zsclip-tiny", "seeds": [0], "control": {"offtopic_rate": 0.0}, "control_seeds": [0]},
            {"model": "lit-a", "control": {"offtopic_rate": 0.0}, "control_seeds": [0]},  # no control: not derivable
            {"model": "zsclip-tiny", "control": {}, "control_seeds": [3]}]                  # no control arm
    off = {"world": {"offtopic_rate": 0.0}}
    assert model_targets(runs, ["zsclip-tiny", "lit-a"], derivable=["zsclip-tiny"]) == [
        ModelTarget("lit-a", 0, {}), ModelTarget("zsclip-tiny", 0, {}), ModelTarget("zsclip-tiny", 0, off),
        ModelTarget("zsclip-tiny", 1, off)]
    variants = {"model": "zsclip-tiny", "seeds": [2], "variants": {"base": {}, "sig": {"train": {"loss": "sigmoid"}}}}
    assert model_targets([variants], ["zsclip-tiny"], derivable=["zsclip-tiny"]) == [
        ModelTarget("zsclip-tiny", 2, {}), ModelTarget("zsclip-tiny", 2, {"train": {"loss": "sigmoid"}})]
    per_model = {"models": ["lit-a", "lit-b"], "seeds": [0], "variants": {"one-hot": {}, "soft": {"train": {"loss": "cwcl"}}}}
    assert model_targets([per_model], ["lit-a", "lit-b"], derivable=["lit-a"]) == [       # lit-b: not derivable
        ModelTarget("lit-a", 0, {}), ModelTarget("lit-a", 0, {"train": {"loss": "cwcl"}}), ModelTarget("lit-b", 0, {})]


def test_prefetch_trains_missing_models_in_parallel_processes_and_skips_cached_ones(tmp_path, monkeypatch, capsys):
    """Two 1-thread processes train a model and two short variants; a second call finds them and trains nothing; the
    kernel's load then verifies and uses the folder the prefetch wrote."""
    from zslab.models import load_model
    from zslab.runner.prefetch import train_named_models
    from zslab.train.zoo import read_manifest

    monkeypatch.setenv("ZSLAB_CACHE", str(tmp_path))
    short = {"a": {"train": {"steps": 4, "warmup_steps": 1}}, "b": {"train": {"steps": 5, "warmup_steps": 1}}}
    runs = [{"model": "zsclip-micro", "seeds": [3], "variants": short}]      # the model itself and two variants
    trained = train_named_models(runs, progress=False, processes=2, cores=2)
    assert len(trained) == 3 and "0 of 3 models already in the cache" in capsys.readouterr().out
    assert train_named_models(runs, progress=False, processes=2, cores=2) == []
    assert "3 of 3 models already in the cache" in capsys.readouterr().out
    folders = sorted(p.name for p in (tmp_path / "models").iterdir() if not p.name.startswith("."))
    assert len(folders) == 3
    lm = load_model("zsclip-micro", seed=3, overrides=short["b"], progress=False)
    assert lm.manifest["train"]["steps"] == 5
    assert sorted(read_manifest(tmp_path / "models" / f)["train"]["steps"] for f in folders) == [4, 5, 200]
