"""Learning to Name Classes (Parisot, Yang and McDonagh, CVPR 2023, arXiv 2304.01830): learn each class's name.

The prompt stays hand-made ("a photo of a <name>."), the towers stay frozen, and what is learned is the word
embeddings of each class's own name, from the few labelled images: a poor name (wrong, ambiguous or
meaningless) can be corrected from what its images look like, class by class, which one shared context (CoOp)
cannot do. Every name token of a class gets its own learnable vector, initialised from that token's embedding,
so an untrained model gives exactly the zero-shot classifier of the given names. (The paper learns one
embedding per class; zsworld's names are three words, so each keeps its tokens.)

To study the effect offline, :data:`RENAMINGS` give a share of the classes poor names, the three kinds the
paper names: *erroneous* (``wrong colour``: the colour word replaced by another colour, never another class's
name), *ambiguous* (``no colour``: the colour word dropped, so classes share names) and *non-descriptive*
(``code``: "class <k>", as datasets with codes for names have).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..registry import Registry
from .prompt_learning import CoOpConfig, encode_prompt_embeddings, fit_prompt_parameter, frozen


class NamePrompts:
    """Token ids and frozen token embeddings of ``"<context> <name>."`` for each class, and the mask of the
    positions that hold the class's name (what is learned)."""

    def __init__(self, clip: torch.nn.Module, tokenizer, names: Sequence[str], context: str = "a photo of a"):
        n_context = int((tokenizer([context])[0] != 0).sum()) - 2
        self.tokens = tokenizer([f"{context} {name}." for name in names])
        if (self.tokens[:, -1] != 0).any():
            raise ValueError(f"a class prompt fills or overflows the text tower's {self.tokens.shape[1]} tokens")
        self.mask = torch.zeros(self.tokens.shape, dtype=torch.bool)
        for i, name in enumerate(names):
            alone = tokenizer([name])[0]
            length = int((alone != 0).sum()) - 2
            start = 1 + n_context
            if length < 1 or not torch.equal(self.tokens[i, start:start + length], alone[1:1 + length]):
                raise ValueError(f"the class name {name!r} does not tokenize the same inside its prompt")
            self.mask[i, start:start + length] = True
        with torch.no_grad():
            self.base = clip.token_embedding(self.tokens)

    def embeddings(self, names: torch.Tensor) -> torch.Tensor:
        """``[C, L, W]`` token embeddings with the name positions taken from ``names`` (same shape)."""
        if names.shape != self.base.shape:
            raise ValueError(f"learned names of shape {tuple(names.shape)} do not fit prompts of {tuple(self.base.shape)}")
        return torch.where(self.mask.unsqueeze(-1), names, self.base)


def learn_class_names(lm: Any, names: Sequence[str], features: torch.Tensor, labels: torch.Tensor, cfg: CoOpConfig,
                      label: str = "") -> Dict[str, torch.Tensor]:
    """The name embeddings of every class (``[C, L, W]``, meaningful at :attr:`NamePrompts.mask`) learned from
    the given ``names`` on unit image ``features`` with ``labels``, with CoOp's optimiser ``cfg`` (its
    ``context_init`` is the fixed prompt); returns them and the loss per step. Deterministic on CPU."""
    with frozen(lm.model):
        prompts = NamePrompts(lm.model, lm.tokenizer, names, cfg.context_init)
        gen = torch.Generator().manual_seed(int(cfg.seed))
        learned, losses = fit_prompt_parameter(lm.model, prompts.tokens, prompts.embeddings, prompts.base,
                                               features, labels, cfg, gen, f"class names {label}".strip())
    return {"names": prompts.embeddings(learned), "loss": losses}   # outside the names: the fixed prompt's own


def cached_learn_class_names(lm: Any, names: Sequence[str], features: torch.Tensor, labels: torch.Tensor,
                             cfg: CoOpConfig, label: str = "", cache: Any = None) -> Dict[str, torch.Tensor]:
    """:func:`learn_class_names`, read from the tensor cache when trained before."""
    from ..cache import TensorCache, tensor_digest

    description = {"kind": "learned class names", "model": lm.fingerprint, "names": list(names),
                   "shots": tensor_digest({"features": features, "labels": labels}), "config": cfg.as_dict()}
    return (cache or TensorCache()).get_or_compute(
        description, lambda: learn_class_names(lm, names, features, labels, cfg, label))


def named_classifier(lm: Any, names: Sequence[str], learned: torch.Tensor = None,
                     context: str = "a photo of a") -> torch.Tensor:
    """Unit class embeddings ``[C, D]`` of ``"<context> <name>."`` with the ``learned`` name embeddings (``None``:
    the names' own, i.e. the zero-shot classifier)."""
    prompts = NamePrompts(lm.model, lm.tokenizer, names, context)
    with torch.no_grad():
        emb = prompts.base if learned is None else prompts.embeddings(learned)
        return F.normalize(encode_prompt_embeddings(lm.model, emb, prompts.tokens).float(), dim=-1)


Renamer = Callable[[str, Sequence[str], List[str], np.random.Generator], str]
#: Kinds of poor class names: ``(name, the task's names, the world's colours, rng) → new name``.
RENAMINGS: Registry[Renamer] = Registry("renaming")


@RENAMINGS.register("wrong colour")
def _wrong_colour(name: str, names: Sequence[str], colours: List[str], rng: np.random.Generator) -> str:
    colour, rest = _split_colour(name, colours)
    options = [c for c in colours if c != colour and f"{c} {rest}" not in names]
    if not options:
        raise ValueError(f"no other colour gives {name!r} a name that no other class has")
    return f"{options[int(rng.integers(len(options)))]} {rest}"


@RENAMINGS.register("no colour")
def _no_colour(name: str, names: Sequence[str], colours: List[str], rng: np.random.Generator) -> str:
    return _split_colour(name, colours)[1]


@RENAMINGS.register("code")
def _code(name: str, names: Sequence[str], colours: List[str], rng: np.random.Generator) -> str:
    return f"class {list(names).index(name)}"


def _split_colour(name: str, colours: List[str]) -> Tuple[str, str]:
    colour, _, rest = name.partition(" ")
    if colour not in colours or not rest:
        raise ValueError(f"{name!r} does not start with one of the world's colours {colours}")
    return colour, rest


def rename_classes(names: Sequence[str], kind: str, fraction: float, seed: int) -> Tuple[List[str], List[int]]:
    """``names`` with a seeded ``fraction`` of them (at least one) given poor names of ``kind``; returns the new
    names and the indices of the renamed classes (sorted). zsworld class names ("red solid circle")."""
    from ..world.spec import load_world_spec

    renamer = RENAMINGS.get(kind)
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng([seed, 17])
    picked = sorted(rng.choice(len(names), max(1, round(fraction * len(names))), replace=False).tolist())
    colours = load_world_spec().color_names
    new = list(names)
    for i in picked:
        new[i] = renamer(names[i], names, colours, rng)
    return new, picked
