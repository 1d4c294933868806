"""Sampling and drawing zsworld scenes: vectorised numpy, deterministic for a seed.

A scene is one *main* object (its composition is the class), up to ``max_distractors`` smaller objects,
up to ``max_clutter`` short strokes, on a plain background, with color jitter and pixel noise.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable, Dict, Mapping, Optional, Sequence

import numpy as np

from .spec import FACTORS, Composition, WorldKnobs, WorldSpec

ArrayFn = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass
class Scenes:
    """N scenes as parallel arrays (indices into the spec's vocabularies).

    Main object: ``color``, ``pattern``, ``shape``, ``size``, ``cx``, ``cy`` ``[N]``; ``background`` ``[N]``.
    Distractors: ``d_present``, ``d_color``, ``d_pattern``, ``d_shape``, ``d_cx``, ``d_cy`` ``[N, max_distractors]``.
    Clutter strokes: ``k_present``, ``k_x``, ``k_y``, ``k_len``, ``k_vertical``, ``k_color`` ``[N, max_clutter]``.
    """

    color: np.ndarray
    pattern: np.ndarray
    shape: np.ndarray
    size: np.ndarray
    background: np.ndarray
    cx: np.ndarray
    cy: np.ndarray
    d_present: np.ndarray
    d_color: np.ndarray
    d_pattern: np.ndarray
    d_shape: np.ndarray
    d_cx: np.ndarray
    d_cy: np.ndarray
    k_present: np.ndarray
    k_x: np.ndarray
    k_y: np.ndarray
    k_len: np.ndarray
    k_vertical: np.ndarray
    k_color: np.ndarray

    def __len__(self) -> int:
        return len(self.color)

    def composition(self, i: int) -> Composition:
        return int(self.color[i]), int(self.pattern[i]), int(self.shape[i])

    def take(self, rows: np.ndarray) -> "Scenes":
        return Scenes(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})


def concept_probabilities(spec: WorldSpec, knobs: WorldKnobs, factor: str) -> np.ndarray:
    """How often each value of ``factor`` (``color``/``pattern``/``shape``/``size``/``background``) is drawn.

    Factors of the class follow a Zipf-like long tail over the order of world.json (the k-th value ∝
    ``k ** -concept_zipf``); sizes and backgrounds are uniform. ``concept_weights`` multiplies either.
    """
    names = spec.factor_values(factor) if factor in FACTORS else {
        "size": spec.size_names, "background": spec.background_names}[factor]
    base = (np.arange(1, len(names) + 1, dtype=np.float64) ** -float(knobs.concept_zipf)
            if factor in FACTORS else np.ones(len(names)))
    w = base * np.array([float(knobs.concept_weights.get(n, 1.0)) for n in names])
    if w.sum() <= 0:
        raise ValueError(f"concept weights give every {factor} probability 0: {dict(zip(names, w))}")
    return w / w.sum()


def composition_probabilities(spec: WorldSpec, knobs: WorldKnobs, comps: Sequence[Composition]) -> np.ndarray:
    """Probability of each allowed composition: the product of its concepts' probabilities, renormalised."""
    arr = np.asarray(list(comps), dtype=np.int64).reshape(-1, 3)
    if arr.size == 0:
        raise ValueError("no compositions to sample from")
    p = np.ones(len(arr))
    for j, factor in enumerate(FACTORS):
        p *= concept_probabilities(spec, knobs, factor)[arr[:, j]]
    if p.sum() <= 0:
        raise ValueError("concept weights give every allowed composition probability 0")
    return p / p.sum()


def sample_scenes(spec: WorldSpec, knobs: WorldKnobs, n: int, rng: np.random.Generator,
                  compositions: Sequence[Composition],
                  distractor_pool: Optional[Sequence[Composition]] = None) -> Scenes:
    """Draw ``n`` scenes whose main object's composition lies in ``compositions`` (drawn by
    :func:`composition_probabilities`); distractors come from ``distractor_pool`` (default: the same
    compositions), so that training scenes never show a held-out composition at all."""
    comps = np.asarray(list(compositions), dtype=np.int64).reshape(-1, 3)
    chosen = comps[rng.choice(len(comps), size=n, p=composition_probabilities(spec, knobs, compositions))]
    size = rng.choice(len(spec.sizes), size=n, p=concept_probabilities(spec, knobs, "size"))
    radius = np.array(list(spec.sizes.values()))[size] * spec.image_size
    margin = radius + 1.0
    cx = rng.uniform(margin, spec.image_size - margin)
    cy = rng.uniform(margin, spec.image_size - margin)
    background = rng.choice(len(spec.backgrounds), size=n, p=concept_probabilities(spec, knobs, "background"))

    pool = comps if distractor_pool is None else np.asarray(list(distractor_pool), dtype=np.int64).reshape(-1, 3)
    k = int(knobs.max_distractors)
    d = pool[rng.choice(len(pool), size=(n, k), p=composition_probabilities(spec, knobs, pool))] if k else \
        np.zeros((n, 0, 3), dtype=np.int64)
    d_r = spec.distractor_size * spec.image_size + 1.0
    d_present = rng.random((n, k)) < knobs.distractor_rate
    d_cx = rng.uniform(d_r, spec.image_size - d_r, size=(n, k))
    d_cy = rng.uniform(d_r, spec.image_size - d_r, size=(n, k))

    m = int(knobs.max_clutter)
    k_present = rng.random((n, m)) < knobs.clutter_rate
    k_len = rng.integers(3, 8, size=(n, m))
    k_x = rng.integers(0, spec.image_size, size=(n, m))
    k_y = rng.integers(0, spec.image_size, size=(n, m))
    k_vertical = rng.random((n, m)) < 0.5
    k_color = rng.integers(0, len(spec.colors), size=(n, m))
    return Scenes(chosen[:, 0], chosen[:, 1], chosen[:, 2], size, background, cx, cy,
                  d_present, d[..., 0], d[..., 1], d[..., 2], d_cx, d_cy,
                  k_present, k_x, k_y, k_len, k_vertical, k_color)


# Each shape is a mask of (dx, dy, r) in pixels; a registry so a new shape is one entry (and one word in
# data/zsworld/world.json).
SHAPE_MASKS: Dict[str, ArrayFn] = {
    "circle": lambda dx, dy, r: dx**2 + dy**2 <= r**2,
    "square": lambda dx, dy, r: np.maximum(np.abs(dx), np.abs(dy)) <= 0.82 * r,
    "triangle": lambda dx, dy, r: (dy <= 0.75 * r) & (np.abs(dx) <= (dy + r) * 0.6),
    "cross": lambda dx, dy, r: ((np.abs(dx) <= 0.3 * r) & (np.abs(dy) <= r))
    | ((np.abs(dy) <= 0.3 * r) & (np.abs(dx) <= r)),
    "ring": lambda dx, dy, r: (dx**2 + dy**2 <= r**2) & (dx**2 + dy**2 >= (0.55 * r) ** 2),
    "diamond": lambda dx, dy, r: np.abs(dx) + np.abs(dy) <= r,
}

# Each pattern marks the pixels of an object drawn in a darker shade of its color, anchored at the
# object's centre (dx, dy in pixels). Periods of 3-4 pixels stay visible on 32-pixel images.
PATTERN_MASKS: Dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "solid": lambda dx, dy: np.zeros(np.broadcast(dx, dy).shape, dtype=bool),
    "striped": lambda dx, dy: np.broadcast_to(np.floor((dy + 64.0) / 2.0) % 2 == 0, np.broadcast(dx, dy).shape),
    "dotted": lambda dx, dy: ((np.mod(dx + 64.0, 4.0) - 2.0) ** 2 + (np.mod(dy + 64.0, 4.0) - 2.0) ** 2) <= 1.1,
    "checked": lambda dx, dy: (np.floor((dx + 64.0) / 3.0) + np.floor((dy + 64.0) / 3.0)) % 2 == 0,
}
PATTERN_SHADE = 0.4


