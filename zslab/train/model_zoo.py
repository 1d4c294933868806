"""What zslab's model zoos share: entries read from a YAML file under ``data/models``, a content key per
(entry, seed), and training into the cache at most once per machine, atomically."""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List

import yaml

from ..config import cache_dir, data_file
from ..errors import check_choice

MANIFEST_FILE = "zslab_manifest.json"


class ModelZoo:
    """``data/models/<file>``: name → entry (architecture, data, training settings)."""

    def __init__(self, kind: str, file: str, format_version: int):
        self.kind, self.file, self.format_version = kind, file, format_version

    def entries(self) -> Dict[str, Dict[str, Any]]:
        return yaml.safe_load(data_file("models", self.file).read_text())

    def names(self) -> List[str]:
        return sorted(self.entries())

    def entry(self, name: str) -> Dict[str, Any]:
        """A copy of ``name``'s entry; an unknown name raises, listing the valid ones."""
        entries = self.entries()
        check_choice(self.kind, name, entries)
        return copy.deepcopy(entries[name])

    def key(self, name: str, entry: Dict[str, Any], seed: int) -> str:
        """Content key: the entry, the seed, the world's vocabulary and the zoo's format version."""
        from ..world import load_world_spec

        blob = json.dumps({"name": name, "entry": entry, "seed": seed, "world": load_world_spec().fingerprint(),
                           "format": self.format_version}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def build_once(self, name: str, entry: Dict[str, Any], seed: int,
                   build: Callable[[Path], Dict[str, Any]]) -> Path:
        """The cache folder of (``name``, ``entry``, ``seed``), calling ``build(tmp_folder) -> manifest`` if it
        is absent. The folder is built in a temporary sibling and renamed into place only when complete,
        so an interrupted training never leaves a folder that looks finished."""
        key = self.key(name, entry, seed)
        final = cache_dir("models") / f"{name}-seed{seed}-{key}"
        if (final / MANIFEST_FILE).is_file():
            return final
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
        try:
            manifest = {**build(tmp), "cache_key": key}
            (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
            if final.exists():  # a partial folder from an older crash: replace it
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return final


def read_manifest(folder: Path) -> Dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST_FILE).read_text())
