"""From a dataset to batches the image tower takes: the exact path (the model's own PIL preprocessing) and a
fast tensor path (decode and resize as tensor ops, on the GPU when there is one).

Why two: open_clip's preprocessing runs per image in PIL on the CPU. On a GPU box that caps a ViT-B-32 at
~1k images/s with 14 loader workers while the model alone does ~23k (measured on an H200, see issue 8 in
benchmarks/README.md), so the GPU should decode (``torchvision.io.decode_jpeg(device="cuda")``, batched) and
resize itself. The tensor path does the same geometry as the model's preprocessing (bicubic resize of the
shorter side with antialias, centre crop, normalisation), read off that preprocessing, so the two agree to a
mean cosine above 0.999 (tests/test_image_pipeline.py); they are not bit-identical (PIL and torch round the
resampling differently), which is why the exact path stays the default on the CPU and every cache key says
which path made the features.

Settings that only pay on an accelerator (bf16 autocast, channels-last, loader workers with pinned memory)
are chosen by :meth:`EncodeSettings.resolve` from the device; on the CPU the default is the exact,
deterministic fp32 path (loader workers only for image files, which leaves the bits unchanged), so CPU
results stay bit-identical across runs and machines.
"""
from __future__ import annotations

import contextlib
import os
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file

from .errors import ZslabError, check_choice

# torchvision 0.29 deprecates its image decoders in favour of TorchCodec, which is not among zslab's pinned
# dependencies yet; the decoders work and are what the GPU path measures, so say it once here, not per file.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision are deprecated",
                        category=DeprecationWarning)

PIPELINES = ("auto", "exact", "fast")
PRECISIONS = ("auto", "fp32", "bf16")
_JPEG_MAGIC = b"\xff\xd8\xff"
#: open_clip transforms that the tensor path does implicitly (decoding to RGB uint8 is its ToTensor).
_IMPLICIT = ("MaybeConvertMode", "MaybeToTensor", "ToTensor", "_convert_to_rgb", "convert_to_rgb")


class UnsupportedPreprocessError(ZslabError, ValueError):
    """The model's preprocessing has a step the tensor path cannot copy; use pipeline='exact'."""


# -------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class EncodeSettings:
    """How images are turned into features on one device. ``resolve`` picks them; see the module doc."""

    pipeline: str = "exact"          # "exact": the model's PIL preprocessing; "fast": tensor decode + resize
    precision: str = "fp32"          # "bf16": autocast the image tower to bfloat16
    num_workers: int = 0             # loader processes (exact path) or reader/decoder threads (fast path)
    pin_memory: bool = False
    channels_last: bool = False
    device: str = "cpu"

    @classmethod
    def resolve(cls, device: str | torch.device = "cpu", pipeline: str = "auto", precision: str = "auto",
                num_workers: Optional[int] = None, preprocess: Optional[Callable] = None,
                reads_files: bool = False) -> "EncodeSettings":
        """"auto" = the fast tensor path, bf16, channels-last and 16 threads on CUDA (the exact path when the
        model's ``preprocess`` has a step the tensor path cannot copy); the exact fp32 path elsewhere, with
        one loader process per core when the images are files to decode (``reads_files``: decoding then
        overlaps the model, 3-6% faster for ViT-B-32 on 2 cores, same bits) and none for images in memory
        (starting workers would cost more than it saves). Explicit choices are kept as given."""
        check_choice("pipeline", pipeline, PIPELINES)
        check_choice("precision", precision, PRECISIONS)
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 0):
            raise ValueError(f"num_workers must be a non-negative int or None (auto), got {num_workers!r}")
        accelerated = torch.device(device).type == "cuda"
        if pipeline == "auto":
            pipeline = "fast" if accelerated and (preprocess is None or _copyable(preprocess)) else "exact"
        if num_workers is None:
            cores = os.cpu_count() or 1
            num_workers = min(16, cores) if accelerated else cores if reads_files else 0
        return cls(pipeline=pipeline,
                   precision=("bf16" if accelerated else "fp32") if precision == "auto" else precision,
                   num_workers=num_workers, pin_memory=accelerated, channels_last=accelerated, device=str(torch.device(device)))

    def cache_fields(self) -> Dict[str, str]:
        """What changes the features' bits, for cache keys: empty for the default CPU path, so the keys of
        features computed before these settings existed stay valid."""
        return {k: getattr(self, k) for k in ("pipeline", "precision") if getattr(self, k) != getattr(EncodeSettings, k)}

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "bf16":
            return torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


