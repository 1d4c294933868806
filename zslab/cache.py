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
from typing import Any, Callable, Dict, Mapping, Optional

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
