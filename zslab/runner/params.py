"""A notebook's parameters (its ``parameters``-tagged cell) and the validation of overrides.

Parameters are read with ``papermill.inspect_notebook``; each gets a type — from its annotation
(``lr: float = 0.01``) when there is one, else from its default's literal value — and optional choices
from its help comment: ``mode = "offline"  # data source; one of: offline, real``. The list of choices
runs to the end of the comment (or to a ``;`` or ``)``); for a list parameter every element must be a
choice.

Overrides are checked against that before anything runs. Values typed on the command line arrive as
:class:`CliString` and are parsed with ``yaml.safe_load`` (``"[0,1]"`` → list, ``"0.01"`` → float,
``"real"`` → str); other values are taken as they are.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import yaml

from ..errors import InvalidChoiceError, ZslabError


class ParameterError(ZslabError, ValueError):
    """An override does not fit its parameter; the message names parameter, value and what would fit."""


class CliString(str):
    """A parameter value as typed on the command line, to be parsed against the parameter's type."""


# type name -> (accepts(value), normalise(value)); "any" is a None default or a non-literal one.
_TYPES: Dict[str, Tuple[Callable[[Any], bool], Callable[[Any], Any]]] = {
    "int": (lambda v: isinstance(v, int) and not isinstance(v, bool), int),
    "float": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), float),
    "str": (lambda v: isinstance(v, str), str),
    "bool": (lambda v: isinstance(v, bool), bool),
    "list": (lambda v: isinstance(v, (list, tuple)), list),
    "dict": (lambda v: isinstance(v, dict), dict),
    "any": (lambda v: True, lambda v: v),
}
_TYPE_ALIASES = {"int": "int", "float": "float", "str": "str", "bool": "bool", "list": "list",
                 "tuple": "list", "sequence": "list", "dict": "dict", "mapping": "dict", "any": "any"}
_LITERAL_TYPES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "list",
                  dict: "dict", type(None): "any"}
_CHOICES = re.compile(r"one of:\s*([^;)]+)", re.IGNORECASE)


@dataclass(frozen=True)
class NotebookParameter:
    name: str
    type: str                      # int, float, str, bool, list, dict or any
    default: Any                   # the default's value when it is a literal, else its source text
    default_source: str            # the default as written in the cell
    help: str = ""
    choices: Optional[Tuple[Any, ...]] = None
    nullable: bool = False         # None accepted (None default or Optional[...] annotation)

    def describe_type(self) -> str:
        return self.type + (" or None" if self.nullable and self.type != "any" else "")


def notebook_parameters(path: str | Path) -> Dict[str, NotebookParameter]:
    """The parameters of the notebook at ``path``, in cell order."""
    import papermill

    raw = papermill.inspect_notebook(str(path))
    return {name: _parameter(p) for name, p in raw.items()}


def _parameter(p: Mapping[str, Any]) -> NotebookParameter:
    source = str(p.get("default", ""))
    try:
        default = ast.literal_eval(source)
        literal = True
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        default, literal = source, False
    typ, nullable = _annotation_type(str(p.get("inferred_type_name") or "None"))
    if typ is None:
        typ = _LITERAL_TYPES.get(type(default), "any") if literal else "any"
    nullable = nullable or (literal and default is None)
    help_text = str(p.get("help") or "")
    return NotebookParameter(name=str(p["name"]), type=typ, default=default, default_source=source,
                             help=help_text, choices=_choices(help_text, typ), nullable=nullable)


def _annotation_type(annotation: str) -> Tuple[Optional[str], bool]:
    """``"Optional[float]"`` → ("float", True); ``"List[int]"`` → ("list", False); unknown → (None, False)."""
    text = annotation.strip().replace("typing.", "")
    if text in ("", "None"):
        return None, False
    nullable = False
    m = re.fullmatch(r"Optional\[(.*)\]", text)
    if m:
        text, nullable = m.group(1), True
    parts = [t.strip() for t in text.split("|")]
    if "None" in parts:
        nullable = True
        parts.remove("None")
    if len(parts) != 1:
        return None, nullable
    base = parts[0].split("[", 1)[0].strip().lower()
    return _TYPE_ALIASES.get(base), nullable


def _choices(help_text: str, typ: str) -> Optional[Tuple[Any, ...]]:
    m = _CHOICES.search(help_text)
    if not m:
        return None
    items = [i.strip().strip("'\"") for i in m.group(1).strip().rstrip(".").split(",")]
    items = [i for i in items if i]
    if typ in ("str", "list"):
        return tuple(items)
    return tuple(_safe_yaml(i, i) for i in items)


def _safe_yaml(text: str, fallback: Any) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return fallback


def validate_value(param: NotebookParameter, value: Any, notebook: str = "") -> Any:
    """``value`` (parsed if a :class:`CliString`) normalised to ``param``'s type; raises if it does not fit."""
    where = f"parameter {param.name!r}" + (f" of notebook {notebook!r}" if notebook else "")
    accepts, normalise = _TYPES[param.type]
    if isinstance(value, CliString):
        text = str(value)
        value = _safe_yaml(text, text)
        if param.type == "str" and not isinstance(value, str) and not (value is None and param.nullable):
            value = text                     # -p tag 123 / -p tag yes: a str parameter keeps the text
        elif not accepts(value) and not (value is None and param.nullable):
            try:                             # what YAML reads as text but Python as a number: 1e-3
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                pass
    if value is None and param.nullable:
        return None
    if not accepts(value):
        raise ParameterError(f"{where}: value {value!r} is not of type {param.describe_type()} "
                             f"(default {param.default_source})")
    value = normalise(value)
    if param.choices is not None:
        for item in (value if param.type == "list" else [value]):
            if item not in param.choices:
                raise InvalidChoiceError(f"{where}: value {item!r} is not one of: "
                                         + ", ".join(str(c) for c in param.choices))
    return value


def validate_overrides(params: Mapping[str, NotebookParameter], overrides: Mapping[str, Any],
                       notebook: str = "") -> Dict[str, Any]:
    """Check every override against ``params``; returns them normalised. Raises on the first bad one."""
    out: Dict[str, Any] = {}
    for name, value in overrides.items():
        if name not in params:
            valid = ", ".join(params) or "(none: the notebook has no parameters cell)"
            raise InvalidChoiceError(f"{'notebook ' + repr(notebook) if notebook else 'the notebook'} has no "
                                     f"parameter {name!r}; valid parameters: {valid}")
        out[name] = validate_value(params[name], value, notebook)
    return out


def effective_parameters(params: Mapping[str, NotebookParameter], overrides: Mapping[str, Any]) -> Dict[str, Any]:
    """Every parameter's value in a run: the override if given, else the default (its text if not a literal)."""
    return {name: (overrides[name] if name in overrides else p.default) for name, p in params.items()}


def parameter_table(params: Mapping[str, NotebookParameter]) -> str:
    """A plain-text table: name, type, default, choices, help."""
    rows = [("name", "type", "default", "choices", "help")]
    for p in params.values():
        rows.append((p.name, p.describe_type(), p.default_source,
                     ", ".join(str(c) for c in p.choices) if p.choices else "", p.help))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 4)
    return "\n".join(line.rstrip() for line in lines)
