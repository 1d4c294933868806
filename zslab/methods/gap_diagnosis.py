"""Diagnosing a zero-shot reproduction gap one switch at a time (CLIP, Radford et al. 2021, arXiv 2103.00020,
Sec. 3.1.4; and the causes open_clip and CLIP_benchmark users report when their numbers differ).

A *switch* changes one thing about an evaluation and nothing else: the prompts (the paper's own levers:
template, ensemble, class names), the activation function the weights are run with (OpenAI's checkpoints
need QuickGELU; loading them with GELU, or a GELU-trained model with QuickGELU, is a classic silent bug),
the normalisation constants of the image preprocessing, the numerical precision, or the image pipeline.
Each switch is scored on the same images as the reference evaluation, so its effect is a paired difference.

Switches are a registry (``SWITCHES``); each returns an :class:`Evaluation` from the reference one. A switch
that changes the model or its preprocessing gets its own cache identity (``variant``), so cached features of
the reference are never reused for it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Mapping, Sequence

import numpy as np
import torch
from torchvision import transforms

from ..registry import Registry
from ..evaluation import correct_vector
from ..zeroshot import Templates, build_classifier

#: OpenAI CLIP's image normalisation constants (open_clip.OPENAI_DATASET_MEAN / _STD).
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class Evaluation:
    """What one zero-shot evaluation is made of: a loaded model, class names, prompts, how images are encoded."""

    model: object                        # zslab.models.LoadedModel
    classes: List[str]
    prompts: Templates
    precision: str = "fp32"              # image_features precision
    pipeline: str = "exact"              # image_features pipeline
    changes: Dict[str, str] = field(default_factory=dict)


def variant_model(lm, tag: str, **updates):
    """A copy of the LoadedModel ``lm`` with ``updates`` (e.g. another ``model`` or ``preprocess``) and a
    fingerprint of its own (``<weights>+<tag>``): features of the variant are cached apart from the original's."""
    new = copy.copy(lm)
    for key, value in updates.items():
        setattr(new, key, value)
    new._fingerprint = f"{lm.fingerprint}+{tag}"
    return new


def swap_activation(module: torch.nn.Module, to_quick_gelu: bool = True) -> torch.nn.Module:
    """A deep copy of ``module`` with every ``nn.GELU`` replaced by QuickGELU (``x·σ(1.702x)``, what OpenAI's
    CLIP was trained with), or every QuickGELU by ``nn.GELU``; raises if there was nothing to swap."""
    from open_clip.transformer import QuickGELU

    out = copy.deepcopy(module)
    source, target = (torch.nn.GELU, QuickGELU) if to_quick_gelu else (QuickGELU, torch.nn.GELU)
    swapped = 0
    for parent in out.modules():
        for name, child in parent.named_children():
            if isinstance(child, source):
                setattr(parent, name, target())
                swapped += 1
    if not swapped:
        raise ValueError(f"no {source.__name__} layer to swap in {type(module).__name__}")
    return out


def with_normalisation(preprocess: Callable, mean: Sequence[float], std: Sequence[float]) -> Callable:
    """``preprocess`` (a torchvision ``Compose``) with its ``Normalize`` step's constants replaced."""
    steps = getattr(preprocess, "transforms", None)
    if steps is None or not any(isinstance(t, transforms.Normalize) for t in steps):
        raise ValueError("the preprocessing has no Normalize step to change")
    return transforms.Compose([transforms.Normalize(mean, std) if isinstance(t, transforms.Normalize) else t
                               for t in steps])


def normalisation_of(preprocess: Callable) -> tuple:
    """The (mean, std) of ``preprocess``'s Normalize step."""
    step = next(t for t in preprocess.transforms if isinstance(t, transforms.Normalize))
    return tuple(float(v) for v in step.mean), tuple(float(v) for v in step.std)


#: Switches: ``(reference Evaluation, context) -> Evaluation`` with one thing changed. ``context`` holds
#: ``templates`` (the dataset's ensemble), ``synonyms`` ({word: rarer word}) and the like.
SWITCHES: Registry[Callable[[Evaluation, Mapping], Evaluation]] = Registry("evaluation switch")


