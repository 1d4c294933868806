# %% [markdown]
# # Model soups: averaging the weights of fine-tunes of one pretrained CLIP
#
# **Paper.** Wortsman, Ilharco, Gadre et al., *Model soups: averaging weights of multiple fine-tuned models
# improves accuracy without increasing inference time*, ICML 2022, arXiv
# [2203.05482](https://arxiv.org/abs/2203.05482).
#
# **Claim.** Fine-tune one pretrained model several times with different hyperparameters and average the
# weights: the *greedy soup* (add fine-tunes in order of held-out accuracy, keeping each only if the soup's
# held-out accuracy improves) beats the best single fine-tune chosen on the same held-out data, in
# distribution and under distribution shift, at the inference cost of one model. The *uniform soup* (all
# fine-tunes) mainly helps under shift.
#
# **Method and mechanism.** Fine-tunes that start from the same pretrained weights (here: the zero-shot head,
# as the authors' `finetune.py`) stay in one low-error basin, so their average is a good model; an average of
# models from *different* starts is not. **Control:** the soup of the best fine-tunes of two independently
# pretrained models (a different seed), which the mechanism says collapses. The output ensemble (K forward
# passes) is shown as the costly reference the paper compares with.
#
# **Setting.** Offline: `zsclip-tiny` (one pretrained run per seed) fine-tuned end to end on the seen
# compositions of its world (the paper's ImageNet), with the learning rate, label smoothing, augmentation and
# data order varied (`zslab.train.finetune`); scored on held-out images of the same classes (`val`, the
# selection set), a test set (`seen`), shifted renders of the same classes (`shifted`: stronger pixel noise,
# colour jitter and clutter, the paper's distribution shifts) and, zero-shot through the unchanged text tower,
# the compositions held out of pretraining (`held-out`). Soups and selection in `zslab.methods.soups`.

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-tiny"  # zslab offline CLIP whose pretrained runs are fine-tuned
seeds: list = [0, 1, 2]  # pretrained runs (one per seed); every fine-tune's data order is offset by it
finetunes: dict = {"lr 1e-3": {"lr": 0.001, "seed": 0}, "lr 3e-3": {"lr": 0.003, "seed": 1}, "lr 1e-3, label smoothing 0.1": {"lr": 0.001, "label_smoothing": 0.1, "seed": 2}, "lr 1e-3, flip + shift": {"lr": 0.001, "augment": "flip-shift", "seed": 3}}  # the soup's ingredients: label and FinetuneConfig fields (steps, batch_size, lr, label_smoothing, augment, seed)
steps: int = 100  # fine-tuning steps of every ingredient (batch 64; 100 for the lab's 60-min cold run)
n_train: int = 60  # training images per seen class
n_val: int = 8  # held-out selection images per seen class (the paper's held-out 2% of ImageNet train)
n_test: int = 8  # test images per class of each evaluation set
shift: dict = {"noise": 40.0, "color_jitter": 40.0, "clutter_rate": 1.0}  # world knobs of the shifted renders (the world's defaults: noise 8, colour jitter 12, clutter 0.5)
template_set: str = "ensemble"  # prompts of the zero-shot heads (the fine-tune's initial head and the held-out head)

# %%
from zslab.analysis import check_gain, mean_over_seeds
from zslab.errors import check_choice
from zslab.methods.soups import BEST, CROSS, ENSEMBLE, GREEDY, SETS, UNIFORM, ZERO_SHOT, soup_experiment
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels, scatter_groups
from zslab.records import record, record_figure

