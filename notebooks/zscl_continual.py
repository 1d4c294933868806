# %% [markdown]
# # ZSCL and momentum interpolation: keeping zero-shot transfer through continual fine-tuning
#
# **Papers.** Zheng, Ma, Wang et al., *Preventing Zero-Shot Transfer Degradation in Continual Learning of
# Vision-Language Models* (ZSCL), ICCV 2023, arXiv [2303.06628](https://arxiv.org/abs/2303.06628);
# Stojanovski, Roth, Akata, *Momentum-based Weight Interpolation of Strong Zero-Shot Models for Continual
# Learning*, arXiv [2211.03186](https://arxiv.org/abs/2211.03186).
#
# **Claims.** Fine-tuning CLIP on one task after another erodes its zero-shot transfer (ZSCL, abstract).
# ZSCL keeps it with two parts: distillation toward the initial model on unlabelled reference data (feature
# space) and a running average of the weights during training (parameter space, "weight ensemble"). A slow
# momentum copy of the weights does the same for the momentum paper ("simple momentum-based weight
# interpolation can provide consistent improvements").
#
# **Method and mechanism.** Tasks from other domains than pretraining (ZSCL's multi-domain sequence, MTIL):
# here Fashion-MNIST, then Animal-MNIST, learned by the image tower of the offline CLIP (`zsclip-micro`) against the fixed text
# embeddings of each task's class prompts (ZSCL's image-tower mode). Transfer is zero-shot top-1 on the
# compositions held out of pretraining, after each task. **Ablation:** each ZSCL part alone. **Control:**
# plain sequential fine-tuning with the same steps, learning rate and data order. Loop and methods in
# `zslab.methods.continual` (fine-tuning loop `zslab.train.finetune`).

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-micro"  # zslab offline CLIP whose pretrained runs learn the sequence (zsclip-tiny costs ~6x more: over the lab's cold budget)
seeds: list = [0, 1, 2]  # pretrained runs (one per seed); data order and draws follow the seed
tasks: list = ["fashion_mnist", "animal_mnist"]  # the task sequence, in order (registered datasets)
methods: dict = {"fine-tune": {}, "ZSCL: distillation + weight ensemble": {"distill": True, "average": "weight-ensemble"}, "distillation only": {"distill": True}, "weight ensemble only": {"average": "weight-ensemble"}, "momentum interpolation": {"average": "momentum"}}  # label and ContinualMethod fields (distill, average: none, weight-ensemble or momentum, avg_every, momentum, temperature)
finetune: dict = {"steps": 100, "batch_size": 64, "lr": 0.001, "weight_decay": 0.0, "label_smoothing": 0.2, "warmup_steps": 10}  # FinetuneConfig fields of every task (ZSCL's defaults: lr 1e-3, no weight decay, label smoothing 0.2)
n_train: int = 100  # training images per class of each task
n_test: int = 50  # test images per class of each task and of the held-out compositions
n_reference: int = 512  # unlabelled reference scenes (images and captions) of the seen compositions
template_set: str = "ensemble"  # zsworld prompts of the held-out head (the MNIST-style tasks use their own)

# %%
from zslab.analysis import check_gain, mean_over_seeds
from zslab.errors import check_choice
from zslab.methods.continual import HELD_OUT, START, continual_experiment
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, line_with_intervals, panels
from zslab.records import record, record_figure

paper = get_paper("zscl_continual")
check_choice("mode", mode, ["offline"])
FINE_TUNE, ZSCL, DISTILL, AVERAGE, MOMENTUM = methods
print(f"{paper.title} (arXiv {paper.arxiv})\n{model}, tasks {' → '.join(tasks)}, seeds {seeds}")

# %% [markdown]
# ## Learn the sequence with every method (top-1 after each task, on each task and the held-out compositions)

# %%
result = continual_experiment(model, seeds, tasks, methods, finetune, n_train, n_test, n_reference, template_set)
record("tasks_in_sequence", len(tasks))
per_step = mean_over_seeds(result.steps(), "top1", ["method", "tasks learned", "after", "set"])
per_step.pivot_table(index=["method", "tasks learned", "after"], columns="set", values="mean", sort=False)[[*tasks, HELD_OUT]].style.format("{:.1%}")

# %% [markdown]
# ## MTIL's scores per method (ZSCL Sec. 5): transfer (tasks before they are learned), last, held-out

# %%
scores = result.summary_scores().melt(id_vars=["seed", "method"], var_name="score", value_name="top1")
score_summary = mean_over_seeds(scores, "top1", ["method", "score"], metric="continual_score")
score_summary.pivot_table(index="method", columns="score", values="mean", sort=False).style.format("{:.1%}")

# %% [markdown]
# ## Figure: held-out zero-shot after each task, and the final scores per method

# %%
fig, axes = panels(2, width=6.5)
line_with_intervals(per_step[per_step["set"] == HELD_OUT], x="tasks learned", hue="method", ax=axes[0],
                    ylabel="held-out compositions: zero-shot top-1", title=f"{model}: {' → '.join(tasks)} (0: the start)")
bars_with_seeds(scores, "score", "top1", order=["transfer", "last", HELD_OUT], summary=score_summary, ax=axes[1],
                hue="method", hue_order=list(methods), ylabel="top-1", title="after the last task (transfer: before each)")
record_figure(fig, "zscl_continual", "Left: zero-shot top-1 on the compositions held out of pretraining after each task, "
              "per method (mean over pretrained seeds, 95% interval). Right: MTIL's transfer (accuracy on a task "
              "before learning it), last (mean task accuracy after the last task) and held-out zero-shot, per "
              "method; dots are seeds.")

# %% [markdown]
# ## Verdicts
# Paired by pretrained seed, judged on the 95% t-interval over seeds: reproduced when it lies above zero, not
# reproduced when below, inconclusive when it contains zero (the half-width says what is ruled out).

# %%
held_out = result.correct[HELD_OUT]
context = f"{model}, {' → '.join(tasks)}, held-out compositions"
check_gain("Sequential fine-tuning erodes zero-shot transfer: the zero-shot start beats the fine-tuned model "
           "on the held-out compositions.", held_out, START, FINE_TUNE, context=context)
check_gain("ZSCL keeps more zero-shot transfer than sequential fine-tuning.", held_out, ZSCL, FINE_TUNE,
           context=context)
check_gain("Momentum interpolation keeps more zero-shot transfer than sequential fine-tuning.", held_out, MOMENTUM,
           FINE_TUNE, context=context)
check_gain("Ablation: distillation on reference data alone keeps more zero-shot transfer than fine-tuning.",
           held_out, DISTILL, FINE_TUNE, context=context)
check_gain("Ablation: the weight ensemble alone keeps more zero-shot transfer than fine-tuning.", held_out, AVERAGE,
           FINE_TUNE, context=context)
check_gain("ZSCL does not cost the last task: it matches or beats fine-tuning on it.",
           result.correct[tasks[-1]], ZSCL, FINE_TUNE, context=f"{model}, {tasks[-1]} after the last task")
