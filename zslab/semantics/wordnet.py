"""WordNet 3.0 through nltk, from the Debian packages ``wordnet-base`` and ``wordnet-sense-index``.

Debian installs the WordNet database files under ``/usr/share/wordnet`` (``ZSLAB_WORDNET_DIR``
overrides the place). nltk 3.10 cannot read them there directly:

* nltk opens a ``lexnames`` file first, and Debian ships none. zslab writes it from the committed
  table ``data/wordnet/lexnames.tsv``: the 45 standard WordNet 3.0 lexicographer files, one per line as
  ``NN<TAB>name<TAB>syntactic category`` (1 noun, 2 verb, 3 adjective, 4 adverb), from ``00 adj.all 3``
  to ``44 adj.ppl 3`` (Debian's lexnames(5WN) man page).
* nltk only reads corpora under a folder listed in ``nltk.data.path`` and refuses symlinks that point
  outside it, so the database files are *copied* into ``<cache>/nltk_data/corpora/wordnet/`` and that
  ``nltk_data`` folder is appended to ``nltk.data.path``.

The copy is made once (files are re-copied only when their size changes) with atomic writes, so several
processes may prepare it at the same time.
"""
from __future__ import annotations

import os
import shutil
import threading
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..config import cache_dir, data_file
from ..errors import MissingAssetError, check_choice
from ..io import atomic_write

DEFAULT_WORDNET_DIR = "/usr/share/wordnet"
APT_INSTALL = "apt-get install -y wordnet-base wordnet-sense-index"
#: Files nltk cannot do without (from wordnet-base).
REQUIRED_FILES = tuple(f"{kind}.{pos}" for kind in ("data", "index") for pos in ("noun", "verb", "adj", "adv"))
#: Copied when present: exception lists, sense counts (wordnet-base) and the sense index (wordnet-sense-index).
OPTIONAL_FILES = ("noun.exc", "verb.exc", "adj.exc", "adv.exc", "cntlist.rev", "index.sense")

_lock = threading.Lock()
_reader = None
_reader_root: Optional[Path] = None


def wordnet_source_dir() -> Path:
    return Path(os.environ.get("ZSLAB_WORDNET_DIR") or DEFAULT_WORDNET_DIR)


def lexnames_table() -> List[Tuple[int, str, int]]:
    """The 45 lexicographer files as (number, name, syntactic category), from ``data/wordnet/lexnames.tsv``."""
    rows = []
    for line in data_file("wordnet", "lexnames.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            num, name, cat = line.split("\t")
            rows.append((int(num), name, int(cat)))
    return rows


def _copy_if_changed(src: Path, dst: Path) -> None:
    if dst.is_file() and dst.stat().st_size == src.stat().st_size:
        return
    atomic_write(dst, lambda p: shutil.copyfile(src, p))


def nltk_data_dir(source: Optional[Path] = None) -> Path:
    """Prepare ``<cache>/nltk_data/corpora/wordnet/`` from the Debian files and return ``<cache>/nltk_data``.

    Raises :class:`MissingAssetError` naming the apt packages if the WordNet files are not installed.
    The returned folder is appended to ``nltk.data.path`` (nltk refuses corpus roots outside it).
    """
    src = Path(source) if source else wordnet_source_dir()
    missing = [f for f in REQUIRED_FILES if not (src / f).is_file()]
    if missing:
        where = f"{src} lacks {missing}" if src.is_dir() else f"{src} does not exist"
        raise MissingAssetError(f"WordNet 3.0 database files not found ({where}). Install them with: "
                                f"{APT_INSTALL} (needs root; CI installs it), or point ZSLAB_WORDNET_DIR "
                                f"at a folder holding the WordNet dict files.")
    root = cache_dir("nltk_data")
    dest = root / "corpora" / "wordnet"
    dest.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        if (src / name).is_file():
            _copy_if_changed(src / name, dest / name)
    lex = data_file("wordnet", "lexnames.tsv")
    lex_text = lex.read_text(encoding="utf-8")
    target = dest / "lexnames"
    if not target.is_file() or target.read_text(encoding="utf-8") != lex_text:
        atomic_write(target, lambda p: p.write_text(lex_text, encoding="utf-8"))
    import nltk

    if str(root) not in [str(p) for p in nltk.data.path]:
        nltk.data.path.append(str(root))
    return root


def load_wordnet(source: Optional[Path] = None):
    """nltk's ``WordNetCorpusReader`` over the local WordNet 3.0 (cached per process; ~4 s to build).

    No Open Multilingual WordNet is attached (multilingual functions are unavailable; nltk's warning
    about that is silenced).
    """
    global _reader, _reader_root
    with _lock:
        root = nltk_data_dir(source)
        if _reader is None or _reader_root != root:
            from nltk.corpus.reader.wordnet import WordNetCorpusReader

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*multilingual functions are not available.*")
                _reader = WordNetCorpusReader(str(root / "corpora" / "wordnet"), None)
            _reader_root = root
        return _reader


def data_noun_digest(source: Optional[Path] = None) -> str:
    """SHA-256 (24 hex digits) of the installed ``data.noun`` (15 MB, ~30 ms), for cache keys."""
    import hashlib

    path = (Path(source) if source else wordnet_source_dir()) / "data.noun"
    if not path.is_file():
        nltk_data_dir(source)  # raises the helpful error
    h = hashlib.sha256()
    h.update(path.read_bytes())
    return h.hexdigest()[:24]


def class_synsets(dataset: str) -> Dict[str, str]:
    """``{class: synset name}`` of ``data/wordnet/class_synsets.json`` for ``dataset``, in label order."""
    from ..datasets.base import DataFileError, read_data_json
    from .attributes import expected_classes

    path, raw = read_data_json("wordnet", "class_synsets")
    table = raw.get("synsets", {})
    check_choice("dataset with a class→synset map", dataset, table)
    mapping = table[dataset]
    expected = expected_classes(dataset) or list(mapping)
    missing = [c for c in expected if c not in mapping]
    if missing:
        raise DataFileError(f"{path}: {dataset} classes without a synset: {missing}")
    return {c: mapping[c] for c in expected}


def class_glosses(dataset: str) -> Dict[str, str]:
    """``{class: WordNet definition}`` of each class's synset (:func:`class_synsets`)."""
    wn = load_wordnet()
    return {c: wn.synset(s).definition() for c, s in class_synsets(dataset).items()}
