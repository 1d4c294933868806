# %% [markdown]
# # Enhancing CLIP with CLIP: prompt tuning on CLIP's own pseudolabels
#
# **Paper.** Menghini, Delworth and Bach, *Enhancing CLIP with CLIP: Exploring Pseudolabeling for Limited-Label
# Prompt Tuning*, NeurIPS 2023, arXiv [2306.01669](https://arxiv.org/abs/2306.01669).
#
# **Claim.** Zero-shot pseudolabels turn semi-supervised (SSL), unsupervised (UL) and transductive zero-shot
# (TRZSL) learning into one loss; the strategy that grows and refines class-balanced pseudolabels iteratively
# (GRIP) improves CLIP's accuracy in all three, by 19.5, 15.2 and 28.4 points (abstract), for textual and visual
# prompts alike; the paper picks tasks where zero-shot CLIP is weak.
#
# **Method** (`zslab/methods/pseudolabels.py`): each unlabelled image is pseudolabelled with its most probable
# class, and each class keeps its most confident images (*class-balanced*). FPL: 16 zero-shot pseudolabels per
# class, one training. GRIP: `rounds` trainings, each from the initial prompt, round i on the i/`rounds` most
# confident share of the unlabelled images per class, relabelled by the previous round's prompt. Textual prompt:
# CoOp's four context vectors from "a photo of a" (`zslab/methods/prompt_learning.py`); visual: the image tower's
# last projection (ProLIP's parameters), zslab's stand-in for the paper's visual prompts.
#
# **Mechanism and controls.** Pseudolabels help when training on them moves the prompt toward the truth. Two
# controls bound that: *oracle labels* trains the same learner on the same unlabelled images with their true
# labels (the ceiling of any pseudolabelling), and *GRIP, global selection* takes the same number of
# pseudolabels as the most confident images overall instead of per class (the paper's class balance turned off).
# Each round's pseudolabel accuracy is shown.
#
# **Setting.** Offline: `zsclip-tiny` (one model per seed, shared). The target classes are the 38 compositions
# unseen in pretraining, rendered under a shift (stronger noise, colour jitter, clutter) so that zero-shot is
# weak there, as the paper chooses its datasets; an unlabelled pool of `n_pool` images per class; SSL labels the
# first `n_labelled` of them. TRZSL: 38 seen compositions drawn per seed with `n_seen_shots` labelled images
# each, the pool of the unseen ones unlabelled, tested on both (H over the joint 76 classes).

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-tiny"  # zslab offline model
pretrained: str = "zsworld"  # pretrained tag of offline models
dataset: str = "zsworld"  # a generated dataset (zsworld)
seeds: list = [0, 1, 2]  # one trained model per seed; also the pool, labelled images, seen classes and training order
paradigms: list = ["UL", "SSL", "TRZSL"]  # learning paradigms (the paper's three)
modalities: list = ["textual", "visual"]  # prompt modalities: textual (CoOp context), visual (last projection)
n_pool: int = 32  # unlabelled images per target class
n_labelled: int = 2  # SSL: labelled images per class (the authors' N_LABEL)
n_seen_shots: int = 16  # TRZSL: labelled images per seen class
n_seen: int = 38  # TRZSL: seen compositions drawn as labelled classes
n_test: int = 100  # test images per class
rounds: int = 5  # GRIP's rounds (the authors: 10, a tenth of the unlabelled data more per round)
textual_epochs: int = 50  # full-batch CoOp steps per training (CoOp's 50 epochs at 1–2 shots)
visual_epochs: int = 300  # full-batch epochs of the projection per training (ProLIP's 300)
shift: dict = {"noise": 40.0, "color_jitter": 40.0, "clutter_rate": 1.0}  # world knobs of every render ({}: the model's own world)
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd
from IPython.display import display

from zslab.analysis import check_gain, mean_over_seeds
from zslab.errors import check_choice
from zslab.fewshot import draw_classes, few_shot_data
from zslab.methods.pseudolabels import PARADIGMS, PROMPT_MODALITIES, STRATEGIES, build_paradigm, make_learner
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, line_with_intervals, panels
from zslab.records import record, record_figure
from zslab.verdicts import judge, over_seeds

