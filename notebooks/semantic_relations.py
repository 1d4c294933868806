# %% [markdown]
# # Preserving semantic relations: an embedding that keeps the classes' semantic structure transfers better
#
# **Paper.** Annadani and Biswas, *Preserving Semantic Relations for Zero-Shot Learning*, CVPR 2018, arXiv
# [1803.03049](https://arxiv.org/abs/1803.03049). The same regulariser on generated features is LsrGAN's, arXiv
# [2007.09549](https://arxiv.org/abs/2007.09549).
#
# **Claim.** Mapping class side information into the visual space while keeping the classes' semantic relations
# (similar classes' prototypes similar, dissimilar ones apart) improves zero-shot and generalized zero-shot
# accuracy over the same mapping trained to separate the seen classes alone (the paper's tables on AwA, CUB, SUN
# and aPY).
#
# **Method** (`zslab/methods/semantic_relations.py`): a network maps each class's attributes to a prototype in the
# unit image-feature space; images are scored by cosine. **Relation-preserving**: cross-entropy over seen classes
# plus a loss making the prototypes' pairwise cosines match the attribute rows' cosines, over every pair of
# classes (unseen ones included: their side information is known); its weight from {0.3, 1, 3} on the class-split
# validation of `zslab/methods/gzsl.py`. **Control:** the same network and training with weight 0.
#
# **Mechanism.** Without the relation term nothing constrains where an unseen class's prototype lands; with it,
# the prototype sits among the seen prototypes as its attributes say. Shown beside the accuracies: how far the
# prototypes' similarities are from the targets (`relation gap`).
#
# **Setting.** As `gzsl_in_the_wild`: Animal-MNIST and Fashion-MNIST on EfficientNet-Lite0 features, zsworld on
# `zsclip-tiny` features, attributes from `data/attributes/`.

# %% parameters
mode: str = "offline"  # one of: offline
datasets: list = ["animal_mnist", "fashion_mnist", "zsworld"]  # datasets with a class-attribute matrix
features: dict = {"animal_mnist": "efficientnet-lite0", "fashion_mnist": "efficientnet-lite0", "zsworld": "zsclip-tiny"}  # image features per dataset
unseen: dict = {"animal_mnist": ["cow", "giraffe", "zebra"], "fashion_mnist": ["trouser", "bag", "ankle boot"]}  # unseen classes of stored datasets
models: list = ["visual-space prototypes", "relation-preserving"]  # control first, then the paper's model (zslab.methods.gzsl.ZSL_MODELS)
seeds: list = [0, 1, 2]  # image draws, validation splits, initialisation; zsclip models: one per seed
n_train: dict = {"animal_mnist": 200, "fashion_mnist": 200, "zsworld": 40}  # training images per seen class
n_test: dict = {"animal_mnist": 200, "fashion_mnist": 200, "zsworld": 40}  # test images per class
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import mean_over_seeds
from zslab.errors import check_choice
from zslab.methods.semantic_relations import relation_rows
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record_figure
from zslab.verdicts import judge, over_seeds

paper = get_paper("semantic_relations")
check_choice("mode", mode, ["offline"])
CONTROL, CLAIMED = models[0], models[-1]
print(f"{paper.title} (arXiv {paper.arxiv})\nmodels {models} on {datasets}, seeds {seeds}")

# %% [markdown]
# ## A_U→U, calibrated GZSL S/U/H and the relation gap per model (mean over seeds)

# %%
per_seed = pd.DataFrame(relation_rows(datasets, features, unseen, models, seeds, n_train, n_test, device=device))
per_seed.groupby(["dataset", "model"], sort=False)[["zsl_unseen", "seen", "unseen", "harmonic", "ausuc",
                                                   "relation_gap"]].mean().style.format("{:.3f}")

# %% [markdown]
# ## Figure: unseen-class accuracy and H per model (bars: mean over seeds with 95% t-interval; dots: seeds)

# %%
fig, axes = panels(len(datasets), width=5.0)
long = per_seed.melt(id_vars=["dataset", "model", "seed"], value_vars=["zsl_unseen", "harmonic"], var_name="measure")
for ax, dataset in zip(axes, datasets):
    part = long[long["dataset"] == dataset]
    bars_with_seeds(part, "measure", "value", order=["zsl_unseen", "harmonic"], hue="model", hue_order=models, ax=ax,
                    summary=mean_over_seeds(part, "value", ["measure", "model"], metric="relation_accuracy_mean_over_seeds",
                                            dataset=dataset),
                    ylabel="A_U→U and calibrated H", title=f"{dataset} ({features[dataset]})")
record_figure(fig, "relations", "Zero-shot accuracy among unseen classes (A_U→U) and calibrated GZSL H of the "
              "visual-space prototypes without and with the relation-preserving loss.")

# %% [markdown]
# ## Verdicts
# Paired over seeds (same images and validation split), t-interval over seeds.

# %%
for dataset in datasets:
    wide = per_seed[per_seed["dataset"] == dataset].set_index(["seed", "model"])
    for metric, name in (("zsl_unseen", "A_U→U"), ("harmonic", "calibrated H")):
        gain = (wide.xs(CLAIMED, level="model")[metric] - wide.xs(CONTROL, level="model")[metric]).tolist()
        judge(f"{dataset}: preserving semantic relations improves {name}.", over_seeds(gain), metric=f"{metric}_gain",
              dataset=dataset, comparison=f"{CLAIMED} − {CONTROL}")
    gap = (wide.xs(CONTROL, level="model")["relation_gap"] - wide.xs(CLAIMED, level="model")["relation_gap"]).tolist()
    judge(f"{dataset}: mechanism: the relation loss makes the prototypes keep the attributes' relations.",
          over_seeds(gap), metric="relation_gap_reduction", dataset=dataset, scale=1.0, unit="")
