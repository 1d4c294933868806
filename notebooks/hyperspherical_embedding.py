# %% [markdown]
# # Hyperspherical embedding: a normalised softmax beats pairwise metric learning on novel classes
#
# **Paper.** *Hyperspherical embedding for novel class classification*, arXiv
# [2102.03243](https://arxiv.org/abs/2102.03243).
#
# **Claim.** Training an embedding with a normalised softmax (unit class proxies on the hypersphere, a
# temperature), with no pairwise or triplet sampling, and then adding novel classes without re-optimisation
# (their labelled examples' mean as the new classes' prototypes), beats pairwise metric learning on the novel
# classes.
#
# **Method** (`zslab/methods/metric_learning.py`): the same two-layer embedding head on frozen features trained on
# the seen classes with a normalised softmax, a triplet loss or a contrastive loss, at an equal budget (the same
# class-balanced batches and number of steps). Novel classes: named by the nearest mean of 5 labelled images
# each, no training on them; also Recall@k and NMI on their images.
#
# **Mechanism and control.** The normalised softmax compares every image with every seen class's proxy at each
# step, where pairwise losses see only the pairs a batch happens to contain. **Control:** the pairwise losses at
# the same budget; the frozen features show what training on seen classes adds or costs.
#
# **Setting.** As `ecaml_metric_learning`: Animal-MNIST and Fashion-MNIST on EfficientNet-Lite0 features with
# LiT's 3 held-out classes as novel, zsworld's 38 unseen compositions on `zsclip-tiny` features.

# %% parameters
mode: str = "offline"  # one of: offline
datasets: list = ["animal_mnist", "fashion_mnist", "zsworld"]  # datasets with a seen/unseen split
features: dict = {"animal_mnist": "efficientnet-lite0", "fashion_mnist": "efficientnet-lite0", "zsworld": "zsclip-tiny"}  # image features per dataset
unseen: dict = {"animal_mnist": ["cow", "giraffe", "zebra"], "fashion_mnist": ["trouser", "bag", "ankle boot"]}  # novel classes of stored datasets
losses: list = ["normalised softmax", "triplet", "contrastive"]  # zslab.methods.metric_learning.METRIC_LOSSES (the first is the claim's)
seeds: list = [0, 1, 2]  # image draws and training; zsclip models: one per seed
steps: int = 600  # training steps of every loss (the equal budget)
shots: int = 5  # labelled images per novel class that define its prototype
n_train: dict = {"animal_mnist": 200, "fashion_mnist": 200, "zsworld": 40}  # training images per seen class
n_test: dict = {"animal_mnist": 200, "fashion_mnist": 200, "zsworld": 40}  # test images per class
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import mean_over_seeds
from zslab.errors import check_choice
from zslab.methods.metric_learning import metric_learning_rows
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record_figure
from zslab.verdicts import judge, over_seeds

paper = get_paper("hyperspherical_embedding")
check_choice("mode", mode, ["offline"])
CLAIMED = losses[0]
ORDER = ["frozen features", *losses]
print(f"{paper.title} (arXiv {paper.arxiv})\nlosses {losses}, datasets {datasets}")

# %% [markdown]
# ## Novel-class naming, retrieval and clustering per loss (mean over seeds)

# %%
per_seed = pd.DataFrame(metric_learning_rows(datasets, features, unseen, {loss: (loss, 0.0) for loss in losses}, seeds,
                                             n_train, n_test, shots=shots, steps=steps, device=device))
per_seed.groupby(["dataset", "arm"], sort=False)[["novel_accuracy", "recall_at_1", "nmi"]].mean().style.format("{:.3f}")

# %% [markdown]
# ## Figure: novel-class accuracy from 5 examples per class, no re-optimisation (bars: mean over seeds, 95% t-interval)

# %%
fig, axes = panels(len(datasets), width=5.5, sharey=True)
for ax, dataset in zip(axes, datasets):
    part = per_seed[per_seed["dataset"] == dataset]
    bars_with_seeds(part, "arm", "novel_accuracy", order=ORDER, ax=ax, title=f"{dataset} ({features[dataset]})",
                    summary=mean_over_seeds(part, "novel_accuracy", ["arm"], dataset=dataset),
                    ylabel=f"novel-class accuracy ({shots} examples per class)",
                    chance=1 / len(unseen[dataset]) if dataset in unseen else None)
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
record_figure(fig, "novel_accuracy", "Accuracy of naming novel classes by the nearest mean of a few examples in each "
              "embedding; dashed: chance.")

# %% [markdown]
# ## Verdicts
# Paired over seeds, t-interval over seeds.

# %%
for dataset in datasets:
    wide = per_seed[per_seed["dataset"] == dataset].set_index(["seed", "arm"])
    for other in losses[1:]:
        for metric, name in (("novel_accuracy", "novel-class accuracy"), ("recall_at_1", "Recall@1")):
            gain = (wide.xs(CLAIMED, level="arm")[metric] - wide.xs(other, level="arm")[metric]).tolist()
            judge(f"{dataset}: {CLAIMED} beats {other} at an equal budget on {name}.", over_seeds(gain),
                  metric=f"{metric}_gain", dataset=dataset, comparison=f"{CLAIMED} − {other}")
    gain = (wide.xs(CLAIMED, level="arm")["novel_accuracy"] - wide.xs("frozen features", level="arm")["novel_accuracy"])
    judge(f"{dataset}: the {CLAIMED} embedding names novel classes better than the frozen features.",
          over_seeds(gain.tolist()), metric="novel_accuracy_gain", dataset=dataset, comparison=f"{CLAIMED} − frozen")
