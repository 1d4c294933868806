# %% [markdown]
# # Energy Confused Adversarial Metric Learning: confusing the metric on seen classes for unseen retrieval
#
# **Paper.** Chen and Deng, *Energy Confused Adversarial Metric Learning for Zero-Shot Image Retrieval and
# Clustering*, AAAI 2019, arXiv [1901.07169](https://arxiv.org/abs/1901.07169).
#
# **Claim.** A metric trained on seen classes overfits to the few features that separate them; an *energy
# confusion* term that pulls different seen classes together, trained against the metric loss, regularises it and
# improves retrieval (Recall@k) and clustering (NMI) of unseen classes, for several metric losses (the paper's
# tables on CUB, CARS, Stanford Online Products and In-Shop).
#
# **Method** (`zslab/methods/metric_learning.py`): a two-layer embedding head on frozen image features, trained on
# the seen classes with a triplet or a contrastive loss, with and without energy confusion on its hidden layer
# (weight `confusion`). Class-balanced batches, the same number of steps for every arm. Test: the unseen classes'
# test images only; Recall@k, NMI of k-means, and naming unseen classes by the nearest mean of 5 labelled images.
#
# **Mechanism and control.** Confusion only helps if the plain metric overfits the seen classes. **Control:**
# the same loss with confusion 0; the frozen features themselves are shown as the reference a trained metric has
# to beat.
#
# **Setting.** Animal-MNIST and Fashion-MNIST on EfficientNet-Lite0 features (7 seen, 3 unseen classes: LiT's
# held-out ones), zsworld on `zsclip-tiny` features (154 seen, 38 unseen compositions).

# %% parameters
mode: str = "offline"  # one of: offline
datasets: list = ["animal_mnist", "fashion_mnist", "zsworld"]  # datasets with a seen/unseen split
features: dict = {"animal_mnist": "efficientnet-lite0", "fashion_mnist": "efficientnet-lite0", "zsworld": "zsclip-tiny"}  # image features per dataset
unseen: dict = {"animal_mnist": ["cow", "giraffe", "zebra"], "fashion_mnist": ["trouser", "bag", "ankle boot"]}  # unseen classes of stored datasets
losses: list = ["triplet", "contrastive"]  # metric losses, each trained with and without confusion
confusion: float = 0.1  # weight of the energy-confusion term
seeds: list = [0, 1, 2]  # image draws and training; zsclip models: one per seed
steps: int = 600  # training steps of every arm (class-balanced batches)
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

paper = get_paper("ecaml_metric_learning")
check_choice("mode", mode, ["offline"])
arms = {**{loss: (loss, 0.0) for loss in losses}, **{f"{loss} + confusion": (loss, confusion) for loss in losses}}
ORDER = ["frozen features", *[a for loss in losses for a in (loss, f"{loss} + confusion")]]
print(f"{paper.title} (arXiv {paper.arxiv})\narms {list(arms)}, datasets {datasets}")

# %% [markdown]
# ## Unseen-class retrieval, clustering and naming per arm (mean over seeds)

# %%
per_seed = pd.DataFrame(metric_learning_rows(datasets, features, unseen, arms, seeds, n_train, n_test, steps=steps,
                                             device=device))
per_seed.groupby(["dataset", "arm"], sort=False)[["recall_at_1", "recall_at_4", "nmi", "novel_accuracy"]].mean() \
    .style.format("{:.3f}")

# %% [markdown]
# ## Figure: Recall@1 and NMI on unseen classes (bars: mean over seeds with 95% t-interval, dots: seeds)

# %%
fig, axes = panels(len(datasets), width=6.5)
fig2, axes2 = panels(len(datasets), width=6.5)
for i, dataset in enumerate(datasets):
    part = per_seed[per_seed["dataset"] == dataset]
    for ax, metric, label in ((axes[i], "recall_at_1", "Recall@1 on unseen classes"), (axes2[i], "nmi", "NMI on unseen classes")):
        bars_with_seeds(part, "arm", metric, order=ORDER, ax=ax, ylabel=label, title=f"{dataset} ({features[dataset]})",
                        summary=mean_over_seeds(part, metric, ["arm"], dataset=dataset))
        ax.tick_params(axis="x", labelrotation=25, labelsize=7)
record_figure(fig, "recall_at_1", "Recall@1 of unseen-class test images per arm.")
record_figure(fig2, "nmi", "NMI of k-means on unseen-class embeddings per arm.")

# %% [markdown]
# ## Verdicts
# Paired over seeds (same images and batches), t-interval over seeds.

# %%
for dataset in datasets:
    wide = per_seed[per_seed["dataset"] == dataset].set_index(["seed", "arm"])
    for loss in losses:
        for metric, name in (("recall_at_1", "Recall@1"), ("nmi", "NMI")):
            gain = (wide.xs(f"{loss} + confusion", level="arm")[metric] - wide.xs(loss, level="arm")[metric]).tolist()
            judge(f"{dataset}: energy confusion improves {loss} learning on unseen {name}.", over_seeds(gain),
                  metric=f"{metric}_gain", dataset=dataset, loss=loss, comparison="confusion − plain")
    best = wide.xs(f"{losses[0]} + confusion", level="arm")["recall_at_1"] - wide.xs("frozen features", level="arm")["recall_at_1"]
    judge(f"{dataset}: the confused {losses[0]} metric beats the frozen features it is trained on (Recall@1).",
          over_seeds(best.tolist()), metric="recall_at_1_gain", dataset=dataset, comparison="confused metric − frozen")
