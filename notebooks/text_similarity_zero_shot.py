# %% [markdown]
# # Similarity-based zero-shot text classification: sentence encoders vs word vectors
#
# **Paper.** Schopf, Braun and Matthes, *Evaluating Unsupervised Text Classification: Zero-shot and
# Similarity-based Approaches*, arXiv [2211.16285](https://arxiv.org/abs/2211.16285).
#
# **Claim (from the abstract).** Similarity-based approaches classify a document by the similarity between
# its representation and the representations of the class descriptions; "using SimCSE or SBERT
# embeddings instead of simpler text representations increases similarity-based classification results
# even further". (The abstract gives no numbers, so no paper numbers are shown as targets.)
#
# **What is checked here.** Macro-F1 of similarity-based zero-shot classification with an SBERT encoder
# (all-MiniLM-L6-v2) against the same method with simpler text representations: the mean of GloVe 6B-50d
# word vectors (the classic word-vector baseline) and WordLlama (average-pooled static token embeddings).
# The claim counts as **reproduced** for a baseline when, under every label representation (label name;
# label description; both), the 95% Student-t interval over seeds of the paired macro-F1 difference
# SBERT − baseline lies above 0; **not reproduced** when one lies below 0; otherwise **inconclusive**.
# The paper's other comparison (similarity-based vs NLI/entailment zero-shot models) needs models that
# are not available offline and is not checked.
#
# **Setting.** The task is real text: WordNet 3.0 noun definitions labelled by their lexicographer file
# (`zslab.textdata.load_gloss_task`: 12 classes such as *animal*, *food*, *artifact*, *time*), with a
# fixed validation/test split made from a hash of the synset name, and no definition that contains its
# own word. Seeds select the per-class sample of the test split. The method has no hyper-parameters; the
# label descriptions (`data/wordnet/gloss_task.json`) were written from the WordNet lexicographer-file
# table before any run and are not tuned, so nothing is fitted on the test split. In real mode the same
# notebook runs other sentence-transformers models, downloading them
# (`--mode real -p encoders '["st:sentence-transformers/all-mpnet-base-v2", "glove-mean"]'
# -p sentence_encoder st:sentence-transformers/all-mpnet-base-v2`); `st:/path/to/folder` works offline.

# %% parameters
mode: str = "offline"  # one of: offline, real
task: str = "wordnet_glosses"  # text classification task; one of: wordnet_glosses
split: str = "test"  # fixed split of the task; one of: validation, test
encoders: list = ["minilm", "glove-mean", "wordllama"]  # text encoders: minilm, glove-mean, wordllama (zslab.text) or st:FOLDER_OR_HUB_ID
sentence_encoder: str = "minilm"  # the SBERT-style encoder whose advantage over the other encoders is checked
representations: list = ["name", "description", "name+description"]  # label representations; one of: name, description, name+description
seeds: list = [0, 1, 2]  # seeds of the per-class sample (at least 3 for an interval)
n_per_class: int = 200  # test texts per class drawn for each seed
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 64  # texts per encoding batch

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from zslab.methods.similarity import label_embeddings, macro_f1, similarity_zero_shot
from zslab.metrics import across_seeds, bootstrap_ci, bootstrap_mean_ci
from zslab.papers import get_paper
from zslab.plotting import set_style
from zslab.records import record, record_figure, record_verdict
from zslab.text import encode_cached, load_text_encoder
from zslab.textdata import load_gloss_task, split_counts
from zslab.verdicts import describe_interval, improvement_verdict

paper = get_paper("text_similarity_zero_shot")
assert task == "wordnet_glosses", task
if sentence_encoder not in encoders:
    raise ValueError(f"sentence_encoder {sentence_encoder!r} must be one of the encoders {encoders}")
t0 = time.time()
models = {name: load_text_encoder(name) for name in encoders}
print(f"{paper.title} (arXiv {paper.arxiv})")
for name, enc in models.items():
    print(f"  {name}: dim {enc.dim}, fingerprint {enc.fingerprint}")
pd.DataFrame(split_counts()).rename_axis("class")

# %% [markdown]
# ## Per seed: predict the most similar label, score accuracy and macro-F1
# Intervals per seed are percentile bootstraps over the sampled texts.

# %%
rows, preds, labels_of = [], {}, {}
for seed in seeds:
    data = load_gloss_task(n_per_class=n_per_class, seed=seed, split=split)
    y = labels_of[seed] = data.labels
    for name, enc in models.items():
        text_emb = encode_cached(enc, data.texts, batch_size=batch_size)
        for rep in representations:
            label_emb = label_embeddings(enc.encode, data.classes, data.descriptions, rep)
            p = similarity_zero_shot(text_emb, label_emb)
            preds[seed, name, rep] = p
            correct = (p == y).astype(np.float64)
            acc_ci = bootstrap_mean_ci(correct, n_resamples=n_bootstrap, seed=seed)
            f1 = macro_f1(p, y)
            f1_ci = bootstrap_ci(macro_f1, p, y, n_resamples=n_bootstrap, seed=seed)
            labels = dict(encoder=name, representation=rep, task=task, split=split, n_texts=len(y),
                          n_classes=len(data.classes))
            record("accuracy", correct.mean(), interval=acc_ci, seed=seed, **labels)
            record("macro_f1", f1, interval=f1_ci, seed=seed, **labels)
            rows.append({"seed": seed, "encoder": name, "representation": rep, "accuracy": correct.mean(),
                         "macro_f1": f1, "f1_low": f1_ci[0], "f1_high": f1_ci[1]})
chance = 1.0 / len(data.classes)
record("chance", chance, n_classes=len(data.classes))
per_seed = pd.DataFrame(rows)
per_seed.pivot_table(index=["encoder", "representation"], columns="seed", values="macro_f1").style.format("{:.3f}")

