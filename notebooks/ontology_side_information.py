# %% [markdown]
# # OntoZSL: class semantics from an ontology against word embeddings of class names
#
# **Paper.** Geng, Chen, Chen, Pan, Li, Yuan and Chen, *OntoZSL: Ontology-enhanced Zero-shot Learning*, WWW 2021,
# arXiv [2102.07339](https://arxiv.org/abs/2102.07339). Hierarchy embeddings after Akata et al., arXiv
# [1409.8403](https://arxiv.org/abs/1409.8403).
#
# **Claim.** Class semantics built from an ontology (the class hierarchy tied to the classes' attributes) serve
# zero-shot learning better than word embeddings of the class names, with the same ZSL models (the paper's
# comparisons on AwA and ImNet-A/O with class embeddings from word2vec, the hierarchy, attributes and the ontology).
#
# **Method** (`zslab/methods/side_information.py`): one registry of class side information: the committed
# attribute matrix; the class name through GloVe (mean of word vectors), WordLlama and MiniLM; the WordNet
# hierarchy (indicators of each class's hypernym closure); and the *ontology*: hierarchy and attributes
# side by side. The paper learns its ontology embedding (TransE-style over the ontological schema, with text);
# that encoder is not built here. The ZSL models are those of `zslab/methods/gzsl.py`, hyper-parameters and
# calibration chosen on the class-split validation, identical images for every kind of side information.
#
# **Mechanism and control.** Structured knowledge states what separates the classes; a word embedding of a name
# only carries what co-occurs with the word. The hierarchy and the attributes alone are the ablations of the
# ontology, the name embeddings its control.
#
# **Setting.** Animal-MNIST and Fashion-MNIST (their classes have WordNet synsets: `data/wordnet/class_synsets.json`)
# on EfficientNet-Lite0 features, the 3 classes LiT holds out as unseen; zsworld's composed names have no synsets.

# %% parameters
mode: str = "offline"  # one of: offline
datasets: list = ["animal_mnist", "fashion_mnist"]  # datasets with WordNet synsets and attributes
features: dict = {"animal_mnist": "efficientnet-lite0", "fashion_mnist": "efficientnet-lite0"}  # image features per dataset
unseen: dict = {"animal_mnist": ["cow", "giraffe", "zebra"], "fashion_mnist": ["trouser", "bag", "ankle boot"]}  # unseen classes
sources: list = ["glove-mean", "wordllama", "minilm", "wordnet hierarchy", "attributes", "ontology"]  # zslab.methods.side_information.SIDE_INFORMATION
models: list = ["ESZSL", "ALE"]  # zslab.methods.gzsl.ZSL_MODELS
seeds: list = [0, 1, 2]  # image draws, validation splits, model initialisation
n_train: int = 200  # training images per seen class
n_test: int = 200  # test images per class
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import mean_over_seeds
from zslab.errors import check_choice
from zslab.methods.side_information import side_information_rows
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record_figure
from zslab.verdicts import judge, over_seeds

paper = get_paper("ontology_side_information")
check_choice("mode", mode, ["offline"])
WORDS = [s for s in sources if s in ("glove-mean", "wordllama", "minilm")]
print(f"{paper.title} (arXiv {paper.arxiv})\nside information {sources}, models {models}")

# %% [markdown]
# ## Every kind of side information with every model: A_U→U (among unseen classes) and calibrated GZSL H

# %%
per_seed = pd.DataFrame(side_information_rows(datasets, features, unseen, sources, models, seeds, n_train, n_test,
                                              device=device))
per_seed.pivot_table(index=["dataset", "model"], columns="side", values="zsl_unseen")[sources].style.format("{:.1%}")

# %%
per_seed.pivot_table(index=["dataset", "model"], columns="side", values="harmonic")[sources].style.format("{:.1%}")

# %% [markdown]
# ## Figure: unseen-class accuracy by side information (bars: mean over seeds with 95% t-interval; dots: seeds)

# %%
fig, axes = panels(len(datasets), width=7.0, sharey=True)
for ax, dataset in zip(axes, datasets):
    part = per_seed[per_seed["dataset"] == dataset]
    bars_with_seeds(part, "side", "zsl_unseen", order=sources, hue="model", hue_order=models, ax=ax,
                    summary=mean_over_seeds(part, "zsl_unseen", ["side", "model"], dataset=dataset),
                    chance=1 / len(unseen[dataset]), ylabel="accuracy among unseen classes (A_U→U)", title=dataset)
    ax.tick_params(axis="x", labelrotation=25, labelsize=8)
record_figure(fig, "side_information", "ZSL accuracy on the unseen classes with each kind of class side "
              "information, per model; dashed: chance.")

# %% [markdown]
# ## Verdicts
# Per dataset, each seed's mean over the models, paired over seeds (t-interval). The ontology against the best of
# the word embeddings in that run (chosen per dataset on the test results, which favours the words), then
# against each of its two parts.

# %%
for dataset in datasets:
    mean = per_seed[per_seed["dataset"] == dataset].groupby(["seed", "side"])[["zsl_unseen", "harmonic"]].mean()
    acc = mean["zsl_unseen"].unstack()
    best_words = acc[WORDS].mean().idxmax()
    context = f"{dataset}, mean over {', '.join(models)}"
    judge(f"{dataset}: ontology side information beats the best word embedding of the names ({best_words}) on A_U→U.",
          over_seeds((acc["ontology"] - acc[best_words]).tolist()), metric="gain", dataset=dataset,
          comparison=f"ontology − {best_words}", context=context)
    h = mean["harmonic"].unstack()
    judge(f"{dataset}: ontology side information beats the best word embedding on calibrated GZSL H.",
          over_seeds((h["ontology"] - h[best_words]).tolist()), metric="h_gain", dataset=dataset,
          comparison=f"ontology − {best_words}", context=context)
    judge(f"{dataset}: the hierarchy adds to the attributes (ontology − attributes, A_U→U).",
          over_seeds((acc["ontology"] - acc["attributes"]).tolist()), metric="gain", dataset=dataset,
          comparison="ontology − attributes", context=context)
    judge(f"{dataset}: the hierarchy alone beats the best word embedding (A_U→U).",
          over_seeds((acc["wordnet hierarchy"] - acc[best_words]).tolist()), metric="gain", dataset=dataset,
          comparison=f"wordnet hierarchy − {best_words}", context=context)
