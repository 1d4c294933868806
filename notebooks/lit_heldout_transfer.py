# %% [markdown]
# # Locked-text models: zero-shot transfer to held-out real classes
#
# **Papers.** Zhai et al., *LiT: Zero-Shot Transfer with Locked-image text Tuning*, arXiv
# [2111.07991](https://arxiv.org/abs/2111.07991) (locking one pretrained tower and training the other
# contrastively); prompt wording as in CLIP (arXiv [2103.00020](https://arxiv.org/abs/2103.00020)) and
# attribute/description prompts as in Menon & Vondrick (arXiv [2210.07183](https://arxiv.org/abs/2210.07183)).
#
# **Claim checked here.** An image tower trained against a *locked, pretrained* text tower classifies
# classes it never saw in training, from their names alone, well above chance; and richer class text
# (a template ensemble, attribute descriptions) does at least as well as the bare class name.
#
# **Setting.** zslab's locked-text models: an MLP head on frozen EfficientNet-Lite0 (ImageNet) features,
# trained against frozen all-MiniLM-L6-v2 embeddings of prompts and descriptions of 7 of the 10 classes
# of Animal-MNIST and of Fashion-MNIST. The 3 held-out classes' images and words never occur in training.
# Zero-shot test: the held-out classes' test images, choosing among the held-out classes (chance 1/3),
# and the generalized setting (all 10 classes; seen/unseen accuracy and their harmonic mean).
# Unlike the original LiT, the *text* tower is the locked one here: that is what lets class names never
# seen in training be used. EfficientNet was trained on ImageNet labels, so it has seen animals and
# clothes: "zero-shot" means no labels of the held-out classes in *our* training.

# %% parameters
mode: str = "offline"  # one of: offline, real
models: list = ["lit-animal-mnist", "lit-fashion-mnist"]  # one model per dataset below (locked-text models, or open_clip names in real mode)
pretrained: str = "zslab"  # pretrained tag of the models (zslab for locked-text models)
datasets: list = ["animal_mnist", "fashion_mnist"]  # evaluation datasets, paired with models
heldout: list = [["cow", "giraffe", "zebra"], ["trouser", "bag", "ankle boot"]]  # held-out classes per dataset (must match the models' training)
seeds: list = [0, 1, 2]  # one trained model per seed; also the seed of the evaluation subsample
n_per_class: int = 200  # test images per class (0 keeps all)
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import seaborn as sns
import torch

from zslab.embeddings import image_features
from zslab.evaluation import eval_dataset
from zslab.methods.prompting import CLASS_NAME_ONLY
from zslab.metrics import across_seeds, bootstrap_mean_ci, gzsl_metrics
from zslab.models import load_model
from zslab.plotting import set_style
from zslab.records import record, record_figure, record_verdict
from zslab.semantics.attributes import load_descriptions
from zslab.verdicts import describe_interval, improvement_verdict
from zslab.zeroshot import build_classifier, logits

if not (len(models) == len(datasets) == len(heldout)):
    raise ValueError(f"models, datasets and heldout must pair up: {len(models)}, {len(datasets)}, {len(heldout)}")


def heads_for(dataset, classes, templates):
    descriptions = load_descriptions(dataset)
    return {"class name": CLASS_NAME_ONLY, "template ensemble": list(templates),
            "descriptions": {c: descriptions[c] for c in classes}}


HEAD_ORDER = ["class name", "template ensemble", "descriptions"]

# %% [markdown]
# ## Zero-shot on held-out classes, and the generalized setting, per dataset and seed

