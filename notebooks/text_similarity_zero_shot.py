# %% [markdown]
# # Similarity-based zero-shot text classification: sentence encoders vs word vectors
#
# **Paper.** Schopf, Braun and Matthes, *Evaluating Unsupervised Text Classification: Zero-shot and
# Similarity-based Approaches*, arXiv [2211.16285](https://arxiv.org/abs/2211.16285).
#
# **Claim (from the abstract).** Similarity-based approaches classify a document by the similarity between
# its representation and the representations of the class descriptions; "using SimCSE or SBERT
# embeddings instead of simpler text representations increases similarity-based classification results
# even further".
#
# **What is checked.** Macro-F1 of similarity-based zero-shot classification with an SBERT encoder
# (all-MiniLM-L6-v2) against the same method with simpler text representations: the mean of GloVe 6B-50d
# word vectors, and WordLlama (average-pooled static token embeddings). Reproduced for a baseline when,
# under every label representation (name; description; both), the 95% interval of the paired macro-F1
# gain SBERT − baseline lies above 0. The paper's other comparison (similarity-based vs NLI zero-shot
# models) needs models that are not available offline and is not checked.
#
# **Mechanism and control.** What a sentence encoder has that an average of word vectors lacks is
# composition: it reads words in context and in order. **Control:** the same documents with their word
# order shuffled (`zslab.textdata.shuffle_word_order`), which leaves every bag-of-words representation
# unchanged. If SBERT's advantage rests on composition, it shrinks under the control; if it rests on
# better word meanings, it stays. Either way the notebook reports what comes out.
#
# **Setting.** Real text: WordNet 3.0 noun definitions labelled by lexicographer file
# (`zslab.textdata.load_gloss_task`: 12 classes), fixed validation/test split by a hash of the synset
# name, no definition that contains its own word; seeds draw the per-class sample of the test split. The
# method has no hyper-parameters and the label descriptions (`data/wordnet/gloss_task.json`) were written
# before any run. Real mode runs other sentence-transformers models (`-p encoders '["st:sentence-
# transformers/all-mpnet-base-v2", "glove-mean"]' -p sentence_encoder st:sentence-transformers/all-mpnet-base-v2`);
# `st:/path/to/folder` loads a local copy.

# %% parameters
mode: str = "offline"  # one of: offline, real
task: str = "wordnet_glosses"  # text classification task; one of: wordnet_glosses
split: str = "test"  # fixed split of the task; one of: validation, test
encoders: list = ["minilm", "glove-mean", "wordllama"]  # text encoders: minilm, glove-mean, wordllama (zslab.text) or st:FOLDER_OR_HUB_ID
sentence_encoder: str = "minilm"  # the SBERT-style encoder whose advantage over the other encoders is checked
representations: list = ["name", "description", "name+description"]  # label representations; one of: name, description, name+description
controls: list = ["none", "shuffled word order"]  # document variants; one of: none, shuffled word order
seeds: list = [0, 1, 2]  # seeds of the per-class sample (at least 3 for an interval)
n_per_class: int = 200  # test texts per class drawn for each seed
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 64  # texts per encoding batch

# %%
import pandas as pd

from zslab.analysis import check_mechanism, mean_over_seeds
from zslab.methods.similarity import check_encoder_gain, score_encoders
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record, record_figure
from zslab.text import load_text_encoder
from zslab.textdata import TEXT_CONTROLS, split_counts

paper = get_paper("text_similarity_zero_shot")
if sentence_encoder not in encoders:
    raise ValueError(f"sentence_encoder {sentence_encoder!r} must be one of the encoders {encoders}")
unknown = [c for c in controls if c not in TEXT_CONTROLS]
if unknown or "none" not in controls:
    raise ValueError(f"controls must include 'none' and come from {TEXT_CONTROLS.names()}, got {controls}")
models = {name: load_text_encoder(name) for name in encoders}
print(f"{paper.title} (arXiv {paper.arxiv})\n" + "\n".join(f"  {n}: dim {e.dim}" for n, e in models.items()))
pd.DataFrame(split_counts()).rename_axis("class")

# %% [markdown]
# ## Per seed: predict the most similar label; macro-F1 and accuracy with bootstrap intervals over texts

# %%
run = score_encoders(models, task, split, representations, controls, seeds, n_per_class, n_bootstrap, batch_size)
per_seed = run.table
record("chance", 1 / run.n_classes, n_classes=run.n_classes)
per_seed[per_seed["control"] == "none"].pivot_table(index=["encoder", "representation"], columns="seed",
                                                     values="macro_f1").style.format("{:.3f}")

# %% [markdown]
# ## Across seeds: mean and 95% interval (Student t over seeds)

# %%
summary = mean_over_seeds(per_seed, "macro_f1", ["control", "encoder", "representation"])
summary.pivot_table(index=["control", "encoder"], columns="representation", values="mean")[representations].style.format("{:.3f}")

# %% [markdown]
# ## Figure: macro-F1 by encoder and label representation, original documents and the control

# %%
fig, axes = panels(len(controls), width=6.0, sharey=True)
for ax, control in zip(axes, controls):
    bars_with_seeds(per_seed[per_seed["control"] == control], "encoder", "macro_f1", order=encoders,
                    summary=summary[summary["control"] == control], hue="representation", hue_order=representations,
                    chance=1 / run.n_classes, ax=ax, ylabel="macro-F1", title=f"documents: {control}")
record_figure(fig, "encoders_by_label_representation", "Macro-F1 of similarity-based zero-shot classification by "
              "encoder and label representation, on the documents and on the control; bars: mean over seeds with "
              "95% t-interval, dots: seeds.")

# %% [markdown]
# ## Verdicts
# For each simpler encoder: the paired macro-F1 gain of the sentence encoder (same texts, same label
# representation), per representation; reproduced when every representation's interval lies above 0.
# Then the mechanism: is the gain larger on the documents than with their word order shuffled? (Averaged
# word vectors do not change under shuffling, so this asks whether the sentence encoder loses.)

# %%
bases = [e for e in encoders if e != sentence_encoder]
for base in bases:
    check_encoder_gain(run, sentence_encoder, base, representations, seeds, n_bootstrap)
for rep in representations:
    for control in [c for c in controls if c != "none"]:
        check_mechanism(f"The {sentence_encoder} − {bases[0]} gain ({rep} labels) rests on word order: it is larger on "
                        f"the documents than with {control}.", run.gains(sentence_encoder, bases[0], rep),
                        f"{sentence_encoder} − {bases[0]}", "none", control, representation=rep)
