"""Errors that tell the user what was wrong and what would have been right."""
from __future__ import annotations

from typing import Any, Iterable


class ZslabError(Exception):
    """Base class for every error zslab raises on purpose."""


class InvalidChoiceError(ZslabError, ValueError):
    """A value is not one of the allowed choices; the message lists them."""


class OfflineError(ZslabError, RuntimeError):
    """A download was attempted while ZSLAB_OFFLINE=1."""


class MissingAssetError(ZslabError, FileNotFoundError):
    """A local file a loader needs is not there; the message says how to supply it."""


def check_choice(what: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is in ``choices``, else raise naming the bad value and the valid ones."""
    choices = list(choices)
    if value not in choices:
        shown = ", ".join(repr(c) for c in sorted(choices, key=str))
        raise InvalidChoiceError(f"unknown {what} {value!r}; valid choices: {shown}")
    return value
