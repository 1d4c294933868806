"""Zero-shot out-of-distribution detection: maximum softmax probability (MSP, arXiv 1610.02136) and CLIPN's
"no" tower (arXiv 2308.12213).

Only the in-distribution (ID) class names are given. Every method scores an image's ID-ness (higher = more
ID) from its similarities to the ID class prompts:

* **MSP**: the largest softmax probability over the ID classes (Hendrycks & Gimpel's baseline, here on a
  zero-shot CLIP head).
* **CLIPN**: each class also has a "no" prompt ("a photo of no {c}.") read by the no tower; per class,
  p_yes = softmax(yes logit, no logit)[yes]. *Competing-to-win* (CTW) scores p_yes of the predicted class;
  *agreeing-to-differ* (ATD) scores Σ_c p_yes(c) · softmax(yes logits)(c), the mass the ID classes keep once
  every class may say no. Both follow the paper's repository (``zero_shot_infer.py``).

:func:`clipn_no_tower` trains the no tower of an offline zsworld CLIP once and caches its weights.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..cache import TensorCache, cache_key
from ..errors import ZslabError
from ..metrics import ood_metrics

#: The scores this module computes, by name (what the notebook's tables and verdicts call them).
METHODS = ("MSP", "CLIPN (CTW)", "CLIPN (ATD)")


def classes_with_words(classes: Sequence[str], words: Sequence[str]) -> List[int]:
    """Indices of the class names containing any of ``words`` as a whole word (every class when ``words``
    is empty): how a notebook names its ID classes ("circle,square") and its near-OOD ones."""
    if not words:
        return list(range(len(classes)))
    wanted = {w.strip().lower() for w in words if w.strip()}
    return [i for i, c in enumerate(classes) if wanted & set(re.findall(r"[a-z0-9\-]+", c.lower()))]


def ood_scores(features: torch.Tensor, yes_classifier: torch.Tensor, logit_scale: float,
               no_classifier: Optional[torch.Tensor] = None) -> Dict[str, np.ndarray]:
    """ID-ness scores per image: MSP, and with a ``no_classifier`` [C, D] CLIPN's CTW and ATD."""
    f = F.normalize(features.float(), dim=-1)
    yes = logit_scale * f @ yes_classifier.float().T
    prob = yes.softmax(dim=1)
    out = {"MSP": prob.max(dim=1).values.numpy()}
    if no_classifier is not None:
        no = logit_scale * f @ no_classifier.float().T
        p_yes = torch.stack([yes, no], dim=-1).softmax(dim=-1)[..., 0]            # [N, C]
        out["CLIPN (CTW)"] = p_yes.gather(1, yes.argmax(dim=1, keepdim=True))[:, 0].numpy()
        out["CLIPN (ATD)"] = (p_yes * prob).sum(dim=1).numpy()
    return out


def ood_table(in_scores: Dict[str, np.ndarray], out_scores: Dict[str, np.ndarray], prefix: str = "",
              **labels) -> List[Dict]:
    """One row per method: AUROC and FPR at 95% TPR of ID against OOD (as fractions), with ``labels``."""
    return [{"method": prefix + m, **ood_metrics(in_scores[m], out_scores[m]), **labels} for m in in_scores]


@dataclass
class NoTower:
    """A trained no text tower with the tokenizer of its CLIP: ``encode_text`` as ``LoadedModel``'s."""

    model: torch.nn.Module
    tokenizer: Callable

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        return F.normalize(self.model.encode_text(self.tokenizer(list(texts))).float(), dim=-1)


def clipn_no_tower(lm, cfg=None, n_images: int = 8000, seed: int = 0, progress: bool = True,
                   cache: Optional[TensorCache] = None) -> NoTower:
    """The no tower of offline CLIP ``lm`` (its text tower copied, trained with ITBO + TSO on a fresh draw of
    ``n_images`` scenes of the model's own training world), cached under the model's weights, the training
    settings, the prompt pairs and the seed. A model that is not one of zslab's offline CLIPs has no
    training world to draw from: that raises, naming what to use instead."""
    from ..train.negation import NoTowerConfig, load_prompt_pairs, no_tower_model, train_no_tower

    cfg = cfg or NoTowerConfig()
    world = (getattr(lm, "manifest", None) or {}).get("world")
    if world is None:
        raise ZslabError(f"model {lm.name!r} is not a zslab offline CLIP: CLIPN's no tower is trained on the "
                         "captions of an offline model's own world (offline mode); in real mode only the "
                         "training-free scores (MSP, untrained no prompts) run")
    pairs = load_prompt_pairs()
    description = {"kind": "clipn_no_tower", "model": lm.fingerprint, "train": cfg.as_dict(), "n_images": n_images,
                   "seed": seed, "prompts": cache_key({"yes": pairs[0], "no": pairs[1]})}

    def compute() -> Dict[str, torch.Tensor]:
        features, captions, classes = _negation_corpus(lm, world, n_images, seed)
        state, history = train_no_tower(lm.model, lm.tokenizer, features, captions, classes, lm.logit_scale, cfg,
                                        seed=seed, prompt_pairs=pairs, progress_label=f"{lm.name} no tower seed {seed}")
        return {**state, "_loss_history": torch.tensor(history["total"])}

    tensors = (cache or TensorCache()).get_or_compute(description, compute)
    state = {k: v for k, v in tensors.items() if not k.startswith("_")}
    return NoTower(no_tower_model(lm.model, state), lm.tokenizer)


def _negation_corpus(lm, world: Dict, n_images: int, seed: int):
    """Image features, captions and composition ids of ``n_images`` fresh scenes of ``lm``'s training world
    (seed stream apart from its training images)."""
    from ..embeddings import rendered_image_features
    from ..world import load_world_spec, make_corpus
    from ..world.corpus import world_setting

    spec = load_world_spec()
    knobs, split = world_setting(world, spec)
    corpus = make_corpus(spec, knobs, split, n_images, seed + 100_000)
    s = corpus.scenes
    classes = (np.asarray(s.color) * 1000 + np.asarray(s.pattern) * 10 + np.asarray(s.shape)).astype(np.int64)
    return rendered_image_features(lm, corpus.images), corpus.captions, classes
