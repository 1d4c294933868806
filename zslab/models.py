"""One entry point from a model name to (model, preprocess, tokenizer).

Sources, tried in order (a registry of small resolvers, not an if-chain in one function):

* zslab's model zoos (:data:`ZOOS`), by name: its offline models (``zsclip-tiny``; tag ``zsworld``) and
  its locked-text models (``lit-zsworld``, tag ``zslab``: an image tower trained against frozen MiniLM);
  trained on first use, then cached and verified against the hashes in their manifest,
* ``local-dir:PATH`` (open_clip's folder layout: ``open_clip_config.json`` + weights),
* ``hf-hub:org/repo`` (downloads; refused when ``ZSLAB_OFFLINE=1``),
* an open_clip architecture with ``pretrained`` = a local checkpoint file, or a pretrained tag
  (``ViT-B-32`` / ``laion2b_s34b_b79k``; downloads, refused offline), or ``None`` (random init).

Checkpoints always load with ``weights_only=True``.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import open_clip
import torch

from .cache import tensor_digest
from .config import apply_offline_env, require_online
from .errors import InvalidChoiceError, MissingAssetError
from .train.locked_text import LOCKED_TAG, LOCKED_ZOO, load_locked_text_model, locked_text_model_dir
from .train.model_zoo import FILES_KEY, ModelZoo, verify_folder
from .train.zoo import (CONFIG_FILE, MANIFEST_FILE, OFFLINE_TAG, OFFLINE_ZOO, WEIGHTS_FILE, offline_model_dir,
                        read_manifest)


@dataclass
class LoadedModel:
    """A model with what it takes to use it, plus a content fingerprint for cache keys."""

    model: torch.nn.Module
    preprocess: Callable
    tokenizer: Callable
    name: str
    pretrained: Optional[str]
    source: str
    device: str = "cpu"
    #: zslab's training manifest (config, seed, time, unseen classes) for models zslab trained; else None.
    manifest: Optional[dict] = None
    _fingerprint: Optional[str] = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of every weight tensor (names, shapes, bytes): two loads of the same weights agree."""
        if self._fingerprint is None:
            self._fingerprint = tensor_digest(self.model.state_dict())[:24]
        return self._fingerprint

    @property
    def logit_scale(self) -> float:
        """The model's learned logit scale (exp of its temperature parameter; CLIP's ends at 100), used where
        logits, not only their ranking, matter (prompt scores, softmax probabilities); 100 if it has none."""
        param = getattr(self.model, "logit_scale", None)
        return float(param.detach().exp()) if isinstance(param, torch.Tensor) else 100.0

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 512, normalize: bool = True) -> torch.Tensor:
        chunks = []
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[i:i + batch_size])).to(self.device)
            chunks.append(self.model.encode_text(tokens, normalize=normalize).float().cpu())
        return torch.cat(chunks) if chunks else torch.empty(0)

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        return self.model.encode_image(images.to(self.device), normalize=normalize).float().cpu()


LOCAL_DIR = "local-dir:"



def _how_to_supply(name: str) -> str:
    return (f"To use {name!r} offline, download its checkpoint on a machine with internet and pass "
            f"pretrained='/path/to/open_clip_pytorch_model.bin' (or model='local-dir:/path/to/folder')")


def _from_open_clip(open_clip_name: str, open_clip_pretrained: Optional[str], name: str,
                    pretrained: Optional[str], source: str, device: str) -> LoadedModel:
    model, _, preprocess = open_clip.create_model_and_transforms(
        open_clip_name, pretrained=open_clip_pretrained, device=device, weights_only=True)
    model.eval()
    tokenizer = open_clip.get_tokenizer(open_clip_name)
    folder = Path(open_clip_name[len(LOCAL_DIR):]) if open_clip_name.startswith(LOCAL_DIR) else None
    manifest = read_manifest(folder) if folder and (folder / MANIFEST_FILE).is_file() else None
    return LoadedModel(model, preprocess, tokenizer, name, pretrained, source, device, manifest)


class LockedTextLoaded(LoadedModel):
    """A model with a locked tower (zslab's LiT zoo): ``encode_text`` is the frozen sentence encoder (then
    the trained text head, for the locked-image configuration), ``encode_image`` the image side (a frozen
    backbone, then a trained head or, locked, nothing)."""

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 512, normalize: bool = True) -> torch.Tensor:
        return self.model.text_side(self.tokenizer.encode(list(texts)).to(self.device)).float().cpu()

    @torch.no_grad()
    def encode_dataset(self, dataset, batch_size: int = 64) -> Optional[torch.Tensor]:
        """Image features of a whole dataset through the cached features of the frozen EfficientNet backbone
        (shared by every model and seed on that backbone: the expensive part runs once per dataset), then
        the trained head; ``None`` for other backbones (encode image by image)."""
        size = getattr(self.model, "backbone_image_size", None)
        if size is None:
            return None
        from .assets import efficientnet_features

        feats = efficientnet_features(dataset, batch_size=batch_size, image_size=size)
        return torch.nn.functional.normalize(self.model.visual(feats.to(self.device)).float(), dim=-1).cpu()


