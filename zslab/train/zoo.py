"""zslab's own offline CLIP models: trained once per machine on zsworld, cached by content, saved in
open_clip's ``local-dir:`` layout so that open_clip and CLIP_benchmark load them unchanged."""
from __future__ import annotations

import copy
import functools
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import open_clip
import torch
from safetensors.torch import save_file

from ..world import load_world_spec, make_corpus
from ..world.corpus import world_setting
from ..errors import InvalidChoiceError
from .contrastive import TrainConfig, train_contrastive
from .label_data import check_label_data, mix_training_data
from .model_zoo import MANIFEST_FILE, ModelZoo, read_manifest  # noqa: F401  (re-exported)

#: Bump when training code changes what a config produces: old cached models are then not reused.
ZOO_FORMAT = 2
OFFLINE_TAG = "zsworld"
CAPTIONS_PER_IMAGE = 4
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"


#: Cached folders are verified against the SHA-256 of these files (recorded in the manifest) before reuse.
OFFLINE_ZOO = ModelZoo("offline model", "zsclip.yaml", ZOO_FORMAT, weight_files=(WEIGHTS_FILE, CONFIG_FILE))


def list_offline_models() -> List[str]:
    return OFFLINE_ZOO.names()


def offline_model_entry(name: str) -> Dict[str, Any]:
    return OFFLINE_ZOO.entry(name)


def offline_model_dir(name: str, seed: int = 0, overrides: Optional[Dict[str, Dict[str, Any]]] = None,
                      progress: bool = True) -> Path:
    """The ``local-dir`` folder of offline model ``name`` trained with ``seed``; trains it if absent.

    ``overrides`` changes parts of the zoo entry: ``{"world": {knob: value}, "train": {...}, "model_cfg":
    {...}}`` (merged one level deep). The changed entry is a different model: its own cache key, its own
    folder, and its manifest records the entry it was trained from.
    """
    entry = with_overrides(offline_model_entry(name), overrides)
    return OFFLINE_ZOO.build_once(name, entry, seed, lambda folder: _train_into(folder, name, entry, seed, progress))


#: Parts of a model entry that overrides may change; ``label_data`` (a classification dataset mixed into
#: the captions, see label_data.py) is absent from the zoo's entries and added only by an override.
ENTRY_PARTS = ("world", "train", "model_cfg", "label_data")


def with_overrides(entry: Dict[str, Any], overrides: Optional[Dict[str, Dict[str, Any]]],
                   parts: Sequence[str] = ENTRY_PARTS) -> Dict[str, Any]:
    """``entry`` with ``overrides`` merged into its ``parts``; an unknown part, knob or setting raises."""
    entry = copy.deepcopy(entry)
    for part, values in (overrides or {}).items():
        if part not in parts:
            raise InvalidChoiceError(f"unknown model entry part {part!r}; valid parts: {', '.join(parts)}")
        if part == "train":
            unknown = sorted(set(values) - set(TrainConfig.__dataclass_fields__))
            if unknown:
                raise InvalidChoiceError(f"unknown training setting {unknown[0]!r}; valid settings: "
                                         f"{', '.join(TrainConfig.__dataclass_fields__)}")
        entry[part] = {**entry.get(part, {}), **copy.deepcopy(dict(values))}
    if "world" in (overrides or {}):
        world_setting(entry["world"], load_world_spec())  # validates the knobs now, not after training
    if "label_data" in (overrides or {}):
        entry["label_data"] = check_label_data(entry["label_data"])
        world_setting({**entry["world"], **entry["label_data"]["world"]}, load_world_spec())
    return entry


def training_data(entry: Dict[str, Any], seed: int):
    """Rendered training images ``[N,H,W,3]``, captions ``N × K`` and the split, for an offline model entry.

    Held-out (unseen) compositions never appear: neither drawn nor named in any caption. An entry with a
    ``label_data`` part has that classification dataset appended (label_data.py).
    """
    corpus = training_corpus(entry["world"], seed)
    if "label_data" not in entry:
        return corpus.images, corpus.captions, corpus.split
    images, captions = mix_training_data(entry["world"], entry["label_data"], seed, corpus.images, corpus.captions)
    return images, captions, corpus.split


def training_corpus(world: Dict[str, Any], seed: int):
    """The rendered, captioned training corpus of a model entry's ``world`` part and ``seed``."""
    return _rendered_corpus(json.dumps(world, sort_keys=True), seed)