paper = get_paper("pseudolabel_prompt_tuning")
check_choice("mode", mode, ["offline"])
for p in paradigms:
    check_choice("paradigm", p, PARADIGMS)
for m in modalities:
    PROMPT_MODALITIES.get(m)
ZS, LABELLED, FPL, GRIP, GLOBAL, ORACLE = ("zero-shot", "labelled only", "FPL", "GRIP", "GRIP, global selection",
                                           "oracle labels")
ARMS = [ZS, LABELLED, FPL, GRIP, GLOBAL, ORACLE]
print(f"{paper.title} (arXiv {paper.arxiv})\n{model}, paradigms {paradigms}, modalities {modalities}, seeds {seeds}")

# %% [markdown]
# ## Every arm in every paradigm and modality, per seed (accuracy: top-1; in TRZSL the harmonic mean H)

# %%
scores, rows, history = {}, [], []
for seed in seeds:
    for modality in modalities:
        kind = PROMPT_MODALITIES.get(modality).feature_kind
        unseen = few_shot_data(model, pretrained, dataset, seed, n_pool, 0, n_test, "unseen", batch_size=batch_size,
                               device=device, features=kind, shift=shift)
        seen = (few_shot_data(model, pretrained, dataset, seed, n_seen_shots, 0, n_test, "seen",
                              classes=draw_classes(unseen.model, dataset, "seen", n_seen, seed), batch_size=batch_size,
                              device=device, features=kind, shift=shift) if "TRZSL" in paradigms else None)
        epochs = textual_epochs if modality == "textual" else visual_epochs
        for paradigm in paradigms:
            data = build_paradigm(paradigm, unseen, seen, n_labelled)
            learner = make_learner(modality, unseen.model, data.classes, seed, epochs)
            label = f"{paradigm}, {modality}, seed {seed}"
            results = {ZS: None, LABELLED: STRATEGIES.get("labelled only")(learner, data.task, label=label),
                       FPL: STRATEGIES.get("FPL")(learner, data.task, label=label),
                       GRIP: STRATEGIES.get("GRIP")(learner, data.task, rounds, label=label),
                       GLOBAL: STRATEGIES.get("GRIP")(learner, data.task, rounds, "global", label=label),
                       ORACLE: STRATEGIES.get("oracle labels")(learner, data.task, label=label)}
            for arm, result in results.items():
                s = data.score(learner.zero_shot() if result is None else result.scorer)
                scores.setdefault((paradigm, modality), {}).setdefault(seed, {})[arm] = s
                rows.append({"seed": seed, "paradigm": paradigm, "modality": modality, "arm": arm,
                             **{k: v for k, v in s.items() if k != "correct"}})
                record("accuracy", s["accuracy"], seed=seed, paradigm=paradigm, modality=modality, arm=arm)
                history += [{"seed": seed, "paradigm": paradigm, "modality": modality, "arm": arm, **h}
                            for h in ([] if result is None else result.history)]
record("chance", 1 / len(unseen.classes), n_classes=len(unseen.classes))
per_seed = pd.DataFrame(rows)
summary = mean_over_seeds(per_seed, "accuracy", ["paradigm", "modality", "arm"])
summary.pivot_table(index=["paradigm", "modality"], columns="arm", values="mean", sort=False)[ARMS].style.format("{:.1%}")

# %% [markdown]
# ## TRZSL's parts: seen (S) and unseen (U) accuracy over the joint label space

# %%
if "TRZSL" in paradigms:
    trzsl = per_seed[per_seed["paradigm"] == "TRZSL"].melt(id_vars=["seed", "modality", "arm"],
                                                            value_vars=["seen", "unseen", "harmonic"],
                                                            var_name="part", value_name="value")
    trzsl_summary = mean_over_seeds(trzsl, "value", ["modality", "part", "arm"], metric="trzsl_part")
    display(trzsl_summary.pivot_table(index=["modality", "part"], columns="arm", values="mean", sort=False)[ARMS]
            .style.format("{:.1%}"))

# %% [markdown]
# ## Pseudolabels per round: how many, and how many are right