def _check_renderable(spec: WorldSpec) -> None:
    for kind, names, known in (("shapes", spec.shapes, SHAPE_MASKS), ("patterns", spec.patterns, PATTERN_MASKS)):
        missing = [s for s in names if s not in known]
        if missing:
            raise ValueError(f"no renderer for {kind} {missing}; known: {sorted(known)}")


def shape_color_shifts(spec: WorldSpec, strength: float) -> np.ndarray:
    """``[n_shapes, 3]`` RGB shifts of length ``strength``, one fixed direction per shape (evenly spaced around
    the grey axis, so no shape merely brightens): the ``contextual_color`` knob's effect."""
    k = len(spec.shapes)
    angles = 2 * np.pi * np.arange(k) / k
    # an orthonormal basis of the plane orthogonal to (1, 1, 1)
    u = np.array([1.0, -1.0, 0.0]) / np.sqrt(2.0)
    v = np.array([1.0, 1.0, -2.0]) / np.sqrt(6.0)
    return (strength * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)).astype(np.float32)


def _draw_objects(img: np.ndarray, spec: WorldSpec, grid: np.ndarray, present: np.ndarray, color: np.ndarray,
                  pattern: np.ndarray, shape: np.ndarray, cx: np.ndarray, cy: np.ndarray, radius: np.ndarray,
                  jitter: np.ndarray, palette: np.ndarray, shifts: Optional[np.ndarray] = None) -> None:
    """Paint one object per image (where ``present``) onto ``img`` ``[m, S, S, 3]`` in place; ``shifts``
    (``[n_shapes, 3]``, optional) is added to the color of each object by its shape."""
    dx = grid[None, None, :] - cx[:, None, None].astype(np.float32)
    dy = grid[None, :, None] - cy[:, None, None].astype(np.float32)
    dx, dy = np.broadcast_arrays(dx, dy)
    r = radius[:, None, None].astype(np.float32)
    mask = np.zeros(dx.shape, dtype=bool)
    shade = np.zeros(dx.shape, dtype=bool)
    for s_idx, s_name in enumerate(spec.shapes):
        rows = np.nonzero(present & (shape == s_idx))[0]
        if rows.size:
            mask[rows] = SHAPE_MASKS[s_name](dx[rows], dy[rows], r[rows])
    for p_idx, p_name in enumerate(spec.patterns):
        rows = np.nonzero(present & (pattern == p_idx))[0]
        if rows.size:
            shade[rows] = PATTERN_MASKS[p_name](dx[rows], dy[rows])
    fg = palette[color][:, None, None, :] + jitter[:, None, None, :]
    if shifts is not None:
        fg = fg + shifts[shape][:, None, None, :]
    fg = np.where(shade[..., None], fg * PATTERN_SHADE, fg)
    np.copyto(img, fg.astype(np.float32), where=mask[..., None])


