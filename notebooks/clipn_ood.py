# %% [markdown]
# # Zero-shot OOD detection: maximum softmax probability, and a CLIP taught to say no
#
# **Papers.** Hendrycks and Gimpel, *A Baseline for Detecting Misclassified and Out-of-Distribution Examples in
# Neural Networks*, ICLR 2017, arXiv [1610.02136](https://arxiv.org/abs/1610.02136) (MSP); Wang et al., *CLIPN
# for Zero-Shot OOD Detection: Teaching CLIP to Say No*, ICCV 2023, arXiv [2308.12213](https://arxiv.org/abs/2308.12213).
#
# **Claims.** The maximum softmax probability is a working OOD baseline: in-distribution (ID) images get
# higher top probabilities than OOD ones (AUROC above 0.5). CLIPN adds a "no" text tower, trained with the
# image-text binary-opposite and text semantic-opposite losses while CLIP stays frozen, and scores OOD with
# "no" prompts (competing-to-win, CTW; agreeing-to-differ, ATD); it beats MSP and other zero-shot detectors:
# AUROC up, FPR at 95% TPR down.
#
# **Mechanism and control.** The gain comes from *learning* negation: the no tower is trained so that "a photo
# of no {caption}" wins against "a photo of a {caption}" for every image but the caption's own.
# **Control:** the same "no" prompts read by CLIP's own, untrained text tower (a CLIP never saw "no" in a
# caption), scored the same way.
#
# **Setting.** Offline: `zsclip-tiny` (one model per seed). ID = zsworld's unseen compositions whose shape is
# a circle, square or triangle, known by their class names only; near-OOD = the unseen compositions of the
# other three shapes (same colors and patterns); far-OOD = Animal-MNIST silhouettes. The no tower is a copy
# of the text tower trained on a fresh draw of the model's own training world (`zslab/train/negation.py`;
# CLIPN trains on CC3M), cached per model. Real mode (training-free scores only: no tower needs zsworld's
# captions): `--mode real -p model ViT-B-32 -p pretrained laion2b_s34b_b79k -p dataset imagenet -p data_root
# /data/imagenet -p split val -p id_words '[]' -p ood_sets '["imagefolder|test|"]'`.

# %% parameters
mode: str = "offline"  # one of: offline, real
model: str = "zsclip-tiny"  # zslab offline model, open_clip architecture, local-dir:PATH or hf-hub:ID
pretrained: str = "zsworld"  # pretrained tag (zsworld for offline models) or a checkpoint file
dataset: str = "zsworld"  # the ID dataset
data_root: str = ""  # its folder, for stored datasets
split: str = "unseen"  # its split
id_words: list = ["circle", "square", "triangle"]  # ID classes: names with any of these words ([] keeps all)
ood_sets: list = ["zsworld|unseen|cross,ring,diamond", "animal_mnist|test|"]  # dataset|split|words
ood_root: str = ""  # folder of stored OOD datasets
seeds: list = [0, 1, 2, 3, 4]  # offline: one trained model (and no tower) per seed; real: subsamples
n_per_class: int = 100  # ID (and same-dataset OOD) images per class
ood_per_class: int = 100  # images per class of the other OOD datasets
tower_steps: int = 200  # no-tower training steps (batch 128)
tower_images: int = 4000  # fresh scenes of the model's world the no tower trains on
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd
import torch

from zslab.analysis import mean_over_seeds
from zslab.evaluation import encode_eval_set
from zslab.methods.ood import METHODS, classes_with_words, clipn_no_tower, ood_scores, ood_table
from zslab.papers import get_paper
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record, record_figure
from zslab.train.negation import NoTowerConfig, load_prompt_pairs
from zslab.verdicts import judge, over_seeds
from zslab.zeroshot import build_classifier

paper = get_paper("clipn_ood")
yes_prompts, no_prompts = ([t.replace("{}", "{c}") for t in ts] for ts in load_prompt_pairs())
tower_cfg = NoTowerConfig(steps=tower_steps)
print(f"{paper.title} (arXiv {paper.arxiv}, with {paper.related_arxiv})\n{len(yes_prompts)} yes/no prompt pairs; "
      f"OOD sets: {ood_sets}")

# %% [markdown]
# ## AUROC and FPR@95 of every score, per OOD set and seed