# %%
rounds_table = pd.DataFrame(history)
pl_summary = rounds_table.groupby(["paradigm", "modality", "arm", "round"], as_index=False)[
    ["pseudolabels", "pseudolabel_accuracy"]].mean()
pl_summary[pl_summary["paradigm"] == paradigms[0]].style.format({"pseudolabel_accuracy": "{:.1%}"})

# %% [markdown]
# ## Figure: accuracy per arm, paradigm and modality (cf. the paper's Table 1), pseudolabel accuracy per GRIP round

# %%
fig, axes = panels(len(modalities) + 1, width=6.0)
for ax, modality in zip(axes, modalities):
    part = per_seed[per_seed["modality"] == modality]
    bars_with_seeds(part, "paradigm", "accuracy", order=paradigms, hue="arm", hue_order=ARMS,
                    summary=summary[summary["modality"] == modality], ax=ax, ylabel="top-1 (TRZSL: H)",
                    title=f"{model}, {modality} prompt")
grip_rounds = rounds_table[rounds_table["arm"].isin([GRIP, GLOBAL])].copy()
grip_rounds["curve"] = grip_rounds["arm"] + " · " + grip_rounds["paradigm"] + " · " + grip_rounds["modality"]
curve = grip_rounds.groupby(["curve", "round"], as_index=False)["pseudolabel_accuracy"].agg(
    mean="mean", low="min", high="max")
line_with_intervals(curve, "round", hue="curve", ax=axes[-1], ylabel="pseudolabel accuracy",
                    title="pseudolabels right, per round (band: seeds' range)")
record_figure(fig, "pseudolabel_prompt_tuning", "Left: accuracy of zero-shot CLIP, the prompt trained on the "
              "labelled images only, FPL, GRIP, GRIP with global instead of class-balanced selection, and the "
              "prompt trained on the same images with their true labels (oracle), per learning paradigm (TRZSL: "
              "H), one panel per prompt modality; bars are means over seeds with 95% t-intervals, dots are seeds. "
              "Right: the share of right pseudolabels in each GRIP round.")

# %% [markdown]
# ## Verdicts
# Paired over the same test images per seed (TRZSL: over H per seed), 95% t-interval over seeds: reproduced
# when it lies above zero.

# %%
context = f"{model} on zsworld's unseen compositions, shifted renders"
for modality in modalities:
    for paradigm in [p for p in ["SSL", "UL"] if p in paradigms]:
        check_gain(f"GRIP improves on zero-shot CLIP in {paradigm} ({modality} prompt).",
                   {s: {a: v["correct"] for a, v in arms.items()} for s, arms in scores[(paradigm, modality)].items()},
                   GRIP, ZS, n_resamples=n_bootstrap, context=context, paradigm=paradigm, modality=modality)
    if "TRZSL" in paradigms:
        h = {s: {a: v["harmonic"] for a, v in arms.items()} for s, arms in scores[("TRZSL", modality)].items()}
        judge(f"GRIP improves on zero-shot CLIP in TRZSL, on H ({modality} prompt).",
              over_seeds([h[s][GRIP] - h[s][ZS] for s in h]), context=context + ", seen + unseen",
              comparison=f"{GRIP} − {ZS} (H)", paradigm="TRZSL", modality=modality)
probe = next((p for p in ["UL", "SSL"] if p in paradigms), None)
for modality in modalities if probe else []:
    per_arm = {s: {a: v["correct"] for a, v in arms.items()} for s, arms in scores[(probe, modality)].items()}
    check_gain(f"Iterating helps: GRIP beats FPL in {probe} ({modality} prompt).", per_arm, GRIP, FPL,
               n_resamples=n_bootstrap, context=context, paradigm=probe, modality=modality)
    check_gain(f"Class balance helps: GRIP's class-balanced pseudolabels beat as many picked globally in {probe} "
               f"({modality} prompt).", per_arm, GRIP, GLOBAL, n_resamples=n_bootstrap, context=context,
               paradigm=probe, modality=modality)
    check_gain(f"Control: true labels for the same images improve on zero-shot in {probe} ({modality} prompt), so "
               "there is something for pseudolabels to find.", per_arm, ORACLE, ZS, n_resamples=n_bootstrap,
               context=context, paradigm=probe, modality=modality)
