# %% [markdown]
# # The neglected tails: zero-shot accuracy follows pretraining concept frequency; REAL-Prompt
#
# **Paper.** Parashar et al., *The Neglected Tails in Vision-Language Models*, CVPR 2024, arXiv
# [2401.12425](https://arxiv.org/abs/2401.12425).
#
# **Claims.** A concept's zero-shot accuracy tracks how often it occurs in the pretraining captions (counting
# its synonyms); and prompting with the concept's *most frequent* synonym in the pretraining data (REAL-Prompt)
# instead of the name the benchmark uses raises zero-shot accuracy, most for names the model rarely saw.
#
# **Mechanism.** Frequency is a knob of the world: concepts are drawn with Zipf-like frequencies
# (`concept_zipf`), and a caption uses a concept's synonym instead of its name at `synonym_rate` (box for square,
# disc for circle, stripy for striped, ...). Counts come from the model's own training captions. The
# benchmark's names (`dataset_names`) use the rarer synonym for some concepts; REAL-Prompt looks up the most
# frequent word per concept in the counts. **Control:** concepts the benchmark already names by their most
# frequent word, in the same factors: REAL-Prompt changes nothing in their prompts, so any change in their
# accuracy comes only through the renamed competitors.
#
# **Setting.** Offline: `zsclip-tiny` (one model per seed, shared with the CLIP notebook) on zsworld images of
# all compositions. Each concept (8 colors, 4 patterns, 6 shapes) is recognised among its factor's concepts by a
# factor head: the mean text embedding over every composition that contains it. Accuracy is each concept's
# recall; its frequency is the number of training captions mentioning it. Offline models only: real mode would
# need pretraining caption counts (the paper's LAION counts), which zslab does not ship.

# %% parameters
mode: str = "offline"  # one of: offline; real mode needs pretraining caption counts
model: str = "zsclip-tiny"  # zslab offline model (its training captions are counted)
pretrained: str = "zsworld"  # pretrained tag (zsworld for offline models)
seeds: list = [0, 1, 2, 3, 4, 5]  # one trained model per seed
n_per_class: int = 10  # images per composition (192 compositions)
template: str = "a photo of a {c}."  # the prompt of every composition
dataset_names: dict = {"square": "box", "circle": "disc", "striped": "stripy", "checked": "checkered"}  # the benchmark's names where they differ from the canonical word
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import numpy as np
import pandas as pd

from zslab.analysis import check_gain, mean_over_seeds, record_scores
from zslab.evaluation import encode_eval_set
from zslab.methods.concept_frequency import (concept_labels, factor_correct, factor_prompts, frequency_table,
                                             most_frequent_names, per_concept_recall, renamed,
                                             training_corpus_statistics, within_group_slope)
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels, scatter_groups
from zslab.records import record, record_figure
from zslab.verdicts import judge, over_seeds
from zslab.world import load_world_spec

paper = get_paper("neglected_tails")
spec = load_world_spec()
FACTORS = ["color", "pattern", "shape"]
RENAMED = renamed(dataset_names)
print(f"{paper.title} (arXiv {paper.arxiv})\nconcepts the benchmark names by a synonym: {dataset_names}")

# %% [markdown]
# ## Per concept: training-caption count and recall under the benchmark's names and under REAL-Prompt