# %%
rows, accuracy = [], []
for seed in seeds:
    run = encode_eval_set(model, pretrained, dataset, split, seed, n_per_class, data_root, batch_size=batch_size,
                          device=device)
    id_index = classes_with_words(run.dataset.classes, id_words)
    id_names = [run.dataset.classes[i] for i in id_index]
    is_id = torch.isin(run.labels, torch.tensor(id_index))
    yes_w = build_classifier(run.encode_text, id_names, yes_prompts)
    heads = {"untrained no prompts: ": build_classifier(run.encode_text, id_names, no_prompts)}
    if mode == "offline":
        tower = clipn_no_tower(run.model, tower_cfg, tower_images, seed)
        heads[""] = build_classifier(tower.encode_text, id_names, no_prompts)
    id_labels = torch.tensor([id_index.index(int(y)) for y in run.labels[is_id]])
    accuracy.append({"seed": seed, "id_top1": float(((run.features[is_id] @ yes_w.T).argmax(1) == id_labels).float().mean())})
    for entry in ood_sets:
        name, ood_split, words = entry.split("|")
        if (name, ood_split) == (dataset, split):
            ood_features = run.features[torch.isin(run.labels, torch.tensor(
                classes_with_words(run.dataset.classes, [w for w in words.split(",") if w])))]
        else:
            other = encode_eval_set(model, pretrained, name, ood_split, seed, ood_per_class, ood_root,
                                    batch_size=batch_size, device=device)
            ood_features = other.features[torch.isin(other.labels, torch.tensor(
                classes_with_words(other.dataset.classes, [w for w in words.split(",") if w])))]
        for prefix, no_w in heads.items():
            in_s = ood_scores(run.features[is_id], yes_w, run.model.logit_scale, no_w)
            out_s = ood_scores(ood_features, yes_w, run.model.logit_scale, no_w)
            rows += ood_table(in_s, out_s, prefix, seed=seed, ood_set=entry, n_id=int(is_id.sum()),
                              n_ood=len(ood_features))
per_seed = pd.DataFrame(rows)
per_seed = per_seed[per_seed["method"] != "untrained no prompts: MSP"]     # MSP does not read the no prompts
record("n_id_classes", len(id_names))
mean_over_seeds(pd.DataFrame(accuracy).assign(head="yes prompts"), "id_top1", ["head"])
per_seed.pivot_table(index=["ood_set", "seed"], columns="method", values="auroc").round(3)

# %% [markdown]
# ## Across seeds (Student t over seeds)

# %%
auroc = mean_over_seeds(per_seed, "auroc", ["ood_set", "method"])
fpr95 = mean_over_seeds(per_seed, "fpr95", ["ood_set", "method"])
pd.concat([auroc.set_index(["ood_set", "method"])["mean"].rename("AUROC"),
           fpr95.set_index(["ood_set", "method"])["mean"].rename("FPR@95")], axis=1).round(3)

# %% [markdown]
# ## Figure: AUROC and FPR@95 per score and OOD set (cf. the paper's Table 1 rows for MSP and CLIPN)

# %%
fig, axes = panels(2, width=7.0)
order = [m for m in ["MSP", "untrained no prompts: CLIPN (CTW)", "untrained no prompts: CLIPN (ATD)", *METHODS[1:]]
         if m in set(per_seed["method"])]
bars_with_seeds(per_seed, "method", "auroc", order=order, summary=auroc, hue="ood_set", ax=axes[0], chance=0.5,
                ylabel="AUROC (ID vs OOD)", title=f"{model}: ID = {', '.join(id_words) or 'all classes'}")
bars_with_seeds(per_seed, "method", "fpr95", order=order, summary=fpr95, hue="ood_set", ax=axes[1],
                ylabel="FPR at 95% TPR", title="false positives at 95% true positives (lower is better)")
for ax in axes:
    ax.tick_params(axis="x", labelrotation=20)
record_figure(fig, "clipn_ood", "AUROC (left) and FPR at 95% TPR (right) of each ID-ness score, per OOD set: "
              "bars are means over seeds with 95% t-intervals, dots single seeds; the dotted line is chance.")

# %% [markdown]
# ## Verdicts
# Per OOD set, over seeds (each seed its own CLIP and no tower): reproduced when the 95% interval of the
# difference lies above zero.

# %%
wide_auroc = per_seed.pivot_table(index=["ood_set", "seed"], columns="method", values="auroc")
wide_fpr = per_seed.pivot_table(index=["ood_set", "seed"], columns="method", values="fpr95")
for entry in ood_sets:
    a, f = wide_auroc.loc[entry], wide_fpr.loc[entry]
    context = f"{model}; ID {dataset}/{split} ({', '.join(id_words) or 'all'}), OOD {entry}"
    judge(f"MSP is a working OOD baseline: AUROC above chance (OOD: {entry}).", over_seeds(a["MSP"] - 0.5),
          metric="auroc_minus_chance", context=context, score="MSP", ood_set=entry)
    if "CLIPN (ATD)" in a:
        judge(f"CLIPN (ATD) beats MSP in AUROC (OOD: {entry}).", over_seeds(a["CLIPN (ATD)"] - a["MSP"]),
              metric="auroc_gain", context=context, score="CLIPN (ATD)", baseline="MSP", ood_set=entry)
        judge(f"CLIPN (ATD) lowers the FPR at 95% TPR against MSP (OOD: {entry}).",
              over_seeds(f["MSP"] - f["CLIPN (ATD)"]), metric="fpr95_reduction", context=context,
              score="CLIPN (ATD)", baseline="MSP", ood_set=entry)
    if "untrained no prompts: CLIPN (ATD)" in a:
        judge(f"Control: the gain comes from the trained no tower; the same no prompts read by CLIP's own text "
              f"tower score lower AUROC (ATD; OOD: {entry}).",
              over_seeds(a["CLIPN (ATD)"] - a["untrained no prompts: CLIPN (ATD)"]), metric="auroc_gain",
              context=context, score="CLIPN (ATD)", baseline="untrained no prompts (ATD)", ood_set=entry)
