# %% [markdown]
# # Loki: predicting with the Fréchet mean over a label metric
#
# **Paper.** Roberts et al., *Geometry-Aware Adaptation for Pretrained Models*, NeurIPS 2023, arXiv
# [2307.12226](https://arxiv.org/abs/2307.12226).
#
# **Claim.** Replacing argmax by the Fréchet mean of the class probabilities under a metric on the labels
# lowers the expected squared distance between prediction and truth, with no training; it names classes the
# model never scored (observed classes ⊂ label space), and with no external metric a self-derived one (distances
# between the classes' text embeddings) still helps a zero-shot CLIP ("10.5% improvement", abstract).
#
# **Mechanism.** The gain needs a metric that says which classes are alike the way the model's confusions do.
# The **control** is the same metric with the classes relabelled at random (same distances, no meaning).
#
# **Setting.** Offline: `zsclip-tiny` (one model per seed) on zsworld's unseen compositions; the label metric
# is the Euclidean distance between class attribute vectors (`data/attributes/zsworld.json`: color levels,
# pattern and shape features), which also scores every prediction (expected squared distance, lower is
# better). The classifier scores only an observed fraction of the classes (a seeded subset per seed); Loki
# predicts over all of them. Probabilities are the model's softmax at its own logit scale. Real mode:
# `--mode real -p model ViT-B-32 -p pretrained laion2b_s34b_b79k -p dataset cifar100 -p split test
# -p task_metric 'text embeddings' -p loki_metrics '["text embeddings"]'`.

# %% parameters
mode: str = "offline"  # one of: offline, real
model: str = "zsclip-tiny"  # zslab offline model, open_clip architecture, local-dir:PATH or hf-hub:ID
pretrained: str = "zsworld"  # pretrained tag (zsworld for offline models) or a checkpoint file
dataset: str = "zsworld"  # a name from `zslab list datasets`
data_root: str = ""  # folder of a stored dataset; empty means its default place
split: str = "unseen"  # the zero-shot test split
seeds: list = [0, 1, 2, 3, 4, 5]  # offline: one trained model per seed; also the observed subset's seed
n_per_class: int = 50  # test images per class (0 keeps every image)
observed_fractions: list = [0.25, 0.5, 1.0]  # share of the classes the classifier scores
task_metric: str = "attributes"  # the metric that scores predictions: attributes, wordnet, text embeddings
loki_metrics: list = ["attributes", "text embeddings"]  # metrics Loki predicts with (the control is added)
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import check_gain, mean_over_seeds, record_scores, relative_reduction
from zslab.datasets import load_templates
from zslab.evaluation import encode_eval_set
from zslab.methods.loki import evaluate_rules, label_metric, observed_subset, shuffled_metric
from zslab.papers import get_paper
from zslab.plotting import line_with_intervals, panels
from zslab.records import record, record_figure
from zslab.verdicts import judge, over_seeds
from zslab.zeroshot import build_classifier, logits

paper = get_paper("loki_frechet")
CONTROL = f"{task_metric}, relabelled (control)"
print(f"{paper.title} (arXiv {paper.arxiv})\ntask metric: {task_metric}; Loki metrics: {loki_metrics} + control")

# %% [markdown]
# ## Expected squared distance and top-1 of each rule, per observed fraction and seed

# %%
scores, rows, unobserved_rows = {}, [], []
for seed in seeds:
    run = encode_eval_set(model, pretrained, dataset, split, seed, n_per_class, data_root, batch_size=batch_size,
                          device=device)
    classes = list(run.dataset.classes)
    classifier = build_classifier(run.encode_text, classes, load_templates(dataset))
    truth_metric = label_metric(task_metric, dataset, classes, classifier)
    metrics = {m: label_metric(m, dataset, classes, classifier) for m in loki_metrics}
    metrics[CONTROL] = shuffled_metric(truth_metric, seed)
    cosines = logits(run.features, classifier, scale=1.0)
    for fraction in observed_fractions:
        observed = observed_subset(len(classes), max(1, round(fraction * len(classes))), seed)
        result = evaluate_rules(cosines, run.labels, observed, metrics, truth_metric, run.model.logit_scale)
        scores[fraction, seed] = {rule: r["neg_sq_distance"] for rule, r in result.items()}
        labels = dict(observed_fraction=fraction, n_observed=len(observed), dataset=dataset)
        rows += record_scores({rule: -r["neg_sq_distance"] for rule, r in result.items()}, seed, metric="sq_distance",
                              key="rule", n_bootstrap=n_bootstrap, **labels)
        rows += record_scores({rule: r["correct"] for rule, r in result.items()}, seed, metric="top1", key="rule",
                              n_bootstrap=n_bootstrap, **labels)
        unseen_items = ~pd.Series(run.labels.numpy()).isin(observed).to_numpy()
        if unseen_items.any():
            unobserved_rows += [{"seed": seed, "observed_fraction": fraction, "rule": rule,
                                 "unobserved_top1": float(r["correct"][unseen_items].mean())} for rule, r in result.items()]
