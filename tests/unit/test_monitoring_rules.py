"""Alarm rules: thresholds, the minimum-sample rule (no alarm below it) and the persistence rule."""

from __future__ import annotations

import numpy as np
import pytest

from models.monitoring.config import MonitoringConfig
from models.monitoring.drift import FeatureDrift
from models.monitoring.rules import Alarm, data_drift_alarm, decide, performance_alarm


def _feature(name: str, psi: float, p: float) -> FeatureDrift:
    level = "drifted" if psi >= 0.25 else "warning" if psi >= 0.1 else "stable"
    return FeatureDrift(name, "numeric", psi, 0.1, p, "ks", 0.1, level, level == "drifted", [], [], [])


def test_one_feature_at_the_act_threshold_raises_data_drift():
    cfg = MonitoringConfig()
    alarm = data_drift_alarm([_feature("age", 0.30, 1e-9), _feature("job", 0.01, 0.5)], None, 10_000, cfg)
    assert alarm.fired and "age" in alarm.reasons[0]


def test_significance_alone_is_not_drift_but_a_share_of_significant_warnings_is():
    cfg = MonitoringConfig(feature_share=0.5)
    tiny_but_significant = [_feature(f"f{i}", 0.02, 1e-12) for i in range(4)]
    assert not data_drift_alarm(tiny_but_significant, None, 100_000, cfg).fired
    warnings = [
        _feature("a", 0.15, 1e-5),
        _feature("b", 0.12, 1e-4),
        _feature("c", 0.01, 0.9),
        _feature("d", 0.2, 0.2),
    ]
    alarm = data_drift_alarm(warnings, None, 100_000, cfg)
    assert alarm.fired and "2 of 4 features" in alarm.reasons[0]
    assert not data_drift_alarm(warnings, None, 100_000, MonitoringConfig(feature_share=0.75)).fired


def test_score_psi_at_the_act_threshold_is_prediction_drift():
    cfg = MonitoringConfig()
    alarm = data_drift_alarm([_feature("age", 0.0, 0.9)], _feature("__score__", 0.4, 0.0), 5_000, cfg)
    assert alarm.fired and "prediction drift" in alarm.reasons[0]


def test_no_data_drift_alarm_below_the_minimum_sample():
    cfg = MonitoringConfig(min_sample=500)
    huge = [_feature("age", 3.0, 0.0)]
    below = data_drift_alarm(huge, _feature("__score__", 3.0, 0.0), 499, cfg)
    assert not below.fired and "minimum 500" in below.notes[-1]
    assert data_drift_alarm(huge, None, 500, cfg).fired


def _realised(n: int, auc: float, hi: float, expected: float) -> dict:
    return {
        "labelled": n,
        "within_date_auc": auc,
        "within_date_auc_ci95": [auc - 0.05, hi],
        "expected_within_date_auc": expected,
    }


def test_realised_decay_needs_the_minimum_labelled_sample():
    cfg = MonitoringConfig(min_labelled=200, auc_tolerance=0.05)
    assert performance_alarm(_realised(1000, 0.55, 0.60, 0.72), None, None, cfg).fired
    small = performance_alarm(_realised(199, 0.55, 0.60, 0.72), None, None, cfg)
    assert not small.fired and "minimum 200" in small.notes[0]
    # inside the tolerance: the upper bound reaches expected - tolerance
    assert not performance_alarm(_realised(1000, 0.62, 0.68, 0.72), None, None, cfg).fired


def test_list_worse_than_random_and_estimated_drop_are_decay():
    cfg = MonitoringConfig()
    worse = _realised(1000, 0.70, 0.75, 0.72) | {"listed_minus_control_ci95": [-0.2, -0.01]}
    assert performance_alarm(worse, None, None, cfg).fired
    assert performance_alarm(None, {"expected_auc": 0.60, "rows": 10_000}, 0.70, cfg).fired
    assert not performance_alarm(None, {"expected_auc": 0.68, "rows": 10_000}, 0.70, cfg).fired
    assert not performance_alarm(None, {"expected_auc": 0.50, "rows": 10}, 0.70, cfg).fired


@pytest.mark.parametrize(
    ("previous", "persistence", "detected", "consecutive"),
    [
        ([], 2, False, 1),
        ([True], 2, True, 2),
        ([True, False], 2, False, 1),  # yesterday was quiet: the count restarts
        ([False, True, True], 3, True, 3),
        ([True, True, True], 1, True, 4),
    ],
)
def test_persistence_rule(previous, persistence, detected, consecutive):
    verdict = decide(
        [Alarm(fired=True, reasons=["x"])], previous, MonitoringConfig(persistence_days=persistence)
    )
    assert verdict.drift_detected is detected and verdict.consecutive == consecutive
    assert verdict.status == ("drift" if detected else "pending")


def test_no_alarm_today_means_no_drift_whatever_happened_before():
    verdict = decide([Alarm(notes=["PSI watch"])], [True, True], MonitoringConfig(persistence_days=1))
    assert not verdict.drift_detected and verdict.status == "warning" and verdict.consecutive == 0
    assert decide([Alarm()], [], MonitoringConfig()).status == "ok"
    assert np.isfinite(MonitoringConfig().psi_act)