def _load_locked_text_folder(folder: Path, name: str, pretrained: Optional[str], source: str,
                             device: str) -> LoadedModel:
    # The folder comes from ModelZoo.build_once, which has just verified it: do not hash it again.
    model, encoder, preprocess, manifest = load_locked_text_model(folder, verify=False)
    # The sentence encoder stands where a CLIP tokenizer + text tower would; it is part of the identity.
    return LockedTextLoaded(model.to(device), preprocess, encoder, name, pretrained, source, device, manifest)


def _load_open_clip_folder(folder: Path, name: str, pretrained: Optional[str], source: str,
                           device: str) -> LoadedModel:
    return _from_open_clip(f"{LOCAL_DIR}{folder}", None, name, pretrained, source, device)


@dataclass(frozen=True)
class ZooSource:
    """One of zslab's model zoos as ``load_model`` sees it.

    ``folder(name, seed=, overrides=, progress=)`` returns the trained, verified folder (training it if
    absent or damaged); ``load(folder, name, pretrained, source, device)`` turns it into a LoadedModel.
    """

    zoo: ModelZoo           # the names and entries; ``zoo.kind`` ("offline model") names it in messages
    tag: str                # the one valid ``pretrained`` tag (``None`` means it too)
    source: str             # LoadedModel.source
    folder: Callable[..., Path]
    load: Callable[[Path, str, Optional[str], str, str], LoadedModel]

    def names(self) -> List[str]:
        return self.zoo.names()


#: zslab's model zoos, in the order ``list_models`` and error messages show them. A new zoo is one entry.
ZOOS: Tuple[ZooSource, ...] = (
    ZooSource(OFFLINE_ZOO, OFFLINE_TAG, "zslab-offline", offline_model_dir, _load_open_clip_folder),
    ZooSource(LOCKED_ZOO, LOCKED_TAG, "zslab-locked-text", locked_text_model_dir, _load_locked_text_folder),
)


def find_zoo(name: str) -> Optional[ZooSource]:
    """The zoo that has a model ``name`` (the first one, in :data:`ZOOS` order), or ``None``."""
    return next((z for z in ZOOS if name in z.names()), None)


def list_zoo_models() -> List[str]:
    """The names of every zslab zoo model, zoo after zoo."""
    return [m for z in ZOOS for m in z.names()]


def _zoo_model(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str,
               overrides: Optional[dict] = None) -> LoadedModel:
    zoo = find_zoo(name)
    if pretrained not in (None, zoo.tag):
        raise InvalidChoiceError(f"unknown pretrained tag {pretrained!r} for {zoo.zoo.kind} {name!r}; "
                                 f"valid choices: {zoo.tag!r}")
    folder = zoo.folder(name, seed=seed, overrides=overrides, progress=progress)
    return zoo.load(folder, name, pretrained, zoo.source, device)


def _local_dir(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str) -> LoadedModel:
    folder = Path(name[len(LOCAL_DIR):]).expanduser()
    if not (folder / "open_clip_config.json").is_file():
        raise MissingAssetError(f"{name!r}: no open_clip_config.json in {folder}")
    if (folder / MANIFEST_FILE).is_file():  # a folder zslab trained: load it only if it is what was trained
        try:
            hashed = FILES_KEY in read_manifest(folder)
        except ValueError:
            hashed = True  # unreadable: verify_folder says so
        if hashed:
            verify_folder(folder)
    return _from_open_clip(f"{LOCAL_DIR}{folder}", None, name, pretrained, "local-dir", device)


def _hf_hub(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str) -> LoadedModel:
    require_online(f"model {name!r} from the Hugging Face Hub", _how_to_supply(name))
    return _from_open_clip(name, None, name, pretrained, "hf-hub", device)


def _open_clip_arch(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str) -> LoadedModel:
    architectures = open_clip.list_models()
    if name not in architectures:
        raise InvalidChoiceError(
            f"unknown model {name!r}; valid choices: zslab offline models "
            f"{list_zoo_models()}, "
            f"'local-dir:PATH', 'hf-hub:ORG/REPO', or an open_clip architecture such as "
            f"{', '.join(a for a in architectures if a.startswith('ViT-B'))} (see `zslab list models`)")
    if pretrained is None:
        warnings.warn(f"{name}: no pretrained weights given, using a random initialisation")
        return _from_open_clip(name, None, name, pretrained, "random-init", device)
    if os.path.isfile(os.path.expanduser(pretrained)):
        return _from_open_clip(name, os.path.expanduser(pretrained), name, pretrained, "checkpoint-file", device)
    tags = open_clip.list_pretrained_tags_by_model(name)
    if pretrained in tags:
        require_online(f"pretrained weights {name!r}/{pretrained!r}", _how_to_supply(f"{name}/{pretrained}"))
        return _from_open_clip(name, pretrained, name, pretrained, "open_clip-tag", device)
    if any(sep in pretrained for sep in ("/", os.sep, ".pt", ".bin", ".safetensors")):
        raise MissingAssetError(f"checkpoint file not found for {name!r}: {pretrained}")
    raise InvalidChoiceError(f"unknown pretrained tag {pretrained!r} for {name!r}; valid choices: "
                             f"{', '.join(tags) or '(none)'}, or a path to a local checkpoint file")


