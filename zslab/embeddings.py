"""Image features of a dataset under a model, computed once and then read from the cache."""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from . import progress as progress_channel
from .cache import TensorCache
from .models import LoadedModel


class _Preprocessed(Dataset):
    def __init__(self, dataset, preprocess):
        self.dataset, self.preprocess = dataset, preprocess

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        image, label = self.dataset[i]
        return self.preprocess(image), label


def image_features(model: LoadedModel, dataset, batch_size: int = 256, cache: Optional[TensorCache] = None,
                   use_cache: bool = True, progress: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised image features ``[N, D]`` and labels ``[N]`` of ``dataset`` (a zslab ZSDataset).

    Cached under a key made of the model's weight hash, its preprocessing, and the dataset's identity
    (name, split, files, sample selection): a warm rerun does not encode again. Features encoded on an
    accelerator get keys of their own (its kernels round differently), so a CPU run never reads them.
    """
    device_type = torch.device(getattr(model, "device", "cpu")).type
    description = {"kind": "image_features", "model": model.fingerprint, "preprocess": repr(model.preprocess),
                   "dataset": dataset.identity, **({"device": device_type} if device_type != "cpu" else {})}

    def compute():
        shared = getattr(model, "encode_dataset", None)
        if shared is not None:  # a frozen backbone whose features of this dataset are cached on their own
            out = shared(dataset, batch_size)
            if out is not None:
                return {"features": out, "labels": torch.as_tensor(dataset.targets).long()}
        loader = DataLoader(_Preprocessed(dataset, model.preprocess), batch_size=batch_size, shuffle=False,
                            num_workers=0)
        feats, labels = [], []
        for images, y in tqdm(loader, desc=f"encoding {dataset.name}/{dataset.split}", disable=not progress,
                              mininterval=2.0):
            feats.append(model.encode_image(images))
            labels.append(torch.as_tensor(y))
            # published whatever ``progress`` says: `zslab run` shows it while the notebook runs
            progress_channel.report(f"encoding {dataset.name}/{dataset.split}", len(feats), len(loader),
                                    unit="batch")
        return {"features": torch.cat(feats), "labels": torch.cat(labels).long()}

    if not use_cache:
        out = compute()
    else:
        out = (cache or TensorCache()).get_or_compute(description, compute)
    return out["features"], out["labels"]
