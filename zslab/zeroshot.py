"""Zero-shot heads: class names × prompt templates → normalised classifier weights.

One pure builder (``build_classifier``) that everything else composes around: prompt ensembling is
the (weighted) mean of L2-normalised text embeddings per class, renormalised (CLIP, Radford et al. 2021,
Sec. 3.1.4). Templates are strings with a ``{c}`` placeholder (data files under ``data/templates``), or a
dict of per-class prompt lists (descriptions, CuPL-style prompts).
"""
from __future__ import annotations

from typing import Callable, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

Templates = Union[Sequence[str], Mapping[str, Sequence[str]]]


def fill_templates(classnames: Sequence[str], templates: Templates) -> List[List[str]]:
    """The prompts of each class: ``templates`` formatted with the class name, or the class's own list."""
    if isinstance(templates, Mapping):
        missing = [c for c in classnames if c not in templates]
        if missing:
            raise ValueError(f"per-class prompts missing for classes {missing[:5]}")
        return [list(templates[c]) for c in classnames]
    templates = list(templates)
    if not templates:
        raise ValueError("no templates given")
    bad = [t for t in templates if t.count("{c}") != 1]
    if bad:
        raise ValueError(f"templates must contain '{{c}}' exactly once; bad: {bad}")
    return [[t.replace("{c}", name) for t in templates] for name in classnames]


def build_classifier(encode_text: Callable[[Sequence[str]], torch.Tensor], classnames: Sequence[str],
                     templates: Templates, weights: Optional[Union[Sequence[float], np.ndarray, torch.Tensor]] = None,
                     renormalize: bool = True) -> torch.Tensor:
    """Classifier weights ``[C, D]``, one unit vector per class.

    ``encode_text`` maps a list of strings to ``[N, D]`` embeddings (e.g. ``LoadedModel.encode_text``).
    ``weights``: per-template weights ``[T]`` or per-class ``[C, T]`` (non-negative, need not sum to 1);
    ``None`` gives the uniform prompt ensemble. ``renormalize=False`` keeps the (weighted) mean of the unit
    prompt vectors as it is, so an image's logit is the mean of its prompt similarities (the class score of
    classification by description, arXiv 2210.07183) rather than the similarity to the mean direction.
    """
    prompts = fill_templates(classnames, templates)
    counts = [len(p) for p in prompts]
    flat = [p for per_class in prompts for p in per_class]
    emb = F.normalize(encode_text(flat).float(), dim=-1)
    out = []
    start = 0
    w_all = None if weights is None else torch.as_tensor(np.asarray(weights, dtype=np.float32))
    for i, n in enumerate(counts):
        e = emb[start:start + n]
        start += n
        if w_all is None:
            w = torch.full((n,), 1.0 / n)
        else:
            w = w_all[i] if w_all.ndim == 2 else w_all
            if w.shape[0] != n:
                raise ValueError(f"class {classnames[i]!r} has {n} prompts but {w.shape[0]} weights")
            if (w < 0).any() or w.sum() <= 0:
                raise ValueError(f"template weights must be >= 0 and not all 0, got {w.tolist()}")
        out.append((w[:, None] * e).sum(0) / (w.sum() if w_all is not None and not renormalize else 1.0))
    stacked = torch.stack(out)
    return F.normalize(stacked, dim=-1) if renormalize else stacked


def template_embeddings(encode_text: Callable[[Sequence[str]], torch.Tensor], classnames: Sequence[str],
                        templates: Sequence[str]) -> torch.Tensor:
    """Per-template class embeddings ``[T, C, D]`` (normalised): what prompt-weighting methods score."""
    prompts = fill_templates(classnames, templates)
    flat = [prompts[c][t] for t in range(len(templates)) for c in range(len(classnames))]
    emb = F.normalize(encode_text(flat).float(), dim=-1)
    return emb.view(len(templates), len(classnames), -1)


def logits(image_features: torch.Tensor, classifier: torch.Tensor, scale: float = 100.0) -> torch.Tensor:
    """Scaled cosine similarities ``[N, C]`` (CLIP's logit scale is 100 after training)."""
    return scale * F.normalize(image_features.float(), dim=-1) @ classifier.T
