# %% [markdown]
# # CapS-Adapter: a training-free cache from captions and images generated from them
#
# **Paper.** Wang, Liu and Wang, *CapS-Adapter: Caption-based MultiModal Adapter in Zero-Shot Classification*,
# ACM MM 2024, arXiv [2405.16591](https://arxiv.org/abs/2405.16591).
#
# **Claim.** A support set built from captions of a few target images per class (by a captioning model) and
# from images generated from those captions (by a text-to-image model), used as a multimodal Tip-Adapter cache
# (image and caption affinities mixed by δ), beats earlier training-free methods (zero-shot CLIP, and caches of
# generated images such as SuS-X / Tip-X) without training.
#
# **Method** (`zslab/methods/caption_cache.py`, after the authors' `madapter.py`): logits = 100 · cos(f, W) +
# α · exp(−β (1 − A)) · L, with A = (1 − δ) f·K_image + δ f·K_caption and L the support labels one-hot; α, β, δ
# searched on a labelled validation split, as the authors do. Their KL-divergence term (from Tip-X) is left
# out.
#
# **Mechanism and control.** The multimodal support set: captions carry the target images' content in the
# text space, the generated images in the image space. **Control:** a caption-only cache (δ = 1) and an
# image-only cache of the generated images (δ = 0, the SuS-X / Tip-X stand-in), with the same search. A
# few-shot cache of the sampled target images themselves is shown for reference.
#
# **Setting.** Offline: `zsclip-tiny` on zsworld's unseen compositions. Stand-ins: the world's caption writer
# is the captioning model (k target scenes per class, captioned as alt-text: synonyms, dropped or wrong
# attributes, distractors), and the generator draws a new scene of the caption's class. The validation split is
# another draw of the same classes. Real mode needs captions and generated images on disk: not built here.

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-tiny"  # zslab offline model
pretrained: str = "zsworld"  # pretrained tag of offline models
dataset: str = "zsworld"  # a zsworld dataset (the support set is drawn from the model's world)
split: str = "unseen"  # the zero-shot test split
seeds: list = [0, 1, 2, 3, 4, 5]  # one trained model per seed; also the support and validation draws
n_per_class: int = 100  # test images per class
val_per_class: int = 10  # validation images per class (the hyper-parameter search)
val_sample_offset: int = 2000  # the validation draw uses seed + this
k: int = 4  # target images per class that are captioned
n_generated: int = 2  # images generated from each caption
template_set: str = "ensemble"  # zero-shot prompts
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import check_gain, mean_over_seeds, record_scores
from zslab.datasets import load_templates
from zslab.evaluation import chance_level, encode_eval_set
from zslab.methods.caption_cache import CACHE_ARMS, FEW_SHOT_REFERENCE, evaluate_cache_arms, zsworld_caption_support
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record, record_figure
from zslab.zeroshot import build_classifier

paper = get_paper("caps_adapter")
templates = load_templates(dataset, template_set)
ARMS = ["zero-shot", *CACHE_ARMS, FEW_SHOT_REFERENCE]
print(f"{paper.title} (arXiv {paper.arxiv})\nsupport: {k} captioned target images per class, {n_generated} generated "
      f"images per caption; arms: {ARMS}")

# %% [markdown]
# ## Top-1 of every arm, per seed (bootstrap intervals over test images); the searched α, β, δ

# %%
scores, rows, params, examples = {}, [], [], []
for seed in seeds:
    test = encode_eval_set(model, pretrained, dataset, split, seed, n_per_class, batch_size=batch_size, device=device)
    val = encode_eval_set(model, pretrained, dataset, split, seed, val_per_class, batch_size=batch_size,
                          device=device, sample_seed=seed + val_sample_offset)
    classifier = build_classifier(test.encode_text, test.dataset.classes, templates)
    support = zsworld_caption_support(test.model, test.dataset.classes, k, n_generated, seed)
    scores[seed], hp = evaluate_cache_arms(test.features, test.labels, val.features, val.labels, classifier, support)
    rows += record_scores(scores[seed], seed, key="arm", n_bootstrap=n_bootstrap, dataset=dataset, split=split)
    params += [{**p, "seed": seed} for p in hp]
    examples += [{"seed": seed, "class": test.dataset.classes[int(y)], "caption": c}
                 for y, c in list(zip(support.labels, support.captions))[::n_generated * k][:4]]
chance = chance_level(test.dataset)
record("chance", chance, n_classes=len(test.dataset.classes))
per_seed = pd.DataFrame(rows)
pd.DataFrame(params).sort_values(["arm", "seed"]).set_index(["arm", "seed"]).round(3)

# %%
pd.DataFrame(examples).head(8)

# %% [markdown]
# ## Across seeds (Student t over seeds)

# %%
summary = mean_over_seeds(per_seed, "top1", ["arm"])
summary.set_index("arm").loc[ARMS, ["mean", "low", "high"]].style.format("{:.1%}")

# %% [markdown]
# ## Figure: zero-shot top-1 of each arm (cf. the paper's Table 1 rows for zero-shot CLIP, SuS-X and CapS-Adapter)

# %%
fig, axes = panels(1, width=8.0)
bars_with_seeds(per_seed, "arm", "top1", order=ARMS, summary=summary, chance=chance, ax=axes[0],
                ylabel="top-1 on unseen compositions", title=f"{model}, {k} captioned images per class")
axes[0].tick_params(axis="x", labelrotation=15)
record_figure(fig, "caps_adapter", "Top-1 of zero-shot CLIP, the caches built from generated images only, from "
              "captions only, from both (CapS), and from the sampled target images themselves (reference): "
              "means over seeds with 95% t-intervals, one dot per seed.")

# %% [markdown]
# ## Verdicts
# Paired over the same test images and models: reproduced when the 95% interval (t over seeds) of the gain lies
# above zero.

# %%
context = f"{model} on {dataset}/{split}, k={k}, {n_generated} generated per caption"
verdicts = [
    check_gain("CapS-Adapter beats zero-shot CLIP without training.", scores, "CapS (images + captions)",
               "zero-shot", n_resamples=n_bootstrap, context=context),
    check_gain("CapS-Adapter beats a cache of generated images alone (the SuS-X / Tip-X stand-in).", scores,
               "CapS (images + captions)", "image cache", n_resamples=n_bootstrap, context=context),
    check_gain("Control: the multimodal support set beats the caption-only cache.", scores,
               "CapS (images + captions)", "caption cache", n_resamples=n_bootstrap, context=context),
]
