# %% [markdown]
# # SigLIP: the sigmoid loss against softmax InfoNCE, at a small and a larger batch
#
# **Paper.** Zhai, Mustafa, Kolesnikov and Beyer, *Sigmoid Loss for Language Image Pre-Training* (SigLIP),
# ICCV 2023, arXiv [2303.15343](https://arxiv.org/abs/2303.15343).
#
# **Claim.** A pairwise sigmoid loss (every image–text pair is its own binary problem: matching or not)
# can replace CLIP's softmax InfoNCE, which normalises over the whole batch; it performs at least as well,
# and better at small batch sizes (abstract: "performing better at smaller batch sizes").
#
# **Mechanism.** InfoNCE scores each positive against the batch's negatives through a softmax, so a small
# batch gives few, easy negatives and a noisy normaliser. The sigmoid loss needs no normaliser: each
# negative pair is pushed below a learned bias on its own. **Control:** the same two losses at a larger
# batch, where InfoNCE's normaliser is better estimated; the sigmoid advantage should shrink there.
#
# **Setting.** Offline only: each arm is `zsclip-micro` trained from scratch on zsworld's captions with one
# loss at one batch size, every arm with the same number of image–text pairs seen (steps × batch size), the
# same learning rate and schedule; the sigmoid arms start from the paper's initialisation (1/τ = 10, bias
# −10). One model per arm and seed (the seed fixes initialisation and data order, so the arms of a seed are
# paired); zero-shot top-1 with the template ensemble on the compositions held out from training.
# Pretraining comparisons have no real mode here: the paper's own models are open_clip checkpoints one can
# score with `clip_prompt_engineering` in real mode.

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-micro"  # zslab offline model whose entry every variant changes
dataset: str = "zsworld"  # the model's world
split: str = "unseen"  # compositions held out from training
seeds: list = [0, 1, 2, 3]  # one trained model per variant and seed
variants: dict = {"InfoNCE, batch 128": {}, "sigmoid, batch 128": {"train": {"loss": "sigmoid"}, "model_cfg": {"init_logit_scale": 2.302585, "init_logit_bias": -10.0}}, "InfoNCE, batch 32": {"train": {"batch_size": 32, "steps": 800, "warmup_steps": 80}}, "sigmoid, batch 32": {"train": {"loss": "sigmoid", "batch_size": 32, "steps": 800, "warmup_steps": 80}, "model_cfg": {"init_logit_scale": 2.302585, "init_logit_bias": -10.0}}}  # label and entry overrides of each arm
n_per_class: int = 100  # test images per class
template_set: str = "ensemble"  # prompts of the zero-shot head
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import check_gain, check_mechanism, mean_over_seeds, paired_gains
from zslab.methods.pretraining import (budget_table, check_equal_budget, pairs_by, record_variant_scores,
                                       zero_shot_variants)
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record, record_figure

paper = get_paper("siglip_batch_size")
budgets = budget_table(model, variants)
pairs_seen = check_equal_budget(budgets)
record("pairs_seen_per_arm", pairs_seen)
PAIRS = pairs_by(budgets, "batch_size", "loss", "sigmoid", "infonce")
print(f"{paper.title} (arXiv {paper.arxiv})\nevery arm sees {pairs_seen} image–text pairs")
budgets

# %% [markdown]
# ## Zero-shot top-1 per arm and seed (bootstrap intervals over the test images)

# %%
result = zero_shot_variants(model, variants, seeds, dataset, split, n_per_class, template_set, batch_size, device)
per_seed, compute = record_variant_scores(result, n_bootstrap, dataset=dataset, split=split)
per_seed.pivot_table(index="seed", columns="variant", values="top1")[list(variants)].style.format("{:.1%}")

# %% [markdown]
# ## Across seeds (Student t over seeds), the paired gains of sigmoid over InfoNCE per batch size, and the cost

# %%
summary = mean_over_seeds(per_seed, "top1", ["variant"])
gains = pd.concat([paired_gains(result.correct, {"sigmoid − InfoNCE": pair}, arm=f"batch {b}")
                   for b, pair in PAIRS.items()], ignore_index=True)
gain_summary = mean_over_seeds(gains, "gain", ["arm"], metric="sigmoid_gain_mean_over_seeds")
summary.set_index("variant").loc[list(variants), ["mean", "low", "high"]].style.format("{:.1%}")

# %%
compute.pivot_table(index="seed", columns="variant", values="train_seconds")[list(variants)]

# %% [markdown]
# ## Figure: accuracy per arm, and the sigmoid − InfoNCE gain at each batch size

# %%
fig, axes = panels(2)
bars_with_seeds(per_seed, "variant", "top1", order=list(variants), summary=summary, ax=axes[0],
                chance=1 / len(result.classes), ylabel="zero-shot top-1",
                title=f"{model} variants, {pairs_seen} pairs each, on {dataset}/{split}")
axes[0].tick_params(axis="x", labelrotation=20)
bars_with_seeds(gains, "arm", "gain", order=[f"batch {b}" for b in PAIRS], summary=gain_summary, ax=axes[1],
                ylabel="sigmoid − InfoNCE (top-1)", title="paired gain per batch size (paper: larger when small)",
                zero_line=True)
record_figure(fig, "siglip_batch", "Left: zero-shot top-1 of each pretraining arm (equal pairs seen); dots are seeds, "
              "bars the mean with its 95% interval. Right: the paired gain of the sigmoid loss over InfoNCE at each "
              "batch size.")

# %% [markdown]
# ## Verdicts
# Each loss comparison is paired by seed (same initialisation and data order) and judged on its 95% t-interval
# over seeds: reproduced when it lies above zero, not reproduced when below, inconclusive when it contains
# zero. The mechanism verdict compares the sigmoid gain at the smallest batch with the gain at the largest.

# %%
context = f"{model} variants on {dataset}/{split}"
small, large = min(PAIRS), max(PAIRS)
check_gain(f"The sigmoid loss beats InfoNCE at the small batch ({small}).", result.correct, *PAIRS[small],
           n_resamples=n_bootstrap, context=context)
check_gain(f"The sigmoid loss beats InfoNCE at the larger batch ({large}).", result.correct, *PAIRS[large],
           n_resamples=n_bootstrap, context=context)
check_mechanism(f"The sigmoid advantage is larger at batch {small} than at batch {large}.", gains,
                "sigmoid − InfoNCE", f"batch {small}", f"batch {large}", paired=True)
