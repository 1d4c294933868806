"""Where zslab keeps generated files, and whether it may touch the network.

Everything zslab generates (datasets, trained models, embeddings) lives under one cache directory,
``ZSLAB_CACHE`` (default ``~/.cache/zslab``), never inside the git checkout. ``ZSLAB_OFFLINE=1`` turns
every download into an immediate, explicit error: tests and the main job set it so nothing can hang on
a network that is not there.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import OfflineError

#: The repository's committed manifests (templates, class names, paper metadata).
DATA_DIR = Path(os.environ.get("ZSLAB_DATA", Path(__file__).resolve().parent.parent / "data"))


def cache_dir(*parts: str) -> Path:
    """The cache root (or a sub-folder of it), created on demand."""
    root = Path(os.environ.get("ZSLAB_CACHE") or Path.home() / ".cache" / "zslab").expanduser()
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when ``ZSLAB_OFFLINE`` is set to a true value (1, true, yes)."""
    return os.environ.get("ZSLAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def apply_offline_env() -> None:
    """Make the libraries underneath (huggingface_hub, transformers) refuse downloads too."""
    if offline():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def require_online(what: str, how_to_supply_locally: str) -> None:
    """Raise :class:`OfflineError` at once if a download of ``what`` is about to start offline."""
    if offline():
        raise OfflineError(
            f"ZSLAB_OFFLINE=1: refusing to download {what}. {how_to_supply_locally} "
            "(or unset ZSLAB_OFFLINE on a machine with internet)."
        )


def data_file(*parts: str) -> Path:
    """Path of a committed manifest under ``data/``; raises with the folder's contents if absent."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        siblings = sorted(p.name for p in path.parent.glob("*")) if path.parent.exists() else []
        raise FileNotFoundError(f"no data file {path}; files there: {siblings}")
    return path
