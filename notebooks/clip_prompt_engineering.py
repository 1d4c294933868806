# %% [markdown]
# # CLIP: class name vs one template vs a template ensemble
#
# **Paper.** Radford et al., *Learning Transferable Visual Models From Natural Language Supervision*
# (CLIP), arXiv [2103.00020](https://arxiv.org/abs/2103.00020), Sec. 3.1.4 and Fig. 4.
#
# **Claim.** Zero-shot accuracy improves when the class name is put in a prompt template
# ("A photo of a {label}.") instead of used alone, and improves again when the class embedding is the
# mean over an ensemble of templates. The paper reports +1.3 points on ImageNet for the single template
# and +3.5 more for an 80-template ensemble, almost 5 points together.
#
# **Setting.** Offline (the default) uses zslab's tiny CLIP trained from scratch on zsworld captions,
# one model per seed, and tests it on color-shape compositions that never appeared in training. Real
# mode uses the same code with an open_clip model and a real dataset, e.g.
# `-p mode real -p model ViT-B-32 -p pretrained laion2b_s34b_b79k -p dataset imagenet -p data_root /data/imagenet -p split val -p ensemble_template_set openai -p single_template "a photo of a {c}."`.
# All three heads are scored on the same images, so the differences between them are paired.

# %% parameters
mode: str = "offline"  # one of: offline, real
model: str = "zsclip-tiny"  # zslab offline model, open_clip architecture, local-dir:PATH or hf-hub:ID
pretrained: str = "zsworld"  # pretrained tag (zsworld for offline models; e.g. laion2b_s34b_b79k) or a checkpoint file
dataset: str = "zsworld"  # a name from `zslab list datasets`
data_root: str = ""  # folder of a stored dataset; empty means its default place
split: str = "unseen"  # zsworld: unseen compositions; stored datasets: test (imagenet: val)
seeds: list = [0, 1, 2]  # offline: one trained model per seed; real: seeds of the evaluation subsample
n_per_class: int = 100  # evaluation images per class (0 keeps every image)
single_template: str = "a photo of a {c}"  # the one-template head
ensemble_template_set: str = "ensemble"  # template set of the dataset for the ensemble head (imagenet: openai)
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

from zslab.datasets import load_templates
from zslab.embeddings import image_features
from zslab.evaluation import chance_level, eval_dataset
from zslab.methods.prompting import evaluate_heads, prompt_heads
from zslab.metrics import across_seeds, bootstrap_mean_ci
from zslab.models import load_model
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds
from zslab.records import record, record_figure, record_verdict
from zslab.verdicts import describe_interval, improvement_verdict

paper = get_paper("clip_prompt_engineering")
heads = prompt_heads(single_template, load_templates(dataset, ensemble_template_set))
HEAD_ORDER = list(heads)
print(f"{paper.title} (arXiv {paper.arxiv})\nheads: " + "; ".join(f"{k}: {len(v)} prompt(s)" for k, v in heads.items()))

# %% [markdown]
# ## Zero-shot accuracy of the three heads, per seed

# %%
rows, correct_by_seed = [], {}
for seed in seeds:
    lm = load_model(model, pretrained, seed=seed)
    ds = eval_dataset(dataset, data_root, split, n_per_class=n_per_class, seed=seed)
    feats, labels = image_features(lm, ds, batch_size=batch_size)
    correct = evaluate_heads(lm.encode_text, ds.classes, heads, feats, labels)
    correct_by_seed[seed] = correct
    for head, c in correct.items():
        low, high = bootstrap_mean_ci(c, n_resamples=n_bootstrap, seed=seed)
        rows.append({"seed": seed, "head": head, "top1": c.mean(), "low": low, "high": high})
        record("top1", c.mean(), interval=(low, high), seed=seed, head=head, n_images=len(c),
               n_classes=len(ds.classes), dataset=dataset, split=split)
chance = chance_level(ds)
per_seed = pd.DataFrame(rows)
per_seed.pivot(index="seed", columns="head", values="top1")[HEAD_ORDER].style.format("{:.1%}")

# %% [markdown]
# ## Across seeds: mean and 95% interval (Student t over seeds)

# %%
summary = []
for head in HEAD_ORDER:
    stats = across_seeds(per_seed.loc[per_seed["head"] == head, "top1"].tolist())
    summary.append({"head": head, **stats})
    record("top1_mean_over_seeds", stats["mean"], interval=(stats["low"], stats["high"]), head=head,
           n_seeds=stats["n"])
record("chance", chance)
summary = pd.DataFrame(summary)
summary

# %% [markdown]
# ## Figure (cf. CLIP Fig. 4): accuracy by head; dots are seeds, bars the mean with its interval

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
bars_with_seeds(per_seed, "head", "top1", order=HEAD_ORDER, summary=summary, chance=chance, ax=axes[0],
                ylabel="zero-shot top-1", title=f"{model} on {dataset}/{split}")
gains = pd.DataFrame([{"seed": s, "comparison": name, "gain": (c[a] - c[b]).mean()}
                      for s, c in correct_by_seed.items()
                      for name, a, b in [("template − name", "one template", "class name"),
                                         ("ensemble − template", "ensemble", "one template")]])
gain_summary = pd.DataFrame([{"comparison": k, **across_seeds(g["gain"].tolist())}
                             for k, g in gains.groupby("comparison", sort=False)])
bars_with_seeds(gains, "comparison", "gain", summary=gain_summary, ax=axes[1], ylabel="paired gain in top-1",
                title="gains (paper, ImageNet: +1.3 and +3.5 pt)")
axes[1].axhline(0, color="black", lw=0.8)
record_figure(fig, "prompt_heads", "Zero-shot top-1 by head, and the paired gains, over seeds.")
plt.show()

# %% [markdown]
# ## Verdict
# Each part of the claim is checked on the per-seed paired gains: reproduced when the 95% interval of
# the mean gain lies above zero, not reproduced when below, inconclusive when it contains zero.

# %%
for name, a, b, claim in [
    ("template − name", "one template", "class name", "A prompt template beats the bare class name."),
    ("ensemble − template", "ensemble", "one template", "A template ensemble beats a single template."),
]:
    diffs = gains.loc[gains["comparison"] == name, "gain"].tolist()
    status, stats = improvement_verdict(diffs)
    record("gain", stats["mean"], interval=(stats["low"], stats["high"]), comparison=name)
    record_verdict(claim, status, f"{a} vs {b}: {describe_interval(stats)} on {model}, {dataset}/{split}")
    print(f"{claim} -> {status}: {describe_interval(stats)}")