def render(spec: WorldSpec, knobs: WorldKnobs, scenes: Scenes, rng: np.random.Generator,
           chunk: int = 2048) -> np.ndarray:
    """Draw scenes as uint8 images ``[N, H, W, 3]``: background, clutter, distractors, main object, noise."""
    _check_renderable(spec)
    size = spec.image_size
    n = len(scenes)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    palette = np.array(list(spec.colors.values()), dtype=np.float32)
    backgrounds = np.array(list(spec.backgrounds.values()), dtype=np.float32)
    radii = np.array(list(spec.sizes.values()), dtype=np.float32) * size
    grid = np.arange(size, dtype=np.float32) + 0.5
    shifts = shape_color_shifts(spec, knobs.contextual_color) if knobs.contextual_color > 0 else None
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        m = sl.stop - sl.start
        img = np.broadcast_to(backgrounds[scenes.background[sl]][:, None, None, :], (m, size, size, 3)).copy()
        for j in range(scenes.k_present.shape[1]):           # clutter: 1-pixel strokes
            x0, y0, ln = scenes.k_x[sl, j], scenes.k_y[sl, j], scenes.k_len[sl, j]
            vertical = scenes.k_vertical[sl, j]
            ix, iy = np.arange(size)[None, None, :], np.arange(size)[None, :, None]
            along_x = (iy == y0[:, None, None]) & (ix >= x0[:, None, None]) & (ix < (x0 + ln)[:, None, None])
            along_y = (ix == x0[:, None, None]) & (iy >= y0[:, None, None]) & (iy < (y0 + ln)[:, None, None])
            stroke = np.where(vertical[:, None, None], along_y, along_x) & scenes.k_present[sl, j][:, None, None]
            np.copyto(img, palette[scenes.k_color[sl, j]][:, None, None, :], where=stroke[..., None])
        d_radius = np.full(m, spec.distractor_size * size, dtype=np.float32)
        for j in range(scenes.d_present.shape[1]):           # distractors, under the main object
            _draw_objects(img, spec, grid, scenes.d_present[sl, j], scenes.d_color[sl, j], scenes.d_pattern[sl, j],
                          scenes.d_shape[sl, j], scenes.d_cx[sl, j], scenes.d_cy[sl, j], d_radius,
                          rng.normal(0.0, knobs.color_jitter, size=(m, 3)).astype(np.float32), palette, shifts)
        _draw_objects(img, spec, grid, np.ones(m, dtype=bool), scenes.color[sl], scenes.pattern[sl],
                      scenes.shape[sl], scenes.cx[sl], scenes.cy[sl], radii[scenes.size[sl]],
                      rng.normal(0.0, knobs.color_jitter, size=(m, 3)).astype(np.float32), palette, shifts)
        if knobs.noise > 0:
            img += rng.normal(0.0, knobs.noise, size=img.shape).astype(np.float32)
        out[sl] = np.clip(img, 0, 255).astype(np.uint8)
    return out
