"""Write a notebook from a list of (cell type, source) pairs: notebooks are reviewed as this source.

Usage: python tools/make_notebook.py notebooks/<id>.py  →  notebooks/<id>.ipynb
Cells in the .py are separated by lines '# %% [markdown]' / '# %%' / '# %% parameters' (jupytext-like).
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def build(py_path: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(text)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            cells.append(cell)

    for line in py_path.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind = "markdown" if "[markdown]" in line else "parameters" if "parameters" in line else "code"
            lines = []
        else:
            lines.append(line)
    flush()
    nb.cells = cells
    return nb


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        src = Path(arg)
        nbformat.write(build(src), src.with_suffix(".ipynb"))
        print("wrote", src.with_suffix(".ipynb"))
