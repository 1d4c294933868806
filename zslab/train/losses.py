"""Contrastive losses as plug-ins of the one training loop.

Every loss is called as ``loss(image_features, text_features, logit_scale[, logit_bias])`` on L2-normalised
features (open_clip's models normalise them), where ``logit_scale`` is the inverse temperature ``1/τ``.
InfoNCE and the sigmoid loss are open_clip's own implementations; InfoLOOB and CLOOB follow Fürst et al.
(arXiv 2110.11316) and the authors' code (ml-jku/cloob, ``src/training/methods.py``); the alignment and
uniformity terms are Wang and Isola's (arXiv 2005.10242), added to InfoNCE across the two modalities as the
contrastive-gap paper proposes (arXiv 2405.18570); CWCL's continuous targets are Srinivasa et al.'s (arXiv
2309.14580).
"""
from __future__ import annotations

from typing import Callable, Optional

import open_clip
import torch
import torch.nn.functional as F
from open_clip.loss import SigLipLoss  # not re-exported at open_clip's top level (3.3.0)

from ..registry import Registry

#: CLOOB's Hopfield scale β (the authors' README trains with ``--scale-hopfield=8 --init-inv-tau=30``, both fixed).
CLOOB_HOPFIELD_SCALE = 8.0


def info_loob(anchors: torch.Tensor, candidates: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """InfoLOOB, one direction: ``τ · mean_i [ −s a_i·c_i + logsumexp_{j≠i} s a_i·c_j ]`` with ``s = 1/τ``.

    Unlike InfoNCE the positive pair is left out of the denominator ("leave one out"), so the loss does not
    saturate once the positive dominates; the factor τ keeps its gradient scale independent of τ (CLOOB)."""
    k = logit_scale * anchors @ candidates.T
    eye = torch.eye(len(k), dtype=torch.bool, device=k.device)
    negatives = torch.logsumexp(k.masked_fill(eye, float("-inf")), dim=1)
    return (negatives - k.diagonal()).mean() / logit_scale


def hopfield_retrieval(state: torch.Tensor, stored: torch.Tensor, beta: float) -> torch.Tensor:
    """What a modern Hopfield network with ``stored`` patterns retrieves for each ``state`` row, one update,
    re-normalised: ``normalize(softmax(β · state @ storedᵀ) @ stored)``."""
    return F.normalize(torch.softmax(beta * state @ stored.T, dim=1) @ stored, dim=-1)


class InfoLOOBLoss(torch.nn.Module):
    """Symmetric InfoLOOB on the features themselves (CLOOB without its Hopfield retrieval: the ablation)."""

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
        return info_loob(image_features, text_features, logit_scale) + info_loob(text_features, image_features,
                                                                                 logit_scale)


class CloobLoss(torch.nn.Module):
    """CLOOB: InfoLOOB on Hopfield-retrieved embeddings. Images and texts of the batch are the stored
    patterns; each image and each text retrieves from the image memory (``U``) and from the text memory
    (``V``), which pulls covarying features together before the contrast:
    ``InfoLOOB(U_x, U_y) + InfoLOOB(V_y, V_x)``."""

    def __init__(self, hopfield_scale: float = CLOOB_HOPFIELD_SCALE):
        super().__init__()
        self.hopfield_scale = hopfield_scale

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
        x, y, beta = image_features, text_features, self.hopfield_scale
        u_x, u_y = hopfield_retrieval(x, x, beta), hopfield_retrieval(y, x, beta)
        v_x, v_y = hopfield_retrieval(x, y, beta), hopfield_retrieval(y, y, beta)
        return info_loob(u_x, u_y, logit_scale) + info_loob(v_y, v_x, logit_scale)


def alignment(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Wang and Isola's alignment: mean squared distance ``E‖x_i − y_i‖²`` of paired unit rows (lower: closer)."""
    return (x - y).pow(2).sum(dim=1).mean()


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Wang and Isola's uniformity: ``log E_{i<j} exp(−t‖z_i − z_j‖²)`` over distinct rows (lower: more
    uniform on the sphere; its minimum for many points in d dimensions approaches ``−t``·2)."""
    return torch.pdist(z, p=2).pow(2).mul(-t).exp().mean().log()


class AlignUniformClipLoss(torch.nn.Module):
    """InfoNCE plus ``w_align`` · alignment of the pairs plus ``w_uniform`` · uniformity of images and texts
    *together*: spreading the union over the sphere is what pulls the two modalities' cones into each
    other, closing the contrastive gap."""

    def __init__(self, w_align: float = 1.0, w_uniform: float = 1.0):
        super().__init__()
        self.clip, self.w_align, self.w_uniform = open_clip.ClipLoss(), w_align, w_uniform

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
        union = torch.cat([image_features, text_features])
        return (self.clip(image_features, text_features, logit_scale)
                + self.w_align * alignment(image_features, text_features) + self.w_uniform * uniformity(union))


def cwcl_weights(frozen_features: torch.Tensor) -> torch.Tensor:
    """CWCL's continuous similarity of every pair in a batch, from the *frozen* modality's embeddings:
    ``w_ij = (q_i·q_j + 1) / 2`` for unit rows ``q`` (1 for a text and itself or an identical text, 0 for
    opposite ones). No gradient flows through it."""
    q = F.normalize(frozen_features.detach().float(), dim=-1)
    return (q @ q.T + 1) / 2


def soft_cross_entropy(logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``−Σ_j t_ij log softmax(logits_i)_j`` with targets ``t_ij = w_ij / Σ_k w_ik``."""
    targets = weights / weights.sum(dim=1, keepdim=True)
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


class CwclLoss(torch.nn.Module):
    """Continuously weighted contrastive loss (CWCL, arXiv 2309.14580) for aligning a new tower to a frozen
    one: instead of one-hot targets (the own caption positive, every other caption negative), each image's
    target over the batch's texts is proportional to how similar those texts are to its own caption in the
    frozen text space (:func:`cwcl_weights`), both directions averaged as InfoNCE is. Two captions of the same
    class are then no longer pushed apart. The text features passed in must be the frozen encoder's (a
    locked text tower with no trained text head, as zslab's ``lit-*`` locked-text models).

    ``permute_weights`` is the control: the same weight matrix with its texts shuffled (one random
    permutation of rows and columns, so each row keeps weight 1 on its own caption and the same spread of
    weights elsewhere), which keeps the soft targets but unties them from which captions are alike.
    ``one_direction`` weighs only the text→image direction (each caption's target over the batch's images)
    and keeps one-hot targets image→text, as CellCLIP (Lu, Weinberger, Kim and Lee) adapts CWCL: soft targets anchored
    on the modality whose similarities define them."""

    def __init__(self, permute_weights: bool = False, one_direction: bool = False):
        super().__init__()
        self.permute_weights, self.one_direction = permute_weights, one_direction

    def forward(self, image_features: torch.Tensor, text_features: torch.Tensor,
                logit_scale: torch.Tensor) -> torch.Tensor:
        w = cwcl_weights(text_features)
        if self.permute_weights:
            p = torch.randperm(len(w), device=w.device)
            w = w[p][:, p]
        logits = logit_scale * image_features @ text_features.T
        image_to_text = (F.cross_entropy(logits, torch.arange(len(w), device=w.device)) if self.one_direction
                         else soft_cross_entropy(logits, w))
        return 0.5 * (image_to_text + soft_cross_entropy(logits.T, w))


#: name -> factory returning an ``nn.Module`` called as ``loss(image_features, text_features, logit_scale, [logit_bias])``.
LOSSES: Registry[Callable[[], torch.nn.Module]] = Registry("contrastive loss")
LOSSES.add("infonce", lambda: open_clip.ClipLoss())
LOSSES.add("sigmoid", lambda: SigLipLoss())
LOSSES.add("infoloob", InfoLOOBLoss)
LOSSES.add("cloob", CloobLoss)
LOSSES.add("infonce+align+uniform", AlignUniformClipLoss)
LOSSES.add("cwcl", CwclLoss)
LOSSES.add("cwcl-permuted-weights", lambda: CwclLoss(permute_weights=True))
LOSSES.add("cwcl-text-to-image", lambda: CwclLoss(one_direction=True))


def build_loss(name: str, **kwargs: Optional[float]) -> torch.nn.Module:
    return LOSSES.get(name)(**kwargs)
