# %% [markdown]
# # The contrastive gap, alignment and uniformity, and the temperature's uniformity–tolerance trade
#
# **Papers.** Fahim, Murphy and Fyshe, *It's Not a Modality Gap: Characterizing and Addressing the
# Contrastive Gap*, arXiv [2405.18570](https://arxiv.org/abs/2405.18570); Wang and Isola, *Understanding
# Contrastive Representation Learning through Alignment and Uniformity on the Hypersphere*, ICML 2020, arXiv
# [2005.10242](https://arxiv.org/abs/2005.10242); Wang and Liu, *Understanding the Behaviour of Contrastive
# Loss*, CVPR 2021, arXiv [2012.09740](https://arxiv.org/abs/2012.09740).
#
# **Claims.** (1) The gap between image and text embeddings comes from the contrastive loss itself, through
# low uniformity; adding alignment and uniformity terms to the CLIP loss spreads the embeddings, closes the
# gap and improves zero-shot classification (2405.18570, abstract). (2) The temperature sets a
# uniformity–tolerance dilemma: a low temperature makes embeddings uniform but pushes apart samples of the
# same class (low tolerance), and a middling temperature serves downstream tasks best (2012.09740,
# abstract).
#
# **Mechanism and controls.** Claim 1's knob is the loss: InfoNCE against InfoNCE + alignment + uniformity
# of images and texts together (`zslab.train.losses.AlignUniformClipLoss`), both with a learned
# temperature. Claim 2's knob is a fixed temperature τ ∈ {1.0, 0.2, 0.07} (InfoNCE, temperature not
# learned), all else equal: the range of Wang and Liu's experiments (CLIP's learned τ starts at 0.07).
#
# **Setting.** Offline only: every arm is `zsclip-micro` trained from scratch on zsworld's captions with the
# same pairs seen and schedule, one model per arm and seed. Geometry on 1000 image–caption pairs of held-out
# compositions; tolerance on the test images' features (same-class pairs); zero-shot top-1 with the template
# ensemble on the held-out compositions.

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-micro"  # zslab offline model whose entry every variant changes
dataset: str = "zsworld"  # the model's world
split: str = "unseen"  # compositions held out from training
seeds: list = [0, 1, 2]  # one trained model per variant and seed (3: the lab's cold-run budget)
variants: dict = {"CLIP: InfoNCE, learned τ": {}, "InfoNCE + alignment + uniformity, learned τ": {"train": {"loss": "infonce+align+uniform"}}, "InfoNCE, τ 1.0": {"train": {"learn_logit_scale": False}, "model_cfg": {"init_logit_scale": 0.0}}, "InfoNCE, τ 0.2": {"train": {"learn_logit_scale": False}, "model_cfg": {"init_logit_scale": 1.609438}}, "InfoNCE, τ 0.07": {"train": {"learn_logit_scale": False}, "model_cfg": {"init_logit_scale": 2.65926}}}  # label and entry overrides of the arms, in this order: CLIP, CLIP with the two terms, then fixed temperatures from high to low
n_pairs: int = 1000  # image–caption pairs for the geometry
n_per_class: int = 100  # test images per class
template_set: str = "ensemble"  # prompts of the zero-shot head
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
from zslab.analysis import check_gain, mean_over_seeds
from zslab.methods.pretraining import (budget_table, check_equal_budget, geometry_table,
                                       record_variant_scores, scores_of, zero_shot_variants)
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, line_with_intervals, panels
from zslab.records import record, record_figure

paper = get_paper("contrastive_gap_uniformity")
CLIP, ALIGN_UNIFORM, *FIXED = variants
budgets = budget_table(model, variants)
pairs_seen = check_equal_budget(budgets)
record("pairs_seen_per_arm", pairs_seen)
print(f"{paper.title} (arXiv {paper.arxiv})\nevery arm sees {pairs_seen} image–text pairs")
budgets

# %% [markdown]
# ## Per arm and seed: zero-shot top-1 and the embedding geometry

# %%
result = zero_shot_variants(model, variants, seeds, dataset, split, n_per_class, template_set, batch_size, device,
                            keep_models=True)
per_seed, _ = record_variant_scores(result, n_bootstrap, dataset=dataset, split=split)
geometry = geometry_table(result, n_pairs, split, batch_size).merge(budgets[["variant",
                                                                             "initial_inverse_temperature"]])
