# %% [markdown]
# # Transductive zero-shot and few-shot learning: the unlabelled test set as a source of structure
#
# **Papers.** Fu, Hospedales, Xiang and Gong, *Transductive Multi-view Zero-Shot Learning*, TPAMI 2015, arXiv
# [1501.04560](https://arxiv.org/abs/1501.04560); Ziko, Boudiaf, Dolz, Granger and Ben Ayed, *Transductive Few-Shot
# Learning: Clustering is All You Need?*, arXiv [2106.09516](https://arxiv.org/abs/2106.09516).
#
# **Claims.** (1501.04560) Propagating the labels an inductive zero-shot model gives the unlabelled unseen-class
# images over a graph of those images, built from several views, beats inductive prediction (the paper's
# headline table on AwA, CUB and USAA). (2106.09516) Given K labelled support shots per novel class, clustering
# the unlabelled queries, even plain K-means seeded by the supports, beats inductive nearest-prototype
# classification, and a Laplacian (neighbour-agreement) term adds to it (their tables: SLK-Means and K-means
# against SimpleShot and other transductive methods on mini-/tiered-ImageNet and CUB).
#
# **Method** (`zslab/methods/transductive.py`). Zero-shot: an attribute model of `zslab/methods/gzsl.py` (ESZSL
# by default) predicts the unseen-class test images; its predictions spread by label spreading over the sum of kNN
# graphs of two views, the image features and the model's class scores (a simplified stand-in for the paper's
# CCA embedding and heterogeneous hypergraph). Few-shot: nearest support mean (SimpleShot), K-means seeded by
# the supports, and Laplacian K-means (SLK's bound update with a kNN affinity over the queries).
#
# **Mechanism and control.** Both rely on the test images forming clusters by class. **Control:** the same
# propagation and the same Laplacian term on a *shuffled* graph (each image's neighbours drawn at random): same
# amount of smoothing, no cluster structure.
#
# **Setting.** Zero-shot: as `gzsl_in_the_wild` (Animal-MNIST and Fashion-MNIST on EfficientNet-Lite0 features,
# zsworld on `zsclip-tiny`), choosing among the unseen classes. Few-shot: zsworld's 38 unseen compositions on
# `zsclip-tiny` (the few-shot protocol of `zslab/fewshot.py`, all queries at once), and the 3 held-out classes of
# each MNIST-style set on the frozen EfficientNet features of LiT's locked-image models.

# %% parameters
mode: str = "offline"  # one of: offline
datasets: list = ["animal_mnist", "fashion_mnist", "zsworld"]  # datasets with a class-attribute matrix
features: dict = {"animal_mnist": "efficientnet-lite0", "fashion_mnist": "efficientnet-lite0", "zsworld": "zsclip-tiny"}  # zero-shot part: image features per dataset
unseen: dict = {"animal_mnist": ["cow", "giraffe", "zebra"], "fashion_mnist": ["trouser", "bag", "ankle boot"]}  # unseen (novel) classes of stored datasets
zsl_model: str = "ESZSL"  # the inductive zero-shot model (zslab.methods.gzsl.ZSL_MODELS)
few_shot_models: dict = {"animal_mnist": "lit-animal-mnist-locked-image", "fashion_mnist": "lit-fashion-mnist-locked-image", "zsworld": "zsclip-tiny"}  # few-shot part: image encoder per dataset
seeds: list = [0, 1, 2]  # draws, validation splits, graphs; zsclip models: one per seed
shots: list = [1, 5]  # labelled support shots per novel class
n_train: dict = {"animal_mnist": 200, "fashion_mnist": 200, "zsworld": 40}  # zero-shot part: training images per seen class
n_test: dict = {"animal_mnist": 200, "fashion_mnist": 200, "zsworld": 40}  # test images per class (both parts)
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import mean_over_seeds
from zslab.errors import check_choice
from zslab.methods.transductive import (CLUSTERING_ARMS, PROPAGATION_ARMS, transductive_fewshot_rows,
                                        transductive_zsl_rows)
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record_figure
from zslab.verdicts import judge, over_seeds

paper = get_paper("transductive_zsl")
check_choice("mode", mode, ["offline"])
print(f"{paper.title} (arXiv {paper.arxiv})")

# %% [markdown]
# ## Zero-shot: unseen-class accuracy (among unseen classes), inductive and after propagation

