"""One entry point from a model name to (model, preprocess, tokenizer).

Sources, tried in order (a registry of small resolvers, not an if-chain in one function):

* zslab's offline models by name (``zsclip-tiny``; tag ``zsworld``; trained on first use, then cached),
  and its locked-text models (``lit-zsworld``: an image tower trained against frozen MiniLM),
* ``local-dir:PATH`` (open_clip's folder layout: ``open_clip_config.json`` + weights),
* ``hf-hub:org/repo`` (downloads; refused when ``ZSLAB_OFFLINE=1``),
* an open_clip architecture with ``pretrained`` = a local checkpoint file, or a pretrained tag
  (``ViT-B-32`` / ``laion2b_s34b_b79k``; downloads, refused offline), or ``None`` (random init).

Checkpoints always load with ``weights_only=True``.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import open_clip
import torch

from .cache import tensor_digest
from .config import apply_offline_env, require_online
from .errors import InvalidChoiceError, MissingAssetError
from .train.locked_text import LOCKED_TAG, list_locked_text_models, load_locked_text_model, locked_text_model_dir
from .train.zoo import MANIFEST_FILE, OFFLINE_TAG, list_offline_models, offline_model_dir, read_manifest


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
    """A locked-text model: ``encode_text`` is the frozen sentence encoder, ``encode_image`` the trained
    image tower (after a frozen backbone where there is one)."""

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 512, normalize: bool = True) -> torch.Tensor:
        return self.tokenizer.encode(list(texts)).float()


def _locked_text_zoo(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str) -> LoadedModel:
    if pretrained not in (None, LOCKED_TAG):
        raise InvalidChoiceError(f"unknown pretrained tag {pretrained!r} for locked-text model {name!r}; "
                                 f"valid choices: {LOCKED_TAG!r}")
    model, encoder, preprocess, manifest = load_locked_text_model(
        locked_text_model_dir(name, seed=seed, progress=progress))
    # The sentence encoder stands where a CLIP tokenizer + text tower would; it is part of the identity.
    loaded = LockedTextLoaded(model.to(device), preprocess, encoder, name, pretrained, "zslab-locked-text",
                              device, manifest)
    return loaded


def _offline_zoo(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str) -> LoadedModel:
    if pretrained not in (None, OFFLINE_TAG):
        raise InvalidChoiceError(f"unknown pretrained tag {pretrained!r} for offline model {name!r}; "
                                 f"valid choices: {OFFLINE_TAG!r}")
    folder = offline_model_dir(name, seed=seed, progress=progress)
    return _from_open_clip(f"{LOCAL_DIR}{folder}", None, name, pretrained, "zslab-offline", device)


def _local_dir(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str) -> LoadedModel:
    folder = Path(name[len(LOCAL_DIR):]).expanduser()
    if not (folder / "open_clip_config.json").is_file():
        raise MissingAssetError(f"{name!r}: no open_clip_config.json in {folder}")
    return _from_open_clip(f"{LOCAL_DIR}{folder}", None, name, pretrained, "local-dir", device)


def _hf_hub(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str) -> LoadedModel:
    require_online(f"model {name!r} from the Hugging Face Hub", _how_to_supply(name))
    return _from_open_clip(name, None, name, pretrained, "hf-hub", device)


def _open_clip_arch(name: str, pretrained: Optional[str], seed: int, progress: bool, device: str) -> LoadedModel:
    architectures = open_clip.list_models()
    if name not in architectures:
        raise InvalidChoiceError(
            f"unknown model {name!r}; valid choices: zslab offline models "
            f"{list_offline_models() + list_locked_text_models()}, "
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


RESOLVERS: List[Tuple[str, Callable[[str], bool], Callable]] = [
    ("zslab offline model", lambda name: name in list_offline_models(), _offline_zoo),
    ("zslab locked-text model", lambda name: name in list_locked_text_models(), _locked_text_zoo),
    ("local-dir", lambda name: name.startswith(LOCAL_DIR), _local_dir),
    ("hf-hub", lambda name: name.startswith("hf-hub:"), _hf_hub),
    ("open_clip architecture", lambda name: True, _open_clip_arch),
]


def load_model(name: str, pretrained: Optional[str] = None, *, seed: int = 0, device: str = "cpu",
               progress: bool = True) -> LoadedModel:
    """Model, preprocess and tokenizer for ``name`` (see the module docstring for what ``name`` can be).

    ``seed`` selects the training run of a zslab offline model and is ignored for other sources.
    """
    apply_offline_env()
    if pretrained == "":
        pretrained = None
    resolve = next(resolve for _, matches, resolve in RESOLVERS if matches(name))
    return resolve(name, pretrained, seed, progress, device)


def list_models() -> List[str]:
    """zslab offline models, then every open_clip ``architecture/tag`` pair."""
    return [f"{m}/{OFFLINE_TAG}" for m in list_offline_models()] + [
        f"{m}/{LOCKED_TAG}" for m in list_locked_text_models()] + [
        f"{arch}/{tag}" for arch, tag in open_clip.list_pretrained()]


def save_random_checkpoint(arch: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """Write an open_clip architecture with random weights as a plain state dict (tests, smoke runs)."""
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