@SWITCHES.register("bare class name")
def bare_class_name(ref: Evaluation, context: Mapping) -> Evaluation:
    return replace(ref, prompts=["{c}"], changes={"prompts": "the class name alone"})


@SWITCHES.register("template ensemble")
def template_ensemble(ref: Evaluation, context: Mapping) -> Evaluation:
    return replace(ref, prompts=list(context["templates"]), changes={"prompts": f"{len(context['templates'])} templates"})


@SWITCHES.register("rarer class-name synonyms")
def rarer_synonyms(ref: Evaluation, context: Mapping) -> Evaluation:
    """Class names with each word replaced by its synonym (zsworld: box for square, disc for circle...): the
    name a dataset happens to use is a lever too (the CLIP paper edited ImageNet's names)."""
    synonyms = context.get("synonyms") or {}
    if not synonyms:
        raise ValueError("no synonyms given for the class-name switch")
    renamed = [" ".join(synonyms.get(w, w) for w in c.split()) for c in ref.classes]
    return replace(ref, classes=renamed, changes={"class names": f"{sum(a != b for a, b in zip(renamed, ref.classes))} renamed"})


@SWITCHES.register("QuickGELU forced")
def quick_gelu_forced(ref: Evaluation, context: Mapping) -> Evaluation:
    """The weights run with the other activation (open_clip's ``force_quick_gelu`` on a GELU model)."""
    lm = ref.model
    return replace(ref, model=variant_model(lm, "quickgelu", model=swap_activation(lm.model, True)),
                   changes={"activation": "QuickGELU instead of GELU"})


@SWITCHES.register("OpenAI normalisation constants")
def openai_normalisation(ref: Evaluation, context: Mapping) -> Evaluation:
    """Images normalised with OpenAI's mean/std instead of the model's own (or with 0.5/0.5 when the model's
    are OpenAI's): what happens when a preprocessing pipeline is copied from another model."""
    lm = ref.model
    mean, _ = normalisation_of(lm.preprocess)
    target = ((0.5,) * 3, (0.5,) * 3) if np.allclose(mean, OPENAI_MEAN) else (OPENAI_MEAN, OPENAI_STD)
    return replace(ref, model=variant_model(lm, f"norm{target[0][0]:.3f}", preprocess=with_normalisation(lm.preprocess, *target)),
                   changes={"normalisation": f"mean {target[0][0]:.3f}…, std {target[1][0]:.3f}…"})


def squash_resize(preprocess: Callable) -> Callable:
    """``preprocess`` with its shorter-side resize and centre crop replaced by one resize of the whole image
    to the square size (open_clip's ``resize_mode="squash"``): the aspect ratio is lost, nothing is cut."""
    steps = list(getattr(preprocess, "transforms", []))
    crop = next((t for t in steps if isinstance(t, transforms.CenterCrop)), None)
    resize = next((t for t in steps if isinstance(t, transforms.Resize)), None)
    if crop is None or resize is None:
        raise ValueError("the preprocessing has no Resize + CenterCrop to replace")
    size = tuple(crop.size) if isinstance(crop.size, (tuple, list)) else (crop.size, crop.size)
    out = []
    for t in steps:
        if t is resize:
            out.append(transforms.Resize(size, interpolation=resize.interpolation, antialias=True))
        elif t is not crop:
            out.append(t)
    return transforms.Compose(out)


@SWITCHES.register("squash resize")
def squash(ref: Evaluation, context: Mapping) -> Evaluation:
    """Resize the whole image to the model's square input instead of shorter side + centre crop (a common
    difference between evaluation scripts); only non-square images are affected."""
    lm = ref.model
    return replace(ref, model=variant_model(lm, "squash", preprocess=squash_resize(lm.preprocess)),
                   changes={"resize": "squash to square, no crop"})


