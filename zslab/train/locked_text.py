"""Models with a locked, pretrained tower ("LiT" models, Zhai et al., arXiv 2111.07991), in two configurations.

* **locked text** (``lit-animal-mnist``): an image head trained against a frozen sentence encoder (MiniLM);
* **locked image** (``lit-animal-mnist-locked-image``, LiT's own setting): frozen EfficientNet-Lite0
  features used as they are (no image head, as LiT's App. C), and a text head on the frozen sentence
  encoder trained to read them out.

Both sides start from real pretrained encoders, so class names and descriptions never seen in training
can be asked about. Training uses the one contrastive loop (:func:`zslab.train.contrastive.train_contrastive`):
captions become row ids of a table of pre-computed sentence embeddings, so the frozen encoder costs
nothing per step. Image towers are plug-ins (:data:`IMAGE_TOWERS`); training-data builders too
(:data:`TRAINING_DATA`).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from ..errors import InvalidChoiceError, check_choice
from ..registry import Registry
from .contrastive import TrainConfig, images_to_tensor, train_contrastive
from .model_zoo import ModelZoo, read_manifest, verify_folder

LOCKED_FORMAT = 1
#: The pretrained tag of every locked-text model (``load_model("lit-zsworld", "zslab")``).
LOCKED_TAG = "zslab"
WEIGHTS_FILE = "image_tower.safetensors"
CONFIG_FILE = "zslab_locked_text_config.json"
CAPTIONS_PER_INPUT = 4
#: The parts of a locked-text entry a variant may change (the data and towers define the model family).
LOCKED_OVERRIDE_PARTS = ("train",)


class LockedTextModel(nn.Module):
    """``visual`` maps inputs into the joint space (a trained head, or the identity for a locked image
    tower); ``backbone`` (frozen, optional) comes first at inference; ``text_head`` (trained, optional)
    maps frozen sentence embeddings into the joint space. ``forward(inputs, text_ids)`` looks captions up
    in a table of frozen sentence embeddings."""

    def __init__(self, visual: nn.Module, backbone: Optional[nn.Module] = None,
                 text_head: Optional[nn.Module] = None):
        super().__init__()
        self.visual = visual
        self.backbone = backbone
        self.text_head = text_head
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.text_table: Optional[torch.Tensor] = None
        self.output_dict = True

    def text_side(self, sentence_embeddings: torch.Tensor) -> torch.Tensor:
        """Frozen sentence embeddings → unit vectors in the joint space (through the text head, if any)."""
        x = sentence_embeddings.float()
        return F.normalize(self.text_head(x) if self.text_head is not None else x, dim=-1)

    def trainable_state(self) -> Dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        x = self.backbone(images) if self.backbone is not None else images
        out = self.visual(x)
        return F.normalize(out, dim=-1) if normalize else out

    def forward(self, inputs: torch.Tensor, text_ids: torch.Tensor) -> Dict[str, torch.Tensor]:
        if self.text_table is None:
            raise RuntimeError("set model.text_table (frozen caption embeddings) before training")
        return {"image_features": F.normalize(self.visual(inputs), dim=-1),
                "text_features": self.text_side(self.text_table.to(inputs.device)[text_ids]),
                "logit_scale": self.logit_scale.exp()}


# ---------------------------------------------------------------------------------------------------
# Image towers: name -> builder(tower_cfg, text_dim) -> (visual, backbone or None, preprocess, prepare,
# output dim). ``preprocess`` maps a PIL image to a model input (evaluation); ``prepare`` maps a stored
# training batch to the input of ``visual``.
# ---------------------------------------------------------------------------------------------------
IMAGE_TOWERS: Registry[Callable[..., Tuple[nn.Module, Optional[nn.Module], Callable, Callable]]] = Registry("image tower")
MEAN = STD = (0.5, 0.5, 0.5)


@IMAGE_TOWERS.register("vit")
def _vit_tower(cfg: Dict[str, Any], text_dim: int):
    from open_clip.transform import image_transform
    from open_clip.transformer import VisionTransformer

    v = cfg["vision_cfg"]
    visual = VisionTransformer(image_size=v["image_size"], patch_size=v["patch_size"], width=v["width"],
                               layers=v["layers"], heads=v["width"] // v["head_width"], mlp_ratio=4.0,
                               output_dim=text_dim)
    preprocess = image_transform(v["image_size"], is_train=False, mean=MEAN, std=STD)
    return visual, None, preprocess, lambda batch: images_to_tensor(batch, MEAN, STD), text_dim


def _frozen_efficientnet() -> nn.Module:
    from ..assets.efficientnet import load_efficientnet_lite0

    backbone, _ = load_efficientnet_lite0()
    for p in backbone.parameters():
        p.requires_grad_(False)
    return _PooledFeatures(backbone)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Module:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Dropout(0.1), nn.Linear(hidden, d_out))


@IMAGE_TOWERS.register("efficientnet-head")
def _efficientnet_head(cfg: Dict[str, Any], text_dim: int):
    """Frozen EfficientNet-Lite0 features and a trained head into the (frozen) text space."""
    from ..assets.efficientnet import efficientnet_transform

    visual = _mlp(EFFICIENTNET_DIM, int(cfg.get("hidden", 512)), text_dim)
    return visual, _frozen_efficientnet(), efficientnet_transform(int(cfg["image_size"])), lambda batch: batch, text_dim


@IMAGE_TOWERS.register("efficientnet-locked")
def _efficientnet_locked(cfg: Dict[str, Any], text_dim: int):
    """LiT's locked image tower: frozen EfficientNet-Lite0 pooled features used as they are, no image head;
    the model's entry needs a ``text_head`` to read them out."""
    from ..assets.efficientnet import efficientnet_transform

    return (nn.Identity(), _frozen_efficientnet(), efficientnet_transform(int(cfg["image_size"])), lambda batch: batch,
            EFFICIENTNET_DIM)


