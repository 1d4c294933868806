# %% [markdown]
# # Training with text descriptions, not only prompting with them
#
# **Paper.** Saha, Van Horn and Maji, *Improved Zero-Shot Classification by Adapting VLMs with Text
# Descriptions*, CVPR 2024, arXiv [2401.02460](https://arxiv.org/abs/2401.02460).
#
# **Claim.** Descriptions of a class's visual attributes used only at test time (as prompts) barely improve a
# vision-language model's zero-shot accuracy; training the model with description supervision (images paired
# with descriptions of their class, not just its name) raises zero-shot accuracy on novel classes, which it
# never saw, because the attribute words it learns to ground are shared with them.
#
# **Mechanism and control.** The knob is the training captions: class-name templates only (`captions:
# templates` in `data/models/lit.yaml`) against the same templates plus hand-written descriptions of each
# seen class (`data/descriptions/`), with the same images, steps and seeds. **Control:** the descriptions head
# at test time on the model trained on names only (descriptions as prompts, no description training).
#
# **Setting.** LiT models with a locked text tower (frozen all-MiniLM-L6-v2; an MLP image head on frozen
# EfficientNet-Lite0 features is trained), on Animal-MNIST and Fashion-MNIST with 3 classes held out of
# training entirely (images and words). The paper fine-tunes CLIP on descriptions written by a language model;
# here the descriptions are hand-written (no language model offline) and the trained part is the image head.

# %% parameters
mode: str = "offline"  # one of: offline
models: dict = {"names only": ["lit-animal-mnist-names", "lit-fashion-mnist-names"], "names + descriptions": ["lit-animal-mnist", "lit-fashion-mnist"]}  # training captions -> one model per dataset
pretrained: str = "zslab"  # pretrained tag of zslab's LiT models
datasets: list = ["animal_mnist", "fashion_mnist"]  # evaluation datasets, paired with each arm's models
heldout: list = [["cow", "giraffe", "zebra"], ["trouser", "bag", "ankle boot"]]  # held-out classes per dataset
seeds: list = [0, 1, 2, 3, 4, 5]  # one trained model per seed; also the seed of the evaluation subsample
n_per_class: int = 200  # test images per class
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import check_gain, check_mechanism, mean_over_seeds, paired_gains
from zslab.methods.heldout import HEADS, heldout_figure, heldout_runs
from zslab.papers import get_paper
from zslab.records import record_figure

paper = get_paper("description_training")
NAMES, DESCRIBED = list(models)
print(f"{paper.title} (arXiv {paper.arxiv})\narms: {models}")

# %% [markdown]
# ## Held-out top-1 per training arm, prompt head, dataset and seed (bootstrap intervals over images)

# %%
rows, scores, _ = heldout_runs(models, datasets, heldout, seeds, n_per_class, pretrained, device, n_bootstrap,
                               key="arm")
per_seed = pd.DataFrame(rows)
per_seed.pivot_table(index=["dataset", "arm"], columns="head", values="heldout_top1")[list(HEADS)].style.format("{:.1%}")

# %% [markdown]
# ## Across seeds (Student t over seeds), and the figure (cf. the paper's comparison of test-time descriptions
# with description training on novel classes)

# %%
summary = mean_over_seeds(per_seed, "heldout_top1", ["dataset", "arm", "head"])
fig = heldout_figure(per_seed, summary, datasets, heldout, list(models))
record_figure(fig, "description_training", "Zero-shot top-1 on classes held out of training, by training captions "
              "(names only vs names + descriptions) and test-time prompt head; bars: mean over seeds with 95% "
              "t-interval, dots: seeds, dashed: chance.")

# %% [markdown]
# ## Verdicts
# Paired over the same test images (t over seeds; the two arms' models share seeds, images and steps).
# Description training is judged with class-name prompts and with description prompts at test time; the
# control is the descriptions head on the names-trained model; the mechanism verdict asks whether training
# with descriptions gains more (class-name prompts) than prompting a names-trained model with them.

# %%
for dataset in datasets:
    at = {s: scores[dataset, s] for s in seeds}
    check_gain(f"{dataset}: training with descriptions raises zero-shot accuracy on held-out classes (class-name "
               "prompts)", at, f"{DESCRIBED} / class name", f"{NAMES} / class name", n_resamples=n_bootstrap,
               dataset=dataset)
    check_gain(f"{dataset}: training with descriptions raises zero-shot accuracy on held-out classes when "
               "descriptions are the test prompts too (the full method against test-time descriptions)", at,
               f"{DESCRIBED} / descriptions", f"{NAMES} / descriptions", n_resamples=n_bootstrap, dataset=dataset)
    check_gain(f"{dataset}: control, descriptions used only at test time raise a names-trained model's held-out "
               "accuracy", at, f"{NAMES} / descriptions", f"{NAMES} / class name", n_resamples=n_bootstrap,
               dataset=dataset)
    gains = pd.concat([paired_gains(at, {"gain": (f"{DESCRIBED} / class name", f"{NAMES} / class name")},
                                    arm="description training"),
                       paired_gains(at, {"gain": (f"{NAMES} / descriptions", f"{NAMES} / class name")},
                                    arm="test-time descriptions")], ignore_index=True)
    check_mechanism(f"{dataset}: description training gains more on held-out classes than test-time descriptions.",
                    gains, "gain", "description training", "test-time descriptions", paired=True, dataset=dataset)
