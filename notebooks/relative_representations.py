# %% [markdown]
# # Relative representations: zero-shot stitching of encoders trained from different seeds
#
# **Paper.** Moschella, Maiorca, Fumero, Norelli, Locatello and Rodolà, *Relative representations enable
# zero-shot latent space communication*, ICLR 2023, arXiv [2209.15430](https://arxiv.org/abs/2209.15430).
#
# **Claim.** Encoders trained alike from different seeds embed the data in incoherent latent spaces, yet the
# angles between the encodings barely change. Representing each sample by its cosine similarities to a fixed
# set of anchor samples (its *relative* representation) makes the spaces comparable and enables zero-shot
# model stitching: a decoder trained on one encoder's relative representations reads another encoder's,
# with no further training, where absolute representations fail.
#
# **Mechanism and control.** Stitching works because both encoders see the *same* anchor images, so the
# coordinates of a relative representation mean the same thing on both sides. **Control:** the stitched
# encoder uses other anchor images (unmatched anchors); the coordinates then lose their meaning.
#
# **Setting.** Offline: the image towers of `zsclip-tiny` trained from different seeds (the models every other
# notebook uses), paired as (seed 0, seed 1), (2, 3), … so that pairs share no model and are independent.
# The decoder is a linear softmax probe (`zslab.train.probe`, standardised inputs) fitted on encoder A's
# features of a training draw of zsworld's unseen compositions; it is tested on a disjoint test draw encoded
# by A (same encoder) and by B (stitched). Anchors: random training images, encoded by each encoder.

# %% parameters
mode: str = "offline"  # one of: offline
model: str = "zsclip-tiny"  # zslab offline model; seeds are paired in order
pretrained: str = "zsworld"  # pretrained tag of offline models
dataset: str = "zsworld"  # a zsworld dataset
split: str = "unseen"  # classes of the decoder's task
seeds: list = [0, 1, 2, 3, 4, 5]  # trained models, paired in order: decoder encoder, stitched encoder
n_train_per_class: int = 50  # training images per class for the decoder
n_per_class: int = 100  # test images per class
n_anchors: int = 300  # anchor images, drawn from the training images
train_sample_seed: int = 1000  # draw of the training images, disjoint from the test draw
equivalence_margin: float = 0.05  # stitched relative decoding agrees with the same encoder within this margin
n_bootstrap: int = 1000  # bootstrap resamples for per-pair intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import numpy as np
import pandas as pd
import torch

from zslab.analysis import check_gain, mean_over_seeds, record_scores
from zslab.evaluation import encode_eval_set
from zslab.methods.relative import STITCHING_ARMS, matched_cosine, relative_representation, stitching_scores
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record, record_figure

paper = get_paper("relative_representations")
PAIRS = list(zip(seeds[0::2], seeds[1::2]))
ARMS = list(STITCHING_ARMS)
print(f"{paper.title} (arXiv {paper.arxiv})\nencoder pairs (decoder's, stitched): {PAIRS}")

# %% [markdown]
# ## Decoding accuracy per arm and encoder pair (bootstrap intervals over the test images; a pair is
# recorded under its decoder's seed)

# %%
scores, similarity, rows = {}, {}, []
for a, b in PAIRS:
    train = {s: encode_eval_set(model, pretrained, dataset, split, s, n_train_per_class, batch_size=batch_size,
                                device=device, sample_seed=train_sample_seed + a) for s in (a, b)}
    test = {s: encode_eval_set(model, pretrained, dataset, split, s, n_per_class, batch_size=batch_size,
                               device=device, sample_seed=a) for s in (a, b)}
    assert torch.equal(train[a].labels, train[b].labels) and torch.equal(test[a].labels, test[b].labels)
    order = torch.randperm(len(train[a].labels), generator=torch.Generator().manual_seed(a))
    anchors, other = order[:n_anchors], order[n_anchors:2 * n_anchors]
    scores[a] = stitching_scores(train[a].features, train[a].labels, test[a].features, test[b].features,
                                    test[a].labels, train[a].features[anchors], train[b].features[anchors],
                                    train[b].features[other], len(test[a].dataset.classes))
    similarity[a] = {
        "absolute": np.array([matched_cosine(test[a].features, test[b].features)]),
        "relative": np.array([matched_cosine(relative_representation(test[a].features, train[a].features[anchors]),
                                             relative_representation(test[b].features, train[b].features[anchors]))]),
    }
    rows += record_scores(scores[a], a, key="arm", n_bootstrap=n_bootstrap, pair=f"{a}→{b}", dataset=dataset,
                          split=split)
chance = 1 / len(test[a].dataset.classes)
record("chance", chance, n_classes=len(test[a].dataset.classes))
per_pair = pd.DataFrame(rows)
per_pair.pivot_table(index="pair", columns="arm", values="top1")[ARMS].style.format("{:.1%}")

# %% [markdown]
# ## Across pairs (Student t over the independent pairs), and how alike the two latent spaces are

# %%
summary = mean_over_seeds(per_pair, "top1", ["arm"])
sim_rows = pd.DataFrame([{"seed": p, "representation": k, "cosine": float(v[0])}
                         for p, by_kind in similarity.items() for k, v in by_kind.items()])
sim_summary = mean_over_seeds(sim_rows, "cosine", ["representation"], metric="matched_cosine_mean_over_pairs")
summary.set_index("arm").loc[ARMS, ["mean", "low", "high"]].style.format("{:.1%}")

# %%
sim_summary

# %% [markdown]
# ## Figure (cf. the paper's stitching tables): accuracy per arm, and the cross-seed similarity of the same image

# %%
fig, axes = panels(2)
bars_with_seeds(per_pair, "arm", "top1", order=ARMS, summary=summary, chance=chance, ax=axes[0],
                ylabel="decoding top-1", title=f"{model}: decoder on one seed's encoder, tested on another's")
axes[0].tick_params(axis="x", labelrotation=20)
bars_with_seeds(sim_rows, "representation", "cosine", order=["absolute", "relative"], summary=sim_summary,
                ax=axes[1], ylabel="cosine of the same image's two encodings", zero_line=True,
                title="latent spaces of two seeds, absolute vs relative")
record_figure(fig, "stitching", "Left: top-1 of a linear decoder per arm; dots are encoder pairs, bars the mean with "
              "its 95% interval. Right: mean cosine between the two encoders' representations of the same test "
              "image, absolute and relative (same anchor images).")

# %% [markdown]
# ## Verdicts
# Judged on the 95% t-interval over the independent encoder pairs: reproduced when it lies above zero, not
# reproduced when below, inconclusive when it contains zero. The "costs little" claim is an equivalence
# check with the margin set before the run (`equivalence_margin`).

# %%
context = f"{model}, {len(PAIRS)} encoder pairs on {dataset}/{split}"
check_gain("Relative representations stitch: a decoder trained on one seed reads another seed's relative "
           "representations better than its absolute ones.", scores, "relative, stitched", "absolute, stitched",
           n_resamples=n_bootstrap, context=context)
check_gain("Stitching relative representations costs little: within the margin of the same encoder.", scores,
           "relative, stitched", "relative, same encoder", n_resamples=n_bootstrap, context=context,
           equivalence_margin=equivalence_margin)
check_gain("The angles survive a change of seed: the same image's relative representations are more alike "
           "across seeds than its absolute ones.", similarity, "relative", "absolute", context=context,
           metric="cosine_gain", scale=1.0, unit="")
check_gain("Control: stitching needs the same anchor images on both sides (matched beat unmatched anchors).",
           scores, "relative, stitched", "relative, stitched, unmatched anchors", n_resamples=n_bootstrap,
           context=context)
