"""Teaching a CLIP to say no (CLIPN, arXiv 2308.12213): a second, "no" text tower trained beside a frozen CLIP.

The "no" tower starts as a copy of the CLIP's text tower and reads captions wrapped in negating prompts
("a photo of no {caption}."). For an image and a caption, the yes tower's and the no tower's similarities
compete in a two-way softmax: the image-text binary-opposite loss (ITBO) makes "yes" win for the image's own
caption and "no" win for every other caption; the text semantic-opposite loss (TSO) pushes each caption's no
feature away from its yes feature. The image tower and the yes text tower stay frozen, so the CLIP's
zero-shot classifier is unchanged. This is the paper's hand-crafted-prompt variant (its repository ships one
beside the learnable-prompt variant), with the loss weights of its code (0.5 each).

Offline differences: the captions are a fresh draw of the offline model's own training distribution (CLIPN
trains on CC3M, not on CLIP's pretraining data), and captions of the image's own composition that are not its
caption are left out of the "no" term (in zsworld many captions in a batch describe the same class; the
paper's web captions rarely do).
"""
from __future__ import annotations

import copy
import json
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..config import data_file
from .compact_vocab import compact_token_embedding, supports_compaction

#: The parameter groups of an open_clip CLIP that make up its text tower.
TEXT_PARTS = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")


def load_prompt_pairs(path: Optional[str] = None) -> Tuple[List[str], List[str]]:
    """The paired yes/no prompt templates (``data/templates/negation.json``): ``yes[i]`` and ``no[i]`` say the
    same thing, once affirmed, once negated; ``{}`` takes a caption or a class name."""
    spec = json.loads((data_file("templates", "negation.json") if path is None else Path(path)).read_text())
    yes, no = list(spec["yes"]), list(spec["no"])
    if len(yes) != len(no) or not yes:
        raise ValueError(f"negation prompts must come in pairs: {len(yes)} yes and {len(no)} no templates")
    for t in yes + no:
        if t.count("{}") != 1:
            raise ValueError(f"a negation prompt needs exactly one {{}} slot, got {t!r}")
    return yes, no


@dataclass
class NoTowerConfig:
    steps: int = 300
    batch_size: int = 128
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 20

    def as_dict(self) -> Dict:
        return asdict(self)


def is_text_part(name: str) -> bool:
    return name.split(".")[0] in TEXT_PARTS


