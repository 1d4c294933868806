"""zslab's own offline CLIP models: trained once per machine on zsworld, cached by content, saved in
open_clip's ``local-dir:`` layout so that open_clip and CLIP_benchmark load them unchanged."""
from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import open_clip
import torch
import yaml
from safetensors.torch import save_file

from ..config import cache_dir, data_file
from ..errors import check_choice
from ..world import captions, load_world_spec, make_split, render, sample_scenes
from .contrastive import TrainConfig, train_contrastive

#: Bump when training code changes what a config produces: old cached models are then not reused.
ZOO_FORMAT = 1
OFFLINE_TAG = "zsworld"
CAPTIONS_PER_IMAGE = 4
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"
MANIFEST_FILE = "zslab_manifest.json"


def _zoo() -> Dict[str, Dict[str, Any]]:
    return yaml.safe_load(data_file("models", "zsclip.yaml").read_text())


def list_offline_models() -> List[str]:
    return sorted(_zoo())


def offline_model_entry(name: str) -> Dict[str, Any]:
    zoo = _zoo()
    check_choice("offline model", name, zoo)
    return copy.deepcopy(zoo[name])


def _cache_key(name: str, entry: Dict[str, Any], seed: int) -> str:
    spec = load_world_spec()
    blob = json.dumps({"name": name, "entry": entry, "seed": seed, "world": spec.fingerprint(),
                       "format": ZOO_FORMAT}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def offline_model_dir(name: str, seed: int = 0, train_overrides: Optional[Dict[str, Any]] = None,
                      progress: bool = True) -> Path:
    """The ``local-dir`` folder of offline model ``name`` trained with ``seed``; trains it if absent.

    The folder is built in a temporary sibling and renamed into place only when complete, so an
    interrupted training never leaves a folder that looks finished.
    """
    entry = offline_model_entry(name)
    entry["train"].update(train_overrides or {})
    key = _cache_key(name, entry, seed)
    final = cache_dir("models") / f"{name}-seed{seed}-{key}"
    if (final / MANIFEST_FILE).is_file():
        return final
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        manifest = _train_into(tmp, name, entry, seed, progress)
        manifest["cache_key"] = key
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
        if final.exists():  # a partial folder from an older crash: replace it
            shutil.rmtree(final)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def training_data(entry: Dict[str, Any], seed: int):
    """Rendered training images ``[N,H,W,3]`` and captions ``N × K`` for an offline model entry.

    Held-out (unseen) compositions never appear: neither drawn nor named in any caption.
    """
    spec = load_world_spec()
    world = entry["world"]
    split = make_split(spec, world.get("split_kind", "compositions"), world.get("holdout_fraction", 0.2),
                       world.get("split_seed", 0))
    rng = np.random.default_rng([seed, 1])
    scenes = sample_scenes(spec, int(world["n_train"]), rng, split.seen, world.get("concept_weights"))
    images = render(spec, scenes, rng)
    caps = [captions(spec, scenes, rng) for _ in range(CAPTIONS_PER_IMAGE)]
    per_image = [list(c) for c in zip(*caps)]
    return images, per_image, split


def _train_into(folder: Path, name: str, entry: Dict[str, Any], seed: int, progress: bool) -> Dict[str, Any]:
    torch.manual_seed(seed)
    model_cfg = entry["model_cfg"]
    model = open_clip.CLIP(**copy.deepcopy(model_cfg))
    tokenizer = open_clip.SimpleTokenizer(context_length=model_cfg["text_cfg"]["context_length"])
    images, per_image, split = training_data(entry, seed)
    flat = [c for caps in per_image for c in caps]
    tokens = tokenizer(flat).view(len(per_image), CAPTIONS_PER_IMAGE, -1)
    cfg = TrainConfig(**entry["train"])
    t0 = time.perf_counter()
    history = train_contrastive(model, torch.from_numpy(images), tokens, cfg, MEAN, STD, seed=seed,
                                progress=progress)
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
    return {
        "name": name, "tag": OFFLINE_TAG, "seed": seed, "train": cfg.as_dict(), "world": entry["world"],
        "unseen_pairs": [spec.pair_name(c, s) for c, s in split.unseen],
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": round(seconds, 2), "images_per_second": round(history["images_per_second"][0], 1),
        "final_loss": history["loss"][-1], "loss_every_10": history["loss"][::10],
    }


def read_manifest(folder: Path) -> Dict[str, Any]:
    return json.loads((Path(folder) / MANIFEST_FILE).read_text())
