"""Sweep tiny-CLIP training settings (architecture, steps, lr) for accuracy on unseen compositions.

Accuracy does not depend on the device, so this sweep can run on a borrowed GPU (``--device cuda``) to
choose the offline model's settings; CPU training time per step is measured separately
(``benchmarks/tiny_clip.py``). Prints one JSON line per run and writes them to ``--out``.
"""
from __future__ import annotations

import argparse
import copy
import json
import time

import open_clip
import torch

from zslab.datasets import build_dataset, load_templates
from zslab.train.contrastive import TrainConfig, images_to_tensor, train_contrastive
from zslab.train.zoo import CAPTIONS_PER_IMAGE, MEAN, STD, offline_model_entry, training_data
from zslab.zeroshot import build_classifier

ARCHS = {
    "p4w128L4": {"vision_cfg": {"image_size": 32, "layers": 4, "width": 128, "head_width": 32, "patch_size": 4}},
    "p8w128L4": {"vision_cfg": {"image_size": 32, "layers": 4, "width": 128, "head_width": 32, "patch_size": 8}},
    "p8w192L6": {"vision_cfg": {"image_size": 32, "layers": 6, "width": 192, "head_width": 32, "patch_size": 8}},
    "p4w96L3": {"vision_cfg": {"image_size": 32, "layers": 3, "width": 96, "head_width": 32, "patch_size": 4}},
}


def run(arch: str, steps: int, lr: float, seed: int, n_train: int, device: str, data_cache: dict) -> dict:
    entry = offline_model_entry("zsclip-tiny")
    entry["model_cfg"].update(copy.deepcopy(ARCHS[arch]))
    entry["world"]["n_train"] = n_train
    key = (n_train, seed)
    if key not in data_cache:
        images, per_image, split = training_data(entry, seed)
        tok = open_clip.SimpleTokenizer(context_length=16)
        tokens = tok([c for caps in per_image for c in caps]).view(len(per_image), CAPTIONS_PER_IMAGE, -1)
        data_cache[key] = (torch.from_numpy(images), tokens)
    images, tokens = data_cache[key]
    torch.manual_seed(seed)
    model = open_clip.CLIP(**copy.deepcopy(entry["model_cfg"]))
    cfg = TrainConfig(**{**entry["train"], "steps": steps, "lr": lr, "warmup_steps": max(10, steps // 12)})
    t0 = time.perf_counter()
    train_contrastive(model, images, tokens, cfg, MEAN, STD, seed=seed, progress=False, device=device)
    seconds = time.perf_counter() - t0
    model.eval()
    ds = build_dataset("zsworld", split="unseen", n_per_class=200, seed=seed)
    x = images_to_tensor(torch.from_numpy(ds.images), MEAN, STD).to(device)
    tok = open_clip.SimpleTokenizer(context_length=16)
    with torch.no_grad():
        feats = model.encode_image(x, normalize=True).float().cpu()

        def enc(texts):
            return model.encode_text(tok(list(texts)).to(device), normalize=True).float().cpu()

        out = {"arch": arch, "steps": steps, "lr": lr, "seed": seed, "n_train": n_train,
               "seconds": round(seconds, 1)}
        labels = torch.as_tensor(ds.targets)
        for head in ("name_only", "single", "ensemble"):
            w = build_classifier(enc, ds.classes, load_templates("zsworld", head))
            out[head] = round(float(((feats @ w.T).argmax(1) == labels).float().mean()), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="sweep.jsonl")
    ap.add_argument("--grid", default="full", choices=["full", "small"])
    args = ap.parse_args()
    grid = [("p4w128L4", 400, 2e-3), ("p8w128L4", 400, 2e-3), ("p8w128L4", 800, 2e-3), ("p8w128L4", 1200, 2e-3),
            ("p8w128L4", 800, 1e-3), ("p8w128L4", 800, 4e-3), ("p8w192L6", 600, 2e-3), ("p8w192L6", 1000, 2e-3),
            ("p4w96L3", 800, 2e-3), ("p4w128L4", 600, 1e-3)]
    if args.grid == "small":
        grid = grid[:2]
    data_cache: dict = {}
    results = []
    with open(args.out, "w") as f:
        for arch, steps, lr in grid:
            r = run(arch, steps, lr, 0, 60000, args.device, data_cache)
            results.append(r)
            print(json.dumps(r), flush=True)
            f.write(json.dumps(r) + "\n")
            f.flush()
        best = sorted(results, key=lambda r: -(r["single"] + r["ensemble"]))[:3]
        for b in best:
            for seed in (1, 2):
                r = run(b["arch"], b["steps"], b["lr"], seed, 60000, args.device, data_cache)
                print(json.dumps(r), flush=True)
                f.write(json.dumps(r) + "\n")
                f.flush()


if __name__ == "__main__":
    main()