# -------------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Geometry:
    """The preprocessing of an open_clip model as numbers: resize shorter side, centre crop, normalise."""

    resize: int
    crop: Tuple[int, int]
    interpolation: T.InterpolationMode
    antialias: bool
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]


def geometry_of(preprocess: Callable) -> Geometry:
    """Read resize/crop/normalise off a torchvision ``Compose`` as open_clip builds it. Any other step (a
    resize to a fixed rectangle, padding, a custom callable) raises, naming it, instead of being guessed."""
    steps = getattr(preprocess, "transforms", None)
    if steps is None:
        raise UnsupportedPreprocessError(f"the tensor path needs a torchvision Compose, got {preprocess!r}; "
                                         "use pipeline='exact'")
    found: Dict[str, Any] = {}
    for step in steps:
        name = getattr(step, "__name__", type(step).__name__)         # functions have one, instances do not
        shorter_side = isinstance(step, T.Resize) and (
            isinstance(step.size, int) or (isinstance(step.size, (list, tuple)) and len(step.size) == 1))
        if shorter_side:
            if step.max_size is not None:
                raise UnsupportedPreprocessError(f"Resize with max_size={step.max_size} is not supported; "
                                                 "use pipeline='exact'")
            size = step.size if isinstance(step.size, int) else step.size[0]
            found["resize"] = (int(size), step.interpolation, bool(step.antialias))
        elif isinstance(step, T.CenterCrop):
            found["crop"] = tuple(int(s) for s in step.size)
        elif isinstance(step, T.Normalize):
            found["normalize"] = (tuple(float(m) for m in step.mean), tuple(float(s) for s in step.std))
        elif name in _IMPLICIT:
            continue
        else:
            raise UnsupportedPreprocessError(f"preprocessing step {step!r} has no tensor-path equivalent "
                                             f"(supported: shorter-side Resize, CenterCrop, Normalize); "
                                             "use pipeline='exact'")
    missing = [k for k in ("resize", "crop", "normalize") if k not in found]
    if missing:
        raise UnsupportedPreprocessError(f"preprocessing {preprocess!r} lacks {missing}; use pipeline='exact'")
    (size, interp, antialias), (mean, std) = found["resize"], found["normalize"]
    return Geometry(resize=size, crop=found["crop"], interpolation=interp, antialias=antialias, mean=mean, std=std)


def _copyable(preprocess: Callable) -> bool:
    try:
        geometry_of(preprocess)
    except UnsupportedPreprocessError:
        return False
    return True