# %%
rows, scores, slopes = [], {}, []
for seed in seeds:
    run = encode_eval_set(model, pretrained, "zsworld", "all", seed, n_per_class, batch_size=batch_size, device=device)
    stats = training_corpus_statistics(run.model)
    count = {r["concept"]: r["n_captions"] for r in stats}
    namings = {"benchmark names": dataset_names, "REAL-Prompt": most_frequent_names(stats)}
    correct = {naming: {"renamed": [], "not renamed": []} for naming in namings}
    for factor in FACTORS:
        concept_of_image = concept_labels(run.dataset.classes, run.labels, factor, spec)
        concepts = list(spec.factor_values(factor))
        for naming, names in namings.items():
            hit = factor_correct(run.encode_text, run.features, concept_of_image,
                                 factor_prompts(spec, factor, names, template))
            for concept, recall in per_concept_recall(hit, concept_of_image, concepts).items():
                rows.append({"seed": seed, "factor": factor, "concept": concept, "naming": naming, "recall": recall,
                             "n_captions": count[concept], "named": names.get(concept, concept),
                             "renamed": concept in RENAMED})
            if any(c in RENAMED for c in concepts):
                in_renamed = np.isin(concept_of_image, [concepts.index(c) for c in concepts if c in RENAMED])
                correct[naming]["renamed"].append(hit[in_renamed])
                correct[naming]["not renamed"].append(hit[~in_renamed])
    for group in ("renamed", "not renamed"):
        scores[group, seed] = {naming: np.concatenate(parts[group]) for naming, parts in correct.items()}
        record_scores(scores[group, seed], seed, metric="concept_top1", key="naming", n_bootstrap=n_bootstrap,
                      concepts=group)
    here = pd.DataFrame([r for r in rows if r["seed"] == seed])
    for naming in namings:
        part = here[here["naming"] == naming]
        slope = within_group_slope(np.log10(part["n_captions"]), part["recall"], part["factor"])
        slopes.append({"seed": seed, "naming": naming, "slope": slope})
        record("recall_per_decade", slope, seed=seed, naming=naming)
per_concept = pd.DataFrame(rows)
per_concept[per_concept["seed"] == seeds[0]].pivot_table(index=["factor", "concept", "n_captions"], columns="naming",
                                                        values="recall").style.format("{:.1%}")

# %% [markdown]
# ## Across seeds: recall per tenfold frequency (slope within factors) and the REAL-Prompt gain

# %%
slope_summary = mean_over_seeds(pd.DataFrame(slopes), "slope", ["naming"], metric="recall_per_decade_mean_over_seeds")
concept_summary = mean_over_seeds(per_concept, "recall", ["factor", "concept", "naming"])
slope_summary

# %% [markdown]
# ## Figure: recall against training-caption count (cf. the paper's accuracy-vs-frequency plots), and the
# renamed concepts under the benchmark's names and under REAL-Prompt

# %%
real = frequency_table(per_concept, "REAL-Prompt")
fig, axes = panels(2)
scatter_groups(real, "log10_captions", "recall", hue="factor", ax=axes[0], xlabel="log10 training captions naming the concept",
               ylabel="recall among the factor's concepts", title=f"{model}: one dot per concept (mean over seeds)")
bars_with_seeds(per_concept[per_concept["concept"].isin(RENAMED)], "concept", "recall", order=RENAMED, hue="naming",
                ax=axes[1], ylabel="recall", title="concepts the benchmark names by a rarer synonym")
record_figure(fig, "neglected_tails", "Left: each concept's zero-shot recall (REAL-Prompt names) against how many "
              "training captions name it. Right: recall of the concepts the benchmark names by a synonym, under the "
              "benchmark's names and under REAL-Prompt; dots are seeds.")

# %% [markdown]
# ## Verdicts

# %%
where = f"{model}, zsworld concepts"
by_naming = pd.DataFrame(slopes)
judge("Zero-shot recall grows with the concept's training-caption frequency (slope per tenfold count, within "
      "factors, REAL-Prompt names).", over_seeds(by_naming[by_naming["naming"] == "REAL-Prompt"]["slope"].tolist()),
      metric="recall_per_decade", context=where, naming="REAL-Prompt")
check_gain("REAL-Prompt (each concept's most frequent word) beats the benchmark's rarer names on the renamed "
           "concepts.", {s: sc for (g, s), sc in scores.items() if g == "renamed"}, "REAL-Prompt", "benchmark names",
           n_resamples=n_bootstrap, context=where, concepts="renamed")
check_gain("Control: on concepts the benchmark already names by their most frequent word, REAL-Prompt changes "
           "recall by less than 1 pt.", {s: sc for (g, s), sc in scores.items() if g == "not renamed"}, "REAL-Prompt",
           "benchmark names", n_resamples=n_bootstrap, context=where, equivalence_margin=0.01, concepts="not renamed")
