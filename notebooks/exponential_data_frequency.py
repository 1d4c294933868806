# %% [markdown]
# # No "zero-shot" without exponential data: accuracy against the log of a concept's training frequency
#
# **Paper.** Udandarao, Prabhu, Ghosh, Sharma, Torr, Bibi, Albanie and Bethge, *No "Zero-Shot" Without
# Exponential Data: Pretraining Concept Frequency Determines Multimodal Model Performance*, NeurIPS 2024,
# arXiv [2404.04125](https://arxiv.org/abs/2404.04125).
#
# **Claim.** A concept's zero-shot performance grows linearly in the logarithm of how often the concept
# occurs in the pretraining data: exponentially more data buys a linear gain (the paper's log-linear trend).
#
# **Mechanism and control.** The paper observes the trend across concepts of web-scale corpora, where
# frequent concepts may also be the easy ones. zsworld lets us *set* the frequencies: `concept_zipf` draws
# the k-th value of each factor (color, pattern, shape) ∝ k^−s. The notebook trains the same model with a
# flat world (s = 0), the default tail (s = 1) and a steep tail (s = 2), and asks two questions: (1) within
# an arm, does recall rise with log frequency (the paper's observation)? (2) across arms, does *changing* a
# concept's frequency change its recall by the same law? Each concept is its own control in (2), so concept
# difficulty cannot explain it.
#
# **Setting.** Offline only: `zsclip-micro` trained from scratch per arm and seed (equal budgets), all 192
# compositions evaluated (the unseen ones never appear in training, their concepts do). A concept's recall:
# the share of images whose concept (of its factor) is the best match among that factor's concepts;
# frequency: the number of the model's training captions naming it (synonyms counted).

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-micro"  # zslab offline model whose entry every variant changes
seeds: list = [0, 1, 2, 3]  # one trained model per arm and seed
variants: dict = {"flat (s 0)": {"world": {"concept_zipf": 0.0}}, "default tail (s 1)": {}, "steep tail (s 2)": {"world": {"concept_zipf": 2.0}}}  # label and entry overrides of the arms, in this order: flat, default, steep
n_per_class: int = 10  # images per composition (192 compositions)
template: str = "a photo of a {c}."  # the prompt of every composition
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import numpy as np
import pandas as pd

from zslab.analysis import mean_over_seeds
from zslab.evaluation import encode_eval_set
from zslab.methods.concept_frequency import concept_recall_rows, paired_frequency_slope, within_group_slope
from zslab.methods.pretraining import budget_table, check_equal_budget
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels, scatter_groups
from zslab.records import record, record_figure
from zslab.verdicts import judge, over_seeds
from zslab.world import load_world_spec

paper = get_paper("exponential_data_frequency")
spec = load_world_spec()
FLAT, DEFAULT, STEEP = variants
pairs_seen = check_equal_budget(budget_table(model, variants))
print(f"{paper.title} (arXiv {paper.arxiv})\nevery arm sees {pairs_seen} image–text pairs")

# %% [markdown]
# ## Per arm, seed and concept: training-caption count and recall

# %%
rows = []
for seed in seeds:
    for arm, overrides in variants.items():
        run = encode_eval_set(model, "", "zsworld", "all", seed, n_per_class, overrides=overrides,
                              batch_size=batch_size, device=device)
        rows += [{"arm": arm, "seed": seed, **r} for r in concept_recall_rows(run, spec, template)]
per_concept = pd.DataFrame(rows)
per_concept["log10_captions"] = np.log10(per_concept["n_captions"].clip(lower=1))
per_concept[per_concept["seed"] == seeds[0]].pivot_table(index=["factor", "concept"], columns="arm",
                                                        values="n_captions")[list(variants)]

# %% [markdown]
# ## Slopes: recall per tenfold frequency within each arm, and across arms per concept

# %%
slopes = []
for seed, part in per_concept.groupby("seed"):
    for arm in (DEFAULT, STEEP):                     # the flat world's counts barely differ: no slope to fit
        here = part[part["arm"] == arm]
        slopes.append({"arm": arm, "seed": seed, "comparison": "within arm",
                       "slope": within_group_slope(here["log10_captions"], here["recall"], here["factor"])})
        slopes.append({"arm": f"{arm} − flat", "seed": seed, "comparison": "change across arms",
                       "slope": paired_frequency_slope(part, arm, FLAT)})
slopes = pd.DataFrame(slopes)
for row in slopes.itertuples():
    record("recall_per_decade", row.slope, seed=row.seed, arm=row.arm)
slope_summary = mean_over_seeds(slopes, "slope", ["arm"], metric="recall_per_decade_mean_over_seeds")
slope_summary

# %% [markdown]
# ## Figure (cf. the paper's log-linear plots): recall against log frequency, and the slopes

# %%
means = per_concept.groupby(["arm", "factor", "concept"], as_index=False)[["recall", "log10_captions"]].mean()
fig, axes = panels(2)
scatter_groups(means[means["arm"] != FLAT], "log10_captions", "recall", hue="arm", ax=axes[0],
               xlabel="log10 training captions naming the concept", ylabel="concept recall (mean over seeds)",
               title=f"{model}: concepts of the default and steep tails")
bars_with_seeds(slopes, "arm", "slope", order=list(slope_summary["arm"]), summary=slope_summary, ax=axes[1],
                ylabel="recall per tenfold captions", zero_line=True, title="within an arm; change across arms")
axes[1].tick_params(axis="x", labelrotation=20)
record_figure(fig, "log_linear", "Left: each concept's recall against the log of its training-caption count, mean over "
              "seeds, per arm. Right: within-factor slopes per seed (dots) with the mean and 95% interval; "
              "'− flat' slopes relate a concept's change in recall to its change in frequency between arms.")

# %% [markdown]
# ## Verdicts
# Slopes are judged on their 95% t-interval over seeds: reproduced when it lies above zero.

# %%
by = {arm: g["slope"].tolist() for arm, g in slopes.groupby("arm")}
judge("Recall grows linearly in log frequency across the concepts of a long-tailed world (steep tail).",
      over_seeds(by[STEEP]), metric="recall_per_decade", arm=STEEP)
judge("... and of the default tail.", over_seeds(by[DEFAULT]), metric="recall_per_decade", arm=DEFAULT)
judge("Mechanism: making a concept more frequent raises its recall by the same law (change in recall per "
      "tenfold change in frequency, steep tail against the flat world, each concept its own control).",
      over_seeds(by[f"{STEEP} − flat"]), metric="recall_per_decade", arm=f"{STEEP} − flat")