# %%
zsl = pd.DataFrame(transductive_zsl_rows(datasets, features, unseen, zsl_model, seeds, n_train, n_test, device=device))
zsl.pivot_table(index="dataset", columns="arm", values="zsl_unseen")[list(PROPAGATION_ARMS)].style.format("{:.1%}")

# %% [markdown]
# ## Few-shot: top-1 of the queries of the novel classes, inductive and clustered

# %%
few = pd.DataFrame(transductive_fewshot_rows(few_shot_models, {"zsworld": "zsworld"}, datasets, unseen, seeds,
                                             shots, max(n_test.values()) if isinstance(n_test, dict) else n_test,
                                             device=device))
few.pivot_table(index=["dataset", "shots"], columns="arm", values="top1")[list(CLUSTERING_ARMS)].style.format("{:.1%}")

# %% [markdown]
# ## Figure: both parts, per dataset (bars: mean over seeds with 95% t-interval, dots: seeds)

# %%
fig, axes = panels(len(datasets), width=6.0, sharey=True)
fig2, axes2 = panels(len(datasets), width=6.0, sharey=True)
for i, dataset in enumerate(datasets):
    part = zsl[zsl["dataset"] == dataset]
    bars_with_seeds(part, "arm", "zsl_unseen", order=list(PROPAGATION_ARMS), ax=axes[i],
                    summary=mean_over_seeds(part, "zsl_unseen", ["arm"], dataset=dataset),
                    ylabel="accuracy among unseen classes", title=f"{dataset}: {zsl_model}, zero-shot")
    axes[i].tick_params(axis="x", labelrotation=25, labelsize=7)
    part = few[few["dataset"] == dataset]
    bars_with_seeds(part, "arm", "top1", order=list(CLUSTERING_ARMS), hue="shots", ax=axes2[i],
                    summary=mean_over_seeds(part, "top1", ["arm", "shots"], dataset=dataset),
                    ylabel="top-1 of the queries", title=f"{dataset}: {few_shot_models[dataset]}, few-shot")
    axes2[i].tick_params(axis="x", labelrotation=25, labelsize=7)
record_figure(fig, "transductive_zero_shot", "Unseen-class accuracy of the inductive zero-shot model and after "
              "label propagation over the test images (one view, two views, and a shuffled graph as control).")
record_figure(fig2, "transductive_few_shot", "Top-1 of the novel classes' queries: nearest support mean, K-means "
              "seeded by the supports, Laplacian K-means and its shuffled-graph control, per shot count.")

# %% [markdown]
# ## Verdicts
# Paired over seeds (t-interval over seeds).

# %%
for dataset in datasets:
    wide = zsl[zsl["dataset"] == dataset].pivot_table(index="seed", columns="arm", values="zsl_unseen")
    two_views = "propagation, image + semantic views"
    judge(f"{dataset}: multi-view label propagation beats inductive zero-shot prediction (1501.04560).",
          over_seeds((wide[two_views] - wide["inductive"]).tolist()), metric="gain", dataset=dataset,
          comparison="propagation − inductive")
    judge(f"{dataset}: mechanism: propagation over the images' own graph beats a shuffled graph.",
          over_seeds((wide[two_views] - wide["propagation, shuffled graph"]).tolist()), metric="gain",
          dataset=dataset, comparison="graph − shuffled graph")
    for k in shots:
        wide = few[(few["dataset"] == dataset) & (few["shots"] == k)].pivot_table(index="seed", columns="arm",
                                                                                  values="top1")
        judge(f"{dataset}, {k} shot(s): K-means seeded by the supports beats the nearest support mean (2106.09516).",
              over_seeds((wide["K-means"] - wide["nearest mean (inductive)"]).tolist()), metric="gain",
              dataset=dataset, shots=k, comparison="K-means − nearest mean")
        judge(f"{dataset}, {k} shot(s): the Laplacian term adds to K-means.",
              over_seeds((wide["Laplacian K-means"] - wide["K-means"]).tolist()), metric="gain",
              dataset=dataset, shots=k, comparison="Laplacian K-means − K-means")
        judge(f"{dataset}, {k} shot(s): mechanism: the Laplacian term needs the queries' own neighbours.",
              over_seeds((wide["Laplacian K-means"] - wide["Laplacian K-means, shuffled graph"]).tolist()),
              metric="gain", dataset=dataset, shots=k, comparison="graph − shuffled graph")