@functools.lru_cache(maxsize=2)
def _rendered_corpus(world_json: str, seed: int):
    """The corpus depends on the world entry and the seed only, so the variants of a pretraining experiment
    (other losses, batch sizes, temperatures) trained one after the other in a process, and the caption
    statistics of a model just trained, reuse it instead of rendering it again (20,000 images: ~5 s of a
    ~25 s zsclip-micro training). Callers must not modify it."""
    world = json.loads(world_json)
    spec = load_world_spec()
    knobs, split = world_setting(world, spec)
    return make_corpus(spec, knobs, split, int(world["n_train"]), seed, CAPTIONS_PER_IMAGE)


def tokenize_unique(tokenizer, per_image: List[List[str]]) -> torch.Tensor:
    """Token ids ``[N, K, L]`` of K captions per image, tokenizing each distinct caption once (alt-text
    repeats itself: this is several times faster than tokenizing every caption)."""
    unique = sorted({c for caps in per_image for c in caps})
    row = {c: i for i, c in enumerate(unique)}
    table = fast_tokenize(tokenizer, unique)
    index = torch.tensor([[row[c] for c in caps] for caps in per_image], dtype=torch.long)
    return table[index]


def fast_tokenize(tokenizer, texts: List[str]) -> torch.Tensor:
    """The ids ``tokenizer(texts)`` gives, for open_clip's ``SimpleTokenizer`` computed word by word.

    Its cleaning (ftfy, HTML unescaping, whitespace collapsing, lower case) and its split pattern never
    join characters across whitespace, so an ASCII text's ids are its whitespace-separated words' ids in
    order; each distinct word is encoded once by the tokenizer itself. zsworld's captions use a few hundred
    words in ~70,000 distinct captions, and the per-caption ftfy pass took 8 of a zsclip-micro training's
    15 s. Other tokenizers, truncation strategies and non-ASCII texts go through the tokenizer unchanged
    (tests/test_training.py checks equality)."""
    if not isinstance(tokenizer, open_clip.SimpleTokenizer) or tokenizer.reduction_fn is not None:
        return tokenizer(texts)
    ctx = tokenizer.context_length
    sot, eot = tokenizer.sot_token_id, tokenizer.eot_token_id
    words: Dict[str, List[int]] = {}
    out = torch.zeros(len(texts), ctx, dtype=torch.long)
    for i, text in enumerate(texts):
        if text.isascii():
            ids = []
            for word in text.split():
                if word not in words:
                    words[word] = tokenizer.encode(word)
                ids.extend(words[word])
        else:
            ids = tokenizer.encode(text)
        ids = [sot] + ids + [eot]
        if len(ids) > ctx:
            ids = ids[:ctx]
            ids[-1] = eot
        out[i, :len(ids)] = torch.tensor(ids)
    return out


def _train_into(folder: Path, name: str, entry: Dict[str, Any], seed: int, progress: bool) -> Dict[str, Any]:
    torch.manual_seed(seed)
    model_cfg = entry["model_cfg"]
    model = open_clip.CLIP(**copy.deepcopy(model_cfg))
    tokenizer = open_clip.SimpleTokenizer(context_length=model_cfg["text_cfg"]["context_length"])
    images, per_image, split = training_data(entry, seed)
    tokens = tokenize_unique(tokenizer, per_image)
    cfg = TrainConfig(**entry["train"])
    t0 = time.perf_counter()
    history = train_contrastive(model, torch.from_numpy(images), tokens, cfg, MEAN, STD, seed=seed,
                                progress=progress, label=f"{name} seed {seed}")
    seconds = time.perf_counter() - t0
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    config = {
        "model_cfg": model_cfg,
        "preprocess_cfg": {"size": model_cfg["vision_cfg"]["image_size"], "mean": list(MEAN), "std": list(STD),
                           "interpolation": "bicubic", "resize_mode": "shortest"},
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    spec = load_world_spec()
    knobs, _ = world_setting(entry["world"], spec)
    return {
        "name": name, "tag": OFFLINE_TAG, "seed": seed, "train": cfg.as_dict(), "world": entry["world"],
        "world_knobs": knobs.as_dict(), "world_fingerprint": spec.fingerprint(),
        "model_cfg": model_cfg, "unseen_classes": [spec.class_name(c) for c in split.unseen],
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(seconds, 2), "images_per_second": round(history["images_per_second"][0], 1),
        "final_loss": history["loss"][-1], "loss_every_10": history["loss"][::10],
        **({"label_data": entry["label_data"]} if "label_data" in entry else {}),
    }


