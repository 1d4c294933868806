"""Prompt engineering and ensembling (CLIP, Radford et al. 2021, Sec. 3.1.4): heads compared on the
same images, so differences between them are paired."""
from __future__ import annotations

from typing import Callable, Dict, Mapping, Sequence

import numpy as np
import torch

from ..evaluation import correct_vector
from ..zeroshot import Templates, build_classifier

#: The three heads of the CLIP prompt-engineering comparison, by role.
CLASS_NAME_ONLY = ["{c}"]


def prompt_heads(single_template: str, ensemble: Sequence[str]) -> Dict[str, Templates]:
    """Class name alone, one template, and a template ensemble (mean of normalised text embeddings)."""
    return {"class name": CLASS_NAME_ONLY, "one template": [single_template], "ensemble": list(ensemble)}


def evaluate_heads(encode_text: Callable[[Sequence[str]], torch.Tensor], classnames: Sequence[str],
                   heads: Mapping[str, Templates], image_features: torch.Tensor,
                   labels: torch.Tensor) -> Dict[str, np.ndarray]:
    """Per-image 0/1 correctness of each head on the same images."""
    return {name: correct_vector(image_features, labels, build_classifier(encode_text, classnames, templates))
            for name, templates in heads.items()}
