"""Readers of the real on-disk formats: CIFAR-10/100 python pickles and IDX files (MNIST, Fashion-MNIST).

These read the files as their authors publish them, without checksums against the official archives, so
that small test files in the same formats load too. Every reader checks shapes and sizes and raises
:class:`DatasetFormatError` naming the file and what is wrong with it.
"""
from __future__ import annotations

import builtins
import gzip
import importlib
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Dict, List, Sequence, Tuple

import numpy as np

from ..errors import ZslabError

__all__ = ["DatasetFormatError", "read_cifar_pickle", "read_cifar_batches", "read_cifar_meta",
           "read_idx", "find_idx", "IDX_DTYPES", "CIFAR10_FILES", "CIFAR100_FILES", "MNIST_FILES"]


class DatasetFormatError(ZslabError, ValueError):
    """A dataset file is truncated, malformed or inconsistent with its companions."""


# --------------------------------------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------------------------------------
CIFAR10_FILES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"], "meta": "batches.meta"}
CIFAR100_FILES = {"train": ["train"], "test": ["test"], "meta": "meta"}


#: How pickle's protocol 2 may spell latin-1 when it rebuilds bytes (Python writes "latin1").
_LATIN1_NAMES = frozenset({"latin1", "latin-1", "iso-8859-1", "iso8859-1"})
#: Module names that Python 2 pickles use for what Python 3 keeps elsewhere.
_MODULE_ALIASES = {"__builtin__": "builtins"}
#: Builtins a CIFAR batch may name: Python 3 pickles rebuild empty bytes, bytearrays, sets and complex
#: numbers through these; dicts, lists, str, bytes and ints need no global at all.
_CIFAR_BUILTINS = frozenset({"bytes", "bytearray", "set", "frozenset", "complex"})
#: numpy's array and scalar reconstruction, under numpy 1 (``numpy.core``) and numpy 2 (``numpy._core``)
#: names; ``_frombuffer`` is what pickle protocol 5 uses for arrays.
_CIFAR_NUMPY = frozenset({("numpy", "ndarray"), ("numpy", "dtype")}
                         | {(f"numpy.{core}.multiarray", name) for core in ("core", "_core")
                            for name in ("_reconstruct", "scalar")}
                         | {(f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")})


def _allowed_globals() -> List[str]:
    """The globals a CIFAR pickle may name, for error messages."""
    return (sorted(f"builtins.{n}" for n in _CIFAR_BUILTINS) + ["_codecs.encode (latin-1 only)"]
            + sorted(f"{m}.{n}" for m, n in _CIFAR_NUMPY))


def _numpy_global(module: str, name: str) -> Any:
    """An allowed numpy global, from ``numpy._core`` where this numpy has it (numpy 2 warns on
    ``numpy.core``), else from ``numpy.core`` (numpy 1)."""
    if module == "numpy":
        return getattr(np, name)
    tail = module.split(".", 2)[2]                      # "multiarray" or "numeric"
    for candidate in (f"numpy._core.{tail}", f"numpy.core.{tail}"):
        try:
            return getattr(importlib.import_module(candidate), name)
        except (ImportError, AttributeError):
            continue
    raise DatasetFormatError(f"numpy {np.__version__} has neither numpy._core.{tail}.{name} nor "
                             f"numpy.core.{tail}.{name}")


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only what CIFAR python batches contain.

    ``pickle.load`` calls whatever callable a file names, so a dataset folder from an untrusted source
    could run code on load. This one resolves only the globals CIFAR-10/100 files need (numpy arrays and
    scalars, a few builtins, and latin-1 ``_codecs.encode``, with which Python 3 pickles bytes at
    protocol 2); any other global raises :class:`DatasetFormatError` before it is called.
    """

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="bytes")       # Python 2 str -> bytes, as the CIFAR site's files
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        canonical = _MODULE_ALIASES.get(module, module)
        if canonical == "builtins" and name in _CIFAR_BUILTINS:
            return getattr(builtins, name)
        if (canonical, name) == ("_codecs", "encode"):
            return self._latin1_encode
        if (canonical, name) in _CIFAR_NUMPY:
            return _numpy_global(canonical, name)
        raise DatasetFormatError(
            f"{self.path}: refusing to unpickle the global {canonical}.{name}: a CIFAR batch holds only dicts, "
            f"lists, strings, numbers and numpy arrays, so this file is not one (or was tampered with); "
            f"allowed globals: {', '.join(_allowed_globals())}")

    def _latin1_encode(self, text: Any, encoding: str = "utf-8") -> bytes:
        """``_codecs.encode`` as protocol-2 pickles of bytes use it: ``encode(str, "latin1")``, nothing else."""
        if not isinstance(text, str) or str(encoding).lower().replace("_", "-") not in _LATIN1_NAMES:
            raise DatasetFormatError(f"{self.path}: refusing _codecs.encode({type(text).__name__}, {encoding!r}): "
                                     f"CIFAR pickles use it only to rebuild bytes from a latin-1 str")
        return text.encode("latin-1")


def read_cifar_pickle(path: Path) -> Dict[str, Any]:
    """Unpickle a CIFAR file (written by Python 2: ``encoding="bytes"``); keys come back as ``str``.

    Uses :class:`_CifarUnpickler`: a file naming any global other than numpy's array reconstruction and a
    few builtins raises :class:`DatasetFormatError` without running it.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = _CifarUnpickler(f, path).load()
    except DatasetFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            LookupError) as e:                      # LookupError: IndexError, KeyError (bad memo, stack)
        raise DatasetFormatError(f"{path}: not a readable CIFAR pickle ({type(e).__name__}: {e})") from e
    if not isinstance(raw, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict, got {type(raw).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in raw.items()}


def _label_key(d: Dict[str, Any], path: Path, keys: Sequence[str]) -> str:
    for key in keys:
        if key in d:
            return key
    raise DatasetFormatError(f"{path}: none of the keys {list(keys)} present (keys: {sorted(d)})")


def read_cifar_batches(paths: Sequence[Path], label_keys: Sequence[str] = ("labels",)
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Concatenate CIFAR batches: ``data`` N×3072 (R, G, B planes of 32×32, row-major) → N×32×32×3 uint8."""
    images: List[np.ndarray] = []
    labels: List[np.ndarray] = []
    for path in paths:
        d = read_cifar_pickle(path)
        if "data" not in d:
            raise DatasetFormatError(f"{path}: no 'data' entry (keys: {sorted(d)})")
        data = np.asarray(d["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DatasetFormatError(f"{path}: 'data' must be uint8 N×3072, got {data.dtype} {data.shape}")
        y = np.asarray(d[_label_key(d, path, label_keys)], dtype=np.int64)
        if y.ndim != 1 or len(y) != len(data):
            raise DatasetFormatError(f"{path}: {len(data)} images but labels of shape {y.shape}")
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(y)
    if not images:
        raise DatasetFormatError("no CIFAR batch files given")
    return np.ascontiguousarray(np.concatenate(images)), np.concatenate(labels)


def read_cifar_meta(path: Path, keys: Sequence[str] = ("label_names",)) -> List[str]:
    """Class names of a CIFAR ``batches.meta`` / ``meta`` file, as str."""
    d = read_cifar_pickle(path)
    names = d[_label_key(d, Path(path), keys)]
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


# --------------------------------------------------------------------------------------------------------
# IDX (http://yann.lecun.com/exdb/mnist/ format: magic 0x0000 <dtype> <ndim>, ndim big-endian uint32 dims)
# --------------------------------------------------------------------------------------------------------
IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    if head == b"\x1f\x8b":  # gzip, whatever the file is called
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (EOFError, OSError, zlib.error) as e:
            raise DatasetFormatError(f"{path}: truncated or corrupt gzip file ({e})") from e
    return path.read_bytes()


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into an array of its declared dtype and shape.

    Raises :class:`DatasetFormatError` if the magic number is wrong, the header is cut short, or the data
    is shorter (truncated) or longer than the dimensions say.
    """
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise DatasetFormatError(f"{path}: truncated IDX file: {len(buf)} bytes, shorter than the 4-byte magic")
    zero, code, ndim = struct.unpack(">HBB", buf[:4])
    if zero != 0 or code not in IDX_DTYPES or ndim == 0:
        raise DatasetFormatError(
            f"{path}: not an IDX file (magic {buf[:4].hex()}; expected 0000 then a type code in "
            f"{[hex(c) for c in IDX_DTYPES]} and a dimension count >= 1)")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DatasetFormatError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, "
                                 f"file has {len(buf)}")
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(buf) - header
    if found < expected:
        raise DatasetFormatError(f"{path}: truncated IDX file: dimensions {list(dims)} of {dtype} need "
                                 f"{expected} data bytes, found only {found}")
    if found > expected:
        raise DatasetFormatError(f"{path}: malformed IDX file: {found - expected} bytes beyond the "
                                 f"{expected} that dimensions {list(dims)} of {dtype} need")
    arr = np.frombuffer(buf, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(dims)
    return arr if dtype.isnative or dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


def _idx_variants(stem: str) -> List[str]:
    dotted = stem.replace("-idx", ".idx")  # some mirrors write t10k-images.idx3-ubyte
    names = [stem, stem + ".gz"]
    if dotted != stem:
        names += [dotted, dotted + ".gz"]
    return names


def find_idx(folder: Path, stem: str) -> Path | None:
    """The file ``stem`` (or ``stem.gz``) in ``folder``, or ``None``; the raw file wins over the .gz."""
    for name in _idx_variants(stem):
        candidate = Path(folder) / name
        if candidate.is_file():
            return candidate
    return None
