"""Forecast monitoring: live error against backtest error per series group, with the shared alarm rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.monitoring.config import MonitoringConfig
from models.monitoring.forecast import cell_errors, forecast_alarm, group_drift, series_errors


def _frames(n_series: int, days: int, error_scale: dict[str, float], seed: int = 0):
    rng = np.random.default_rng(seed)
    rows_f, rows_a, rows_b = [], [], []
    dates = pd.date_range("2026-01-01", periods=days)
    for i in range(n_series):
        group = "stores" if i % 2 else "products"
        sid = f"s{i}"
        level = 20 + i
        y = rng.poisson(level, days).astype(float)
        err = rng.normal(0, 2.0 * error_scale[group], days)
        fc = y + err
        rows_f.append(
            pd.DataFrame({"series_id": sid, "date": dates, "forecast": fc, "lo80": fc - 3, "hi80": fc + 3})
        )
        rows_a.append(pd.DataFrame({"series_id": sid, "date": dates, "y": y, "group": group}))
        rows_b.append({"series_id": sid, "wmae": 2.0 * np.sqrt(2 / np.pi), "group": group})
    return pd.concat(rows_f), pd.concat(rows_a), pd.DataFrame(rows_b)


def test_live_error_ratio_by_hand():
    f = pd.DataFrame(
        {
            "series_id": ["a"] * 3,
            "date": ["2026-01-01", "2026-01-02", "2026-01-03"],
            "forecast": [10.0, 10.0, 10.0],
            "lo80": [8.0] * 3,
            "hi80": [12.0] * 3,
        }
    )
    a = pd.DataFrame({"series_id": ["a"] * 2, "date": ["2026-01-01", "2026-01-02"], "y": [13.0, 9.0]})
    b = pd.DataFrame({"series_id": ["a"], "wmae": [1.0]})
    per = series_errors(cell_errors(f, a, b))
    row = per.iloc[0]
    assert row["cells"] == 2 and row["live_mae"] == pytest.approx(2.0) and row["ratio"] == pytest.approx(2.0)
    assert row["coverage80"] == pytest.approx(0.5) and row["group"] == "all"


def test_a_group_whose_errors_tripled_drifts_the_other_does_not():
    config = MonitoringConfig()
    f, a, b = _frames(40, 14, {"stores": 3.0, "products": 1.0})
    groups = {g["name"]: g for g in group_drift(cell_errors(f, a, b), config)}
    assert (
        groups["stores"]["drifted"]
        and groups["stores"]["statistic"] > 2.5
        and groups["stores"]["p_value"] < 1e-3
    )
    assert not groups["products"]["drifted"] and 0.7 < groups["products"]["statistic"] < 1.3
    alarm = forecast_alarm(list(groups.values()), config)
    assert alarm.fired and "stores" in alarm.reasons[0]


def test_no_forecast_alarm_below_the_minimum_cells():
    config = MonitoringConfig(min_forecast_cells=10_000)
    f, a, b = _frames(40, 14, {"stores": 3.0, "products": 3.0})
    groups = group_drift(cell_errors(f, a, b), config)
    alarm = forecast_alarm(groups, config)
    assert not alarm.fired and "minimum 10,000" in alarm.notes[0]
