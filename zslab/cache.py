"""Content-addressed cache of computed tensors (embeddings, labels).

The key is a SHA-256 over a JSON description of everything that determines the content: model weights
(their hash), preprocessing, dataset identity, split and sample selection, and ``CACHE_FORMAT``. Entries
are written atomically and carry a checksum of their tensors; an entry that fails to load or verify is
reported with a warning and rebuilt, never silently used.
"""
from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import numpy as np
import torch

from .config import cache_dir
from .io import atomic_write

#: Bump when the meaning or layout of cached entries changes: every old entry then misses.
CACHE_FORMAT = 1

log = logging.getLogger(__name__)


def cache_key(description: Mapping[str, Any]) -> str:
    blob = json.dumps({**description, "cache_format": CACHE_FORMAT}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def tensor_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over named tensors (names, shapes, dtypes, bytes), independent of device and memory layout:
    the checksum of cache entries and the content fingerprint of model weights."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class TensorCache:
    """A folder of ``<key>.pt`` files, each ``{"description", "tensors", "checksum"}``."""

    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root) if root else cache_dir("embeddings")
        self.root.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def path(self, description: Mapping[str, Any]) -> Path:
        key = cache_key(description)
        return self.root / key[:2] / f"{key}.pt"

    def load(self, description: Mapping[str, Any]) -> Optional[Dict[str, torch.Tensor]]:
        """The cached tensors, or ``None`` if absent or damaged (a damaged entry is removed)."""
        path = self.path(description)
        if not path.exists():
            return None
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            tensors = entry["tensors"]
            if entry.get("checksum") != tensor_digest(tensors):
                raise ValueError("checksum mismatch")
        except Exception as exc:  # unreadable, truncated, tampered: all mean "rebuild"
            warnings.warn(f"embedding cache entry {path.name} is corrupt ({type(exc).__name__}: {exc}); "
                          "recomputing it", RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return None
        return tensors

    def save(self, description: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> Path:
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        entry = {"description": json.dumps(description, sort_keys=True, default=str), "tensors": tensors,
                 "checksum": tensor_digest(tensors)}
        return atomic_write(self.path(description), lambda p: torch.save(entry, p))

    def get_or_compute(self, description: Mapping[str, Any],
                       compute: Callable[[], Mapping[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        cached = self.load(description)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        tensors = dict(compute())
        self.save(description, tensors)
        return tensors


class RowCache:
    """Per-row results of one source (a frozen backbone's features of one full dataset), kept in shards so
    that every subset of that source shares them.

    Subsets drawn with different seeds overlap (six 200-per-class draws of a 1,000-per-class split cover
    most of it), and a whole-split subset is a superset of a smaller one: keyed per subset, each would
    encode its images again. Here the key is the *source* (``description``), each shard holds
    ``{"rows", "tensors", "checksum"}`` for some of its rows, and a request computes only the rows no
    shard has yet, then writes them as a new shard (atomically; two processes computing the same rows
    write the same file). This is only exact when a row's result does not depend on which other rows it
    was computed with: :func:`zslab.assets.efficientnet_features` pads every batch to its full size for
    that reason. A shard that fails to load or verify is removed with a warning and its rows recomputed.
    """

    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root) if root else cache_dir("embeddings") / "rows"
        self.rows_computed = 0
        self.rows_read = 0

    def folder(self, description: Mapping[str, Any]) -> Path:
        return self.root / cache_key(description)

    def _shards(self, folder: Path):
        for path in sorted(folder.glob("*.pt")):
            try:
                entry = torch.load(path, map_location="cpu", weights_only=True)
                rows, tensors = entry["rows"], entry["tensors"]
                if entry.get("checksum") != tensor_digest({**tensors, "__rows__": rows}):
                    raise ValueError("checksum mismatch")
            except Exception as exc:
                warnings.warn(f"row cache shard {path} is corrupt ({type(exc).__name__}: {exc}); "
                              "recomputing its rows", RuntimeWarning, stacklevel=3)
                path.unlink(missing_ok=True)
                continue
            yield rows.numpy(), tensors

    def get_or_compute(self, description: Mapping[str, Any], rows: Sequence[int],
                       compute: Callable[[np.ndarray], Mapping[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
        """``{name: tensor[len(rows), ...]}`` for the source's ``rows`` (in that order, repeats allowed).

        ``compute(positions)`` returns the tensors of ``rows[positions]``, one row each, in that order; it
        is called once, with the positions of the rows no shard holds (none: not called).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1 or (len(rows) and rows.min() < 0):
            raise ValueError(f"rows must be a 1-D array of non-negative row numbers, got shape {rows.shape}")
        folder = self.folder(description)
        known_rows, known = [], []
        for shard_rows, tensors in self._shards(folder):
            known_rows.append(shard_rows)
            known.append(tensors)
        top = int(max([rows.max(initial=-1)] + [r.max(initial=-1) for r in known_rows])) + 1
        where = np.full(top, -1, dtype=np.int64)  # source row -> position in the concatenated shards
        offset = 0
        for shard_rows in known_rows:
            fresh = where[shard_rows] < 0  # rows two shards both hold are identical: keep the first
            where[shard_rows[fresh]] = offset + np.flatnonzero(fresh)
            offset += len(shard_rows)
        absent = where[rows] < 0
        self.rows_read += int(len(rows) - absent.sum())
        missing_rows, first = np.unique(rows[absent], return_index=True)
        if len(missing_rows):
            positions = np.flatnonzero(absent)[first]
            computed = {k: v.detach().cpu().contiguous() for k, v in compute(positions).items()}
            for name, value in computed.items():
                if len(value) != len(positions):
                    raise ValueError(f"compute returned {len(value)} rows of {name!r} for {len(positions)} "
                                     "requested")
            entry = {"description": json.dumps(description, sort_keys=True, default=str),
                     "rows": torch.from_numpy(missing_rows), "tensors": computed,
                     "checksum": tensor_digest({**computed, "__rows__": torch.from_numpy(missing_rows)})}
            name = hashlib.sha256(missing_rows.astype("<i8").tobytes()).hexdigest()[:32]
            atomic_write(folder / f"{name}.pt", lambda p: torch.save(entry, p))
            where[missing_rows] = offset + np.arange(len(missing_rows))
            known_rows.append(missing_rows)
            known.append(computed)
            self.rows_computed += len(missing_rows)
        if not known:  # no rows asked and none stored: nothing to say about the tensors' shapes
            return {}
        stacked = {name: torch.cat([t[name] for t in known]) for name in known[-1]}
        index = torch.from_numpy(where[rows])
        return {name: value[index] for name, value in stacked.items()}
