"""CoOp (Zhou et al., IJCV 2022, arXiv 2109.01134): learn the context words of a prompt as vectors.

The prompt of class c is ``[SOS] v_1 … v_M <name of c> . [EOS]``: the M context vectors replace the token
embeddings of the hand-made context ("a photo of a"), are shared by all classes ("unified context", CoOp's
default), and are the only parameters trained; the text and image towers stay frozen. The loss is CLIP's
cross-entropy over the classes of the scaled cosine between image and class-prompt features. With the image
tower frozen, the shots' image features are computed once (cached) and each step runs only the text tower.

The same context can then name classes it never saw (CoCoOp's base-to-new protocol, arXiv 2203.05557): build
the prompts of the new classes around the learned vectors.

Works on open_clip ``CLIP`` models (token embedding, positional embedding, text transformer, EOT pooling), the
offline zoo's and real ones alike; towers without token access (zslab's frozen MiniLM text side) cannot.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F


@dataclass
class CoOpConfig:
    """CoOp's optimiser (SGD, momentum 0.9, weight decay 5e-4, cosine decay after a constant warm-up at 1e-5).
    ``batch_size`` 0 is full-batch: every step sees every shot, so ``steps`` counts epochs."""

    steps: int = 200
    lr: float = 0.002
    batch_size: int = 32
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 1
    warmup_lr: float = 1e-5
    context_init: str = "a photo of a"
    random_init: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 0 or self.lr <= 0:
            raise ValueError(f"need batch_size ≥ 0 and lr > 0, got {self.batch_size} and {self.lr}")
        if not self.context_init.strip():
            raise ValueError("context_init must hold at least one word")
        if self.random_init < 0:
            raise ValueError(f"random_init must be ≥ 0 vectors, got {self.random_init}")

    @property
    def context_words(self) -> str:
        """The words whose positions the context takes: ``context_init``, or one placeholder per random vector."""
        return random_context_words(self.random_init) if self.random_init else self.context_init

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.warmup_lr
        progress = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        return 0.5 * self.lr * (1 + math.cos(math.pi * progress))


#: The standard deviation of CoOp's randomly initialised context vectors.
RANDOM_INIT_STD = 0.02


def random_context_words(n: int) -> str:
    """Placeholder words for ``n`` randomly initialised context vectors (CoOp writes "X"): they only fix the
    positions; their embeddings are replaced."""
    if n < 1:
        raise ValueError(f"need at least one context vector, got {n}")
    return " ".join(["X"] * n)


#: CoOp's training epochs per shot count (its configs: 50 for 1–2 shots, 100 for 4–8, 200 for 16).
COOP_EPOCHS = {1: 50, 2: 50, 4: 100, 8: 100, 16: 200}


def full_batch_config(shots: int, n_classes: int, seed: int = 0, base_lr: float = 0.002, base_batch: int = 32,
                      context_init: str = "a photo of a", random_init: int = 0) -> CoOpConfig:
    """CoOp's recipe as full-batch steps: one step per epoch for CoOp's number of epochs at this shot count
    (the nearest listed one at or below it), the learning rate scaled linearly from CoOp's 0.002 at batch 32
    to the ``shots × n_classes`` images of a full batch. With the image tower frozen a step costs one text-tower
    pass over the class prompts whatever the batch, so CoOp's epochs cost ``epochs`` passes instead of
    ``epochs × N / 32``."""
    if shots < 1 or n_classes < 1:
        raise ValueError(f"need shots ≥ 1 and n_classes ≥ 1, got {shots} and {n_classes}")
    epochs = COOP_EPOCHS[max(k for k in COOP_EPOCHS if k <= shots)]
    return CoOpConfig(steps=epochs, lr=base_lr * shots * n_classes / base_batch, batch_size=0, seed=seed,
                      context_init=context_init, random_init=random_init)


class ClassPrompts:
    """Token ids and frozen token embeddings of ``"<context> <name>."`` for each class, split around the context:
    ``prefix`` (SOS), the context's own embeddings, ``suffix`` (name, full stop, EOS, padding)."""

    def __init__(self, clip: torch.nn.Module, tokenizer, classnames: Sequence[str], context: str):
        context_tokens = tokenizer([context])[0]
        self.n_context = int((context_tokens != 0).sum()) - 2                 # without SOS and EOS
        self.tokens = tokenizer([f"{context} {name}." for name in classnames])
        if (self.tokens[:, -1] != 0).any():
            raise ValueError(f"a class prompt fills or overflows the text tower's {self.tokens.shape[1]} tokens; "
                             f"shorten the context {context!r} or the class names")
        if not bool((self.tokens[:, 1:1 + self.n_context] == context_tokens[1:1 + self.n_context]).all()):
            raise ValueError(f"the context {context!r} does not tokenize the same inside every class prompt")
        with torch.no_grad():
            emb = clip.token_embedding(self.tokens)
        self.prefix, self.initial_context, self.suffix = (emb[:, :1], emb[0, 1:1 + self.n_context].clone(),
                                                          emb[:, 1 + self.n_context:])

    def embeddings(self, context: torch.Tensor) -> torch.Tensor:
        """``[C, L, W]`` token embeddings with ``context`` ``[M, W]`` in the context positions."""
        if context.shape != self.initial_context.shape:
            raise ValueError(f"context of shape {tuple(context.shape)} does not fit prompts built for "
                             f"{tuple(self.initial_context.shape)}")
        c = self.tokens.shape[0]
        return torch.cat([self.prefix, context.unsqueeze(0).expand(c, -1, -1), self.suffix], dim=1)