RULES = list(result)
per_seed = pd.DataFrame(rows)
record("chance", 1 / len(classes), n_classes=len(classes))
per_seed.pivot_table(index=["observed_fraction", "seed"], columns="rule", values="sq_distance")[RULES].style.format("{:.3f}")

# %% [markdown]
# ## Across seeds (Student t over the seeds' separately trained models)

# %%
msd = mean_over_seeds(per_seed.dropna(subset=["sq_distance"]), "sq_distance", ["observed_fraction", "rule"])
top1 = mean_over_seeds(per_seed.dropna(subset=["top1"]), "top1", ["observed_fraction", "rule"])
unobserved = mean_over_seeds(pd.DataFrame(unobserved_rows), "unobserved_top1", ["observed_fraction", "rule"]) \
    if unobserved_rows else pd.DataFrame()
reduction = mean_over_seeds(relative_reduction(per_seed, "sq_distance", "rule", "argmax", ["observed_fraction"]),
                            "relative_reduction", ["observed_fraction", "rule"])
msd.pivot_table(index="observed_fraction", columns="rule", values="mean")[RULES].style.format("{:.3f}")

# %% [markdown]
# ## Figure: expected squared distance and top-1 against the observed share of classes (cf. the paper's
# comparisons of argmax and Loki)

# %%
fig, axes = panels(3)
line_with_intervals(msd, "observed_fraction", hue="rule", ax=axes[0], ylabel=f"expected squared distance ({task_metric})",
                    title=f"{model} on {dataset}/{split} (lower is better)")
line_with_intervals(top1, "observed_fraction", hue="rule", ax=axes[1], ylabel="top-1 over all classes",
                    title="exact hits")
if len(unobserved):
    line_with_intervals(unobserved, "observed_fraction", hue="rule", ax=axes[2], ylabel="top-1 on never-scored classes",
                        title="images of classes the classifier does not score")
record_figure(fig, "loki_rules", "Argmax vs Loki (Fréchet mean) under each label metric and the relabelled control: "
              "expected squared distance, top-1, and top-1 on images of unobserved classes (argmax: 0 by "
              "construction); mean over seeds with 95% t-intervals.")

# %% [markdown]
# ## Verdicts
# Paired over the same images (gains in squared distance, positive = Loki closer to the truth), t over seeds.

# %%
context = f"{model} on {dataset}/{split}"
for fraction in observed_fractions:
    at = {s: sc for (f, s), sc in scores.items() if f == fraction}
    check_gain(f"With {fraction:.0%} of the classes observed, Loki ({task_metric}) lowers the expected squared "
               "distance below argmax.", at, f"Loki ({task_metric})", "argmax", n_resamples=n_bootstrap,
               metric="sq_distance_reduction", context=context, scale=1.0, unit="", observed_fraction=fraction)
    check_gain(f"The gain needs the metric's meaning: Loki with the true {task_metric} metric beats the relabelled "
               f"one ({fraction:.0%} observed).", at, f"Loki ({task_metric})", f"Loki ({CONTROL})",
               n_resamples=n_bootstrap, metric="sq_distance_reduction", context=context, scale=1.0, unit="",
               observed_fraction=fraction)
if "text embeddings" in loki_metrics and 1.0 in observed_fractions:
    check_gain("With every class observed, Loki with the self-derived metric (text embeddings) lowers the expected "
               "squared distance below argmax.", {s: sc for (f, s), sc in scores.items() if f == 1.0},
               "Loki (text embeddings)", "argmax", n_resamples=n_bootstrap, metric="sq_distance_reduction",
               context=context, scale=1.0, unit="", observed_fraction=1.0)
if len(unobserved):
    smallest = min(f for f in observed_fractions if f < 1.0)
    for metric_name in loki_metrics:
        rows_here = pd.DataFrame(unobserved_rows)
        values = rows_here[(rows_here["rule"] == f"Loki ({metric_name})") & (rows_here["observed_fraction"] == smallest)]
        judge(f"Loki ({metric_name}) names classes the classifier never scored: its top-1 on their images "
              f"({smallest:.0%} observed) is above chance over all classes.",
              over_seeds((values["unobserved_top1"] - 1 / len(classes)).tolist()),
              metric="unobserved_top1_minus_chance", context=context, observed_fraction=smallest,
              rule=f"Loki ({metric_name})")
