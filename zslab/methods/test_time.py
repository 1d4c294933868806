"""Test-time prompt tuning, one test image at a time: TPT and RLCF.

Both start from CLIP's prompt for every test image (episodic: the context is reset after each), see the image
as ``n_views`` random crops and flips plus itself, keep the ``share`` of views the model is most confident on
(lowest entropy, once, before tuning), take a few AdamW steps on the context, and predict the original image.

* **TPT** (Shu et al., NeurIPS 2022, arXiv 2209.07511) minimises the entropy of the selected views' mean
  prediction: it makes the model more confident in what it already believes.
* **RLCF** (Zhao et al., ICLR 2024, arXiv 2305.18010) takes feedback from a *reward model* instead: for each
  selected view, the student's top ``sample_k`` classes get the reward model's CLIPScore ``2.5 · max(cos, 0)``
  between the view and "a photo of a {class}.", minus the mean over those k; the loss is the mean of reward ×
  cross-entropy of the student's prediction to that class (its released ``tpt_cls_rl.py``: classes are the
  top-k, not sampled; rewards centred per view, not scaled). Classes the reward model prefers are pushed up,
  the others down, so a better reward model can correct the student where its confidence was wrong.

Views are encoded once per image and model and cached; tuning only runs the student's text tower.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Registry
from .prompt_learning import ClassPrompts, context_classifier, encode_prompt_embeddings, frozen

#: The crop scale of the views (a share of the image's area; TPT's torchvision default starts at 0.08, which on
#: zsworld's 64-pixel scenes often crops the object away).
VIEW_SCALE = (0.3, 1.0)


@dataclass
class TTAConfig:
    """Settings of both methods (RLCF's prompt script: 3 steps, lr 7e-3, weight decay 5e-4, 10% of 64 views,
    k = 3; TPT's: 1 step, lr 5e-3)."""

    steps: int = 3
    lr: float = 7e-3
    weight_decay: float = 5e-4
    share: float = 0.1
    sample_k: int = 3
    clipscore_weight: float = 2.5

    def __post_init__(self) -> None:
        if self.steps < 1 or self.lr <= 0:
            raise ValueError(f"need steps ≥ 1 and lr > 0, got {self.steps} and {self.lr}")
        if not 0 < self.share <= 1:
            raise ValueError(f"share must be in (0, 1], got {self.share}")
        if self.sample_k < 1:
            raise ValueError(f"sample_k must be at least 1, got {self.sample_k}")

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def view_features(lm: Any, dataset, n_views: int, seed: int, batch_size: int = 256, cache: Any = None) -> torch.Tensor:
    """Unit image features ``[N, 1 + n_views, D]`` of every image of ``dataset`` (PIL items): the image itself
    first, then ``n_views`` random resized crops (:data:`VIEW_SCALE`) with random flips, seeded per image.
    Cached under the model, the dataset's identity and the view settings."""
    from ..cache import TensorCache

    description = {"kind": "test-time views", "model": lm.fingerprint, "preprocess": repr(lm.preprocess),
                   "dataset": dataset.identity, "n_views": int(n_views), "seed": int(seed), "scale": list(VIEW_SCALE)}
    return (cache or TensorCache()).get_or_compute(
        description, lambda: {"views": _encode_views(lm, dataset, n_views, seed, batch_size)})["views"]


def _encode_views(lm: Any, dataset, n_views: int, seed: int, batch_size: int) -> torch.Tensor:
    import torchvision.transforms as T

    from .. import progress as progress_channel

    augment = T.Compose([T.RandomResizedCrop(_image_size(dataset), scale=VIEW_SCALE), T.RandomHorizontalFlip()])
    out = []
    pending = []
    with torch.no_grad():
        for i in range(len(dataset)):
            image, _ = dataset[i]
            torch.manual_seed(int(np.random.default_rng([seed, i, 29]).integers(2**31)))
            pending += [lm.preprocess(image)] + [lm.preprocess(augment(image)) for _ in range(n_views)]
            if len(pending) >= batch_size or i == len(dataset) - 1:
                out.append(F.normalize(lm.model.encode_image(torch.stack(pending).to(lm.device)).float().cpu(), dim=-1))
                pending = []
                progress_channel.report("test-time views", i + 1, len(dataset), unit="image")
    return torch.cat(out).reshape(len(dataset), 1 + n_views, -1)


def _image_size(dataset) -> int:
    image, _ = dataset[0]
    return min(image.size)


def confident_views(logits: torch.Tensor, share: float) -> torch.Tensor:
    """Indices of the ``share`` of rows (views) with the lowest prediction entropy (at least one)."""
    probs = logits.float().softmax(-1)
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1)
    return torch.argsort(entropy, stable=True)[:max(1, int(len(logits) * share))]


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """TPT's loss: the entropy of the mean of the rows' predicted distributions."""
    mean = logits.log_softmax(-1).exp().mean(0)
    return -(mean * mean.clamp_min(1e-12).log()).sum()


