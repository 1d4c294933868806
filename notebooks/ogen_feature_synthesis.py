# %% [markdown]
# # OGEN: synthesised features of unknown classes regularise prompt learning
#
# **Paper.** Zang, Goh, Susskind and Huang, *Overcoming the Pitfalls of Vision-Language Model Finetuning for OOD
# Generalization*, ICLR 2024, arXiv [2401.15914](https://arxiv.org/abs/2401.15914).
#
# **Claim.** After long enough fine-tuning without regularisation, prompt learning overfits the known (base)
# classes and names unknown (new) classes worse (the paper's Figure 1: CoOp's new-class accuracy falls with
# epochs). Image features synthesised for the unknown classes from their names, by a class-conditional
# generator that extrapolates from the nearest known classes, regularise the prompt when learned jointly, and
# raise new-class accuracy and the harmonic mean H of base and new (the paper's base-to-new Table 1).
#
# **Method** (`zslab/methods/ogen.py`, after the authors' released trainer): CoOp's shared context
# (`zslab/methods/prompt_learning.py`) plus a small attention generator, trained by leaving base classes out
# (synthesise a base class's feature from its 3 nearest base classes and match the real one); the new classes'
# names (no images) get synthesised features, classified against their own prompts in the same loss.
#
# **Mechanism and controls.** The regulariser carries knowledge of the new classes only if the synthesised
# features belong to them: the control labels the same synthesised features with a seeded permutation of the new
# classes. Epochs are the knob of the pitfall: every arm is trained for each count in `epochs`, and the
# hand-made prompt ("a photo of a {c}.", where the context starts) is the reference.
#
# **Setting.** Offline: `zsclip-tiny` (one model per seed, shared). Base = 38 seen compositions drawn per seed,
# 16 shots each; new = the 38 compositions unseen in pretraining, their names only. Base accuracy is among the
# base classes, new among the new (CoCoOp's protocol, as the paper's).

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-tiny"  # zslab offline model
pretrained: str = "zsworld"  # pretrained tag of offline models
dataset: str = "zsworld"  # a generated dataset (zsworld)
seeds: list = [0, 1, 2]  # one trained model per seed; also the base classes, shots and training order
epochs: list = [25, 100, 400]  # fine-tuning lengths (full-batch epochs), each a separate training
shots: int = 16  # labelled images per base class
n_base: int = 38  # seen compositions drawn as base classes
n_test: int = 100  # test images per class
context_init: str = "a photo of a"  # the hand-made context the vectors start from (and the reference prompt)
base_lr: float = 0.002  # CoOp's learning rate at batch 32, scaled linearly to full-batch steps
neighbours: int = 3  # OGEN's k nearest classes
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import check_gain, mean_over_seeds
from zslab.errors import check_choice
from zslab.evaluation import correct_vector
from zslab.fewshot import draw_classes, few_shot_data
from zslab.methods.ogen import OGENConfig, cached_learn_context_ogen
from zslab.methods.prompt_learning import cached_learn_context, context_classifier, full_batch_config
from zslab.metrics import base_new_harmonic
from zslab.papers import get_paper
from zslab.plotting import line_with_intervals, panels
from zslab.records import record, record_figure
from zslab.verdicts import judge, over_seeds

paper = get_paper("ogen_feature_synthesis")
check_choice("mode", mode, ["offline"])
HAND, COOP, OGEN, SHUFFLED = (f"hand-made: {context_init} {{c}}.", "CoOp", "OGEN",
                              "OGEN, new-class labels shuffled (control)")
E = max(epochs)
print(f"{paper.title} (arXiv {paper.arxiv})\n{model}, epochs {epochs}, seeds {seeds}")

# %% [markdown]
# ## Base and new accuracy of every arm after each fine-tuning length, per seed

