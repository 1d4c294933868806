# %% [markdown]
# # LiT: which tower to lock, measured on classes held out of training
#
# **Paper.** Zhai et al., *LiT: Zero-Shot Transfer with Locked-image text Tuning*, arXiv
# [2111.07991](https://arxiv.org/abs/2111.07991). Description prompts after Menon & Vondrick, arXiv
# [2210.07183](https://arxiv.org/abs/2210.07183).
#
# **Claim.** A contrastive model built on a *locked* pretrained image tower, with only the text side
# trained ("Lu", LiT's setting), transfers zero-shot better than alternatives that train the image side
# (LiT Table 2: ImageNet zero-shot 70.1% for Lu against 57.2% for Uu and 50.6% for uu; Fig. 3 on YFCC100m).
# Secondary claim (2210.07183): richer class text, here attribute descriptions, beats the bare class name.
#
# **Setting.** Two configurations built on the same pretrained encoders and trained on the same captions
# of 7 of the 10 classes of Animal-MNIST and of Fashion-MNIST; the other 3 classes' images and words
# never occur in training:
# * **locked image** (LiT's setting): frozen EfficientNet-Lite0 (ImageNet) features as they are, no image
#   head (as LiT's App. C), and a trained text head on frozen all-MiniLM-L6-v2;
# * **locked text**: a trained image head on the frozen EfficientNet features, against frozen MiniLM.
# Both keep a pretrained language model, because the held-out class names must mean something; a text
# tower trained from scratch ("u") could not know them at this scale.
#
# **Mechanism and control.** The mechanism is that a locked image tower keeps its pretrained representation
# intact, so a text side that learns to read it out on 7 classes reads out the other 3 too; a trained
# image head instead fits the 7 training classes. The locked-text configuration is the control: the same
# encoders, data and budget with the image side trained.
#
# **Evaluation.** Held-out classes' test images choosing among the held-out classes (chance 1/3), by prompt
# head (class name, template ensemble, descriptions), and the generalized setting over all 10 classes
# (seen, unseen, harmonic mean). EfficientNet was trained on ImageNet labels, so "zero-shot" means no
# labels of the held-out classes in *our* training. Real mode: `models` maps configurations to open_clip
# models (e.g. `'{"pretrained": ["ViT-B-32"]}'` with `-p pretrained /path/ckpt.pt`) on stored datasets.

# %% parameters
mode: str = "offline"  # one of: offline, real
models: dict = {"locked image": ["lit-animal-mnist-locked-image", "lit-fashion-mnist-locked-image"], "locked text": ["lit-animal-mnist", "lit-fashion-mnist"]}  # configuration -> one model per dataset
pretrained: str = "zslab"  # pretrained tag of the models (zslab for zslab's LiT models) or a checkpoint file
datasets: list = ["animal_mnist", "fashion_mnist"]  # evaluation datasets, paired with each configuration's models
heldout: list = [["cow", "giraffe", "zebra"], ["trouser", "bag", "ankle boot"]]  # held-out classes per dataset (must match the models' training)
seeds: list = [0, 1, 2]  # one trained model per seed; also the seed of the evaluation subsample
n_per_class: int = 200  # test images per class (0 keeps all)
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import check_gain, mean_over_seeds
from zslab.methods.heldout import HEADS, heldout_runs
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record_figure
from zslab.verdicts import judge, over_seeds

CONFIGS = list(models)

# %% [markdown]
# ## Held-out classes (among themselves) and the generalized setting, per configuration, dataset and seed

# %%
rows, scores, gzsl_rows = heldout_runs(models, datasets, heldout, seeds, n_per_class, pretrained, device, n_bootstrap)
per_seed = pd.DataFrame(rows)
per_seed.pivot_table(index=["dataset", "config"], columns="head", values="heldout_top1")[list(HEADS)].style.format("{:.1%}")

# %% [markdown]
# ## The generalized setting (all 10 classes): seen, unseen and harmonic mean, mean over seeds

# %%
pd.DataFrame(gzsl_rows).groupby(["dataset", "config", "head"], sort=False)[["seen", "unseen", "harmonic"]].mean().style.format("{:.1%}")

# %% [markdown]
# ## Across seeds, and the figure: held-out top-1 by configuration and prompt head

# %%
summary = mean_over_seeds(per_seed, "heldout_top1", ["dataset", "config", "head"])
fig, axes = panels(len(datasets), sharey=True)
for ax, dataset, held in zip(axes, datasets, heldout):
    bars_with_seeds(per_seed[per_seed["dataset"] == dataset], "head", "heldout_top1", order=list(HEADS),
                    summary=summary[summary["dataset"] == dataset], hue="config", hue_order=CONFIGS,
                    chance=1 / len(held), ax=ax, ylabel="zero-shot top-1 among held-out classes",
                    title=f"{dataset}: held out {', '.join(held)}")
record_figure(fig, "heldout_transfer", "Zero-shot top-1 on held-out classes by configuration and prompt head; "
              "bars: mean over seeds with 95% interval, dots: seeds, dashed: chance.")

# %% [markdown]
# ## Verdicts
# LiT's claim: the locked-image configuration beats the locked-text one on held-out classes (template
# ensemble, as LiT evaluates with CLIP's templates), paired over seeds. Then transfer above chance from
# class names alone, per configuration, and descriptions against class names in LiT's configuration.

# %%
for dataset, held in zip(datasets, heldout):
    run_scores = {s: scores[dataset, s] for s in seeds}
    if {"locked image", "locked text"} <= set(CONFIGS):
        check_gain(f"{dataset}: a locked image tower with a trained text side transfers better than a trained image "
                   "side on a locked text tower (held-out classes, template ensemble)", run_scores,
                   "locked image / template ensemble", "locked text / template ensemble", n_resamples=n_bootstrap,
                   dataset=dataset)
    for config in CONFIGS:
        above = per_seed[(per_seed["dataset"] == dataset) & (per_seed["config"] == config)
                         & (per_seed["head"] == "class name")]["heldout_top1"] - 1 / len(held)
        judge(f"{dataset}, {config}: class names alone transfer to held-out classes (above chance {1 / len(held):.0%})",
              over_seeds(above.tolist()), metric="heldout_top1_minus_chance", dataset=dataset, config=config)
    check_gain(f"{dataset}, {CONFIGS[0]}: descriptions beat the class name on held-out classes", run_scores,
               f"{CONFIGS[0]} / descriptions", f"{CONFIGS[0]} / class name", n_resamples=n_bootstrap, dataset=dataset)
