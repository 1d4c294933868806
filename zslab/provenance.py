"""Library versions and git revision, recorded with every result."""
from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Dict

TRACKED_PACKAGES = ("zslab", "torch", "torchvision", "open_clip_torch", "numpy", "papermill")


@lru_cache(maxsize=None)
def git_revision(repo: str | None = None) -> str:
    """Short commit hash, with ``+dirty`` when the working tree differs; ``unknown`` outside git."""
    cwd = repo or str(Path(__file__).resolve().parent.parent)
    try:
        rev = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> Dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