class Resolver(NamedTuple):
    """``resolve(name, pretrained, seed, progress, device[, overrides])`` for the names ``matches`` accepts;
    only a resolver with ``takes_overrides`` is passed ``overrides``."""

    label: str
    matches: Callable[[str], bool]
    resolve: Callable[..., LoadedModel]
    takes_overrides: bool = False


RESOLVERS: List[Resolver] = [
    Resolver("zslab model zoo", lambda name: find_zoo(name) is not None, _zoo_model, takes_overrides=True),
    Resolver("local-dir", lambda name: name.startswith(LOCAL_DIR), _local_dir),
    Resolver("hf-hub", lambda name: name.startswith("hf-hub:"), _hf_hub),
    Resolver("open_clip architecture", lambda name: True, _open_clip_arch),
]


#: Devices a model can be put on: ``auto`` picks ``cuda`` when a GPU is present, else ``cpu``.
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` if available else ``cpu``; others are checked (a GPU asked for and absent
    raises at once, naming the choices, instead of failing deep inside torch)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not (device in ("cpu", "cuda", "mps") or re.fullmatch(r"cuda:\d+", device or "")):
        raise InvalidChoiceError(f"unknown device {device!r}; valid devices: {', '.join(DEVICE_CHOICES)}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidChoiceError(f"device {device!r} asked for, but torch sees no CUDA GPU here; use 'auto' or 'cpu'")
    if device.startswith("cuda:") and int(device.split(":")[1]) >= torch.cuda.device_count():
        raise InvalidChoiceError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if device == "mps" and not torch.backends.mps.is_available():
        raise InvalidChoiceError("device 'mps' asked for, but torch sees no Apple GPU here; use 'auto' or 'cpu'")
    return device


def load_model(name: str, pretrained: Optional[str] = None, *, seed: int = 0, device: str = "cpu",
               progress: bool = True, overrides: Optional[dict] = None) -> LoadedModel:
    """Model, preprocess and tokenizer for ``name`` (see the module docstring for what ``name`` can be).

    ``seed`` selects the training run of a zslab zoo model and is ignored for other sources. ``device``:
    where the model runs (``auto``: cuda when present; see :func:`resolve_device`); zoo models are trained
    on the CPU (deterministic) whatever it is.
    ``overrides`` changes a zoo model's entry before training (``offline_model_dir``: ``{"train": {...},
    "world": {...}, "model_cfg": {...}}``); zoos that cannot do that, and other sources, refuse it.
    """
    apply_offline_env()
    device = resolve_device(device)
    if pretrained == "":
        pretrained = None
    resolver = next(r for r in RESOLVERS if r.matches(name))
    if not resolver.takes_overrides:
        if overrides:
            raise InvalidChoiceError(f"overrides are only for zslab's zoo models ({', '.join(list_zoo_models())}); "
                                     f"{name!r} is a {resolver.label} name")
        return resolver.resolve(name, pretrained, seed, progress, device)
    return resolver.resolve(name, pretrained, seed, progress, device, overrides=overrides)


def list_models() -> List[str]:
    """zslab's zoo models (``name/tag``, zoo after zoo), then every open_clip ``architecture/tag`` pair."""
    return [f"{m}/{z.tag}" for z in ZOOS for m in z.names()] + [
        f"{arch}/{tag}" for arch, tag in open_clip.list_pretrained()]


def save_random_checkpoint(arch: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """Write an open_clip architecture with random weights as a plain state dict (tests, smoke runs)."""
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def save_random_local_dir(arch: str, folder: str | os.PathLike, seed: int = 0) -> Path:
    """Write an open_clip architecture with random weights in open_clip's folder layout
    (``open_clip_config.json`` + ``open_clip_model.safetensors``), loadable as ``local-dir:FOLDER`` by
    zslab and by any open_clip-based tool (CLIP_benchmark): a stand-in of the real model's shape and cost."""
    from safetensors.torch import save_file

    config = open_clip.get_model_config(arch)
    if config is None:
        raise InvalidChoiceError(f"unknown open_clip architecture {arch!r}; choices: {open_clip.list_models()}")
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE))
    preprocess_cfg = {"size": config["vision_cfg"]["image_size"], "mean": list(open_clip.OPENAI_DATASET_MEAN),
                      "std": list(open_clip.OPENAI_DATASET_STD), "interpolation": "bicubic", "resize_mode": "shortest"}
    (folder / CONFIG_FILE).write_text(json.dumps({"model_cfg": config, "preprocess_cfg": preprocess_cfg}, indent=2))
    return folder
