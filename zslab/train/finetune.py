"""Fine-tuning a CLIP image tower into a classifier whose head starts as the zero-shot head.

The recipe of WiSE-FT and model soups (arXiv 2109.01903, 2203.05482; the model-soups repository's
``finetune.py``): the head is a linear layer initialised with the normalised text embeddings of the
class prompts times CLIP's logit scale, applied to the *normalised* image features, and the image tower
and head are trained end to end with cross-entropy, AdamW, a warm-up + cosine schedule and gradient
clipping at norm 1. Starting from the zero-shot head means step 0 is the zero-shot classifier, so
fine-tunes from one pretrained model start at one point and (at a small learning rate) stay in one
basin: what weight averaging needs.

One loop, deterministic on CPU for a seed; the hyperparameters a soup varies (learning rate, label
smoothing, augmentation, data order) are fields of :class:`FinetuneConfig`. Augmentations act on uint8
``[B, H, W, 3]`` batches and are a registry (:data:`AUGMENTATIONS`).
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import progress as progress_channel
from ..errors import check_choice
from ..registry import Registry
from .contrastive import _lr_at, images_to_tensor

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUGMENTATIONS: Registry[Augmentation] = Registry("fine-tuning augmentation")

#: Largest translation of the ``shift`` augmentation, in pixels (an eighth of zsworld's 32 px image).
MAX_SHIFT = 4
#: Pixel noise of the ``noise`` augmentation (std on the 0-255 scale; the world renders with 8).
NOISE_STD = 16.0


@AUGMENTATIONS.register("none")
def _no_augmentation(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return batch


@AUGMENTATIONS.register("flip")
def _flip(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the images left-right."""
    mirrored = torch.rand(len(batch), generator=gen) < 0.5
    out = batch.clone()
    out[mirrored] = batch[mirrored].flip(2)
    return out


@AUGMENTATIONS.register("shift")
def _shift(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by up to :data:`MAX_SHIFT` px per axis, filling with its edge pixels."""
    b, h, w, _ = batch.shape
    padded = F.pad(batch.permute(0, 3, 1, 2).float(), (MAX_SHIFT,) * 4, mode="replicate")
    dy = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * MAX_SHIFT + 1, (b,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, 3, h, w + 2 * MAX_SHIFT)
    cropped = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, 3, h, w)
    return cropped.gather(3, cols).permute(0, 2, 3, 1).to(batch.dtype)


@AUGMENTATIONS.register("flip-shift")
def _flip_shift(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return _shift(_flip(batch, gen), gen)


@AUGMENTATIONS.register("noise")
def _noise(batch: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Add Gaussian pixel noise (:data:`NOISE_STD`), clipped to 0-255."""
    noisy = batch.float() + NOISE_STD * torch.randn(batch.shape, generator=gen)
    return noisy.round().clamp(0, 255).to(batch.dtype)


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run; ``seed`` fixes the data order and augmentation draws."""

    steps: int = 150
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.1
    warmup_steps: int = 15
    label_smoothing: float = 0.0
    augment: str = "none"
    seed: int = 0
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        check_choice("augment", self.augment, AUGMENTATIONS.names())
        for name in ("steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"FinetuneConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise ValueError(f"FinetuneConfig.lr must be > 0, got {self.lr!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"FinetuneConfig.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"FinetuneConfig.warmup_steps must be in [0, steps={self.steps}], "
                             f"got {self.warmup_steps!r}")

    def as_dict(self) -> Dict:
        return asdict(self)


class ZeroShotInitClassifier(nn.Module):
    """``head(normalize(visual(x)))`` with the head initialised to the zero-shot classifier.

    ``class_embeddings`` ``[C, D]`` are the unit class vectors of a zero-shot head (e.g. a template
    ensemble) and ``logit_scale`` CLIP's 1/τ: at initialisation the logits are exactly the zero-shot ones.
    ``features`` gives the normalised image features (for zero-shot heads on other classes).
    """

    def __init__(self, visual: nn.Module, class_embeddings: torch.Tensor, logit_scale: float):
        super().__init__()
        self.visual = visual
        weight = F.normalize(class_embeddings.detach().float(), dim=-1) * float(logit_scale)
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(weight)
            self.head.bias.zero_()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(x), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def zero_shot_init_classifier(clip: nn.Module, class_embeddings: torch.Tensor,
                              logit_scale: float) -> ZeroShotInitClassifier:
    """A classifier on a *copy* of ``clip.visual`` (the pretrained model stays as it was)."""
    return ZeroShotInitClassifier(copy.deepcopy(clip.visual), class_embeddings, logit_scale)


def finetune_classifier(classifier: nn.Module, images_uint8: torch.Tensor, labels: torch.Tensor,
                        cfg: FinetuneConfig, mean: Sequence[float] = (0.5, 0.5, 0.5),
                        std: Sequence[float] = (0.5, 0.5, 0.5), progress: bool = False,
                        label: str = "", extra_loss: Optional[Callable[[int, torch.Generator], torch.Tensor]] = None,
                        after_step: Optional[Callable[[int], None]] = None) -> Dict[str, List[float]]:
    """Train ``classifier`` in place on uint8 ``[N, H, W, 3]`` images and int labels; the loss history.

    Batches are drawn with replacement by a generator seeded with ``cfg.seed`` (as the contrastive loop
    does); weight decay applies to matrices only; parameters with ``requires_grad=False`` (e.g. a fixed
    text head) are left alone. ``extra_loss(step, generator)`` is added to the cross-entropy (ZSCL's
    distillation on reference data draws its batch from the same generator); ``after_step(step)`` runs
    after each update (weight averaging). Every 10 steps the progress is published through
    :mod:`zslab.progress` as "fine-tuning <label>".
    """
    if images_uint8.ndim != 4 or images_uint8.shape[-1] != 3 or images_uint8.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, 3], got {tuple(images_uint8.shape)} {images_uint8.dtype}")
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.shape != (images_uint8.shape[0],):
        raise ValueError(f"{images_uint8.shape[0]} images but labels of shape {tuple(labels.shape)}")
    augment = AUGMENTATIONS.get(cfg.augment)
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)  # dropout and other in-model randomness
    trained = [p for p in classifier.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim >= 2]
    no_decay = [p for p in trained if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, foreach=True)
    history: Dict[str, List[float]] = {"loss": []}
    classifier.train()
    start = time.perf_counter()
    for step in tqdm(range(cfg.steps), desc="fine-tuning", disable=not progress, mininterval=2.0):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        idx = torch.randint(0, len(labels), (cfg.batch_size,), generator=gen)
        batch = images_to_tensor(augment(images_uint8[idx], gen), mean, std)
        loss = F.cross_entropy(classifier(batch), labels[idx], label_smoothing=cfg.label_smoothing)
        if extra_loss is not None:
            loss = loss + extra_loss(step, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, cfg.grad_clip)
        opt.step()
        if after_step is not None:
            after_step(step)
        history["loss"].append(loss.item())
        if step == 0 or (step + 1) % 10 == 0 or step + 1 == cfg.steps:
            progress_channel.report(f"fine-tuning {label or cfg.augment}", step + 1, cfg.steps,
                                    f"loss {history['loss'][-1]:.3f}", unit="step")
    classifier.eval()
    history["seconds"] = [time.perf_counter() - start]
    return history
