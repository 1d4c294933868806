"""A linear softmax probe on fixed features: the small supervised head several experiments train (a decoder
for model stitching, a linear-probe baseline for few-shot adaptation).

Full-batch L-BFGS on standardised inputs with an L2 penalty, as CLIP's linear-probe protocol fits its
logistic regression; deterministic on CPU, seconds for thousands of rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LinearProbe:
    """``logits = ((x − mean) / std) @ weight.T + bias``; the standardisation is the training set's, part of
    the probe (a decoder carries its own normalisation, as the relative-representations decoders do)."""

    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / self.std) @ self.weight.T + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(dim=1)


def fit_linear_probe(x: torch.Tensor, y: torch.Tensor, n_classes: int, l2: float = 1e-3,
                     max_iter: int = 200) -> LinearProbe:
    """Fit a multinomial logistic regression of labels ``y`` [N] on ``x`` [N, D] (L2 weight ``l2`` on the
    weights, mean cross-entropy)."""
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"need x [N, D] and y [N]; got {tuple(x.shape)} and {tuple(y.shape)}")
    if y.numel() == 0 or int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    x = x.float()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    weight = torch.zeros(n_classes, x.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(z @ weight.T + bias, y) + l2 * (weight ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearProbe(mean, std, weight.detach(), bias.detach())
