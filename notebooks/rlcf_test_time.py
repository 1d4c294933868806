# %% [markdown]
# # RLCF: test-time adaptation with feedback from a stronger CLIP
#
# **Paper.** Zhao, Wang, Wei, Li, Fang, Wang and Yang, *Test-Time Adaptation with CLIP Reward for Zero-Shot
# Generalization in Vision-Language Models*, ICLR 2024, arXiv [2305.18010](https://arxiv.org/abs/2305.18010).
#
# **Claim.** Under distribution shift, test-time adaptation that minimises the entropy of the model's own
# predictions (TPT, arXiv 2209.07511) can get stuck in wrong predictions; tuning the prompt on one test image to
# maximise the reward a CLIP reward model gives the student's top predictions (RLCF) beats TPT and zero-shot
# (the paper's Table 1, prompt tuning on ImageNet and its shifted variants).
#
# **Method** (`zslab/methods/test_time.py`, after the authors' `tpt_cls_rl.py`): for each test image, episodic:
# the student's context starts at "a photo of a"; 1 + `n_views` views (the image, random resized crops and
# flips), the 10% the student is most confident on kept; TPT takes one AdamW step on the entropy of their mean
# prediction; RLCF takes three on reward × cross-entropy of each view's top-3 classes, the reward being the
# reward model's CLIPScore 2.5 · max(cos, 0) of the view and "a photo of a {c}.", centred over the three.
#
# **Mechanism and controls.** The feedback helps when it knows more than the student. The control runs RLCF
# with the student as its own reward model (same loss, no outside knowledge); the reward model's own zero-shot
# accuracy is shown for reference (the student never copies its predictions, only its scores of the student's
# top guesses).
#
# **Setting.** Offline: student `zsclip-micro`, reward model `zsclip-tiny` (the paper: ViT-B/16 student, ViT-L/14
# reward), one of each per seed; the 38 compositions unseen in pretraining, rendered under a shift (stronger
# noise, colour jitter and clutter) as the distribution shift.

# %% parameters
mode: str = "offline"  # one of: offline
student: str = "zsclip-micro"  # the adapted model (zslab offline model)
reward_model: str = "zsclip-tiny"  # the reward model (zslab offline model)
pretrained: str = "zsworld"  # pretrained tag of offline models
dataset: str = "zsworld"  # a generated dataset (zsworld)
seeds: list = [0, 1, 2]  # one student and one reward model per seed; also the test draw and the views
n_test: int = 10  # test images per class
n_views: int = 63  # random views besides the image itself (the paper: 63)
share: float = 0.1  # share of the views kept as confident
rlcf_steps: int = 3  # RLCF's steps per image (its prompt script)
rlcf_lr: float = 0.007  # RLCF's AdamW learning rate
tpt_steps: int = 1  # TPT's steps per image
tpt_lr: float = 0.005  # TPT's AdamW learning rate
sample_k: int = 3  # RLCF's top-k classes per view
shift: dict = {"noise": 40.0, "color_jitter": 40.0, "clutter_rate": 1.0}  # world knobs of the test renders ({}: the models' own world)
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # views per encoding batch

# %%
import pandas as pd
import torch

from zslab.analysis import check_gain, mean_over_seeds, record_scores
from zslab.errors import check_choice
from zslab.evaluation import eval_dataset, model_world
from zslab.methods.prompt_learning import context_classifier
from zslab.methods.test_time import TTAConfig, cached_adapt_and_predict, clip_scores, view_features
from zslab.models import load_model
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record, record_figure

paper = get_paper("rlcf_test_time")
check_choice("mode", mode, ["offline"])
ZS, TPT, RLCF, SELF, REWARD = (f"{student} zero-shot", "TPT", f"RLCF, reward {reward_model}",
                               f"RLCF, reward {student} itself (control)", f"{reward_model} zero-shot (reference)")