QUANTITIES = ["gap", "alignment", "uniformity_joint", "uniformity_image", "tolerance", "top1"]
geometry.groupby("variant", sort=False)[QUANTITIES].mean().loc[list(variants)]

# %% [markdown]
# ## Across seeds (Student t over seeds)

# %%
long = geometry.melt(id_vars=["variant", "seed", "initial_inverse_temperature"], value_vars=QUANTITIES,
                     var_name="quantity")
summary = mean_over_seeds(long, "value", ["quantity", "variant"], metric="geometry_mean_over_seeds")
summary.pivot_table(index="variant", columns="quantity", values="mean").loc[list(variants), QUANTITIES]

# %% [markdown]
# ## Figure: the gap and uniformity with and without the two terms; uniformity, tolerance and accuracy
# against the fixed temperature

# %%
fig, axes = panels(3, width=5.0)
bars_with_seeds(long[long["variant"].isin([CLIP, ALIGN_UNIFORM])].rename(columns={"variant": "arm"}), "quantity",
                "value", order=["gap", "alignment", "uniformity_joint"], hue="arm", hue_order=[CLIP, ALIGN_UNIFORM],
                summary=summary[summary["variant"].isin([CLIP, ALIGN_UNIFORM])].rename(columns={"variant": "arm"}),
                ax=axes[0], ylabel="value (gap, alignment: lower is closer; uniformity: lower is more uniform)",
                title="claim 1: the gap with and without the terms", zero_line=True)
fixed = summary[summary["variant"].isin(FIXED)].merge(budgets[["variant", "initial_inverse_temperature"]])
line_with_intervals(fixed[fixed["quantity"].isin(["uniformity_image", "tolerance"])], "initial_inverse_temperature",
                    hue="quantity", ax=axes[1], ylabel="value", logx=True,
                    title="claim 2: uniformity (lower: more uniform) and tolerance vs 1/τ")
line_with_intervals(fixed[fixed["quantity"] == "top1"], "initial_inverse_temperature", ax=axes[2], logx=True,
                    ylabel="zero-shot top-1", title="claim 2: accuracy vs 1/τ (fixed)")
record_figure(fig, "geometry", "Left: centroid gap, alignment and joint uniformity of image–caption pairs for CLIP's "
              "loss with and without the alignment and uniformity terms (dots are seeds, bars means with 95% "
              "intervals). Middle and right: image uniformity, same-class tolerance and zero-shot top-1 against a "
              "fixed inverse temperature (mean and 95% interval over seeds).")

# %% [markdown]
# ## Verdicts
# Paired by seed (same initialisation and data order), judged on the 95% t-interval over seeds: reproduced when
# it lies above zero, not reproduced when below, inconclusive when it contains zero. Geometry quantities are
# compared as plain differences (no unit).

# %%
context = f"{model} variants on {dataset}/{split}"
GEOMETRY = dict(context=context, scale=1.0, unit="")
HIGH_T, MID_T, LOW_T = FIXED
check_gain("Adding alignment and uniformity terms closes the contrastive gap (smaller centroid distance).",
           scores_of(geometry, "gap", sign=-1.0), ALIGN_UNIFORM, CLIP, metric="gap_reduction", **GEOMETRY)
check_gain("... and makes the joint embedding more uniform (lower uniformity loss).",
           scores_of(geometry, "uniformity_joint", sign=-1.0), ALIGN_UNIFORM, CLIP, metric="uniformity_gain",
           **GEOMETRY)
check_gain("... and improves zero-shot classification.", result.correct, ALIGN_UNIFORM, CLIP,
           n_resamples=n_bootstrap, context=context)
check_gain("A lower temperature makes the image embeddings more uniform (τ 0.07 against τ 1.0).",
           scores_of(geometry, "uniformity_image", sign=-1.0), LOW_T, HIGH_T, metric="uniformity_gain", **GEOMETRY)
check_gain("... and less tolerant: same-class images lie further apart (τ 1.0 against τ 0.07).",
           scores_of(geometry, "tolerance"), HIGH_T, LOW_T, metric="tolerance_gain", **GEOMETRY)
check_gain("The middle temperature beats the high one at zero-shot classification.", result.correct, MID_T,
           HIGH_T, n_resamples=n_bootstrap, context=context)
check_gain("The middle temperature beats the low one at zero-shot classification.", result.correct, MID_T, LOW_T,
           n_resamples=n_bootstrap, context=context)
