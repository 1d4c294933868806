# %% [markdown]
# # COSMO: a gate with adaptive confidence smoothing between a seen expert and a zero-shot expert
#
# **Paper.** Atzmon and Chechik, *Adaptive Confidence Smoothing for Generalized Zero-Shot Learning*, CVPR 2019,
# arXiv [1812.09903](https://arxiv.org/abs/1812.09903).
#
# **Claim.** Splitting GZSL into three modules, a gate deciding softly whether an image is of a seen class, a
# seen-class expert and a zero-shot expert, and combining them by total probability with *adaptive confidence
# smoothing* (each expert's distribution pulled towards uniform by the gate's belief that the image is outside
# its domain), beats single GZSL models on the harmonic mean H (the paper's main table on AWA, CUB, SUN, FLO).
#
# **Method** (`zslab/methods/cosmo.py`, after the authors' `src/GZSL_mixture.py` and `src/gating.py`): seen
# expert = logistic regression over the seen classes; zero-shot expert = an attribute model of
# `zslab/methods/gzsl.py` (ALE by default), softmax over the unseen classes with its temperature fitted on
# validation; gate = logistic regression on the two experts' top-5 sorted probabilities. The gate is trained,
# and θ, T_cond chosen, on a class-split validation of the seen classes (a fifth of them play unseen).
#
# **Mechanism and control.** The paper credits the smoothing: an expert that is confidently wrong outside its
# domain (the seen expert on an unseen image) is damped in proportion to the gate's doubt. **Control:** the same
# gate and experts combined by total probability without smoothing (the authors' `vanilla_total_prob`), and a
# hard gate. Single models: the zero-shot expert's model stacked naively and with calibrated stacking (γ from
# the same validation), and the seen expert alone.
#
# **Setting.** As `gzsl_in_the_wild`: Animal-MNIST and Fashion-MNIST on EfficientNet-Lite0 features with LiT's
# held-out classes unseen, and zsworld's 38 unseen compositions on `zsclip-tiny` features, attributes from
# `data/attributes/`.

# %% parameters
mode: str = "offline"  # one of: offline
datasets: list = ["animal_mnist", "fashion_mnist", "zsworld"]  # datasets with a class-attribute matrix
features: dict = {"animal_mnist": "efficientnet-lite0", "fashion_mnist": "efficientnet-lite0", "zsworld": "zsclip-tiny"}  # image features per dataset: efficientnet-lite0 or a model name
unseen: dict = {"animal_mnist": ["cow", "giraffe", "zebra"], "fashion_mnist": ["trouser", "bag", "ankle boot"]}  # unseen classes of stored datasets (zsworld's are its world's)
zsl_model: str = "ALE"  # the zero-shot expert (zslab.methods.gzsl.ZSL_MODELS)
seeds: list = [0, 1, 2]  # image draws, validation splits, model initialisation; zsclip models: one per seed
n_train: dict = {"animal_mnist": 200, "fashion_mnist": 200, "zsworld": 40}  # training images per seen class
n_test: dict = {"animal_mnist": 200, "fashion_mnist": 200, "zsworld": 40}  # test images per class
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import mean_over_seeds
from zslab.errors import check_choice
from zslab.methods.cosmo import cosmo_runs
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record_figure
from zslab.verdicts import judge, over_seeds

paper = get_paper("cosmo_gating")
check_choice("mode", mode, ["offline"])
COSMO, NO_SMOOTHING, HARD = "adaptive smoothing", "total probability", "adaptive smoothing (hard gate)"
CALIBRATED, NAIVE = f"{zsl_model}, calibrated stacking", f"{zsl_model}, naive stacking"
print(f"{paper.title} (arXiv {paper.arxiv})\nzero-shot expert {zsl_model} on {datasets}, seeds {seeds}")

# %% [markdown]
# ## S, U and H of every method, per dataset (mean over seeds), and how well the gate separates seen from unseen

# %%
per_seed = pd.DataFrame(cosmo_runs(datasets, features, unseen, zsl_model, seeds, n_train, n_test,
                                   [COSMO, NO_SMOOTHING], hard=(False, True), device=device))
order = [NAIVE, CALIBRATED, "seen expert alone", "total probability (hard gate)", NO_SMOOTHING, HARD, COSMO]
table = per_seed.groupby(["dataset", "method"], sort=False)[["seen", "unseen", "harmonic", "gate_auroc"]].mean()
table.style.format("{:.3f}")

# %% [markdown]
# ## Figure: H per method (cf. the paper's main table), bars = mean over seeds with 95% t-interval, dots = seeds

# %%
fig, axes = panels(len(datasets), width=6.5, sharey=True)
for ax, dataset in zip(axes, datasets):
    part = per_seed[per_seed["dataset"] == dataset]
    bars_with_seeds(part, "method", "harmonic", order=order, ax=ax,
                    summary=mean_over_seeds(part, "harmonic", ["method"], metric="gzsl_harmonic_mean_over_seeds",
                                            dataset=dataset),
                    ylabel="harmonic mean H of S and U", title=f"{dataset} ({features[dataset]})")
    ax.tick_params(axis="x", labelrotation=35, labelsize=7)
record_figure(fig, "cosmo_h", "H of single models (naive and calibrated stacking of the zero-shot model, the seen "
              "expert alone) and of the gated combinations: total probability with soft and hard gates, and COSMO's "
              "adaptive smoothing; mean over seeds with 95% t-interval, dots: seeds.")

# %% [markdown]
# ## Verdicts
# Paired over seeds (the same images, experts and gate), t-interval over seeds.

# %%
for dataset in datasets:
    wide = per_seed[per_seed["dataset"] == dataset].pivot_table(index="seed", columns="method", values="harmonic")
    context = f"{dataset}, zero-shot expert {zsl_model}"
    judge(f"{dataset}: COSMO beats the single model with calibrated stacking on H.",
          over_seeds((wide[COSMO] - wide[CALIBRATED]).tolist()), metric="h_gain", comparison="COSMO − calibrated",
          context=context, dataset=dataset)
    judge(f"{dataset}: COSMO beats the single model stacked naively on H.",
          over_seeds((wide[COSMO] - wide[NAIVE]).tolist()), metric="h_gain", comparison="COSMO − naive",
          context=context, dataset=dataset)
    judge(f"{dataset}: mechanism: adaptive smoothing beats the same soft gate without smoothing on H.",
          over_seeds((wide[COSMO] - wide[NO_SMOOTHING]).tolist()), metric="h_gain",
          comparison="smoothing − total probability", context=context, dataset=dataset)
    judge(f"{dataset}: a soft gate beats a hard one (adaptive smoothing, H).",
          over_seeds((wide[COSMO] - wide[HARD]).tolist()), metric="h_gain", comparison="soft − hard gate",
          context=context, dataset=dataset)