ARMS = [ZS, TPT, RLCF, SELF, REWARD]
tpt_cfg = TTAConfig(steps=tpt_steps, lr=tpt_lr, share=share, sample_k=sample_k)
rlcf_cfg = TTAConfig(steps=rlcf_steps, lr=rlcf_lr, share=share, sample_k=sample_k)
print(f"{paper.title} (arXiv {paper.arxiv})\nstudent {student}, reward {reward_model}, seeds {seeds}")

# %% [markdown]
# ## Top-1 of every arm on the shifted test renders, per seed

# %%
scores, rows = {}, []
for seed in seeds:
    lm = load_model(student, pretrained or None, seed=seed)
    judge_lm = load_model(reward_model, pretrained or None, seed=seed)
    test = eval_dataset(dataset, None, "unseen", n_per_class=n_test, seed=seed, model=lm,
                        world={**model_world(lm), **shift})
    labels = torch.as_tensor(test.targets)
    views = view_features(lm, test, n_views, seed, batch_size)
    judge_views = view_features(judge_lm, test, n_views, seed, batch_size)
    student_text, judge_text = context_classifier(lm, test.classes), context_classifier(judge_lm, test.classes)
    predictions = {
        ZS: (views[:, 0] @ student_text.T).argmax(1),
        TPT: cached_adapt_and_predict(lm, test.classes, views, "TPT", tpt_cfg, label=f"seed {seed}"),
        RLCF: cached_adapt_and_predict(lm, test.classes, views, "RLCF", rlcf_cfg,
                                       clip_scores(judge_views, judge_text), label=f"seed {seed}"),
        SELF: cached_adapt_and_predict(lm, test.classes, views, "RLCF", rlcf_cfg, clip_scores(views, student_text),
                                       label=f"self-reward, seed {seed}"),
        REWARD: (judge_views[:, 0] @ judge_text.T).argmax(1)}
    scores[seed] = {arm: (p == labels).numpy().astype(float) for arm, p in predictions.items()}
    rows += record_scores(scores[seed], seed, key="arm", n_bootstrap=n_bootstrap)
record("chance", 1 / len(test.classes), n_classes=len(test.classes))
per_seed = pd.DataFrame(rows)
summary = mean_over_seeds(per_seed, "top1", ["arm"])
summary.set_index("arm").loc[ARMS, ["mean", "low", "high"]].style.format("{:.1%}")

# %% [markdown]
# ## Figure: top-1 per arm (cf. the paper's Table 1)

# %%
fig, axes = panels(1, width=9.0)
bars_with_seeds(per_seed, "arm", "top1", order=ARMS, summary=summary, chance=1 / len(test.classes), ax=axes[0],
                ylabel="top-1", title=f"{student} under shift: zero-shot, TPT, RLCF ({len(test)} images per seed)")
record_figure(fig, "rlcf_test_time", "Top-1 on shifted renders of the 38 unseen compositions: the student's "
              "zero-shot prompt, TPT, RLCF with the stronger reward model, RLCF rewarded by the student itself, "
              "and the reward model's own zero-shot (mean over seeds, 95% t-interval; dots are seeds).")

# %% [markdown]
# ## Verdicts
# Paired over the same test images per seed, 95% t-interval over seeds: reproduced when it lies above zero.

# %%
context = f"student {student}, reward {reward_model}, zsworld's unseen compositions under shift"
check_gain("RLCF beats the student's zero-shot prediction.", scores, RLCF, ZS, n_resamples=n_bootstrap,
           context=context)
check_gain("RLCF beats TPT.", scores, RLCF, TPT, n_resamples=n_bootstrap, context=context)
check_gain("TPT beats zero-shot (the baseline's own claim).", scores, TPT, ZS, n_resamples=n_bootstrap,
           context=context)
check_gain("The feedback is what helps: RLCF with the stronger reward model beats RLCF rewarded by the student "
           "itself.", scores, RLCF, SELF, n_resamples=n_bootstrap, context=context)
