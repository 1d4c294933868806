# %% [markdown]
# # Word bias in zero-shot classifiers, and unsupervised prior matching
#
# **Paper.** Liusie, Manakul and Gales, *Mitigating Word Bias in Zero-shot Prompt-based Classifiers*,
# arXiv [2309.04992](https://arxiv.org/abs/2309.04992).
#
# **Claim.** The wording of prompts and label words biases a zero-shot classifier towards some classes.
# Reweighting the class probabilities so that their average over the (unlabelled) test inputs is uniform
# ("prior matching") removes much of this bias and gives large, consistent gains; a zero-resource variant
# estimates the bias from content-free inputs instead.
#
# **Setting.** Three zero-shot classifiers, each on a class-balanced test set: text (all-MiniLM-L6-v2 on
# the WordNet gloss task, labels as words), images (zslab's tiny CLIP on zsworld compositions unseen in
# training) and images with a locked text tower (lit-animal-mnist on all 10 Animal-MNIST classes, 3 of
# them never seen in its training: the generalized setting, where seen classes are favoured). Two prompt
# regimes: the template **ensemble** for every class, and **biased** prompts where each class gets one
# template drawn at random (seeded), which is how word bias arises in practice. Methods: the raw
# classifier, prior matching (`zslab.methods.debias.prior_matching_weights`, no labels), and the
# null-input variant (`null_input_weights`: content-free texts, or blank images). Nothing is tuned: the
# probability scale is CLIP's 100 for every model.

# %% parameters
mode: str = "offline"  # one of: offline, real
settings: list = ["text|minilm|wordnet_glosses|test", "image|zsclip-tiny|zsworld|unseen", "image|lit-animal-mnist|animal_mnist|test"]  # kind|model|dataset|split
pretrained: str = ""  # pretrained tag for image models (empty: the model's own default)
seeds: list = [0, 1, 2]  # model seed (offline image models), test sample and random template assignment
n_per_class: int = 100  # test inputs per class
scale: float = 100.0  # logit scale turning cosine similarities into probabilities (CLIP's value)
null_texts: list = ["N/A", "none", "something."]  # content-free texts for the zero-resource variant
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import seaborn as sns
import torch
from PIL import Image

from zslab.datasets import load_templates
from zslab.embeddings import image_features
from zslab.evaluation import eval_dataset
from zslab.methods.debias import null_input_weights, prior_imbalance, prior_matching_weights, reweight, softmax
from zslab.metrics import across_seeds, bootstrap_mean_ci
from zslab.models import load_model
from zslab.plotting import set_style
from zslab.records import record, record_figure, record_verdict
from zslab.text import encode_cached, load_text_encoder
from zslab.textdata import load_gloss_task
from zslab.verdicts import describe_interval, improvement_verdict
from zslab.zeroshot import build_classifier

KINDS = ("text", "image")


def parse(setting):
    parts = setting.split("|")
    if len(parts) != 4 or parts[0] not in KINDS:
        raise ValueError(f"setting {setting!r} must be kind|model|dataset|split with kind one of {KINDS}")
    return parts


def prompts_for(classes, templates, regime, rng):
    if regime == "ensemble":
        return list(templates)
    return {c: [templates[rng.integers(len(templates))].replace("{c}", c)] for c in classes}


def text_scores(model, dataset, split, n, seed):
    """Cosine scores of the gloss texts and of the null texts against each prompt regime's labels."""
    task = load_gloss_task(n_per_class=n, seed=seed, split=split)
    enc = load_text_encoder(model)
    x = encode_cached(enc, task.texts)
    null = enc.encode(null_texts)
    return task.classes, task.labels, x, null, enc.encode, load_templates("text_topics")


def image_scores(model, dataset, split, n, seed):
    lm = load_model(model, pretrained or None, seed=seed)
    ds = eval_dataset(dataset, split=split, n_per_class=n, seed=seed)
    feats, labels = image_features(lm, ds)
    size = ds[0][0].size
    blanks = [Image.new("RGB", size, color) for color in [(0, 0, 0), (128, 128, 128), (255, 255, 255)]]
    null = lm.encode_image(torch.stack([lm.preprocess(b) for b in blanks]))
    return ds.classes, labels.numpy(), feats, null, lm.encode_text, ds.templates


