"""The papermill runner behind ``zslab run``: parameters, batch execution, and the report.

* :func:`notebook_parameters` / :func:`validate_overrides` — a notebook's parameters and override checks;
* :func:`run_notebooks` — execute notebooks into a run folder (resumable, one status file each);
* :func:`collect_results` / :func:`write_report` — ``results.csv`` and a self-contained ``report.html``.
"""
from .execute import MODES, NotebookResult, plan_runs, read_status, run_notebooks
from .params import (CliString, NotebookParameter, ParameterError, notebook_parameters, parameter_table,
                     validate_overrides, validate_value)
from .report import collect_results, write_report

__all__ = ["MODES", "NotebookResult", "plan_runs", "read_status", "run_notebooks", "CliString",
           "NotebookParameter", "ParameterError", "notebook_parameters", "parameter_table", "validate_overrides",
           "validate_value", "collect_results", "write_report"]
