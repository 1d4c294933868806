"""zslab's own offline CLIP models: trained once per machine on zsworld, cached by content, saved in
open_clip's ``local-dir:`` layout so that open_clip and CLIP_benchmark load them unchanged."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import open_clip
import torch
from safetensors.torch import save_file

from ..world import captions, load_world_spec, make_split, render, sample_scenes
from .contrastive import TrainConfig, train_contrastive
from .model_zoo import MANIFEST_FILE, ModelZoo, read_manifest  # noqa: F401  (re-exported)

#: Bump when training code changes what a config produces: old cached models are then not reused.
ZOO_FORMAT = 1
OFFLINE_TAG = "zsworld"
CAPTIONS_PER_IMAGE = 4
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"


OFFLINE_ZOO = ModelZoo("offline model", "zsclip.yaml", ZOO_FORMAT)


def list_offline_models() -> List[str]:
    return OFFLINE_ZOO.names()


def offline_model_entry(name: str) -> Dict[str, Any]:
    return OFFLINE_ZOO.entry(name)


def offline_model_dir(name: str, seed: int = 0, train_overrides: Optional[Dict[str, Any]] = None,
                      progress: bool = True) -> Path:
    """The ``local-dir`` folder of offline model ``name`` trained with ``seed``; trains it if absent."""
    entry = offline_model_entry(name)
    entry["train"].update(train_overrides or {})
    return OFFLINE_ZOO.build_once(name, entry, seed, lambda folder: _train_into(folder, name, entry, seed, progress))


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