@SWITCHES.register("bf16 inference")
def bf16_inference(ref: Evaluation, context: Mapping) -> Evaluation:
    return replace(ref, precision="bf16", changes={"precision": "bf16 autocast for images"})


@SWITCHES.register("tensor image pipeline")
def tensor_pipeline(ref: Evaluation, context: Mapping) -> Evaluation:
    """Decode and resize as tensor ops (zslab's GPU path) instead of the model's PIL preprocessing."""
    return replace(ref, pipeline="fast", changes={"pipeline": "tensor resize instead of PIL"})


#: What the literature leads one to expect of each switch, against the reference evaluation (the single
#: template "a photo of a {c}." with the model as trained): "lowers", "raises", or "none" (agrees within a
#: margin). The CLIP paper's levers (Sec. 3.1.4) and the reproduction gaps users report in open_clip and
#: CLIP_benchmark issues (activation, normalisation, precision, resizing).
EXPECTED_EFFECT: Dict[str, str] = {
    "bare class name": "lowers", "template ensemble": "raises", "rarer class-name synonyms": "lowers",
    "QuickGELU forced": "lowers", "OpenAI normalisation constants": "lowers", "squash resize": "none",
    "bf16 inference": "none", "tensor image pipeline": "none",
}


def correct_under(evaluation: Evaluation, dataset, batch_size: int = 256) -> np.ndarray:
    """0/1 per image of ``dataset`` under ``evaluation`` (image features from the cache when warm)."""
    from ..embeddings import cached_text_encoder, image_features

    feats, labels = image_features(evaluation.model, dataset, batch_size=batch_size, progress=False,
                                   precision=evaluation.precision, pipeline=evaluation.pipeline)
    classifier = build_classifier(cached_text_encoder(evaluation.model), evaluation.classes, evaluation.prompts)
    return correct_vector(feats, labels, classifier)


def evaluate_switches(reference: Evaluation, dataset, switches: Sequence[str], context: Mapping,
                      batch_size: int = 256) -> Dict[str, np.ndarray]:
    """The reference and each switch on the same images: ``{name: 0/1 per image}``."""
    out = {"reference": correct_under(reference, dataset, batch_size)}
    for name in switches:
        out[name] = correct_under(SWITCHES.get(name)(reference, context), dataset, batch_size)
    return out


def default_synonyms(dataset: str) -> Dict[str, str]:
    """The rarer name of each word a dataset's class names use, where zslab knows one: zsworld's caption
    synonyms (``data/zsworld/world.json``); ``{}`` elsewhere (give them as a notebook parameter)."""
    if dataset not in ("zsworld", "zsworld_captions"):
        return {}
    from ..world import load_world_spec

    return {word: names[0] for word, names in load_world_spec().synonyms.items() if names}


#: Switches that only change how images are resized: a no-op when every image already has the model's input size.
RESIZE_SWITCHES = ("squash resize", "tensor image pipeline")


def inputs_at_model_size(dataset, preprocess: Callable, n_check: int = 16) -> bool:
    """True when the first ``n_check`` images of ``dataset`` already have the square size the preprocessing
    crops to (zsworld's 32×32 renders for a 32-px model): resizing cannot change them."""
    crop = next((t for t in getattr(preprocess, "transforms", []) if isinstance(t, transforms.CenterCrop)), None)
    if crop is None:
        return False
    size = tuple(crop.size) if isinstance(crop.size, (tuple, list)) else (crop.size, crop.size)
    return all(dataset._image(i).size == size[::-1] for i in range(min(n_check, len(dataset))))


def applicable_switches(switches: Sequence[str], context: Mapping) -> List[str]:
    """``switches`` that can change something in this context: the synonym switch needs synonyms, the resize
    switches need images that are not already at the model's input size (``context["inputs_at_model_size"]``).
    Unknown names raise, naming the valid ones."""
    for name in switches:
        SWITCHES.get(name)
    return [s for s in switches if (s != "rarer class-name synonyms" or context.get("synonyms"))
            and not (s in RESIZE_SWITCHES and context.get("inputs_at_model_size"))]
