"""Train the zoo models a batch of notebooks names before running the notebooks side by side.

``zslab run --jobs N`` gives each of N kernels 1/N of the cores. Training a zslab model is the one long,
sequential, compute-bound step of a cold run, and many notebooks wait for the same models (a lock per model);
trained inside the kernels, a model would train at 1/N of the machine while the other kernels wait on its
lock. So the models that the notebooks' parameters name are trained first:

* ``model``/``models`` crossed with ``seeds``;
* the control arm of a mechanism experiment (:func:`zslab.analysis.control_arms`): ``model`` trained with
  the world knobs ``control`` for each of ``control_seeds``;
* the trained variants of a pretraining experiment: ``variants`` maps an arm's label to entry overrides
  (``{"train": {"loss": "sigmoid"}}``), each trained from ``model`` for each of ``seeds``.

They train in N processes of ``cores // N`` threads each, longest first (:func:`_order`). On 2 cores two
1-thread trainings side by side finish sooner than the same two one after the other with 2 threads: the
training loops themselves gain little (tiny CLIP 0.78 s/step at 1 thread, 0.47 at 2), but rendering and
tokenizing are single-threaded and overlap (two zsclip-micro trainings: 31 s side by side, 52 s in turn);
two 2-thread trainings at once oversubscribe the cores and run several times slower. A model whose cache
folder already exists is not touched here: the kernel that loads it verifies it (a warm run pays nothing).
Models a notebook derives in other ways (towers, fine-tunes) still train inside it.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple


class ModelTarget(NamedTuple):
    """One model to have in the cache: a zoo name, a seed and the entry overrides (``{}``: the zoo entry)."""

    name: str
    seed: int
    overrides: Dict[str, Dict[str, Any]]

    def label(self) -> str:
        knobs = "; ".join(f"{part} {v}" for part, v in sorted(self.overrides.items()))
        return f"{self.name} seed {self.seed}" + (f" ({knobs})" if knobs else "")


def _names(value: Any) -> List[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [n for v in value.values() for n in _names(v)]
    if isinstance(value, (list, tuple)):
        return [n for v in value for n in _names(v)]
    return []


def _int_list(value: Any) -> List[int]:
    return [s for s in value if isinstance(s, int)] if isinstance(value, list) else []


def model_targets(parameters: Iterable[Mapping[str, Any]], zoo: Sequence[str],
                  derivable: Sequence[str] = ()) -> List[ModelTarget]:
    """Distinct models that offline runs with these parameters load, sorted: zoo models named by
    ``model``/``models`` for each of ``seeds``, and, for ``model`` in ``derivable`` (zoos that train from a
    changed entry), its ``control`` world for each of ``control_seeds``, and for ``model`` or each of ``models``
    in ``derivable``, its ``variants`` (label → overrides) for each of ``seeds``."""
    found: Dict[Tuple[str, int, bool, str], ModelTarget] = {}

    def add(name: str, seed: int, overrides: Dict[str, Dict[str, Any]]) -> None:
        knobs = repr(sorted((k, sorted(v.items())) for k, v in overrides.items()))
        found.setdefault((name, seed, bool(overrides), knobs), ModelTarget(name, seed, overrides))

    for p in parameters:
        if p.get("mode", "offline") != "offline":
            continue
        for name in _names(p.get("model")) + _names(p.get("models")):
            if name in zoo:
                for seed in _int_list(p.get("seeds", [0])):
                    add(name, seed, {})
        control, model = p.get("control"), p.get("model")
        if isinstance(control, Mapping) and control and isinstance(model, str) and model in derivable:
            for seed in _int_list(p.get("control_seeds", [])):
                add(model, seed, {"world": dict(control)})
        variants = p.get("variants")
        if isinstance(variants, Mapping):
            for name in [n for n in _names(model) + _names(p.get("models")) if n in derivable]:
                for overrides in variants.values():
                    if isinstance(overrides, Mapping) and overrides:
                        for seed in _int_list(p.get("seeds", [0])):
                            add(name, seed, {part: dict(v) for part, v in overrides.items()})
    return [found[k] for k in sorted(found)]


def zoo_models_named(parameters: Iterable[Mapping[str, Any]], zoo: Sequence[str]) -> List[Tuple[str, int]]:
    """Sorted distinct ``(model, seed)`` pairs of zoo models (their own entries) that the runs name."""
    return [(t.name, t.seed) for t in model_targets(parameters, zoo) if not t.overrides]


def cached_folder_exists(target: ModelTarget) -> bool:
    """Whether ``target``'s cache folder exists (not verified: loading it does that)."""
    from ..models import find_zoo
    from ..train.zoo import with_overrides

    source = find_zoo(target.name)
    entry = source.zoo.entry(target.name)
    if target.overrides:
        entry = with_overrides(entry, target.overrides)
    return source.zoo.folder(target.name, entry, target.seed).exists()


def _set_threads(threads: int) -> None:
    import torch

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)


def _build(target: ModelTarget, progress: bool) -> str:
    from ..models import find_zoo

    source = find_zoo(target.name)
    kwargs = {"overrides": target.overrides} if target.overrides else {}
    return str(source.folder(target.name, seed=target.seed, progress=progress, **kwargs))


def _order(target: ModelTarget) -> tuple:
    """Longest trainings first (the last one to finish runs alone: measured, a zsclip-tiny left for the end
    kept one process idle for 4 minutes), then seed by seed and world by world: the workers take targets in
    this order, and a worker that trains a second variant of the same world and seed reuses the corpus it
    rendered (``train.zoo`` keeps the last two per process), saving ~5 s of a ~25 s zsclip-micro training."""
    from ..models import find_zoo

    world = {**find_zoo(target.name).zoo.entry(target.name).get("world", {}), **target.overrides.get("world", {})}
    return (-_cost(target), target.seed, repr(sorted(world.items())), target.name)


def _cost(target: ModelTarget) -> float:
    """Rough relative training cost (pairs seen)."""
    from ..models import find_zoo

    train = {**find_zoo(target.name).zoo.entry(target.name).get("train", {}), **target.overrides.get("train", {})}
    return float(train.get("steps", 1)) * float(train.get("batch_size", 1))


def train_named_models(parameters: Iterable[Mapping[str, Any]], progress: bool = True, processes: int = 1,
                       cores: Optional[int] = None) -> List[ModelTarget]:
    """Train every zoo model the runs load that is not yet in the cache, in ``processes`` processes of
    ``cores // processes`` threads (one process: here, with every core). Returns the models trained."""
    from ..models import list_zoo_models

    targets = model_targets(parameters, list_zoo_models(), derivable=list_zoo_models())
    missing = [t for t in targets if not cached_folder_exists(t)]
    print(f"  {len(targets) - len(missing)} of {len(targets)} models already in the cache", flush=True)
    missing.sort(key=_order)
    cores = cores or os.cpu_count() or 1
    processes = max(1, min(processes, len(missing), cores))
    if processes == 1:
        for i, t in enumerate(missing, 1):
            print(f"  model {i}/{len(missing)}: {t.label()}", flush=True)
            _build(t, progress)
        return missing
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn"), initializer=_set_threads,
                             initargs=(max(1, cores // processes),)) as pool:
        futures = {pool.submit(_build, t, False): t for t in missing}
        for i, future in enumerate(as_completed(futures), 1):
            future.result()
            print(f"  model {i}/{len(missing)} trained: {futures[future].label()}", flush=True)
    return missing