# %% [markdown]
# ## Across seeds: mean and 95% interval (Student t over seeds)

# %%
summary = []
for (name, rep), g in per_seed.groupby(["encoder", "representation"], sort=False):
    for metric in ("macro_f1", "accuracy"):
        stats = across_seeds(g[metric].tolist())
        summary.append({"encoder": name, "representation": rep, "metric": metric, **stats})
        record(f"{metric}_mean_over_seeds", stats["mean"], interval=(stats["low"], stats["high"]), encoder=name,
               representation=rep, n_seeds=stats["n"])
summary = pd.DataFrame(summary)
table = summary.assign(cell=lambda d: d.apply(lambda r: f"{r['mean']:.3f} [{r['low']:.3f}, {r['high']:.3f}]", axis=1))
table.pivot_table(index=["metric", "encoder"], columns="representation", values="cell", aggfunc="first")[representations]

# %% [markdown]
# ## Figure: encoders × label representations (bars: mean over seeds with its interval; dots: seeds)

# %%
set_style()
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
for ax, metric, ylabel in [(axes[0], "macro_f1", "macro-F1"), (axes[1], "accuracy", "accuracy")]:
    s = summary[summary["metric"] == metric]
    sns.barplot(data=s, x="encoder", y="mean", hue="representation", order=encoders, hue_order=representations,
                errorbar=None, ax=ax, alpha=0.8)
    for container, rep in zip(ax.containers, representations):
        for bar, name in zip(container, encoders):
            row = s[(s["encoder"] == name) & (s["representation"] == rep)].iloc[0]
            x = bar.get_x() + bar.get_width() / 2
            ax.errorbar(x, row["mean"], yerr=[[row["mean"] - row["low"]], [row["high"] - row["mean"]]],
                        color="black", capsize=3, lw=1)
            vals = per_seed[(per_seed["encoder"] == name) & (per_seed["representation"] == rep)][metric]
            ax.scatter([x] * len(vals), vals, color="black", s=10, zorder=3)
    ax.axhline(chance, ls="--", color="gray", lw=1)
    ax.text(-0.45, chance, "chance (1/C)", ha="left", va="bottom", color="dimgray", fontsize=9, zorder=5,
            bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))
    ax.set_ylabel(ylabel)
    ax.set_xlabel("text encoder")
    ax.set_title(ylabel)
    if metric == "accuracy":
        ax.get_legend().remove()
    else:
        ax.legend(title="label representation", fontsize=8, title_fontsize=9)
fig.suptitle(f"Similarity-based zero-shot on WordNet glosses ({split} split, {len(data.classes)} classes, "
             f"{len(seeds)} seeds × {n_per_class} per class)", y=1.02)
record_figure(fig, "encoders_by_label_representation",
              "Macro-F1 and accuracy of similarity-based zero-shot classification by encoder and label "
              "representation; bars are the mean over seeds with a 95% t-interval, dots are seeds.")
plt.show()

# %% [markdown]
# ## Supplementary: do label descriptions help? (measured, not a claim of the abstract)

# %%
if "name" in representations:
    for name in encoders:
        for rep in [r for r in representations if r != "name"]:
            diffs = [macro_f1(preds[s, name, rep], labels_of[s]) - macro_f1(preds[s, name, "name"], labels_of[s])
                     for s in seeds]
            stats = across_seeds(diffs)
            record("macro_f1_gain_over_name", stats["mean"], interval=(stats["low"], stats["high"]), encoder=name,
                   representation=rep)
            print(f"{name:>12s}: {rep} − name: {describe_interval(stats)}")

# %% [markdown]
# ## Verdict
# For each simpler encoder, the paired macro-F1 gain of the sentence encoder per seed (same texts, same
# label representation), under every label representation. Per-seed paired bootstrap intervals of the
# gain are recorded too (`macro_f1_gain_bootstrap`).

# %%
for base in [e for e in encoders if e != sentence_encoder]:
    statuses, parts = [], []
    for rep in representations:
        diffs = []
        for s in seeds:
            a, b, y = preds[s, sentence_encoder, rep], preds[s, base, rep], labels_of[s]
            diffs.append(macro_f1(a, y) - macro_f1(b, y))
            ci = bootstrap_ci(lambda pa, pb, yy: macro_f1(pa, yy) - macro_f1(pb, yy), a, b, y,
                              n_resamples=n_bootstrap, seed=s)
            record("macro_f1_gain_bootstrap", diffs[-1], interval=ci, seed=s, comparison=f"{sentence_encoder} − {base}",
                   representation=rep)
        status, stats = improvement_verdict(diffs)
        statuses.append(status)
        record("macro_f1_gain", stats["mean"], interval=(stats["low"], stats["high"]),
               comparison=f"{sentence_encoder} − {base}", representation=rep, n_seeds=stats["n"])
        parts.append(f"{rep}: {describe_interval(stats)} ({status})")
    overall = ("reproduced" if all(s == "reproduced" for s in statuses)
               else "not reproduced" if "not reproduced" in statuses else "inconclusive")
    claim = (f"Similarity-based zero-shot classification with SBERT embeddings ({sentence_encoder}) beats the "
             f"same method with a simpler text representation ({base}) in macro-F1.")
    evidence = (f"macro-F1 gain {sentence_encoder} − {base} on WordNet glosses ({split}, {len(seeds)} seeds × "
                f"{n_per_class} per class): " + "; ".join(parts))
    record_verdict(claim, overall, evidence)
    print(f"{claim}\n  -> {overall}: {evidence}")
print(f"total time {time.time() - t0:.0f} s")