def clipn_loss(image_features: torch.Tensor, yes_features: torch.Tensor, no_features: torch.Tensor,
               logit_scale: float, ignore: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """ITBO and TSO for a batch of B images and their B captions (unit features). ``ignore`` [B, B] marks
    off-diagonal pairs left out of the "no" term (same class). Returns the three terms and their weighted
    total (0.5 each, as in CLIPN's code)."""
    b = image_features.shape[0]
    yes = logit_scale * image_features @ yes_features.T
    no = logit_scale * image_features @ no_features.T
    log_p = torch.log_softmax(torch.stack([yes, no], dim=-1), dim=-1)          # [B, B, 2]: log p(yes), log p(no)
    eye = torch.eye(b, dtype=torch.bool, device=image_features.device)
    negatives = ~eye if ignore is None else (~eye & ~ignore)
    loss_yes = -log_p[..., 0][eye].mean()
    loss_no = -log_p[..., 1][negatives].mean() if negatives.any() else yes.new_zeros(())
    distance = torch.sqrt(2 - 2 * (yes_features * no_features).sum(-1) + 1e-4)
    loss_tso = (2 - distance).mean()
    return {"yes": loss_yes, "no": loss_no, "tso": loss_tso, "total": 0.5 * (loss_yes + loss_no + loss_tso)}


def train_no_tower(clip: torch.nn.Module, tokenizer: Callable, image_features: torch.Tensor,
                   captions: Sequence[Sequence[str]], classes: np.ndarray, logit_scale: float,
                   cfg: NoTowerConfig, seed: int = 0, prompt_pairs: Optional[Tuple[List[str], List[str]]] = None,
                   progress_label: str = "") -> Tuple[Dict[str, torch.Tensor], Dict[str, List[float]]]:
    """Train a "no" text tower (a copy of ``clip``'s text tower) on N images given by their frozen unit
    ``image_features`` [N, D], K ``captions`` per image and each image's ``classes`` [N] (to leave same-class
    pairs out). Each step draws a batch of images, one caption each and one yes/no prompt pair each.
    Returns the no tower's text-part state dict and the loss history. Deterministic for a seed on CPU."""
    from .. import progress as progress_channel
    from .contrastive import TrainConfig, _lr_at

    yes_tpl, no_tpl = prompt_pairs or load_prompt_pairs()
    torch.manual_seed(seed)
    rng = np.random.default_rng([seed, 7])
    no_model = copy.deepcopy(clip).train()
    for name, p in no_model.named_parameters():
        p.requires_grad_(is_text_part(name))
    schedule = TrainConfig(steps=cfg.steps, lr=cfg.lr, warmup_steps=cfg.warmup_steps)
    clip = clip.eval()
    classes = torch.as_tensor(np.asarray(classes))
    history: Dict[str, List[float]] = {k: [] for k in ("total", "yes", "no", "tso")}
    n = image_features.shape[0]
    yes_tokens, no_tokens = (_prompt_tokens(tokenizer, tpl, captions) for tpl in (yes_tpl, no_tpl))
    # Without weight decay, rows of the token embedding that no prompt uses never move: train only the used
    # rows (identical weights, most of the optimizer's work gone; see compact_vocab.py).
    compact = supports_compaction(no_model) and cfg.weight_decay == 0
    with (compact_token_embedding(no_model, no_tokens) if compact else nullcontext(no_tokens)) as no_tokens:
        params = [p for p in no_model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98), eps=1e-6)
        for step in range(cfg.steps):
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, schedule)
            rows = rng.choice(n, size=min(cfg.batch_size, n), replace=False)
            pick = rng.integers(0, len(captions[0]), size=len(rows))
            pair = rng.integers(0, len(yes_tpl), size=len(rows))
            at = (torch.as_tensor(rows), torch.as_tensor(pick), torch.as_tensor(pair))
            with torch.no_grad():
                yes = F.normalize(clip.encode_text(yes_tokens[at]), dim=-1)
            no = F.normalize(no_model.encode_text(no_tokens[at]), dim=-1)
            c = classes[rows]
            losses = clipn_loss(image_features[rows], yes, no, logit_scale, ignore=c[:, None] == c[None, :])
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            opt.step()
            for k in history:
                history[k].append(losses[k].item())
            if step % 10 == 0 or step == cfg.steps - 1:
                progress_channel.report(f"training {progress_label or 'no tower'}", step + 1, cfg.steps,
                                        f"loss {history['total'][-1]:.4f}", unit="step")
    state = {k: v.detach().clone() for k, v in no_model.state_dict().items() if is_text_part(k)}
    return state, history


def _prompt_tokens(tokenizer: Callable, templates: Sequence[str], captions: Sequence[Sequence[str]]) -> torch.Tensor:
    """Token ids ``[N, K, P, L]`` of every caption (N images × K captions) in each of P templates, each distinct
    prompt tokenized once: the same ids as tokenizing a batch's prompts at each step, at a fraction of the cost."""
    from .zoo import tokenize_unique

    per_image = [[t.format(c) for c in caps for t in templates] for caps in captions]
    tokens = tokenize_unique(tokenizer, per_image)                          # [N, K·P, L], caption-major
    return tokens.view(len(captions), -1, len(templates), tokens.shape[-1])


def no_tower_model(clip: torch.nn.Module, state: Dict[str, torch.Tensor]) -> torch.nn.Module:
    """``clip`` with its text tower replaced by the trained no tower (image tower shared in value)."""
    model = copy.deepcopy(clip).eval()
    missing = [k for k in state if k not in model.state_dict()]
    if missing:
        raise ValueError(f"the no tower's weights do not fit this model: {missing[:3]}")
    model.load_state_dict(state, strict=False)
    return model