def rlcf_loss(logits: torch.Tensor, rewards: torch.Tensor, k: int) -> torch.Tensor:
    """RLCF's loss for the selected views' student ``logits`` ``[S, C]`` and the reward model's CLIPScores of every
    class for those views ``rewards`` ``[S, C]``: mean over (view, top-k class) of ``(r − mean_k r) · CE``."""
    top = logits.detach().topk(k, dim=-1).indices                                 # [S, k]
    r = rewards.gather(1, top)
    r = r - r.mean(1, keepdim=True) if k > 1 else r
    ce = F.cross_entropy(logits.repeat_interleave(k, 0), top.flatten(), reduction="none")
    return (r.flatten() * ce).mean()


#: Test-time objectives: ``(selected logits, selected rewards or None, cfg) → loss``.
TTA_OBJECTIVES: Registry[Callable[..., torch.Tensor]] = Registry("test-time objective")
TTA_OBJECTIVES.add("TPT", lambda logits, rewards, cfg: marginal_entropy(logits))
TTA_OBJECTIVES.add("RLCF", lambda logits, rewards, cfg: rlcf_loss(logits, rewards, cfg.sample_k))


def clip_scores(view_feats: torch.Tensor, text: torch.Tensor, weight: float = 2.5) -> torch.Tensor:
    """CLIPScore ``weight · max(cos, 0)`` of every view ``[..., D]`` with every class text embedding ``[C, D]``."""
    return weight * (view_feats @ F.normalize(text.float(), dim=-1).T).clamp_min(0)


def adapt_and_predict(lm: Any, classnames: Sequence[str], views: torch.Tensor, objective: str, cfg: TTAConfig,
                      rewards: Optional[torch.Tensor] = None, context_init: str = "a photo of a",
                      label: str = "") -> torch.Tensor:
    """Predicted class of each test image after episodic test-time tuning of the student ``lm``'s context with
    ``objective`` (:data:`TTA_OBJECTIVES`); ``views`` ``[N, 1 + V, D]`` are the student's view features and
    ``rewards`` ``[N, 1 + V, C]`` the reward model's CLIPScores (RLCF only)."""
    from .. import progress as progress_channel

    loss_of = TTA_OBJECTIVES.get(objective)
    if objective == "RLCF" and rewards is None:
        raise ValueError("RLCF needs the reward model's scores of the views (rewards=...)")
    predictions = []
    with frozen(lm.model):
        clip = lm.model
        prompts = ClassPrompts(clip, lm.tokenizer, classnames, context_init)
        scale = float(clip.logit_scale.exp())
        w0 = context_classifier(lm, classnames, context_init=context_init)      # the zero-shot prompt
        for i in range(views.shape[0]):
            picked = confident_views(scale * views[i] @ w0.T, cfg.share)
            context = torch.nn.Parameter(prompts.initial_context.clone())
            opt = torch.optim.AdamW([context], lr=cfg.lr, weight_decay=cfg.weight_decay)
            for _ in range(cfg.steps):
                w = F.normalize(encode_prompt_embeddings(clip, prompts.embeddings(context), prompts.tokens).float(), dim=-1)
                loss = loss_of(scale * views[i, picked] @ w.T, None if rewards is None else rewards[i, picked], cfg)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            with torch.no_grad():
                w = F.normalize(encode_prompt_embeddings(clip, prompts.embeddings(context), prompts.tokens).float(), dim=-1)
                predictions.append(int((views[i, 0] @ w.T).argmax()))
            if i % 20 == 0 or i == views.shape[0] - 1:
                progress_channel.report(f"{objective} {label}".strip(), i + 1, views.shape[0], unit="image")
    return torch.tensor(predictions)


def cached_adapt_and_predict(lm: Any, classnames: Sequence[str], views: torch.Tensor, objective: str, cfg: TTAConfig,
                             rewards: Optional[torch.Tensor] = None, context_init: str = "a photo of a",
                             label: str = "", cache: Any = None) -> torch.Tensor:
    """:func:`adapt_and_predict`, read from the tensor cache when these views, rewards and settings ran before."""
    from ..cache import TensorCache, tensor_digest

    tensors = {"views": views} if rewards is None else {"views": views, "rewards": rewards}
    description = {"kind": "test-time predictions", "model": lm.fingerprint, "classnames": list(classnames),
                   "objective": objective, "config": cfg.as_dict(), "context_init": context_init,
                   "inputs": tensor_digest(tensors)}
    return (cache or TensorCache()).get_or_compute(description, lambda: {"predictions": adapt_and_predict(
        lm, classnames, views, objective, cfg, rewards, context_init, label)})["predictions"]