SCORERS = {"text": text_scores, "image": image_scores}

# %% [markdown]
# ## Accuracy of each classifier: raw, prior-matched, null-input reweighted

# %%
rows = []
for setting in settings:
    kind, model, dataset, split = parse(setting)
    for seed in seeds:
        classes, labels, x, null, encode, templates = SCORERS[kind](model, dataset, split, n_per_class, seed)
        rng = np.random.default_rng([seed, 7])
        for regime in ("ensemble", "biased"):
            w_text = build_classifier(encode, classes, prompts_for(classes, templates, regime, rng))
            probs = softmax(scale * (torch.nn.functional.normalize(x.float(), dim=-1) @ w_text.T).numpy())
            null_probs = softmax(scale * (torch.nn.functional.normalize(null.float(), dim=-1) @ w_text.T).numpy())
            variants = {"raw": probs,
                        "prior matching": reweight(probs, prior_matching_weights(probs)),
                        "null input": reweight(probs, null_input_weights(null_probs))}
            for method, p in variants.items():
                correct = (p.argmax(1) == labels).astype(float)
                lo, hi = bootstrap_mean_ci(correct, n_resamples=n_bootstrap, seed=seed)
                rows.append({"setting": f"{kind}: {model} / {dataset}", "regime": regime, "method": method,
                             "seed": seed, "accuracy": correct.mean(), "low": lo, "high": hi,
                             "prior_kl": prior_imbalance(p)})
                record("accuracy", correct.mean(), interval=(lo, hi), seed=seed, setting=setting, regime=regime,
                       method=method, n_classes=len(classes))
                record("prior_kl", prior_imbalance(p), seed=seed, setting=setting, regime=regime, method=method)
results = pd.DataFrame(rows)
METHODS = ["raw", "prior matching", "null input"]
results.pivot_table(index=["setting", "regime"], columns="method", values="accuracy")[METHODS].style.format("{:.1%}")

# %% [markdown]
# ## How biased is each classifier? KL of the mean prediction from uniform (0 = no bias on average)

# %%
results.pivot_table(index=["setting", "regime"], columns="method", values="prior_kl")[METHODS].style.format("{:.3f}")

# %% [markdown]
# ## Figure: accuracy by method, per setting and prompt regime (dots are seeds)

# %%
set_style()
fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4), squeeze=False)
for ax, (name, g) in zip(axes[0], results.groupby("setting", sort=False)):
    sns.barplot(data=g, x="regime", y="accuracy", hue="method", hue_order=METHODS, errorbar=None, ax=ax, alpha=0.8)
    sns.stripplot(data=g, x="regime", y="accuracy", hue="method", hue_order=METHODS, dodge=True, color="black",
                  size=3, legend=False, ax=ax)
    ax.set_title(name, fontsize=10)
    ax.set_ylim(0, 1)
axes[0][0].legend(loc="lower left", fontsize=8)
for ax in axes[0][1:]:
    ax.get_legend().remove() if ax.get_legend() else None
record_figure(fig, "prior_matching", "Zero-shot accuracy raw vs reweighted, per setting and prompt regime.")
plt.show()

# %% [markdown]
# ## Verdicts: does prior matching beat the raw classifier under biased prompts? (paired over seeds)

# %%
for (setting, regime), g in results.groupby(["setting", "regime"], sort=False):
    raw = g[g["method"] == "raw"].sort_values("seed")["accuracy"].to_numpy()
    for method in ["prior matching", "null input"]:
        gain = g[g["method"] == method].sort_values("seed")["accuracy"].to_numpy() - raw
        status, stats = improvement_verdict(gain.tolist())
        record("gain_over_raw", stats["mean"], interval=(stats["low"], stats["high"]), setting=setting,
               regime=regime, method=method)
        if regime == "biased":
            record_verdict(f"{setting}, biased prompts: {method} beats the raw classifier", status,
                           f"accuracy gain {describe_interval(stats)}")
        print(f"{setting:45s} {regime:9s} {method:15s} {status:15s} {describe_interval(stats)}")