EFFICIENTNET_DIM = 1280


class _PooledFeatures(nn.Module):
    """timm model → pooled pre-classifier features (what the head is trained on)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


# ---------------------------------------------------------------------------------------------------
# Training data: name -> builder(entry, seed) -> TrainingSet
# ---------------------------------------------------------------------------------------------------
@dataclass
class TrainingSet:
    inputs: torch.Tensor            # what ``prepare`` takes: uint8 images or frozen features
    captions: List[List[str]]       # K captions per input
    heldout_classes: List[str]      # class names that never occur in training (for the manifest)
    info: Dict[str, Any]


TRAINING_DATA: Registry[Callable[[Dict[str, Any], int], TrainingSet]] = Registry("locked-text training data")


@TRAINING_DATA.register("zsworld")
def _zsworld_data(entry: Dict[str, Any], seed: int) -> TrainingSet:
    from ..world import load_world_spec
    from .zoo import training_data

    world = {k: v for k, v in entry["data"].items() if k != "kind"}
    images, per_image, split = training_data({"world": world}, seed)
    spec = load_world_spec()
    heldout = sorted({spec.shapes[comp[2]] for comp in split.unseen} if split.kind == "shapes"
                     else {spec.class_name(comp) for comp in split.unseen})
    return TrainingSet(torch.from_numpy(images), per_image, heldout, {"unseen": heldout})


#: What a labelled dataset's training captions are made of (``data.captions`` of a lit.yaml entry): the
#: class's filled templates and its descriptions (the default), or the filled templates alone (class names
#: only: the arm without description supervision of arXiv 2401.02460).
CAPTION_KINDS = ("templates+descriptions", "templates")


@TRAINING_DATA.register("labelled")
def _labelled_data(entry: Dict[str, Any], seed: int) -> TrainingSet:
    """Images of the seen classes of a labelled dataset, captioned by that class's templates and (unless
    ``data.captions`` is ``templates``) descriptions; the held-out classes' images and words are left out
    entirely."""
    from ..assets.efficientnet import efficientnet_features
    from ..datasets import build_dataset, select, subsample
    from ..semantics.attributes import load_descriptions
    from ..zeroshot import fill_templates

    data = entry["data"]
    kind = check_choice("locked-text training captions", data.get("captions", CAPTION_KINDS[0]), CAPTION_KINDS)
    ds = build_dataset(data["dataset"], split="train")
    check_heldout = [check_choice(f"{data['dataset']} class", c, ds.classes) for c in data["heldout"]]
    heldout_idx = {ds.classes.index(c) for c in check_heldout}
    seen_rows = np.nonzero(~np.isin(ds.targets, list(heldout_idx)))[0]
    seen = select(ds, seen_rows, heldout=sorted(check_heldout))
    n_train = min(int(data["n_train"]), len(seen))
    # A fixed image selection (seed 0) for every training seed: the frozen features are computed once
    # and cached; the seed still sets the head's initialisation, the batches and the captions drawn.
    seen = subsample(seen, max_samples=n_train, seed=0)
    feats = efficientnet_features(seen, image_size=int(entry["image_tower"]["image_size"]))
    descriptions = load_descriptions(data["dataset"]) if kind == "templates+descriptions" else {}
    filled = fill_templates(ds.classes, ds.templates)
    prompts = {c: filled[i] + list(descriptions.get(c, [])) for i, c in enumerate(ds.classes) if i not in heldout_idx}
    rng = np.random.default_rng([seed, 3])
    captions = []
    for label in seen.targets:
        options = prompts[ds.classes[int(label)]]
        captions.append([options[j] for j in rng.choice(len(options), CAPTIONS_PER_INPUT, replace=True)])
    return TrainingSet(feats.float(), captions, list(check_heldout), {"dataset": data["dataset"],
                                                                       "n_train": n_train})


# ---------------------------------------------------------------------------------------------------
# Zoo
# ---------------------------------------------------------------------------------------------------
#: Cached folders are verified against the SHA-256 of these files (recorded in the manifest) before reuse.
LOCKED_ZOO = ModelZoo("locked-text model", "lit.yaml", LOCKED_FORMAT, weight_files=(WEIGHTS_FILE, CONFIG_FILE))


def list_locked_text_models() -> List[str]:
    return LOCKED_ZOO.names()


def locked_text_entry(name: str) -> Dict[str, Any]:
    return LOCKED_ZOO.entry(name)


def training_caption_embeddings(name: str, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """What locked-text model ``name`` (seed ``seed``) trains against: the frozen sentence embeddings of its
    distinct training captions ``[C, D]`` and each input's caption ids ``[N, K]`` (rows of that table), as
    the training loop draws them. For diagnostics of the frozen text space (e.g. how flat CWCL's targets are)."""
    entry = locked_text_entry(name)
    _, encoder, _, _ = build_locked_text_model(entry)
    return _caption_table(encoder, TRAINING_DATA.get(entry["data"]["kind"])(entry, seed).captions)


def _caption_table(encoder, captions: List[List[str]]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Frozen embeddings of the distinct captions ``[C, D]`` (each encoded once, cached) and every input's
    caption ids ``[N, K]`` into that table: what the training loop looks captions up in."""
    from ..text import encode_cached

    unique = sorted({c for caps in captions for c in caps})
    index = {c: i for i, c in enumerate(unique)}
    ids = torch.tensor([[index[c] for c in caps] for caps in captions], dtype=torch.long)
    return encode_cached(encoder, unique).float(), ids


def build_locked_text_model(entry: Dict[str, Any]):
    """Fresh model, evaluation preprocess and training ``prepare`` for a zoo entry."""
    from ..text import load_text_encoder

    encoder = load_text_encoder(entry["text_encoder"])
    tower = entry["image_tower"]
    visual, backbone, preprocess, prepare, joint_dim = IMAGE_TOWERS.get(tower["kind"])(tower, encoder.dim)
    text_head = None
    if "text_head" in entry:
        text_head = _mlp(encoder.dim, int(entry["text_head"].get("hidden", 512)), joint_dim)
    elif joint_dim != encoder.dim:
        raise ValueError(f"image tower {tower['kind']!r} outputs {joint_dim}-d features but the text encoder "
                         f"{entry['text_encoder']!r} gives {encoder.dim}-d: add a text_head to the entry")
    model = LockedTextModel(visual, backbone, text_head)
    # EfficientNet towers: evaluation reuses the cached backbone features (same transform as training).
    model.backbone_image_size = int(tower["image_size"]) if tower["kind"].startswith("efficientnet") else None
    return model, encoder, preprocess, prepare


def locked_text_model_dir(name: str, seed: int = 0, progress: bool = True,
                          overrides: Optional[Dict[str, Any]] = None) -> Path:
    """Folder of the trained locked-text model ``name``/``seed``; trains it (once per machine) if absent or
    damaged. ``overrides`` change the ``train`` part of the entry (``{"train": {"loss": "cwcl"}}``, as for
    ``offline_model_dir``): a different model with its own cache key and folder."""
    from .zoo import with_overrides

    entry = with_overrides(locked_text_entry(name), overrides, parts=LOCKED_OVERRIDE_PARTS)
    return LOCKED_ZOO.build_once(name, entry, seed, lambda folder: _train(folder, name, entry, seed, progress))


def _train(folder: Path, name: str, entry: Dict[str, Any], seed: int, progress: bool) -> Dict[str, Any]:
    torch.manual_seed(seed)
    model, encoder, _, prepare = build_locked_text_model(entry)
    if entry["train"].get("loss", "infonce").startswith("cwcl") and model.text_head is not None:
        raise InvalidChoiceError(f"{name}: CWCL weighs pairs by the frozen text tower's similarities, but this entry "
                                 "trains a text head, so the loss would see trained text features; use a "
                                 "locked-text entry without text_head (e.g. lit-animal-mnist)")
    data = TRAINING_DATA.get(entry["data"]["kind"])(entry, seed)
    table, ids = _caption_table(encoder, data.captions)
    model.text_table = table
    cfg = TrainConfig(**entry["train"])
    t0 = time.perf_counter()
    history = train_contrastive(model, data.inputs, ids, cfg, seed=seed, progress=progress, prepare=prepare,
                                label=f"{name} seed {seed}")
    seconds = time.perf_counter() - t0
    model.text_table = None
    save_file({k: v.contiguous() for k, v in model.trainable_state().items()}, str(folder / WEIGHTS_FILE))
    (folder / CONFIG_FILE).write_text(json.dumps({"name": name, "entry": entry}, indent=2))
    return {"name": name, "seed": seed, "train": cfg.as_dict(), "data": entry["data"],
            "text_encoder": entry["text_encoder"], "heldout_classes": data.heldout_classes,
            "n_unique_captions": len(table), "n_train_inputs": int(len(data.inputs)),
            "locked": "image" if model.text_head is not None else "text",
            "n_trainable_parameters": sum(p.numel() for n, p in model.named_parameters()
                                          if p.requires_grad and not n.startswith("backbone.")),
            "train_seconds": round(seconds, 2), "final_loss": history["loss"][-1],
            "loss_every_10": history["loss"][::10], **data.info}


def load_locked_text_model(folder: Path, verify: bool = True):
    """(model, encoder, preprocess, manifest) from a trained folder.

    The folder's files are first checked against the hashes in its manifest (a mismatch raises
    :class:`~zslab.train.model_zoo.ModelIntegrityError`); ``verify=False`` skips that for a folder that
    :func:`locked_text_model_dir` has just verified.
    """
    manifest = verify_folder(folder, (WEIGHTS_FILE, CONFIG_FILE)) if verify else read_manifest(folder)
    config = json.loads((Path(folder) / CONFIG_FILE).read_text())
    model, encoder, preprocess, _ = build_locked_text_model(config["entry"])
    missing, unexpected = model.load_state_dict(load_file(str(Path(folder) / WEIGHTS_FILE)), strict=False)
    bad = [k for k in missing if not k.startswith("backbone.")] + list(unexpected)
    if bad:
        raise RuntimeError(f"{folder}: weights do not fit the model: {bad[:5]}")
    model.eval()
    return model, encoder, preprocess, manifest
