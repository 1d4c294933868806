# %% [markdown]
# # Tight lower bounds on the worst-case error of zero-shot learning with attributes
#
# **Paper.** Mazzetto, Menghini, Yuan, Upfal and Bach, *Tight Lower Bounds on Worst-Case Guarantees for Zero-Shot
# Learning with Attributes*, NeurIPS 2022, arXiv [2205.13068](https://arxiv.org/abs/2205.13068).
#
# **Claim.** The class-attribute matrix alone determines a lower bound on the worst-case error of *any*
# attribute-to-class map, even with perfect attribute detectors; the bound is tight (some distribution consistent
# with the matrix attains it), and it tells how much of a ZSL model's error no better detector could remove.
#
# **Method** (`zslab/methods/attribute_bounds.py`, after the authors' `solve_adversarial_perfect_detectors`): the
# linear program over joint distributions of (class, binary attribute vector) with uniform classes and each
# class's attribute shares fixed by the matrix; the optimum is the best map's accuracy under the worst such
# distribution, and 1 − it is the bound. It splits into groups of classes with equal 0/1 signatures; a 0/1
# matrix's bound is the share of classes lost to identical rows.
#
# **Mechanism and control.** The bound comes from classes the attributes cannot separate. **Knob:** coarsening
# zsworld's graded attributes (every attribute binarised, then colour dropped, then all but shape dropped) makes
# rows collide; **control:** the graded matrix, whose 192 rows are all distinct (bound 0). The ZSL models of
# `zslab/methods/gzsl.py` are trained on each coarsening and their unseen-class error set beside the bound.
#
# **Setting.** The committed matrices of Animal-MNIST and Fashion-MNIST (fractional values read as shares of a
# class's members, as the paper reads AwA2's) and of zsworld; models on zsworld's 38 unseen compositions with
# `zsclip-tiny` image features, as in `gzsl_in_the_wild`.

# %% parameters
mode: str = "offline"  # one of: offline
matrices: dict = {"animal_mnist": ["cow", "giraffe", "zebra"], "fashion_mnist": ["trouser", "bag", "ankle boot"]}  # datasets whose matrices are bounded, with their unseen classes
coarsenings: list = ["graded", "binarised", "binarised, no colour", "binarised, shape only"]  # zslab.methods.attribute_bounds.COARSENINGS
features: str = "zsclip-tiny"  # zsworld image features for the models
models: list = ["DAP", "ESZSL", "ALE"]  # zslab.methods.gzsl.ZSL_MODELS
seeds: list = [0, 1, 2]  # image draws and validation splits; zsclip models: one per seed
n_train: int = 40  # training images per seen class
n_test: int = 40  # test images per class
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import mean_over_seeds
from zslab.datasets import build_dataset
from zslab.errors import check_choice
from zslab.methods.attribute_bounds import bound_rows, coarsened_model_rows
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, level_marks, panels
from zslab.records import record, record_figure
from zslab.verdicts import judge, over_seeds

paper = get_paper("attribute_lower_bounds")
check_choice("mode", mode, ["offline"])
world = build_dataset("zsworld", split="all", n_per_class=1)
zsworld_unseen = [world.classes[i] for i in world.unseen_classes]
print(f"{paper.title} (arXiv {paper.arxiv})")

# %% [markdown]
# ## The bound of every matrix: all classes, and the unseen classes alone

# %%
bounds = pd.DataFrame([row for dataset, unseen in matrices.items() for row in bound_rows(dataset, unseen)]
                      + bound_rows("zsworld", zsworld_unseen, coarsenings, values_are_shares=False))
for row in bounds.to_dict("records"):
    for kind in ("lp_bound", "collision_bound"):
        if row[kind] == row[kind]:  # the linear program is not defined for graded descriptors (NaN)
            record(kind, row[kind], dataset=row["dataset"], coarsening=row["coarsening"], classes=row["classes"])
bounds.style.format({"lp_bound": "{:.3f}", "collision_bound": "{:.3f}"})

# %% [markdown]
# ## ZSL models trained on each coarsening of zsworld's matrix: unseen-class error beside the bound

# %%
per_seed = pd.DataFrame(coarsened_model_rows("zsworld", features, models, seeds, n_train, n_test, coarsenings,
                                             device=device))
for row in per_seed.to_dict("records"):
    record("unseen_error", row["unseen_error"], seed=row["seed"], coarsening=row["coarsening"], model=row["model"])
per_seed.groupby(["coarsening", "model"], sort=False)[["unseen_error", "bound", "slack"]].mean().style.format("{:.3f}")

# %% [markdown]
# ## Figure: unseen-class error per coarsening and model (bars, mean over seeds with 95% t-interval) and the bound

# %%
fig, axes = panels(1, width=8.0)
bars_with_seeds(per_seed, "coarsening", "unseen_error", order=coarsenings, hue="model", hue_order=models,
                summary=mean_over_seeds(per_seed, "unseen_error", ["coarsening", "model"]), ax=axes[0],
                ylabel="error on unseen compositions (among them)", title=f"zsworld, {features} features")
bound_by = per_seed.groupby("coarsening", sort=False)["bound"].first().reindex(coarsenings)
level_marks(axes[0], bound_by.tolist(), "lower bound of the unseen classes' rows")
record_figure(fig, "error_and_bound", "Each model's error on zsworld's unseen compositions when trained on a "
              "coarsened attribute matrix, and the matrix's lower bound for those classes (black bars).")

# %% [markdown]
# ## Verdicts
# Over seeds (t-interval). No model can beat the collision bound here: classes with identical rows get
# identical scores, so the lowest error minus the bound (the slack) is recorded, not judged. Judged is the
# mechanism: as coarsening makes rows collide, the bound rises and the models' error with it.

# %%
best = per_seed.groupby(["seed", "coarsening"])["slack"].min().unstack()
for name in coarsenings:
    slack = over_seeds(best[name].tolist())
    record("lowest_slack", slack.mean, interval=slack.interval, coarsening=name)
    print(f"{name}: bound {bound_by[name]:.3f}; the best model's error exceeds it by {slack.describe()}")
error = per_seed.groupby(["seed", "coarsening"])["unseen_error"].mean().unstack()
finest, coarsest = coarsenings[0], coarsenings[-1]
judge(f"Mechanism: colliding rows raise the models' error ({coarsest} − {finest}, mean over models).",
      over_seeds((error[coarsest] - error[finest]).tolist()), metric="error_rise",
      context=f"the bound rises by {bound_by[coarsest] - bound_by[finest]:.3f}")