# %%
rows = []
for model_name, dataset, held in zip(models, datasets, heldout):
    for seed in seeds:
        lm = load_model(model_name, pretrained, seed=seed)
        if lm.manifest and sorted(lm.manifest.get("heldout_classes", held)) != sorted(held):
            raise ValueError(f"{model_name} was trained with held-out classes {lm.manifest['heldout_classes']}, "
                             f"not {held}")
        full = eval_dataset(dataset, split="test", n_per_class=n_per_class, seed=seed)
        feats_all, labels_all = image_features(lm, full)
        unseen_idx = [full.classes.index(c) for c in held]
        seen_idx = [i for i in range(len(full.classes)) if i not in unseen_idx]
        mask = np.isin(labels_all.numpy(), unseen_idx)  # the held-out classes' images, relabelled 0..2
        feats_u = feats_all[mask]
        labels_u = torch.as_tensor([unseen_idx.index(int(t)) for t in labels_all[mask]])
        for head, prompts in heads_for(dataset, full.classes, full.templates).items():
            w_u = build_classifier(lm.encode_text, held, prompts if not isinstance(prompts, dict)
                                   else {c: prompts[c] for c in held})
            correct = (logits(feats_u, w_u).argmax(1) == labels_u).numpy().astype(float)
            lo, hi = bootstrap_mean_ci(correct, n_resamples=n_bootstrap, seed=seed)
            rows.append({"dataset": dataset, "seed": seed, "head": head, "metric": "unseen top-1 (held-out only)",
                         "value": correct.mean(), "low": lo, "high": hi})
            record("heldout_top1", correct.mean(), interval=(lo, hi), seed=seed, dataset=dataset, head=head,
                   model=model_name, chance=1 / len(held))
            w_all = build_classifier(lm.encode_text, full.classes, prompts)
            pred = logits(feats_all, w_all).argmax(1).numpy()
            g = gzsl_metrics(pred, labels_all.numpy(), seen_idx, unseen_idx)
            for k, v in g.items():
                rows.append({"dataset": dataset, "seed": seed, "head": head, "metric": f"GZSL {k}", "value": v})
                record(f"gzsl_{k}", v, seed=seed, dataset=dataset, head=head, model=model_name)
results = pd.DataFrame(rows)
results.pivot_table(index=["dataset", "metric"], columns="head", values="value")[HEAD_ORDER].style.format("{:.1%}")

# %% [markdown]
# ## Across seeds

# %%
summary = []
for (dataset, head), g in results[results["metric"] == "unseen top-1 (held-out only)"].groupby(["dataset", "head"]):
    stats = across_seeds(g["value"].tolist())
    summary.append({"dataset": dataset, "head": head, **stats})
    record("heldout_top1_mean_over_seeds", stats["mean"], interval=(stats["low"], stats["high"]),
           dataset=dataset, head=head, n_seeds=stats["n"])
summary = pd.DataFrame(summary)
summary

# %% [markdown]
# ## Figure: held-out-class top-1 by prompt head (dots: seeds; bars: mean with 95% interval)

# %%
set_style()
fig, axes = plt.subplots(1, len(datasets), figsize=(5.5 * len(datasets), 4), squeeze=False)
for ax, dataset, held in zip(axes[0], datasets, heldout):
    s = summary[summary["dataset"] == dataset].set_index("head").loc[HEAD_ORDER]
    per_seed = results[(results["dataset"] == dataset) & (results["metric"] == "unseen top-1 (held-out only)")]
    ax.bar(range(3), s["mean"], color=sns.color_palette("colorblind", 3), alpha=0.75)
    ax.errorbar(range(3), s["mean"], yerr=[s["mean"] - s["low"], s["high"] - s["mean"]], fmt="none", ecolor="black", capsize=5)
    for i, head in enumerate(HEAD_ORDER):
        v = per_seed.loc[per_seed["head"] == head, "value"]
        ax.scatter([i] * len(v), v, color="black", s=16, zorder=3)
    ax.axhline(1 / len(held), ls="--", color="gray")
    ax.set_xticks(range(3))
    ax.set_xticklabels(HEAD_ORDER)
    ax.set_ylim(0, 1)
    ax.set_title(f"{dataset}: held out {', '.join(held)}")
    ax.set_ylabel("zero-shot top-1 among held-out classes")
record_figure(fig, "heldout_transfer", "Zero-shot top-1 on held-out classes by prompt head; dashed: chance.")
plt.show()

# %% [markdown]
# ## Verdicts

# %%
for dataset, held in zip(datasets, heldout):
    chance = 1 / len(held)
    per = results[(results["dataset"] == dataset) & (results["metric"] == "unseen top-1 (held-out only)")]
    above = per[per["head"] == "class name"]["value"] - chance
    status, stats = improvement_verdict(above.tolist())
    record_verdict(f"{dataset}: class names alone transfer to held-out classes (above chance {chance:.0%})",
                   status, f"top-1 minus chance: {describe_interval(stats)}")
    for head in ["template ensemble", "descriptions"]:
        a = per[per["head"] == head].sort_values("seed")["value"].to_numpy()
        b = per[per["head"] == "class name"].sort_values("seed")["value"].to_numpy()
        status, stats = improvement_verdict((a - b).tolist())
        record_verdict(f"{dataset}: {head} beats the class name on held-out classes", status,
                       f"gain: {describe_interval(stats)}")
        print(dataset, head, status, describe_interval(stats))
