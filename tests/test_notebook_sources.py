"""Committed notebooks match their reviewed sources (notebooks/<id>.py), carry no outputs, and have a
typed `parameters` cell (so papermill --help-notebook documents it)."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))
spec = importlib.util.spec_from_file_location("make_notebook", ROOT / "tools" / "make_notebook.py")
make_notebook = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_notebook)


def _cells(nb):
    return [(c.cell_type, c.source, tuple(c.metadata.get("tags", []))) for c in nb.cells]


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    assert SOURCES
    assert {p.stem for p in SOURCES} == {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_generated_from_its_source_without_outputs(source):
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    assert _cells(committed) == _cells(make_notebook.build(source)), "run `make notebooks` after editing the .py"
    assert all(not c.get("outputs") and not c.get("execution_count") for c in committed.cells if c.cell_type == "code")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_parameters_cell_is_typed_and_commented(source):
    nb = make_notebook.build(source)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for line in params[0].source.splitlines():
        node = ast.parse(line.split("  #")[0]).body[0]
        assert isinstance(node, ast.AnnAssign), f"parameter without a type annotation: {line}"
        assert "  # " in line, f"parameter without a comment: {line}"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebooks_define_nothing_and_draw_nothing_by_hand(source):
    """Logic and figures live in zslab, with tests; a notebook only calls them."""
    tree = ast.parse(source.read_text())
    defined = [getattr(n, "name", "lambda") for n in ast.walk(tree)
               if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
    assert not defined, f"{source.name} defines {defined}: move them into zslab/"
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not imported & {"matplotlib", "seaborn"}, f"{source.name} draws by hand: use zslab.plotting"
