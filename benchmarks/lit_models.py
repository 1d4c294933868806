"""Benchmark of zslab's locked-text ("LiT") models: zero-shot top-1 on the classes held out of their
training, over seeds, against chance; with training time. Output is quoted in notes, never asserted.

    python benchmarks/lit_models.py [--models lit-zsworld lit-animal-mnist lit-fashion-mnist] [--seeds 0 1 2]

zsworld: the held-out *shapes* never occur in training captions; the test asks for the shape among the
held-out shapes (chance 1/#held-out) and for the full color-shape class among all compositions with a
held-out shape. Animal-/Fashion-MNIST: the 3 held-out classes, chosen among themselves (chance 1/3).
"""
from __future__ import annotations

import argparse
import json

import numpy as np

from zslab.datasets import select_classes
from zslab.embeddings import image_features
from zslab.evaluation import correct_vector, eval_dataset
from zslab.metrics import across_seeds
from zslab.models import load_model
from zslab.world import load_world_spec
from zslab.zeroshot import build_classifier

ZSWORLD_PROMPT = ["a photo of a {c}"]


def zsworld_heldout(lm, seed: int, n_per_class: int) -> dict:
    data = lm.manifest["data"]
    ds = eval_dataset("zsworld", split="unseen", n_per_class=n_per_class, seed=seed,
                      split_kind=data["split_kind"], holdout_fraction=data["holdout_fraction"],
                      split_seed=data["split_seed"])
    feats, labels = image_features(lm, ds, progress=False)
    spec = load_world_spec()
    shapes = lm.manifest["heldout_classes"]
    shape_of = np.array([shapes.index(c.split(" ", 1)[1]) for c in ds.classes])[labels.numpy()]
    w_shape = build_classifier(lm.encode_text, shapes, ZSWORLD_PROMPT)
    import torch
    shape_correct = correct_vector(feats, torch.as_tensor(shape_of), w_shape)
    pair_correct = correct_vector(feats, labels, build_classifier(lm.encode_text, ds.classes, ZSWORLD_PROMPT))
    return {"shape top-1": float(shape_correct.mean()), "shape chance": 1 / len(shapes),
            "pair top-1": float(pair_correct.mean()), "pair chance": 1 / len(ds.classes), "held out": shapes,
            "colors": len(spec.colors)}


def labelled_heldout(lm, seed: int, n_per_class: int) -> dict:
    data = lm.manifest["data"]
    full = eval_dataset(data["dataset"], split="test", n_per_class=n_per_class, seed=seed)
    held = lm.manifest["heldout_classes"]
    ds = select_classes(full, held)
    feats, labels = image_features(lm, ds, progress=False)
    out = {"held out": held, "chance": 1 / len(held)}
    for head, templates in {"class name": ["{c}"], "template ensemble": full.templates}.items():
        out[f"{head} top-1"] = float(correct_vector(feats, labels, build_classifier(lm.encode_text, held, templates)).mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["lit-zsworld", "lit-animal-mnist", "lit-fashion-mnist"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n-per-class", type=int, default=200)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    summary = {}
    for name in args.models:
        runs = []
        for seed in args.seeds:
            lm = load_model(name, "zslab", seed=seed, progress=False)
            evaluate = zsworld_heldout if lm.manifest["data"]["kind"] == "zsworld" else labelled_heldout
            run = {"seed": seed, "train_s": lm.manifest["train_seconds"], **evaluate(lm, seed, args.n_per_class)}
            runs.append(run)
            print(name, json.dumps(run), flush=True)
        keys = [k for k in runs[0] if k.endswith("top-1")]
        summary[name] = {"runs": runs, **{f"{k} over seeds": across_seeds([r[k] for r in runs]) for k in keys},
                         "train_s over seeds": across_seeds([r["train_s"] for r in runs])}
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
