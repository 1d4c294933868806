"""What zslab's model zoos share: entries read from a YAML file under ``data/models``, a content key per
(entry, seed), training into the cache at most once per machine, atomically, and verifying what is reused.

Every trained folder carries a manifest (``zslab_manifest.json``) that records, besides the training
details, the size and SHA-256 of every file the training wrote (``"files"``). A cached folder is reused
only if its files still match; a damaged one (a flipped byte, a truncated or missing file, an unreadable
manifest, or a manifest without hashes from an older zslab) is reported with a ``RuntimeWarning``,
deleted and retrained: never loaded silently.
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import json
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence

import yaml

from ..config import cache_dir, data_file
from ..errors import ZslabError, check_choice

MANIFEST_FILE = "zslab_manifest.json"
#: The manifest key listing ``{relative path: {"bytes": size, "sha256": hex}}`` of a folder's files.
FILES_KEY = "files"


class ModelIntegrityError(ZslabError, RuntimeError):
    """A trained model folder does not match the hashes in its manifest."""


class ModelZoo:
    """``data/models/<file>``: name → entry (architecture, data, training settings).

    ``weight_files`` are the files every trained folder of this zoo must have (and have hashed).
    """

    def __init__(self, kind: str, file: str, format_version: int, weight_files: Sequence[str] = ()):
        self.kind, self.file, self.format_version = kind, file, format_version
        self.weight_files = tuple(weight_files)

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

    def folder(self, name: str, entry: Dict[str, Any], seed: int) -> Path:
        """Where (``name``, ``entry``, ``seed``) lives in the cache, trained or not."""
        return cache_dir("models") / f"{name}-seed{seed}-{self.key(name, entry, seed)}"

    def build_once(self, name: str, entry: Dict[str, Any], seed: int,
                   build: Callable[[Path], Dict[str, Any]]) -> Path:
        """The verified cache folder of (``name``, ``entry``, ``seed``), calling ``build(tmp_folder) ->
        manifest`` if it is absent or damaged.

        The folder is built in a temporary sibling, its files hashed into the manifest, and renamed into
        place only when complete, so an interrupted training never leaves a folder that looks finished.
        Builders of one key in several processes take turns (a file lock): the first trains, the others
        then find its folder and verify it.
        A cached folder that fails :func:`check_folder` is reported (``RuntimeWarning``), deleted and
        rebuilt. Each file is hashed once per call.
        """
        key = self.key(name, entry, seed)
        final = self.folder(name, entry, seed)
        with _build_lock(final):  # one builder per key across processes (Dask workers share the cache)
            if final.exists():
                problem = check_folder(final, key, self.weight_files)
                if problem is None:
                    return final
                warnings.warn(f"{self.kind} {name!r} (seed {seed}): the cached folder {final} is damaged "
                              f"({problem}); deleting it and retraining", RuntimeWarning, stacklevel=2)
                _discard(final)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
            try:
                manifest = dict(build(tmp))
                absent = [f for f in self.weight_files if not (tmp / f).is_file()]
                if absent:
                    raise RuntimeError(f"training {self.kind} {name!r} wrote no {', '.join(absent)}")
                manifest.update(cache_key=key, **{FILES_KEY: hash_files(tmp)})
                (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
                if final.exists():  # a partial folder of an older zslab, which took no lock
                    _discard(final)
                tmp.rename(final)
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return final


@contextlib.contextmanager
def _build_lock(final: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``<cache>/locks/<folder>.lock``: a second process that wants the same
    model waits for the first to finish and then finds its folder, instead of training it again. The OS
    releases the lock if its holder dies, so a crashed training never blocks the next one. Lock files stay
    (deleting one while another process waits on it would let a third lock a new file)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(cache_dir("locks") / f"{final.name}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_manifest(folder: Path) -> Dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST_FILE).read_text())


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def hash_files(folder: Path) -> Dict[str, Dict[str, Any]]:
    """``{relative path: {"bytes", "sha256"}}`` of every file under ``folder`` except the manifest."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): {"bytes": p.stat().st_size, "sha256": file_sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST_FILE}


def check_folder(folder: Path, key: Optional[str] = None, required: Sequence[str] = ()) -> Optional[str]:
    """``None`` if ``folder``'s files match the sizes and SHA-256 hashes in its manifest, else what failed.

    ``key``: the cache key the manifest must carry; ``required``: files that must be among the hashed ones.
    Sizes are compared before hashing, so a truncated file costs nothing to find.
    """
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except FileNotFoundError:
        return f"no {MANIFEST_FILE}"
    except (OSError, ValueError) as exc:
        return f"unreadable {MANIFEST_FILE} ({type(exc).__name__}: {exc})"
    if not isinstance(manifest, dict):
        return f"{MANIFEST_FILE} is not a JSON object"
    if key is not None and manifest.get("cache_key") != key:
        return f"{MANIFEST_FILE} has cache key {manifest.get('cache_key')!r}, expected {key!r}"
    files = manifest.get(FILES_KEY)
    if not isinstance(files, dict) or not files:
        return f"{MANIFEST_FILE} records no file hashes (written by an older zslab), so its weights cannot be verified"
    unlisted = [f for f in required if f not in files]
    if unlisted:
        return f"{MANIFEST_FILE} records no hash of {', '.join(unlisted)}"
    for rel, record in sorted(files.items()):
        path = folder / rel
        if not path.is_file():
            return f"{rel} is missing"
        try:
            size = path.stat().st_size
            if size != record.get("bytes"):
                return f"{rel} has {size} bytes, expected {record.get('bytes')} (truncated or replaced)"
            digest = file_sha256(path)
        except (OSError, AttributeError) as exc:
            return f"{rel} cannot be read ({type(exc).__name__}: {exc})"
        if digest != record.get("sha256"):
            return f"{rel} has SHA-256 {digest[:16]}…, expected {str(record.get('sha256'))[:16]}… (content changed)"
    return None


def verify_folder(folder: Path, required: Sequence[str] = ()) -> Dict[str, Any]:
    """The manifest of a trained folder whose files match it; else :class:`ModelIntegrityError`."""
    problem = check_folder(folder, required=required)
    if problem is not None:
        raise ModelIntegrityError(f"{folder}: {problem}. A zslab model zoo retrains a damaged model on its next "
                                  f"load_model(); a copied folder has to be copied again")
    return read_manifest(folder)


def _discard(folder: Path) -> None:
    """Move ``folder`` out of the way (atomically, so no reader sees half of it), then delete it."""
    trash = folder.with_name(f".{folder.name}.discarded-{uuid.uuid4().hex[:8]}")
    try:
        folder.rename(trash)
    except FileNotFoundError:  # someone else removed it already
        return
    shutil.rmtree(trash, ignore_errors=True)