paper = get_paper("model_soups")
check_choice("mode", mode, ["offline"])
ingredients = {name: {**fields, "steps": steps, "warmup_steps": max(1, steps // 10)} for name, fields in finetunes.items()}
print(f"{paper.title} (arXiv {paper.arxiv})\n{len(ingredients)} fine-tunes of {model} per seed, seeds {seeds}")

# %% [markdown]
# ## Fine-tune, average, score (top-1 per arm, set and seed)

# %%
result = soup_experiment(model, seeds, ingredients, n_train, n_val, n_test, shift, template_set)
record("ingredients_per_soup", len(ingredients))
per_seed = result.table
per_seed.pivot_table(index="arm", columns=["set", "seed"], values="top1").loc[result.arms, list(SETS)].style.format("{:.1%}")

# %% [markdown]
# ## Across seeds (Student t over the pretrained runs)

# %%
summary = mean_over_seeds(per_seed, "top1", ["arm", "set"])
summary.pivot_table(index="arm", columns="set", values="mean").loc[result.arms, list(SETS)].style.format("{:.1%}")

# %% [markdown]
# ## Each ingredient's cost and validation score, and how the greedy soup grew

# %%
result.compute.style.format({"train_seconds": "{:.1f}", "final_loss": "{:.3f}", "val top1": "{:.1%}"})

# %%
result.greedy.style.format({"soup val top1": "{:.1%}"})

# %% [markdown]
# ## Figure: in-distribution against shifted accuracy (the paper's Figure 1), and every arm on every set

# %%
fig, axes = panels(2, width=6.5)
scatter_groups(result.points().query("kind != 'control'"), "seen", "shifted", hue="kind", ax=axes[0],
               xlabel="seen classes: test top-1", ylabel="shifted renders: top-1",
               title=f"{model}: each arm, mean over {len(seeds)} pretrained seeds")
gains = result.gains(BEST).query("set != 'val' and arm != @CROSS")
gain_summary = mean_over_seeds(gains, "gain", ["arm", "set"], metric="gain_over_best_single")
bars_with_seeds(gains, "arm", "gain", order=[a for a in result.arms if a not in (BEST, CROSS)], summary=gain_summary,
                ax=axes[1], hue="set", hue_order=["seen", "shifted", "held-out"], zero_line=True,
                ylabel="top-1 minus the best single fine-tune", title="paired by pretrained seed")
axes[1].tick_params(axis="x", labelrotation=60)
record_figure(fig, "model_soups", "Left: top-1 on the seen classes against the shifted renders (the paper's Figure 1) "
              "for the zero-shot start, each fine-tune, the soups and the ensemble, averaged over pretrained seeds. "
              "Right: each arm minus the best single fine-tune (chosen on val) on the same images, per set (bars: "
              "mean with its 95% interval over seeds; dots: seeds); held-out is zero-shot on the compositions "
              "unseen in pretraining. The control (soup of two pretrained runs) is in the tables and verdicts.")

# %% [markdown]
# ## Verdicts
# Paired by pretrained seed, judged on the 95% t-interval over seeds: reproduced when it lies above zero, not
# reproduced when below, inconclusive when it contains zero (the half-width says what is ruled out).

# %%
context = f"{model}, {len(ingredients)} fine-tunes per seed"
check_gain("Precondition: fine-tuning helps the task (the best single fine-tune beats the zero-shot start).",
           result.correct["seen"], BEST, ZERO_SHOT, context=context, set="seen")
check_gain("The greedy soup beats the best single fine-tune (chosen on held-out data) in distribution.",
           result.correct["seen"], GREEDY, BEST, context=context, set="seen")
check_gain("The greedy soup beats the best single fine-tune under distribution shift.",
           result.correct["shifted"], GREEDY, BEST, context=context, set="shifted")
check_gain("The uniform soup beats the best single fine-tune under distribution shift.",
           result.correct["shifted"], UNIFORM, BEST, context=context, set="shifted")
check_gain("The greedy soup beats the uniform soup in distribution.",
           result.correct["seen"], GREEDY, UNIFORM, context=context, set="seen")
if CROSS in result.arms:
    check_gain("Mechanism: a shared start is what makes averaging work; the best single fine-tune beats the soup "
               "of two differently pretrained runs' fine-tunes.",
               result.correct["seen"], BEST, CROSS, context=context, set="seen")
check_gain("Reference: the output ensemble (K forward passes) beats the best single fine-tune in distribution.",
           result.correct["seen"], ENSEMBLE, BEST, context=context, set="seen")