def encode_prompt_embeddings(clip: torch.nn.Module, embeddings: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's ``CLIP.encode_text`` from token embeddings instead of ids (``tokens`` locate the EOT)."""
    from open_clip.transformer import text_global_pool

    cast = clip.transformer.get_cast_dtype()
    x = embeddings.to(cast) + clip.positional_embedding.to(cast)
    x = clip.transformer(x, attn_mask=clip.attn_mask)
    x = clip.ln_final(x)
    x = text_global_pool(x, tokens, clip.text_pool_type, eos_token_id=getattr(clip, "text_eos_id", None))
    if clip.text_projection is not None:
        x = clip.text_projection(x) if isinstance(clip.text_projection, torch.nn.Linear) else x @ clip.text_projection
    return x


def context_classifier(lm: Any, classnames: Sequence[str], context: Optional[torch.Tensor] = None,
                       context_init: str = "a photo of a") -> torch.Tensor:
    """Unit class embeddings ``[C, D]`` of ``lm`` (a :class:`zslab.models.LoadedModel`) with the learned
    ``context`` (``None``: the hand-made ``context_init`` words themselves)."""
    prompts = ClassPrompts(lm.model, lm.tokenizer, classnames, context_init)
    ctx = prompts.initial_context if context is None else context
    with torch.no_grad():
        return F.normalize(encode_prompt_embeddings(lm.model, prompts.embeddings(ctx), prompts.tokens).float(), dim=-1)


def learn_context(lm: Any, classnames: Sequence[str], features: torch.Tensor, labels: torch.Tensor,
                  cfg: CoOpConfig, label: str = "") -> Dict[str, torch.Tensor]:
    """CoOp: context vectors ``[M, W]`` learned on unit image ``features`` ``[N, D]`` with ``labels``, starting
    from ``cfg.context_init``'s embeddings; returns them and the loss per step. Deterministic on CPU."""
    with frozen(lm.model):
        return _learn_context(lm.model, lm.tokenizer, classnames, features, labels, cfg, label)


@contextlib.contextmanager
def frozen(clip: torch.nn.Module):
    """``clip`` in eval mode with no parameter requiring gradients for the block, then as it was: the model
    object may be shared with other notebooks' code."""
    was_training, flags = clip.training, [p.requires_grad for p in clip.parameters()]
    clip.eval()
    for p in clip.parameters():
        p.requires_grad_(False)
    try:
        yield clip
    finally:
        for p, flag in zip(clip.parameters(), flags):
            p.requires_grad_(flag)
        clip.train(was_training)


def _learn_context(clip: torch.nn.Module, tokenizer, classnames: Sequence[str], features: torch.Tensor,
                   labels: torch.Tensor, cfg: CoOpConfig, label: str) -> Dict[str, torch.Tensor]:
    prompts = ClassPrompts(clip, tokenizer, classnames, cfg.context_words)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    start = (torch.randn(prompts.initial_context.shape, generator=gen) * RANDOM_INIT_STD if cfg.random_init
             else prompts.initial_context.clone())
    learned, losses = fit_prompt_parameter(clip, prompts.tokens, prompts.embeddings, start, features, labels, cfg,
                                           gen, f"CoOp {label}".strip())
    return {"context": learned, "loss": losses}


def fit_prompt_parameter(clip: torch.nn.Module, tokens: torch.Tensor, embed, start: torch.Tensor,
                         features: torch.Tensor, labels: torch.Tensor, cfg: CoOpConfig, gen: torch.Generator,
                         label: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """The prompt-learning loop shared by CoOp and learned class names: one parameter from ``start``; ``embed``
    maps it to the class prompts' token embeddings ``[C, L, W]``; CLIP's scaled-cosine cross-entropy on unit
    image ``features``; ``cfg``'s SGD schedule. Returns the parameter and the loss per step."""
    from .. import progress as progress_channel

    param = torch.nn.Parameter(start.detach().clone())
    opt = torch.optim.SGD([param], lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scale = float(clip.logit_scale.exp())
    n = features.shape[0]
    batch = n if cfg.batch_size == 0 else min(cfg.batch_size, n)
    order, at = torch.randperm(n, generator=gen), 0
    losses: List[float] = []
    feats = F.normalize(features.float(), dim=-1)
    for step in range(cfg.steps):
        for group in opt.param_groups:
            group["lr"] = cfg.lr_at(step)
        if at + batch > n:
            order, at = torch.randperm(n, generator=gen), 0
        rows = order[at:at + batch]
        at += batch
        text = F.normalize(encode_prompt_embeddings(clip, embed(param), tokens), dim=-1)
        loss = F.cross_entropy(scale * feats[rows] @ text.T, labels[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 10 == 0 or step == cfg.steps - 1:
            progress_channel.report(label, step + 1, cfg.steps, f"loss {losses[-1]:.4f}", unit="step")
    return param.detach().clone(), torch.tensor(losses)


def cached_learn_context(lm: Any, classnames: Sequence[str], features: torch.Tensor, labels: torch.Tensor,
                         cfg: CoOpConfig, label: str = "", cache: Any = None) -> Dict[str, torch.Tensor]:
    """:func:`learn_context`, read from the tensor cache when this model, these classes, shots and settings
    were trained before."""
    from ..cache import TensorCache, tensor_digest

    description = {"kind": "CoOp context", "model": lm.fingerprint, "classnames": list(classnames),
                   "shots": tensor_digest({"features": features, "labels": labels}), "config": cfg.as_dict()}
    return (cache or TensorCache()).get_or_compute(
        description, lambda: learn_context(lm, classnames, features, labels, cfg, label))
