# %% [markdown]
# # Prefix conditioning: one prefix token tells label prompts from captions
#
# **Paper.** Saito, Sohn, Zhang et al., *Prefix Conditioning Unifies Language and Label Supervision*, CVPR 2023,
# arXiv [2206.01125](https://arxiv.org/abs/2206.01125).
#
# **Claim.** Pretraining CLIP on image-caption data mixed naively with an image-classification dataset lets
# the classification dataset's bias into the text encoder and costs zero-shot generalisation; a prefix token
# that tells the text encoder which dataset a text comes from (caption or label), with the caption prefix at
# test time, "improves the performance in zero-shot image recognition accuracy" (abstract).
#
# **Method and mechanism.** Zero-shot prompts ("a photo of a {c}.") have the form of label prompts. Trained
# naively, the text encoder ties that form to the classification dataset's images, which are object-centric
# (here: rendered with no distractors and no clutter, `label_data.world`), unlike the cluttered test scenes.
# With prefixes the label form is learnt under its own prefix and zero-shot uses the caption mode. **Control:**
# the same mix with label images drawn like the captions' (no image bias), where the mechanism predicts a
# smaller prefix gain. Data mixing and prefixes in `zslab.train.label_data`.
#
# **Setting.** Offline only: `zsclip-micro` trained from scratch on zsworld's captions plus 10,000 labelled
# scenes of the seen compositions, every arm with the same steps and batch (the pairs seen do not change);
# zero-shot top-1 with the template ensemble on the compositions held out of training.

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-micro"  # zslab offline model whose entry every variant changes
dataset: str = "zsworld"  # the model's world
split: str = "unseen"  # compositions held out from training
seeds: list = [0, 1, 2]  # one trained model per variant and seed (3: the lab's cold-run budget)
variants: dict = {"captions only": {}, "captions + labels": {"label_data": {"n": 10000, "world": {"distractor_rate": 0.0, "clutter_rate": 0.0}}}, "prefixes, caption mode": {"label_data": {"n": 10000, "world": {"distractor_rate": 0.0, "clutter_rate": 0.0}, "prefixes": True}}, "prefixes, label mode": {"label_data": {"n": 10000, "world": {"distractor_rate": 0.0, "clutter_rate": 0.0}, "prefixes": True}}, "control: unbiased labels": {"label_data": {"n": 10000}}, "control: unbiased labels, prefixes, caption mode": {"label_data": {"n": 10000, "prefixes": True}}}  # label and entry overrides of the six arms, in this order: captions only; naive mix; prefix model in caption mode; the same model in label mode; the control mix (label images like the captions'), naive and with prefixes
prompt_modes: dict = {"prefixes, caption mode": "caption", "prefixes, label mode": "label", "control: unbiased labels, prefixes, caption mode": "caption"}  # which prefix word the zero-shot prompts of an arm start with
n_per_class: int = 100  # test images per class
template_set: str = "ensemble"  # prompts of the zero-shot head
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
from zslab.analysis import check_gain, mean_over_seeds
from zslab.errors import check_choice
from zslab.methods.pretraining import (budget_table, check_equal_budget, record_variant_scores,
                                       zero_shot_variants)
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record, record_figure

paper = get_paper("prefix_conditioning")
check_choice("mode", mode, ["offline"])
CAPTIONS, NAIVE, PREFIX_CAPTION, PREFIX_LABEL, CONTROL_NAIVE, CONTROL_PREFIX = variants
budgets = budget_table(model, variants)
pairs_seen = check_equal_budget(budgets)
record("pairs_seen_per_arm", pairs_seen)
print(f"{paper.title} (arXiv {paper.arxiv})\nevery arm sees {pairs_seen} image–text pairs")
budgets

# %% [markdown]
# ## Zero-shot top-1 per arm and seed (bootstrap intervals over the test images)

# %%
result = zero_shot_variants(model, variants, seeds, dataset, split, n_per_class, template_set, batch_size, device,
                            prompt_modes=prompt_modes)
per_seed, compute = record_variant_scores(result, n_bootstrap, dataset=dataset, split=split)
per_seed.pivot_table(index="seed", columns="variant", values="top1")[list(variants)].style.format("{:.1%}")

# %% [markdown]
# ## Across seeds (Student t over seeds) and the training cost per arm (seconds)

# %%
summary = mean_over_seeds(per_seed, "top1", ["variant"])
summary.set_index("variant").loc[list(variants), ["mean", "low", "high"]].style.format("{:.1%}")

# %%
compute.pivot_table(index="seed", columns="variant", values="train_seconds")[list(variants)]

# %% [markdown]
# ## Figure: zero-shot accuracy per arm

# %%
fig, axes = panels(1, width=9.0)
bars_with_seeds(per_seed, "variant", "top1", order=list(variants), summary=summary, ax=axes[0],
                chance=1 / len(result.classes), ylabel="zero-shot top-1",
                title=f"{model} variants, {pairs_seen} pairs each, on {dataset}/{split}")
axes[0].tick_params(axis="x", labelrotation=20)
record_figure(fig, "prefix_arms", "Zero-shot top-1 of each pretraining arm (equal pairs seen) on the held-out "
              "compositions; dots are seeds, bars the mean with its 95% interval. The label mode is the prefix "
              "model with label-prefixed prompts; the control arms mix in label images drawn like the captions'.")

# %% [markdown]
# ## Verdicts
# Paired by seed, judged on the 95% t-interval over seeds: reproduced when it lies above zero, not
# reproduced when below, inconclusive when it contains zero (the half-width says what is ruled out).

# %%
context = f"{model} variants on {dataset}/{split}"
check_gain("Prefix conditioning (caption mode at test time) beats the naive mix of captions and labels at zero-shot.",
           result.correct, PREFIX_CAPTION, NAIVE, n_resamples=n_bootstrap, context=context)
check_gain("Mode switch: the prefix model does better at zero-shot in caption mode than in label mode.",
           result.correct, PREFIX_CAPTION, PREFIX_LABEL, n_resamples=n_bootstrap, context=context)
check_gain("The naive mix costs zero-shot generalisation: captions alone beat captions + biased labels.",
           result.correct, CAPTIONS, NAIVE, n_resamples=n_bootstrap, context=context)
check_gain("Control (no image bias in the labels): prefixes beat the naive mix; the mechanism predicts a smaller gain.",
           result.correct, CONTROL_PREFIX, CONTROL_NAIVE, n_resamples=n_bootstrap, context=context)
