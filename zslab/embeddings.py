"""Image features of a dataset under a model, computed once and then read from the cache."""
from __future__ import annotations

import functools
from typing import Callable, Dict, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from . import progress as progress_channel
from .cache import TensorCache
from .image_pipeline import EncodeSettings, model_batches
from .models import LoadedModel
from .text.encoders import texts_digest


def _device_key(model: LoadedModel) -> Dict[str, str]:
    """The cache-key entry of a model on an accelerator (its kernels round differently, so a CPU run never
    reads what it computed); none on the CPU, so CPU keys stay what they always were."""
    device_type = torch.device(getattr(model, "device", "cpu")).type
    return {"device": device_type} if device_type != "cpu" else {}


def image_features(model: LoadedModel, dataset, batch_size: int = 256, cache: Optional[TensorCache] = None,
                   use_cache: bool = True, progress: bool = True, pipeline: str = "auto",
                   precision: str = "auto", num_workers: Optional[int] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised image features ``[N, D]`` and labels ``[N]`` of ``dataset`` (a zslab ZSDataset).

    Cached under a key made of the model's weight hash, its preprocessing, and the dataset's identity
    (name, split, files, sample selection): a warm rerun does not encode again. Features encoded on an
    accelerator get keys of their own (its kernels round differently), so a CPU run never reads them.

    ``pipeline``/``precision``/``num_workers`` (zslab.image_pipeline): "auto" is the exact PIL path in fp32
    on the CPU (loader workers only for image files), and the tensor path (GPU JPEG decode and resize) with bf16 autocast,
    channels-last and 16 reader threads on CUDA. A non-default path or precision is part of the cache key.
    """
    device = getattr(model, "device", "cpu")
    reads_files = hasattr(dataset, "samples") and len(dataset) >= 4 * batch_size   # enough to pay for workers
    settings = EncodeSettings.resolve(device, pipeline=pipeline, precision=precision, num_workers=num_workers,
                                      preprocess=model.preprocess, reads_files=reads_files)
    description = {"kind": "image_features", "model": model.fingerprint, "preprocess": repr(model.preprocess),
                   "dataset": dataset.identity, **_device_key(model), **settings.cache_fields()}

    def compute():
        shared = getattr(model, "encode_dataset", None)
        if shared is not None:  # a frozen backbone whose features of this dataset are cached on their own
            out = shared(dataset, batch_size)
            if out is not None:
                return {"features": out, "labels": torch.as_tensor(dataset.targets).long()}
        n_batches, batches = model_batches(dataset, model.preprocess, batch_size, settings)
        feats, labels = [], []
        for images, y in tqdm(batches, total=n_batches, desc=f"encoding {dataset.name}/{dataset.split}",
                              disable=not progress, mininterval=2.0):
            if settings.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            if settings.pin_memory:                      # overlap the copy with the previous batch's compute
                images = images.to(device, non_blocking=True)
            with settings.autocast():
                feats.append(model.encode_image(images))
            labels.append(torch.as_tensor(y))
            # published whatever ``progress`` says: `zslab run` shows it while the notebook runs
            progress_channel.report(f"encoding {dataset.name}/{dataset.split}", len(feats), n_batches,
                                    unit="batch")
        return {"features": torch.cat(feats), "labels": torch.cat(labels).long()}

    if not use_cache:
        out = compute()
    else:
        out = (cache or TensorCache()).get_or_compute(description, compute)
    return out["features"], out["labels"]


def text_features(model: LoadedModel, texts: Sequence[str], cache: Optional[TensorCache] = None,
                  use_cache: bool = True) -> torch.Tensor:
    """``model.encode_text(texts)`` (unit rows ``[N, D]``), cached under the model's weight hash and a hash
    of the texts. Why: a classifier over many classes and templates costs a CLIP text tower thousands of
    prompts (ImageNet's 1000 x 80 on a CPU takes minutes), and a rerun asks for the same ones."""
    texts = list(texts)
    description = {"kind": "prompt_features", "model": model.fingerprint, "texts": texts_digest(texts),
                   "n_texts": len(texts), **_device_key(model)}
    if not use_cache:
        return model.encode_text(texts)
    return (cache or TensorCache()).get_or_compute(description, lambda: {"features": model.encode_text(texts)})["features"]


def cached_text_encoder(model: LoadedModel, cache: Optional[TensorCache] = None) -> Callable[[Sequence[str]], torch.Tensor]:
    """``encode_text`` for :func:`zslab.zeroshot.build_classifier` and friends that reads and fills the
    prompt cache (:func:`text_features`); the values are those of ``model.encode_text``."""
    return functools.partial(text_features, model, cache=cache)


def rendered_image_features(model: LoadedModel, images_uint8, batch_size: int = 512) -> torch.Tensor:
    """Unit features ``[N, D]`` of rendered zsworld images ``[N, H, W, 3]`` uint8 (numpy or tensor) through a
    zslab offline CLIP, normalised as in its training (no resizing: they are drawn at its input size). For
    images made on the fly (support sets, training scenes) that have no dataset identity to cache under."""
    return encode_rendered(model.encode_image, images_uint8, batch_size)


def encode_rendered(encode_image: Callable[[torch.Tensor], torch.Tensor], images_uint8,
                    batch_size: int = 512) -> torch.Tensor:
    """Unit features ``[N, D]`` of uint8 images ``[N, H, W, 3]`` through ``encode_image`` (any image tower:
    a model's, or one being fine-tuned), in batches, with the offline zoo's normalisation, without gradients."""
    from .train.contrastive import images_to_tensor
    from .train.zoo import MEAN, STD

    images = torch.as_tensor(images_uint8)
    with torch.no_grad():
        feats = [encode_image(images_to_tensor(images[i:i + batch_size], MEAN, STD))
                 for i in range(0, len(images), batch_size)]
    return torch.nn.functional.normalize(torch.cat(feats).float(), dim=-1)
