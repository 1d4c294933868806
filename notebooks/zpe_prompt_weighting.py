# %% [markdown]
# # ZPE: weighting a prompt pool without labels
#
# **Paper.** Allingham et al., *A Simple Zero-shot Prompt Weighting Technique to Improve Prompt Ensembling in
# Text-Image Models* (ZPE), ICML 2023, arXiv [2302.06235](https://arxiv.org/abs/2302.06235).
#
# **Claim.** Given a large pool of prompts, scoring each prompt on the unlabelled test images and weighting the
# ensemble by the scores matches or beats the equal-weight ensemble and hand-made prompts, fully automatically;
# the naive score (the max logit over classes, averaged over test images) is biased by pretraining, and ZPE
# corrects it by subtracting the same score on pretraining-distribution images.
#
# **Mechanism.** A label-free score helps only when the pool holds prompts worth down-weighting. The knob is the
# pool's contents: the hand-made zsworld set (12 templates) plus the first *k* of 8 **poor** prompts
# (`data/templates/zsworld.json`, set `poor`): each names a second object beside the class ("a blue dotted ring
# and a {c}"), in the captions' own words, so its class embedding is pulled towards the other object.
# **Control:** the clean pool (*k* = 0), where there is nothing to down-weight and weighting should cost nothing.
#
# **Setting.** Offline: `zsclip-tiny` (one model per seed, shared with the CLIP notebook) on zsworld's unseen
# compositions; the pretraining-distribution images are the compositions it was trained on (split `seen`).
# Weights are `softmax(score)` with scores in the model's own logits (temperature 1, not tuned). Labels only
# grade the result. Real mode: `--mode real -p model ViT-B-32 -p pretrained laion2b_s34b_b79k -p dataset
# imagenet -p data_root /data/imagenet -p split val -p pool_template_set openai -p poor_template_set ''
# -p n_poor '[0]' -p reference_dataset imagefolder -p reference_root /data/web_sample -p reference_split test`.

# %% parameters
mode: str = "offline"  # one of: offline, real
model: str = "zsclip-tiny"  # zslab offline model, open_clip architecture, local-dir:PATH or hf-hub:ID
pretrained: str = "zsworld"  # pretrained tag (zsworld for offline models) or a checkpoint file
dataset: str = "zsworld"  # a name from `zslab list datasets`
data_root: str = ""  # folder of a stored dataset; empty means its default place
split: str = "unseen"  # the zero-shot test split
seeds: list = [0, 1, 2, 3, 4, 5]  # offline: one trained model per seed; real: evaluation subsamples
n_per_class: int = 50  # test images per class (0 keeps every image)
pool_template_set: str = "ensemble"  # the hand-made templates every pool starts from
poor_template_set: str = "poor"  # templates added to the pool, in order ('' for none)
n_poor: list = [0, 2, 4, 8]  # pool contents: how many poor templates are added; 0 is the control
reference_dataset: str = "zsworld"  # images of the pretraining distribution (offline: the trained compositions)
reference_root: str = ""  # its folder, for stored datasets
reference_split: str = "seen"  # its split
reference_per_class: int = 10  # its images per class
temperature: float = 1.0  # softmax temperature over scores, in the model's logit units
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
batch_size: int = 256  # images per encoding batch
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import check_gain, check_mechanism, mean_over_seeds, paired_gains, record_scores
from zslab.datasets import load_templates
from zslab.evaluation import chance_level, encode_eval_set
from zslab.methods.prompt_weighting import evaluate_pools, prompt_table
from zslab.papers import get_paper
from zslab.plotting import line_with_intervals, panels, scatter_groups
from zslab.records import record, record_figure
from zslab.zeroshot import template_embeddings

paper = get_paper("zpe_prompt_weighting")
base = load_templates(dataset, pool_template_set)
poor = load_templates(dataset, poor_template_set) if poor_template_set else []
METHODS = ["uniform", "max logit", "ZPE"]
print(f"{paper.title} (arXiv {paper.arxiv})\npool: {len(base)} hand-made + {n_poor} of {len(poor)} poor templates")

# %% [markdown]
# ## Top-1 of each weighting, per pool and seed (bootstrap intervals over images)

