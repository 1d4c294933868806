"""One contrastive image-text training loop; the loss is a plug-in (see ``losses.py``)."""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Sequence

import torch
from tqdm.auto import tqdm

from .. import progress as progress_channel
from .compact_vocab import compact_token_embedding, supports_compaction
from .losses import build_loss


@dataclass
class TrainConfig:
    steps: int = 400
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 0.1
    warmup_steps: int = 30
    loss: str = "infonce"
    #: False keeps ``logit_scale`` (1/τ) at the model's initial value (``init_logit_scale`` of the model
    #: config): a fixed temperature, as CLOOB trains and as temperature sweeps need.
    learn_logit_scale: bool = True

    def as_dict(self) -> Dict:
        return asdict(self)


def _lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up then cosine decay to zero: the open_clip default schedule."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * progress))


def images_to_tensor(images_uint8: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``[N,H,W,3]`` uint8 → normalised ``[N,3,H,W]`` float, identical to open_clip's ToTensor+Normalize."""
    x = images_uint8.permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def train_contrastive(model: torch.nn.Module, images_uint8: torch.Tensor, caption_tokens: torch.Tensor,
                      cfg: TrainConfig, mean: Sequence[float] = (0.5, 0.5, 0.5),
                      std: Sequence[float] = (0.5, 0.5, 0.5), seed: int = 0, progress: bool = True,
                      device: str = "cpu", prepare: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                      label: str = "") -> Dict[str, List[float]]:
    """Train ``model`` on pre-rendered inputs and pre-tokenised captions with a contrastive loss.

    ``model(inputs, texts)`` must return a dict with ``image_features``, ``text_features`` and
    ``logit_scale`` (open_clip's CLIP with ``output_dict``; zslab's locked-text models). ``caption_tokens``
    is ``[N, K, ...]``: K captions per input (token ids, or row ids of a locked text table), one drawn at
    random per step, so the text side sees varied wordings without re-tokenising. ``prepare`` turns a
    batch of stored inputs into model inputs (default: uint8 images → normalised with ``mean``/``std``).
    Deterministic for a seed on CPU. Returns the loss history and throughput. Every 10 steps the step and
    loss are published through :mod:`zslab.progress` as "training <label>" (what is trained, e.g.
    "zsclip-tiny seed 1"; the loss name when empty), whatever ``progress`` says: ``zslab run`` shows it.
    """
    prepare = prepare or (lambda batch: images_to_tensor(batch, mean, std))
    if images_uint8.shape[0] != caption_tokens.shape[0]:
        raise ValueError(f"{images_uint8.shape[0]} images but {caption_tokens.shape[0]} caption rows")
    model.to(device)
    if supports_compaction(model):  # identical weights, less optimizer work (see compact_vocab.py)
        with compact_token_embedding(model, caption_tokens.to(device)) as compact_tokens:
            return _train(model, images_uint8, compact_tokens, cfg, prepare, seed, progress, device, label)
    return _train(model, images_uint8, caption_tokens, cfg, prepare, seed, progress, device, label)


def _train(model: torch.nn.Module, images_uint8: torch.Tensor, caption_tokens: torch.Tensor, cfg: TrainConfig,
           prepare: Callable[[torch.Tensor], torch.Tensor], seed: int, progress: bool, device: str,
           label: str) -> Dict[str, List[float]]:
    gen = torch.Generator().manual_seed(seed)
    # Dropout and other in-model randomness draw from the global generator: seed it here too, so that a
    # run does not depend on what consumed random numbers before it (e.g. computing vs reading cached
    # features), and retraining a damaged model gives the same weights.
    torch.manual_seed(seed)
    images_uint8, caption_tokens = images_uint8.to(device), caption_tokens.to(device)
    loss_fn = build_loss(cfg.loss)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6,
                            foreach=True)  # one fused update over all tensors: ~15 ms a step less on 2 cores
    n, k = caption_tokens.shape[:2]
    history: Dict[str, List[float]] = {"loss": []}
    output_dict = getattr(model, "output_dict", False)
    model.output_dict = True  # open_clip returns a dict with logit_scale (and logit_bias for sigmoid)
    learned = model.logit_scale.requires_grad
    if not cfg.learn_logit_scale:
        model.logit_scale.requires_grad_(False)
    model.train()
    start = time.perf_counter()
    bar = tqdm(range(cfg.steps), desc=f"training ({cfg.loss})", disable=not progress, mininterval=2.0)
    for step in bar:
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, cfg)
        idx = torch.randint(0, n, (cfg.batch_size,), generator=gen)
        cap = torch.randint(0, k, (cfg.batch_size,), generator=gen)
        idx, cap = idx.to(device), cap.to(device)
        images = prepare(images_uint8[idx])
        texts = caption_tokens[idx, cap]
        out = model(images, texts)
        extra = [out["logit_bias"]] if "logit_bias" in out else []
        loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"], *extra)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():  # CLIP clamps the temperature at 100
            model.logit_scale.clamp_(0, math.log(100))
        history["loss"].append(loss.item())
        if progress and step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if step == 0 or (step + 1) % 10 == 0 or step + 1 == cfg.steps:
            progress_channel.report(f"training {label or f'({cfg.loss})'}", step + 1, cfg.steps,
                                    f"loss {history['loss'][-1]:.3f}", unit="step")
    model.eval()
    model.output_dict = output_dict
    model.logit_scale.requires_grad_(learned)
    seconds = time.perf_counter() - start
    history["seconds"] = [seconds]
    history["images_per_second"] = [cfg.steps * cfg.batch_size / seconds]
    return history
