"""Contrastive losses as plug-ins of the one training loop (open_clip's own implementations)."""
from __future__ import annotations

from typing import Callable

import open_clip
import torch
from open_clip.loss import SigLipLoss  # not re-exported at open_clip's top level (3.3.0)

from ..registry import Registry

#: name -> factory returning an ``nn.Module`` called as ``loss(image_features, text_features, logit_scale, [logit_bias])``.
LOSSES: Registry[Callable[[], torch.nn.Module]] = Registry("contrastive loss")
LOSSES.add("infonce", lambda: open_clip.ClipLoss())
LOSSES.add("sigmoid", lambda: SigLipLoss())


def build_loss(name: str) -> torch.nn.Module:
    return LOSSES.get(name)()
