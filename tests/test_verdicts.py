"""Verdicts: which interval decides (seeds or images), its half-width, and the status it gives."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from zslab import analysis, records
from zslab.verdicts import Estimate, judge, over_seeds, paired_gain, status_of


def test_over_seeds_is_a_t_interval_with_its_half_width():
    est = over_seeds([0.05, 0.06, 0.055])
    # mean 0.055, sd 0.005, t(0.975, 2) = 4.3027 -> half-width 0.012421
    assert est.mean == pytest.approx(0.055) and est.n == 3 and est.method == "t over 3 seeds"
    assert est.half_width == pytest.approx(4.3027 * 0.005 / math.sqrt(3), abs=1e-5)
    assert status_of(est) == "reproduced"
    assert "half-width 1.2 pt" in est.describe()


@pytest.mark.parametrize("values, status", [([0.05, 0.06, 0.055, 0.052], "reproduced"),
                                            ([-0.05, -0.06, -0.055], "not reproduced"),
                                            ([0.30, -0.05, 0.01], "inconclusive"),   # positive mean, too noisy
                                            ([0.2], "inconclusive")])                # one seed: no interval
def test_status_follows_the_interval_not_the_sign_of_the_mean(values, status):
    assert status_of(over_seeds(values)) == status


def test_one_seed_has_no_interval_and_says_so():
    est = over_seeds([0.2])
    assert not est.has_interval and math.isnan(est.half_width)
    assert "no interval" in est.describe()


def test_identical_runs_are_judged_over_images_not_over_seeds():
    """Real mode with a fixed model and the whole test set: every seed gives the same scores. An interval
    over seeds would have zero width and call any gain reproduced; the items decide instead."""
    rng = np.random.default_rng(0)
    a = (rng.random(400) < 0.62).astype(float)
    b = a.copy()
    flip = rng.choice(400, 6, replace=False)
    b[flip] = 1 - b[flip]          # tiny, noisy difference: a few items either way
    est = paired_gain({0: a, 1: a, 2: a}, {0: b, 1: b, 2: b})
    assert est.method.startswith("paired bootstrap over 400 items") and "3 identical runs" in est.method
    assert est.n == 400 and est.low < est.mean < est.high and est.half_width > 0.005
    assert est.mean == pytest.approx(float(np.mean(a - b)))
    # a difference that flips 1e-4 of the score in every run reads "inconclusive", not "reproduced"
    assert status_of(est) == "inconclusive"


def test_distinct_runs_use_the_t_interval_over_run_means():
    a = {0: np.array([1, 1, 0, 1.0]), 1: np.array([1, 0, 0, 1.0]), 2: np.array([1, 1, 1, 1.0])}
    b = {0: np.array([1, 0, 0, 1.0]), 1: np.array([0, 0, 0, 1.0]), 2: np.array([1, 1, 0, 1.0])}
    est = paired_gain(a, b)
    assert est.method == "t over 3 seeds" and est.mean == pytest.approx(0.25)
    assert est.half_width == pytest.approx(0.0)     # every seed gains exactly one item of four
    with pytest.raises(ValueError, match="same number"):
        paired_gain(a, {0: b[0]})
    with pytest.raises(ValueError, match="same items"):
        paired_gain({0: np.ones(3)}, {0: np.ones(4)})


def test_judge_records_the_gain_and_the_verdict(tmp_path):
    records.reset(tmp_path / "r.json", "nb")
    out = judge("A beats B", Estimate(0.03, 0.01, 0.05, 5, "t over 5 seeds"), comparison="a − b")
    assert out["status"] == "reproduced" and out["estimate"]["half_width"] == pytest.approx(0.02)
    saved = records.load_records(tmp_path / "r.json")
    assert saved["metrics"][0]["metric"] == "gain" and saved["metrics"][0]["ci_low"] == 0.01
    assert saved["verdicts"][0]["status"] == "reproduced"


def test_mean_over_seeds_records_each_group(tmp_path):
    records.reset(tmp_path / "r.json", "nb")
    per_seed = pd.DataFrame({"head": ["x", "x", "x", "y"], "seed": [0, 1, 2, 0], "top1": [0.5, 0.6, 0.7, 0.4]})
    summary = analysis.mean_over_seeds(per_seed, "top1", ["head"], arm="on")
    assert list(summary["head"]) == ["x", "y"] and summary["mean"].iloc[0] == pytest.approx(0.6)
    assert math.isnan(summary["low"].iloc[1])          # one seed: no interval
    rows = records.load_records(tmp_path / "r.json")["metrics"]
    assert [r["labels"]["head"] for r in rows] == ["x", "y"] and rows[0]["labels"]["arm"] == "on"
    assert rows[1]["ci_low"] is None


def test_check_gain_and_paired_gains(tmp_path):
    records.reset(tmp_path / "r.json", "nb")
    scores = {s: {"new": np.array([1.0, 1, 1, 0]), "old": np.array([1.0, 0, 1, 0])} for s in range(3)}
    scores[1]["new"] = np.array([1.0, 1, 0, 0])
    scores[2]["old"] = np.array([0.0, 0, 1, 0])
    gains = analysis.paired_gains(scores, {"new − old": ("new", "old")})
    assert gains["gain"].tolist() == [0.25, 0.0, 0.5]
    out = analysis.check_gain("new beats old", scores, "new", "old")
    assert out["estimate"]["method"] == "t over 3 seeds" and out["status"] == "inconclusive"


def test_difference_of_means_is_welchs_interval():
    from scipy.stats import ttest_ind

    from zslab.verdicts import difference_of_means

    a, b = [0.05, 0.07, 0.02, 0.06, 0.04], [0.0, 0.01, -0.005]
    est = difference_of_means(a, b)
    assert est.mean == pytest.approx(np.mean(a) - np.mean(b)) and est.method == "Welch t, 5 vs 3 runs"
    ci = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert (est.low, est.high) == pytest.approx((ci.low, ci.high))
    with pytest.raises(ValueError, match=">= 2 runs"):
        difference_of_means([0.1], [0.2, 0.3])


def test_check_mechanism_pairs_by_seed_or_compares_groups(tmp_path):
    records.reset(tmp_path / "r.json", "nb")
    gains = pd.DataFrame({"arm": ["on"] * 4 + ["off"] * 2, "seed": [0, 1, 2, 3, 0, 1], "comparison": "g",
                          "gain": [0.04, 0.05, 0.03, 0.06, 0.0, 0.01]})
    paired = analysis.check_mechanism("on beats off", gains, "g", "on", "off")
    assert paired["estimate"]["method"] == "t over 2 seeds" and paired["estimate"]["mean"] == pytest.approx(0.04)
    groups = analysis.check_mechanism("on beats off", gains, "g", "on", "off", paired=False)
    assert groups["estimate"]["method"] == "Welch t, 4 vs 2 runs" and groups["estimate"]["mean"] == pytest.approx(0.04)


def test_small_effects_are_printed_with_enough_digits():
    from zslab.verdicts import Estimate

    est = Estimate(mean=0.0041, low=0.0012, high=0.0070, n=8, method="t over 8 seeds")
    assert est.describe(scale=1.0, unit="") == "+0.0041, 95% interval [+0.0012, +0.0070] (half-width 0.0029; t over 8 seeds)"
    assert est.describe(scale=100.0).startswith("+0.41 pt, 95% interval [+0.12, +0.70] pt (half-width 0.29 pt")


def test_equivalence_verdicts():
    from zslab.verdicts import Estimate, equivalence_status

    inside = Estimate(mean=0.001, low=-0.002, high=0.004, n=8, method="t")
    outside = Estimate(mean=0.05, low=0.03, high=0.07, n=8, method="t")
    straddles = Estimate(mean=0.004, low=-0.001, high=0.009, n=8, method="t")
    assert equivalence_status(inside, 0.005) == "reproduced"
    assert equivalence_status(outside, 0.005) == "not reproduced"
    assert equivalence_status(straddles, 0.005) == "inconclusive"
    with pytest.raises(ValueError, match="margin must be > 0"):
        equivalence_status(inside, 0)
