"""Drift statistics and performance estimates against values computed by hand, by scipy or by brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from models.monitoring.config import MonitoringConfig
from models.monitoring.drift import build_reference, compare_to_reference
from models.monitoring.performance import (
    expected_auc,
    expected_within_date_auc,
    realised_performance,
    wilson_interval,
    within_date_auc,
    within_date_auc_interval,
)
from models.monitoring.statistics import (
    bin_counts,
    categorical_psi,
    category_counts,
    chi_square_test,
    jensen_shannon,
    ks_test,
    numeric_psi,
    psi,
    quantile_edges,
)


def test_psi_matches_the_formula_by_hand():
    # shares 0.5/0.5 -> 0.25/0.75: (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5)
    by_hand = -0.25 * math.log(0.5) + 0.25 * math.log(1.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(by_hand, abs=1e-12)
    assert psi([10, 20, 30], [10, 20, 30]) == 0.0


def test_psi_floor_keeps_an_empty_bin_finite_and_bins_empty_in_both_are_dropped():
    floor = 1e-4
    e = np.array([1.0, floor]) / (1 + floor)
    a = np.array([0.5, 0.5])
    by_hand = float(np.sum((a - e) * np.log(a / e)))
    assert psi([100, 0], [50, 50], floor) == pytest.approx(by_hand, rel=1e-12)
    assert math.isfinite(psi([100, 0], [50, 50], floor))
    assert psi([50, 50, 0], [25, 75, 0]) == pytest.approx(psi([50, 50], [25, 75]))


def test_numeric_bins_come_from_reference_quantiles_and_are_open_ended():
    ref = np.arange(1, 101, dtype=float)
    edges = quantile_edges(ref, 4)
    assert edges.tolist() == pytest.approx([25.75, 50.5, 75.25])
    assert bin_counts(ref, edges).tolist() == [25, 25, 25, 25, 0]  # last slot: missing
    assert bin_counts(np.array([-1e9, 1e9, np.nan]), edges).tolist() == [1, 0, 0, 1, 1]
    # a shifted copy: PSI on the reference's bins, by hand
    cur = ref + 25
    shares_cur = bin_counts(cur, edges)[:4] / 100
    by_hand = float(np.sum((shares_cur - 0.25) * np.log(np.maximum(shares_cur, 1e-4) / 0.25)))
    assert numeric_psi(ref, cur, bins=4, floor=1e-4) == pytest.approx(by_hand, rel=0.02)


def test_few_distinct_values_give_fewer_bins():
    ref = np.array([0] * 80 + [1] * 15 + [2] * 5, dtype=float)
    edges = quantile_edges(ref, 10)
    assert len(edges) <= 2 and 0.0 not in edges.tolist()
    assert bin_counts(ref, edges)[:-1].sum() == 100


def test_categorical_psi_has_an_unseen_bucket():
    ref = ["a"] * 50 + ["b"] * 50
    assert categorical_psi(ref, ["a"] * 25 + ["b"] * 75) == pytest.approx(psi([50, 50], [25, 75]))
    assert category_counts(["a", "c", None, "b"], ["a", "b"]).tolist() == [1, 1, 2]
    assert categorical_psi(ref, ["a"] * 50 + ["c"] * 50) > 1.0  # half the population never seen before


def test_ks_matches_scipy_and_a_hand_value():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=200), rng.normal(0.3, 1, size=150)
    ours = ks_test(a, b)
    ref = stats.ks_2samp(a, b)
    assert ours.statistic == pytest.approx(ref.statistic)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=0.05)
    assert ks_test([1, 2, 3], [4, 5, 6]).statistic == 1.0
    assert ks_test([1, 2, np.nan], [1, 2]).statistic == 0.0


def test_chi_square_matches_the_hand_value_and_scipy():
    result = chi_square_test([10, 20], [20, 10])
    assert result.statistic == pytest.approx(4 * 25 / 15)
    assert result.p_value == pytest.approx(stats.chi2.sf(4 * 25 / 15, 1))
    assert chi_square_test([5, 5, 0], [5, 5, 0]).p_value == pytest.approx(1.0)


def test_jensen_shannon_bounds():
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)
    assert jensen_shannon([3, 7], [30, 70]) == pytest.approx(0.0, abs=1e-9)
    # by hand: p=(.5,.5), q=(1,0), m=(.75,.25)
    kl_p = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    kl_q = math.log2(1 / 0.75)
    assert jensen_shannon([1, 1], [1, 0]) == pytest.approx(math.sqrt((kl_p + kl_q) / 2))


def test_cbpe_auc_equals_the_area_under_the_expected_roc_curve():
    p = np.array([0.9, 0.7, 0.7, 0.4, 0.2, 0.05])
    # area under the expected ROC curve: TPR(t)=Σ_{p>=t} p / Σp, FPR(t)=Σ_{p>=t}(1-p)/Σ(1-p)
    order = np.unique(p)[::-1]
    tpr = [0.0] + [p[p >= t].sum() / p.sum() for t in order]
    fpr = [0.0] + [(1 - p[p >= t]).sum() / (1 - p).sum() for t in order]
    assert expected_auc(p) == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-12)


def test_cbpe_auc_matches_the_average_realised_auc_when_calibrated():
    rng = np.random.default_rng(7)
    p = rng.beta(1.5, 6, size=4000)
    realised = [roc_auc_score(rng.random(p.size) < p, p) for _ in range(30)]
    assert expected_auc(p) == pytest.approx(np.mean(realised), abs=0.005)
    # the reversed ranking of the same calibrated probabilities: the complement
    assert expected_auc(p, scores=-p) == pytest.approx(1 - expected_auc(p), abs=1e-9)


def test_within_date_auc_counts_only_pairs_of_the_same_date():
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.1, 0.2, 0.8, 0.3])
    d = np.array(["a", "a", "b", "b", "b"])
    # date a: 1 pair, concordant; date b: 2 pairs, (0.2 vs 0.8) no, (0.2 vs 0.3) no -> 1 of 3
    assert within_date_auc(y, s, d) == pytest.approx(1 / 3)
    assert within_date_auc(y, s, np.zeros(5)) == pytest.approx(roc_auc_score(y, s))
    assert expected_within_date_auc(s, np.zeros(5)) == pytest.approx(expected_auc(s))


def test_within_date_auc_interval_covers_the_estimate_and_needs_two_dates():
    rng = np.random.default_rng(3)
    d = np.repeat(np.arange(20), 100)
    p = rng.beta(2, 8, d.size)
    y = rng.random(d.size) < p
    lo, hi = within_date_auc_interval(y, p, d, 300, 1)
    assert lo < within_date_auc(y, p, d) < hi and hi - lo < 0.15
    assert all(math.isnan(v) for v in within_date_auc_interval(y[:100], p[:100], d[:100]))


def test_wilson_interval_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    assert wilson_interval(12, 80) == pytest.approx(proportion_confint(12, 80, method="wilson"))
    assert wilson_interval(0, 10)[0] == 0.0


def test_realised_performance_compares_list_and_control():
    import pandas as pd

    rng = np.random.default_rng(5)
    rows = []
    for day in range(15):
        p_list = rng.uniform(0.3, 0.6, 90)
        p_ctrl = rng.uniform(0.0, 0.2, 10)
        for p, g in [(p_list, "listed"), (p_ctrl, "control")]:
            rows.append(
                pd.DataFrame({"contact_date": day, "probability": p, "y": rng.random(p.size) < p, "group": g})
            )
    out = realised_performance(pd.concat(rows), resamples=200)
    assert out["labelled"] == 1500 and out["dates"] == 15
    assert out["listed"]["rate"] > out["control"]["rate"] and out["lift_over_control"] > 2
    assert out["listed_minus_control_ci95"][0] > 0
    assert abs(out["within_date_auc"] - out["expected_within_date_auc"]) < 0.06


def test_reference_comparison_flags_the_shifted_feature_only():
    rng = np.random.default_rng(11)
    config = MonitoringConfig()
    n = 5000
    ref = {
        "age": rng.normal(40, 10, n),
        "balance": rng.lognormal(7, 1, n),
        "job": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).astype(object),
        "month": np.full(n, "may", dtype=object),
    }
    kinds = {"age": "numeric", "balance": "numeric", "job": "categorical", "month": "categorical"}
    reference = build_reference(ref, kinds, rng.beta(2, 8, n), config)
    cur = {
        "age": rng.normal(40, 10, n),
        "balance": rng.lognormal(7, 1, n) * 0.3,
        "job": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]).astype(object),
        "month": np.full(n, "jun", dtype=object),
    }
    drifts, score, skipped = compare_to_reference(reference, cur, rng.beta(2, 8, n), config)
    by_name = {d.name: d for d in drifts}
    assert by_name["balance"].drifted and by_name["balance"].p_value < 1e-6
    assert not by_name["age"].drifted and by_name["age"].psi < config.psi_warn
    assert not by_name["job"].drifted and by_name["job"].test == "chi2"
    assert score.psi < config.psi_warn
    assert skipped == [
        {"name": "month", "reason": "constant in the reference population (call-date context)"}
    ]