# %%
scores, rows, losses = {}, [], []
for seed in seeds:
    new = few_shot_data(model, pretrained, dataset, seed, 1, 0, n_test, "unseen", batch_size=batch_size, device=device)
    base = few_shot_data(model, pretrained, dataset, seed, shots, 0, n_test, "seen",
                         classes=draw_classes(new.model, dataset, "seen", n_base, seed), batch_size=batch_size,
                         device=device)
    x, y = base.shots(shots)
    for e in epochs:
        coop = full_batch_config(shots, n_base, seed, base_lr, context_init=context_init)
        coop.steps = e
        contexts = {HAND: None, COOP: cached_learn_context(base.model, base.classes, x, y, coop,
                                                           label=f"{e} epochs, seed {seed}")["context"]}
        ogen_arms = {OGEN: False, SHUFFLED: True} if e == E else {OGEN: False}
        for arm, shuffle in ogen_arms.items():
            learned = cached_learn_context_ogen(base.model, base.classes, new.classes, x, y,
                                                OGENConfig(coop, neighbours, shuffle_new=shuffle),
                                                label=f"{arm}, {e} epochs, seed {seed}")
            contexts[arm] = learned["context"]
            losses += [{"seed": seed, "epochs": e, "arm": arm, "step": i + 1, "loss": v}
                       for i, v in enumerate(learned["loss"].tolist())]
        for arm, ctx in contexts.items():
            part = {"base": correct_vector(base.test_features, base.test_labels,
                                           context_classifier(base.model, base.classes, ctx, context_init)),
                    "new": correct_vector(new.test_features, new.test_labels,
                                          context_classifier(base.model, new.classes, ctx, context_init))}
            scores.setdefault(e, {}).setdefault(seed, {})[arm] = part
            h = base_new_harmonic(float(part["base"].mean()), float(part["new"].mean()))
            rows += [{"seed": seed, "epochs": e, "arm": arm, "part": p, "top1": v}
                     for p, v in {"base": float(part["base"].mean()), "new": float(part["new"].mean()), "H": h}.items()]
record("chance", 1 / len(new.classes), n_classes=len(new.classes))
per_seed = pd.DataFrame(rows)
summary = mean_over_seeds(per_seed, "top1", ["part", "epochs", "arm"], metric="base_to_new")
summary.pivot_table(index=["part", "arm"], columns="epochs", values="mean", sort=False).style.format("{:.1%}")

# %% [markdown]
# ## Figure: base, new and H against fine-tuning epochs (cf. the paper's Figure 1 and Table 1), and OGEN's loss

# %%
fig, axes = panels(4, width=5.0)
for ax, part in zip(axes[:3], ["base", "new", "H"]):
    line_with_intervals(summary[summary["part"] == part], "epochs", hue="arm", ax=ax, logx=True,
                        ylabel="top-1" if part != "H" else "harmonic mean of base and new",
                        title=f"{model}: {part}" + (f" ({n_base} seen compositions)" if part == "base" else ""))
loss_curve = pd.DataFrame(losses)
loss_curve = loss_curve[loss_curve["epochs"] == E].groupby(["arm", "step"], as_index=False)["loss"].agg(
    mean="mean", low="min", high="max")
line_with_intervals(loss_curve, "step", hue="arm", ax=axes[3], ylabel="OGEN's joint loss",
                    title=f"{E} epochs (band: seeds' range)")
record_figure(fig, "ogen_feature_synthesis", "Top-1 on the base classes (among themselves), on the new classes "
              "(among themselves) and their harmonic mean H against fine-tuning epochs, for the hand-made prompt, "
              "CoOp, OGEN and OGEN with its synthesised new-class features labelled at random (mean over seeds, "
              "95% t-interval); right: OGEN's joint loss at the longest fine-tuning.")

# %% [markdown]
# ## Verdicts
# Paired over the same test images per seed (H: over seeds), 95% t-interval over seeds: reproduced when it lies
# above zero.

# %%
context = f"{model}, {n_base} base classes, the 38 unseen compositions as new"
new_scores = {e: {s: {a: v["new"] for a, v in arms.items()} for s, arms in per.items()} for e, per in scores.items()}
check_gain(f"The pitfall: after {E} epochs CoOp names new classes worse than the hand-made prompt.", new_scores[E],
           HAND, COOP, n_resamples=n_bootstrap, context=context, epochs=E, part="new")
check_gain(f"Longer fine-tuning hurts: CoOp on new classes after {min(epochs)} epochs beats CoOp after {E}.",
           {s: {"short": new_scores[min(epochs)][s][COOP], "long": new_scores[E][s][COOP]} for s in seeds},
           "short", "long", n_resamples=n_bootstrap, context=context, comparison_kind="epochs")
check_gain(f"OGEN beats CoOp on new classes ({E} epochs).", new_scores[E], OGEN, COOP, n_resamples=n_bootstrap,
           context=context, epochs=E, part="new")
h = per_seed[(per_seed["part"] == "H") & (per_seed["epochs"] == E)].pivot_table(index="seed", columns="arm",
                                                                                  values="top1")
judge(f"OGEN raises H over CoOp ({E} epochs).", over_seeds((h[OGEN] - h[COOP]).tolist()), context=context,
      comparison=f"{OGEN} − {COOP} (H)", epochs=E)
check_gain(f"Control: OGEN's gain needs features of the right classes: OGEN beats its shuffled control on new "
           f"classes ({E} epochs).", new_scores[E], OGEN, SHUFFLED, n_resamples=n_bootstrap, context=context,
           epochs=E, part="new")
