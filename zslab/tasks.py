"""Zero-shot classification inputs of either kind, text or images, behind one interface.

A :class:`ZeroShotInputs` is what a similarity-based zero-shot classifier needs: the inputs' embeddings,
their labels, the class names, a text encoder for label prompts, default prompt templates, and a
*content-free* input (the null input of Liusie et al., arXiv 2309.04992: the input with its content
left empty — the empty string for text, a uniform image of the test images' mean color for images).
Kinds are a registry; ``setting`` strings ``kind|model|dataset|split`` name one in a notebook parameter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidChoiceError
from .registry import Registry


@dataclass
class ZeroShotInputs:
    kind: str
    dataset: str
    classes: List[str]
    labels: np.ndarray
    features: torch.Tensor          # [N, D], unit rows
    null_features: torch.Tensor     # [M, D], unit rows: content-free input(s)
    encode_text: Callable[[Sequence[str]], torch.Tensor]
    templates: List[str]


INPUT_KINDS: Registry[Callable[..., ZeroShotInputs]] = Registry("zero-shot input kind")
#: Text classification tasks by name (each ``load(n_per_class=, seed=, split=)`` -> TextTask).
TEXT_TASKS: Registry[Callable] = Registry("text task")


def _gloss_task(**kwargs):
    from .textdata import load_gloss_task

    return load_gloss_task(**kwargs)


TEXT_TASKS.add("wordnet_glosses", _gloss_task)


def parse_setting(setting: str) -> Tuple[str, str, str, str]:
    """``"kind|model|dataset|split"`` → its four parts; a malformed one raises naming the valid kinds."""
    parts = setting.split("|")
    if len(parts) != 4 or parts[0] not in INPUT_KINDS:
        raise InvalidChoiceError(f"setting {setting!r} must be kind|model|dataset|split with kind one of "
                                 f"{INPUT_KINDS.names()}")
    return parts[0], parts[1], parts[2], parts[3]


def load_inputs(setting: str, n_per_class: int, seed: int, pretrained: Optional[str] = None,
                device: str = "cpu") -> ZeroShotInputs:
    """The inputs of ``setting``; ``device`` is where images are encoded (text encoders stay on the CPU)."""
    kind, model, dataset, split = parse_setting(setting)
    return INPUT_KINDS.get(kind)(model, dataset, split, n_per_class, seed, pretrained, device)


@INPUT_KINDS.register("text")
def _text_inputs(model: str, dataset: str, split: str, n_per_class: int, seed: int,
                 pretrained: Optional[str], device: str = "cpu") -> ZeroShotInputs:
    from .datasets import load_templates
    from .text import encode_cached, load_text_encoder

    task = TEXT_TASKS.get(dataset)(n_per_class=n_per_class, seed=seed, split=split)
    enc = load_text_encoder(model)
    x = F.normalize(encode_cached(enc, task.texts).float(), dim=-1)
    null = F.normalize(enc.encode([""]).float(), dim=-1)
    return ZeroShotInputs("text", dataset, list(task.classes), np.asarray(task.labels), x, null, enc.encode,
                          load_templates("text_topics"))


@INPUT_KINDS.register("image")
def _image_inputs(model: str, dataset: str, split: str, n_per_class: int, seed: int,
                  pretrained: Optional[str], device: str = "cpu") -> ZeroShotInputs:
    from PIL import Image

    from .evaluation import encode_eval_set

    run = encode_eval_set(model, pretrained, dataset, split, seed, n_per_class, device=device)
    mean = np.zeros(3)
    count = 0
    for i in range(0, len(run.dataset), max(1, len(run.dataset) // 200)):  # a sample is enough for a mean
        mean += np.asarray(run.dataset[i][0].convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0)
        count += 1
    size = run.dataset[0][0].size
    blank = Image.new("RGB", size, tuple(int(round(v)) for v in mean / count))
    null = F.normalize(run.model.encode_image(run.model.preprocess(blank).unsqueeze(0)).float(), dim=-1)
    return ZeroShotInputs("image", dataset, list(run.dataset.classes), run.labels.numpy(),
                          F.normalize(run.features.float(), dim=-1), null, run.encode_text,
                          list(run.dataset.templates))
