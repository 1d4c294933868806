"""Benchmark of the offline tiny CLIP: training time on this machine and zero-shot top-1 on unseen
compositions, over seeds, with intervals. Its output is quoted in notes; nothing asserts on its times.

    python benchmarks/tiny_clip.py --seeds 0 1 2 [--model zsclip-tiny] [--fresh]

``--fresh`` trains into a temporary cache (a cold start); otherwise cached models are reused and only
evaluated.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="zsclip-tiny")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--n-per-class", type=int, default=100)
    ap.add_argument("--fresh", action="store_true", help="train into a temporary cache (cold start)")
    ap.add_argument("--out", default="", help="also write the JSON summary here")
    args = ap.parse_args()
    if args.fresh:
        os.environ["ZSLAB_CACHE"] = tempfile.mkdtemp(prefix="zslab-bench-")

    from zslab.datasets import load_templates
    from zslab.embeddings import image_features
    from zslab.evaluation import eval_dataset
    from zslab.methods.prompting import evaluate_heads, prompt_heads
    from zslab.metrics import across_seeds, bootstrap_mean_ci
    from zslab.models import load_model
    from zslab.provenance import git_revision, package_versions

    heads = prompt_heads("a photo of a {c}.", load_templates("zsworld", "ensemble"))
    runs = []
    for seed in args.seeds:
        t0 = time.perf_counter()
        lm = load_model(args.model, seed=seed, progress=False)
        load_s = time.perf_counter() - t0
        manifest = lm.manifest
        ds = eval_dataset("zsworld", split="unseen", n_per_class=args.n_per_class, seed=seed, model=lm)
        feats, labels = image_features(lm, ds, progress=False)
        correct = evaluate_heads(lm.encode_text, ds.classes, heads, feats, labels)
        run = {"seed": seed, "load_or_train_s": round(load_s, 1), "train_s": manifest["train_seconds"],
               "images_per_s": manifest["images_per_second"], "n_parameters": manifest["n_parameters"],
               "steps": manifest["train"]["steps"], "batch_size": manifest["train"]["batch_size"]}
        for head, c in correct.items():
            lo, hi = bootstrap_mean_ci(c, seed=seed)
            run[head] = {"top1": round(float(c.mean()), 4), "ci": [round(lo, 4), round(hi, 4)]}
        runs.append(run)
        print(json.dumps(run), flush=True)
    summary = {"model": args.model, "machine": f"{platform.machine()}, {os.cpu_count()} cpus, torch threads "
               f"{torch.get_num_threads()}", "chance": 1 / len(ds.classes), "n_unseen_classes": len(ds.classes),
               "images_per_class": args.n_per_class, "git": git_revision(), "versions": package_versions(),
               "runs": runs}
    for head in heads:
        summary[f"{head} over seeds"] = across_seeds([r[head]["top1"] for r in runs])
    summary["train_s over seeds"] = across_seeds([r["train_s"] for r in runs])
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
