"""Averaging the weights of models that share an architecture: soups, interpolation, greedy selection.

Model soups (arXiv 2203.05482) average fine-tunes of one pretrained model; WiSE-FT and momentum
interpolation (2109.01903, 2211.03186) interpolate between a zero-shot and a fine-tuned model. All are a
weighted mean of state dicts; floating-point tensors are averaged, integer buffers (e.g. position ids,
BatchNorm's ``num_batches_tracked``) must agree and are kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import torch

State = Mapping[str, torch.Tensor]


def average_states(states: Sequence[State], weights: Optional[Sequence[float]] = None) -> Dict[str, torch.Tensor]:
    """The weighted mean of ``states`` (uniform by default; weights need not sum to 1: they are normalised)."""
    if not states:
        raise ValueError("average_states needs at least one state dict")
    w = torch.full((len(states),), 1.0 / len(states), dtype=torch.float64) if weights is None else \
        torch.as_tensor(list(weights), dtype=torch.float64)
    if w.shape != (len(states),) or (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"need {len(states)} non-negative weights, not all zero; got {list(map(float, w))}")
    w = w / w.sum()
    keys = list(states[0])
    out: Dict[str, torch.Tensor] = {}
    for i, state in enumerate(states[1:], start=1):
        if list(state) != keys:
            missing, extra = set(keys) - set(state), set(state) - set(keys)
            raise ValueError(f"state {i} has other tensors than state 0 (missing {sorted(missing)[:3]}, "
                             f"extra {sorted(extra)[:3]}): not the same architecture")
    for key in keys:
        first = states[0][key]
        for i, state in enumerate(states[1:], start=1):
            if state[key].shape != first.shape:
                raise ValueError(f"{key!r}: state {i} has shape {tuple(state[key].shape)}, state 0 "
                                 f"{tuple(first.shape)}")
        if torch.is_floating_point(first):
            acc = sum(float(wi) * s[key].double() for wi, s in zip(w, states))
            out[key] = acc.to(first.dtype)
        else:
            if any(not torch.equal(s[key], first) for s in states[1:]):
                raise ValueError(f"{key!r} is an integer tensor that differs between the states: it cannot be "
                                 "averaged")
            out[key] = first.clone()
    return out


def interpolate_states(start: State, end: State, alpha: float) -> Dict[str, torch.Tensor]:
    """``(1 − alpha)·start + alpha·end`` (WiSE-FT's mixing coefficient: 0 is ``start``, 1 is ``end``)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return average_states([start, end], [1.0 - alpha, alpha]) if 0.0 < alpha < 1.0 else \
        {k: v.clone() for k, v in (end if alpha == 1.0 else start).items()}


@dataclass
class GreedySoup:
    """The greedy soup's state, its ingredients (indices into the candidates) and the validation trace."""

    state: Dict[str, torch.Tensor]
    members: List[int]
    trace: List[Dict[str, float]] = field(default_factory=list)


def greedy_soup(states: Sequence[State], val_scores: Sequence[float],
                evaluate: Callable[[Dict[str, torch.Tensor]], float]) -> GreedySoup:
    """Model soups' Recipe 1: sort the candidates by held-out validation score, start from the best, and add
    each next candidate to the (uniform) soup only if the soup's validation score strictly improves.

    ``evaluate(state)`` is the validation score of a state dict; ``val_scores`` are the candidates' own.
    Ties in the ordering keep the candidates' order.
    """
    if len(states) != len(val_scores) or not states:
        raise ValueError(f"need one validation score per state: {len(states)} states, {len(val_scores)} scores")
    order = sorted(range(len(states)), key=lambda i: -float(val_scores[i]))
    members = [order[0]]
    best = float(val_scores[order[0]])
    trace = [{"candidate": order[0], "val": best, "kept": 1.0}]
    for i in order[1:]:
        trial = average_states([states[j] for j in members + [i]])
        score = float(evaluate(trial))
        kept = score > best
        trace.append({"candidate": i, "val": score, "kept": float(kept)})
        if kept:
            members.append(i)
            best = score
    return GreedySoup(average_states([states[j] for j in members]), members, trace)
