# %% [markdown]
# # Word bias in zero-shot classifiers, and unsupervised prior matching
#
# **Paper.** Liusie, Manakul and Gales, *Mitigating Word Bias in Zero-shot Prompt-based Classifiers*,
# arXiv [2309.04992](https://arxiv.org/abs/2309.04992).
#
# **Claim.** The choice of prompt and label words biases a zero-shot classifier towards some classes.
# Reweighting the class probabilities so that their average over the unlabelled test inputs is uniform
# ("prior matching") gives large, consistent gains over the raw classifier, close to an oracle that sets
# the class thresholds with the test labels; a zero-resource variant estimates the bias from a null
# input (the prompt with its input left empty) instead of the test set.
#
# **Protocol (the paper's, from the authors' code).** One prompt template per run; one label word per
# class, varied across settings; accuracy averaged over every template × label-word setting. Here each
# template of the input kind's template set is crossed with `n_word_settings` label-word assignments
# (the class names first, then random draws from `data/label_words/`, or for zsworld every mix of a
# class's words and their synonyms in world.json). Methods: the raw classifier, prior matching
# (`zslab.methods.debias.prior_matching_weights`, no labels), the null input (the empty string for text,
# a uniform image of the test images' mean color for images), and the oracle (`optimal_weights`: the
# accuracy-maximising class weights found with the test labels, an upper bound).
#
# **Mechanism and control.** The bias comes from the words: a label word the model knows less well, or a
# template that favours some classes, shifts the class prior. **Control:** the class names with the
# template ensemble, which removes the word and template choice; prior matching should then gain little.
#
# **Setting.** Similarity-based zero-shot classifiers on three inputs: text (all-MiniLM-L6-v2 on the
# WordNet gloss task), images (zslab's offline CLIP on zsworld's unseen compositions) and images with a
# locked text tower (lit-animal-mnist on all 10 Animal-MNIST classes, 3 of them never seen in its
# training). The paper uses prompted language models (FlanT5, Llama-2) on NLP tasks; the reweighting is
# the same. Probabilities use CLIP's logit scale of 100 for every model; nothing is tuned.

# %% parameters
mode: str = "offline"  # one of: offline, real
settings: list = ["text|minilm|wordnet_glosses|test", "image|zsclip-tiny|zsworld|unseen", "image|lit-animal-mnist|animal_mnist|test"]  # kind|model|dataset|split
pretrained: str = ""  # pretrained tag or checkpoint for image models (empty: the model's own default)
seeds: list = [0, 1, 2]  # model seed (offline image models) and test sample
n_per_class: int = 100  # test inputs per class
n_word_settings: int = 6  # label-word assignments per template (the first uses the class names)
scale: float = 100.0  # logit scale turning cosine similarities into probabilities (CLIP's value)
n_bootstrap: int = 1000  # bootstrap resamples for per-seed intervals
device: str = "auto"  # where images are encoded: auto (cuda when present), cpu, cuda, cuda:N, mps

# %%
import pandas as pd

from zslab.analysis import check_gain, check_mechanism, mean_over_seeds, paired_gains, record_scores
from zslab.methods.debias import REWEIGHTINGS, word_bias_experiment
from zslab.plotting import bars_with_seeds, panels
from zslab.records import record, record_figure
from zslab.semantics.label_words import load_label_words
from zslab.tasks import load_inputs

REGIMES = ("one template, varied label words", "control: class names, template ensemble")

# %% [markdown]
# ## Accuracy of each method per input kind, regime and seed (mean over the regime's settings)

# %%
rows, kl_rows, scores, per_setting = [], [], {}, []
for setting in settings:
    for seed in seeds:
        inputs = load_inputs(setting, n_per_class, seed, pretrained or None, device)
        words = load_label_words(inputs.dataset, inputs.classes)
        for regime in REGIMES:
            result = word_bias_experiment(inputs, words, regime == REGIMES[0], n_word_settings, scale, seed)
            scores[setting, regime, seed] = result.correct
            rows += record_scores(result.correct, seed, metric="accuracy", key="method", n_bootstrap=n_bootstrap,
                                  setting=setting, regime=regime, n_classifiers=result.n_classifiers)
            for method, kl in result.prior_kl.items():
                record("prior_kl", kl, seed=seed, setting=setting, regime=regime, method=method)
                kl_rows.append({"setting": setting, "regime": regime, "seed": seed, "method": method, "prior_kl": kl})
            per_setting.append(result.per_setting.assign(setting=setting, regime=regime, seed=seed))
results = pd.DataFrame(rows)
per_setting = pd.concat(per_setting, ignore_index=True)
results.pivot_table(index=["setting", "regime"], columns="method", values="accuracy")[list(REWEIGHTINGS)].style.format("{:.1%}")

# %% [markdown]
# ## How biased is each classifier? KL of the mean prediction from uniform (0 = no bias on average)

# %%
pd.DataFrame(kl_rows).pivot_table(index=["setting", "regime"], columns="method", values="prior_kl")[list(REWEIGHTINGS)].style.format("{:.3f}")

# %% [markdown]
# ## Across seeds, and the figure: accuracy by method, per input kind and regime (dots are seeds)

# %%
summary = mean_over_seeds(results, "accuracy", ["setting", "regime", "method"])
fig, axes = panels(len(settings), width=5.0)
for ax, setting in zip(axes, settings):
    bars_with_seeds(results[results["setting"] == setting], "regime", "accuracy", order=list(REGIMES),
                    summary=summary[summary["setting"] == setting], hue="method", hue_order=list(REWEIGHTINGS),
                    ax=ax, ylabel="accuracy", title=setting)
record_figure(fig, "prior_matching", "Zero-shot accuracy of the raw, prior-matched, null-input and oracle "
              "classifiers, averaged over templates × label-word settings; bars: mean over seeds with 95% interval.")

# %% [markdown]
# ## Does prior matching track the oracle? Correlation over settings (the paper's analysis)

# %%
for setting, g in per_setting[per_setting["regime"] == REGIMES[0]].groupby("setting", sort=False):
    r = g["prior matching"].corr(g["oracle"])
    record("corr_prior_matching_oracle", r, setting=setting, n_classifiers=len(g))
    print(f"{setting}: Pearson r(prior matching, oracle) over {len(g)} classifiers = {r:.2f}")

# %% [markdown]
# ## Verdicts: prior matching (and the null input) against the raw classifier, paired over seeds
# The claim is checked under the paper's protocol; the mechanism verdict asks whether the gain is larger
# there than under the control, which has no word or template choice. Each verdict gives its half-width.

# %%
gains = pd.concat([paired_gains({s: scores[setting, regime, s] for s in seeds},
                                {m: (m, "raw") for m in ("prior matching", "null input")}, arm=regime, setting=setting)
                   for setting in settings for regime in REGIMES], ignore_index=True)
for setting in settings:
    run = {s: scores[setting, REGIMES[0], s] for s in seeds}
    for method in ("prior matching", "null input"):
        check_gain(f"{setting}: {method} beats the raw classifier (one template, varied label words)", run, method,
                   "raw", n_resamples=n_bootstrap, setting=setting)
    check_mechanism(f"{setting}: prior matching gains more when label words and templates vary than in the control",
                    gains[gains["setting"] == setting], "prior matching", REGIMES[0], REGIMES[1], setting=setting)
