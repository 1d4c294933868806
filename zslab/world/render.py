"""Sampling and drawing zsworld scenes: vectorised numpy, deterministic for a seed."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np

from .spec import WorldSpec
from .splits import Pair


@dataclass
class Scenes:
    """N scenes as parallel integer/float arrays (indices into the spec's vocabularies)."""

    color: np.ndarray
    shape: np.ndarray
    size: np.ndarray
    background: np.ndarray
    cx: np.ndarray
    cy: np.ndarray

    def __len__(self) -> int:
        return len(self.color)


def _concept_probs(names: Sequence[str], weights: Optional[Mapping[str, float]]) -> np.ndarray:
    w = np.array([float((weights or {}).get(n, 1.0)) for n in names])
    if (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"concept weights must be >= 0 and not all 0: {dict(zip(names, w))}")
    return w / w.sum()


def sample_scenes(spec: WorldSpec, n: int, rng: np.random.Generator, pairs: Sequence[Pair],
                  concept_weights: Optional[Mapping[str, float]] = None) -> Scenes:
    """Draw ``n`` scenes whose (color, shape) lies in ``pairs``.

    ``concept_weights`` (e.g. ``{"red": 0.1, "ring": 3.0}``) scales how often each color or shape word is
    drawn: the knob that frequency studies turn. A pair's probability is the product of its color's and
    its shape's weight, renormalised over the allowed pairs.
    """
    pairs = np.asarray(list(pairs), dtype=np.int64)
    if pairs.size == 0:
        raise ValueError("no color-shape pairs to sample from")
    pc = _concept_probs(spec.color_names, concept_weights)
    ps = _concept_probs(spec.shapes, concept_weights)
    p_pair = pc[pairs[:, 0]] * ps[pairs[:, 1]]
    if p_pair.sum() <= 0:
        raise ValueError("concept weights give every allowed pair probability 0")
    chosen = pairs[rng.choice(len(pairs), size=n, p=p_pair / p_pair.sum())]
    size = rng.choice(len(spec.sizes), size=n, p=_concept_probs(spec.size_names, concept_weights))
    radius = np.array(list(spec.sizes.values()))[size] * spec.image_size
    margin = radius + 1.0
    cx = rng.uniform(margin, spec.image_size - margin)
    cy = rng.uniform(margin, spec.image_size - margin)
    background = rng.choice(len(spec.backgrounds), size=n,
                            p=_concept_probs(spec.background_names, concept_weights))
    return Scenes(chosen[:, 0], chosen[:, 1], size, background, cx, cy)


# Each shape is a mask of (dx, dy, r) in pixels; a registry so a new shape is one entry (and one word in
# data/zsworld/world.json).
SHAPE_MASKS: Dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": lambda dx, dy, r: dx**2 + dy**2 <= r**2,
    "square": lambda dx, dy, r: np.maximum(np.abs(dx), np.abs(dy)) <= 0.82 * r,
    "triangle": lambda dx, dy, r: (dy <= 0.75 * r) & (np.abs(dx) <= (dy + r) * 0.6),
    "cross": lambda dx, dy, r: ((np.abs(dx) <= 0.3 * r) & (np.abs(dy) <= r))
    | ((np.abs(dy) <= 0.3 * r) & (np.abs(dx) <= r)),
    "ring": lambda dx, dy, r: (dx**2 + dy**2 <= r**2) & (dx**2 + dy**2 >= (0.55 * r) ** 2),
    "diamond": lambda dx, dy, r: np.abs(dx) + np.abs(dy) <= r,
}


def render(spec: WorldSpec, scenes: Scenes, rng: np.random.Generator, noise: float = 8.0,
           chunk: int = 4096) -> np.ndarray:
    """Draw scenes as uint8 images ``[N, H, W, 3]`` with mild color jitter and pixel noise."""
    missing = [s for s in spec.shapes if s not in SHAPE_MASKS]
    if missing:
        raise ValueError(f"no renderer for shapes {missing}; known: {sorted(SHAPE_MASKS)}")
    size = spec.image_size
    n = len(scenes)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    colors = np.array(list(spec.colors.values()), dtype=np.float32)
    backgrounds = np.array(list(spec.backgrounds.values()), dtype=np.float32)
    radii = np.array(list(spec.sizes.values()), dtype=np.float32) * size
    grid = np.arange(size, dtype=np.float32) + 0.5
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        m = sl.stop - sl.start
        dx = grid[None, None, :] - scenes.cx[sl, None, None].astype(np.float32)
        dy = grid[None, :, None] - scenes.cy[sl, None, None].astype(np.float32)
        r = radii[scenes.size[sl]][:, None, None]
        mask = np.zeros((m, size, size), dtype=bool)
        for s_idx, s_name in enumerate(spec.shapes):
            rows = np.nonzero(scenes.shape[sl] == s_idx)[0]
            if rows.size:
                mask[rows] = SHAPE_MASKS[s_name](dx[rows] if dx.shape[0] > 1 else dx,
                                                 np.broadcast_to(dy, (m, size, size))[rows], r[rows])
        jitter = rng.normal(0.0, 12.0, size=(m, 1, 1, 3)).astype(np.float32)
        fg = colors[scenes.color[sl]][:, None, None, :] + jitter
        bg = backgrounds[scenes.background[sl]][:, None, None, :]
        img = np.where(mask[..., None], fg, bg)
        img += rng.normal(0.0, noise, size=img.shape).astype(np.float32)
        out[sl] = np.clip(img, 0, 255).astype(np.uint8)
    return out