def resize_and_crop(images: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` (one size) → uint8 ``[B, 3, *crop]``: the shorter side resized, centre cropped.
    Rounded back to uint8 after resizing, as PIL does, so both paths quantise at the same step."""
    resized = TF.resize(images, geometry.resize, interpolation=geometry.interpolation,
                        antialias=geometry.antialias)
    return TF.center_crop(resized, list(geometry.crop))


def normalise(images: torch.Tensor, geometry: Geometry) -> torch.Tensor:
    mean = torch.tensor(geometry.mean, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(geometry.std, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def batch_by_size(images: Sequence[torch.Tensor], geometry: Geometry) -> torch.Tensor:
    """Images of any sizes → one normalised float batch, in input order. Images of equal size are resized
    together (one kernel call per distinct size instead of one per image: most photo collections have a
    few dominant sizes), which is what makes the GPU path fast; the result equals resizing one by one."""
    groups: Dict[Tuple[int, int], List[int]] = defaultdict(list)
    for i, im in enumerate(images):
        groups[tuple(im.shape[-2:])].append(i)
    out: List[Optional[torch.Tensor]] = [None] * len(images)
    for _, idx in groups.items():
        done = resize_and_crop(torch.stack([images[i] for i in idx]), geometry)
        for j, i in enumerate(idx):
            out[i] = done[j]
    return normalise(torch.stack(out), geometry)


# -------------------------------------------------------------------------------------------- batches
class _Preprocessed(Dataset):
    def __init__(self, dataset, preprocess):
        self.dataset, self.preprocess = dataset, preprocess

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        image, label = self.dataset[i]
        return self.preprocess(image), label


def _exact_batches(dataset, preprocess: Callable, batch_size: int, settings: EncodeSettings
                   ) -> Tuple[int, Iterator[Tuple[torch.Tensor, torch.Tensor]]]:
    loader = DataLoader(_Preprocessed(dataset, preprocess), batch_size=batch_size, shuffle=False,
                        num_workers=settings.num_workers, pin_memory=settings.pin_memory,
                        persistent_workers=False)
    return len(loader), ((images, torch.as_tensor(y)) for images, y in loader)


def _decode_on_gpu(data: List[torch.Tensor], device: torch.device) -> List[torch.Tensor]:
    """File bytes → uint8 RGB ``[3, H, W]`` on ``device``: the JPEGs in one batched ``decode_jpeg`` call
    (nvJPEG), anything else (PNG, ...) decoded on the CPU and moved."""
    out: List[Optional[torch.Tensor]] = [None] * len(data)
    jpeg = [i for i, d in enumerate(data) if bytes(d[:3].tolist()) == _JPEG_MAGIC]
    if jpeg:
        for i, im in zip(jpeg, decode_jpeg([data[i] for i in jpeg], mode=ImageReadMode.RGB, device=device)):
            out[i] = im
    return [im if im is not None else decode_image(d, mode=ImageReadMode.RGB).to(device)
            for im, d in zip(out, data)]


def _fast_batches(dataset, preprocess: Callable, batch_size: int, settings: EncodeSettings
                  ) -> Tuple[int, Iterator[Tuple[torch.Tensor, torch.Tensor]]]:
    geometry = geometry_of(preprocess)
    device = torch.device(settings.device)
    n = len(dataset)
    starts = list(range(0, n, batch_size))
    targets = torch.as_tensor(np.asarray(dataset.targets)).long()
    samples = getattr(dataset, "samples", None)            # FolderDataset: files; else pixels held in memory
    gpu_decode = samples is not None and device.type == "cuda"

    def item(i: int) -> torch.Tensor:
        if samples is None:
            return TF.pil_to_tensor(dataset._image(i))
        data = read_file(samples[i][0])
        return data if gpu_decode else decode_image(data, mode=ImageReadMode.RGB)   # CPU: decode in the thread

    def load(readers: ThreadPoolExecutor, start: int) -> List[torch.Tensor]:
        return list(readers.map(item, range(start, min(n, start + batch_size))))

    def batches() -> Iterator[Tuple[torch.Tensor, torch.Tensor]]:
        # one thread assembles the next batch (its items spread over the readers) while this one decodes,
        # resizes and encodes the current one: two pools, so the assembler never waits on its own pool
        with ThreadPoolExecutor(max_workers=max(1, settings.num_workers), thread_name_prefix="zslab-read") as readers, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="zslab-prefetch") as prefetch:
            pending = prefetch.submit(load, readers, starts[0]) if starts else None
            for k, start in enumerate(starts):
                raw = pending.result()
                pending = prefetch.submit(load, readers, starts[k + 1]) if k + 1 < len(starts) else None
                pixels = _decode_on_gpu(raw, device) if gpu_decode else [r.to(device) for r in raw]
                yield batch_by_size(pixels, geometry), targets[start:start + len(raw)]

    return len(starts), batches()


BATCHES: Dict[str, Callable[..., Tuple[int, Iterator[Tuple[torch.Tensor, torch.Tensor]]]]] = {
    "exact": _exact_batches,
    "fast": _fast_batches,
}


def model_batches(dataset, preprocess: Callable, batch_size: int, settings: EncodeSettings
                  ) -> Tuple[int, Iterator[Tuple[torch.Tensor, torch.Tensor]]]:
    """``(number of batches, iterator of (images [B,3,H,W] float, labels [B]))`` by ``settings.pipeline``."""
    check_choice("pipeline", settings.pipeline, tuple(BATCHES))
    return BATCHES[settings.pipeline](dataset, preprocess, batch_size, settings)