# %%
scores, rows, weight_rows, prompts = {}, [], [], []
for seed in seeds:
    run = encode_eval_set(model, pretrained, dataset, split, seed, n_per_class, data_root, batch_size=batch_size,
                          device=device)
    ref = encode_eval_set(model, pretrained, reference_dataset, reference_split, seed, reference_per_class,
                          reference_root, batch_size=batch_size, device=device)
    emb = template_embeddings(run.encode_text, run.dataset.classes, base + poor)
    pools = evaluate_pools(emb, len(base), n_poor, run.features, run.labels, ref.features, run.model.logit_scale,
                           temperature)
    for k, result in pools.items():
        scores[k, seed] = result["correct"]
        rows += record_scores(result["correct"], seed, key="method", n_bootstrap=n_bootstrap, n_poor=k,
                              dataset=dataset, split=split)
        weight_rows += [{"seed": seed, "n_poor": k, "method": m, "poor_weight": float(w[len(base):].sum())}
                        for m, w in result["weights"].items()]
    prompts.append(prompt_table(pools[max(n_poor)], base + poor, len(base)).assign(seed=seed))
chance = chance_level(run.dataset)
record("chance", chance, n_classes=len(run.dataset.classes))
record("logit_scale", run.model.logit_scale, seed=seeds[-1])
per_seed = pd.DataFrame(rows)
per_seed.pivot_table(index=["n_poor", "seed"], columns="method", values="top1")[METHODS].style.format("{:.1%}")

# %% [markdown]
# ## Across seeds: accuracy and the weight given to poor prompts (Student t over seeds)

# %%
summary = mean_over_seeds(per_seed, "top1", ["n_poor", "method"])
poor_weight = mean_over_seeds(pd.DataFrame(weight_rows), "poor_weight", ["n_poor", "method"])
gains = pd.concat([paired_gains({s: sc for (k, s), sc in scores.items() if k == pool},
                                {"ZPE − uniform": ("ZPE", "uniform"), "max logit − uniform": ("max logit", "uniform"),
                                 "ZPE − max logit": ("ZPE", "max logit")}, arm=f"{pool} poor", n_poor=pool)
                   for pool in n_poor], ignore_index=True)
gain_summary = mean_over_seeds(gains, "gain", ["n_poor", "comparison"])
prompt_rows = pd.concat(prompts, ignore_index=True)
summary.pivot_table(index="n_poor", columns="method", values="mean")[METHODS].style.format("{:.1%}")

# %% [markdown]
# ## Figure: accuracy against pool contents (cf. the paper's robustness to poor prompts), the weight on poor
# prompts, and whether the label-free score ranks prompts as their accuracy does

# %%
fig, axes = panels(3)
line_with_intervals(summary, "n_poor", hue="method", ax=axes[0], ylabel="zero-shot top-1",
                    title=f"{model} on {dataset}/{split}: {len(base)} hand-made + k poor prompts")
line_with_intervals(poor_weight, "n_poor", hue="method", ax=axes[1], ylabel="total weight on poor prompts",
                    title="weight given to the poor prompts (uniform: k / pool size)")
scatter_groups(prompt_rows, "score: ZPE", "single_top1", hue="kind", ax=axes[2], chance=chance,
               xlabel="ZPE score (logits, no labels)", ylabel="the prompt's own top-1",
               title=f"one dot per prompt and seed (pool with {max(n_poor)} poor)")
record_figure(fig, "zpe_pool", "Left: top-1 of the uniform, max-logit-weighted and ZPE-weighted ensembles as poor "
              "prompts are added (mean over seeds, 95% t-interval). Middle: total weight on the poor prompts. "
              "Right: each prompt's ZPE score against its own top-1.")

# %% [markdown]
# ## Verdicts
# Paired over the same images and models: reproduced when the 95% interval of the gain lies above zero. The
# mechanism verdict asks whether ZPE's gain over the uniform ensemble is larger with the poor prompts in the
# pool than in the clean pool (the same models and images, so the per-seed differences are judged).

# %%
full, clean = max(n_poor), min(n_poor)
context = f"{model} on {dataset}/{split}"
at = {k: {s: sc for (p, s), sc in scores.items() if p == k} for k in n_poor}
check_gain(f"With {full} poor prompts in the pool, the ZPE-weighted ensemble beats the uniform ensemble.",
           at[full], "ZPE", "uniform", n_resamples=n_bootstrap, context=context, n_poor=full)
check_gain(f"On the hand-made pool ({clean} poor), the ZPE-weighted ensemble beats the uniform ensemble.",
           at[clean], "ZPE", "uniform", n_resamples=n_bootstrap, context=context, n_poor=clean)
check_gain(f"ZPE's pretraining correction beats the naive max-logit score ({full} poor prompts in the pool).",
           at[full], "ZPE", "max logit", n_resamples=n_bootstrap, context=context, n_poor=full)
if full != clean:
    check_mechanism("ZPE's gain over uniform weighting comes from poor prompts in the pool: it is larger with "
                    f"{full} poor prompts than with {clean}.", gains, "ZPE − uniform", f"{full} poor",
                    f"{clean} poor", paired=True)
