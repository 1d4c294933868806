"""Turn one knob of zsworld and see what the offline CLIP does: the experiment that finds a paper's mechanism.

Trains (or loads, when cached) ``--model`` for each seed and each value of the knob, then scores the
class-name, one-template and ensemble heads on the unseen compositions of that model's own world. One
JSON line per model; nothing asserts on its numbers or times.

    python benchmarks/knob_sweep.py --knob offtopic_rate --values 0 0.1 0.3 --seeds 0 1 \
        [--model zsclip-tiny] [--set train.steps=300] [--n-per-class 50]

``--set part.key=value`` changes other parts of the model entry for every run (YAML values).
"""
from __future__ import annotations

import argparse
import json
import time

import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="zsclip-tiny")
    ap.add_argument("--knob", required=True, help="a world knob (data/zsworld/world.json 'knobs')")
    ap.add_argument("--values", nargs="+", required=True, help="values of the knob (YAML)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--set", nargs="*", default=[], help="part.key=value changes to the entry, e.g. train.steps=300")
    ap.add_argument("--n-per-class", type=int, default=50)
    args = ap.parse_args()

    from zslab.datasets import load_templates
    from zslab.evaluation import encode_eval_set
    from zslab.methods.prompting import evaluate_heads, prompt_heads

    base: dict = {}
    for item in args.set:
        key, value = item.split("=", 1)
        part, name = key.split(".", 1)
        base.setdefault(part, {})[name] = yaml.safe_load(value)
    heads = prompt_heads("a photo of a {c}.", load_templates("zsworld", "ensemble"))
    for raw in args.values:
        value = yaml.safe_load(raw)
        overrides = {**base, "world": {**base.get("world", {}), args.knob: value}}
        for seed in args.seeds:
            t0 = time.perf_counter()
            run = encode_eval_set(args.model, None, "zsworld", "unseen", seed, args.n_per_class, overrides=overrides)
            correct = evaluate_heads(run.model.encode_text, run.dataset.classes, heads, run.features, run.labels)
            print(json.dumps({"model": args.model, "knob": args.knob, "value": value, "seed": seed,
                              "overrides": overrides, "train_s": run.model.manifest.get("train_seconds"),
                              "load_or_train_s": round(time.perf_counter() - t0, 1),
                              **{h: round(float(c.mean()), 4) for h, c in correct.items()}}), flush=True)


if __name__ == "__main__":
    main()
