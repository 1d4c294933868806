"""Train the zoo models a batch of notebooks names before running the notebooks side by side.

``zslab run --jobs N`` gives each of N kernels 1/N of the cores. Training a zslab model is the one long,
sequential, compute-bound step of a cold run, and many notebooks wait for the same models (a lock per model);
trained one at a time inside the kernels, they would train at 1/N of the machine while the other kernels
wait. So the models that the notebooks' parameters name (``model``/``models`` crossed with ``seeds``) are
trained first, in this process, with every core; the notebooks then find them in the cache. Models a
notebook derives itself (control worlds, variants) still train inside it.
"""
from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Sequence, Tuple


def _names(value: Any) -> List[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [n for v in value.values() for n in _names(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _names(v)]
    return []


def zoo_models_named(parameters: Iterable[Mapping[str, Any]], zoo: Sequence[str]) -> List[Tuple[str, int]]:
    """Sorted distinct ``(model, seed)`` pairs of zoo models that offline runs with these parameters name."""
    pairs = set()
    for p in parameters:
        if p.get("mode", "offline") != "offline":
            continue
        seeds = p.get("seeds", [0])
        seeds = [s for s in seeds if isinstance(s, int)] if isinstance(seeds, list) else []
        for name in _names(p.get("model")) + _names(p.get("models")):
            if name in zoo:
                pairs.update((name, s) for s in seeds)
    return sorted(pairs)


def train_named_models(parameters: Iterable[Mapping[str, Any]], progress: bool = True) -> List[Tuple[str, int]]:
    """Train (or find in the cache) every zoo model the runs name, one after the other with all cores."""
    from ..models import list_zoo_models, load_model

    pairs = zoo_models_named(parameters, list_zoo_models())
    for i, (name, seed) in enumerate(pairs, 1):
        print(f"  model {i}/{len(pairs)}: {name} seed {seed}", flush=True)
        load_model(name, seed=seed, progress=progress)
    return pairs
