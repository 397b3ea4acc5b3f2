"""Forecast monitoring: as actual sales arrive, the committed forecasts' error against their backtest error.

Per series: the mean absolute error of the committed forecast on the days whose actuals are known, divided by
the series' backtest WMAE (what the selection promised); and whether the actual fell inside the 80% interval.
Per series group: the median ratio and a one-sided Wilcoxon signed-rank test of ``log(ratio) > 0`` over its
series. The alarm follows the propensity rule: a threshold (``forecast_error_ratio``), significance
(``p_value``), a minimum sample (``min_forecast_cells`` series-days) and persistence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from models.monitoring.config import MonitoringConfig
from models.monitoring.rules import Alarm

ALL = "all"


def series_errors(forecasts: pd.DataFrame, actuals: pd.DataFrame, backtest: pd.DataFrame) -> pd.DataFrame:
    """Per series: cells with actuals, live MAE, backtest WMAE, their ratio, 80% interval coverage, group.

    ``forecasts``: series_id, date, forecast, lo80, hi80; ``actuals``: series_id, date, y (and ``group``);
    ``backtest``: series_id, wmae (and ``group``).
    """
    f = forecasts.assign(date=pd.to_datetime(forecasts["date"]))
    a = actuals.assign(date=pd.to_datetime(actuals["date"]))
    joined = f.merge(a[["series_id", "date", "y"]], on=["series_id", "date"], how="inner")
    joined["abs_err"] = (joined["y"] - joined["forecast"]).abs()
    inside = (
        joined["y"].between(joined["lo80"], joined["hi80"]) if {"lo80", "hi80"} <= set(joined) else np.nan
    )
    joined["inside80"] = inside
    per = joined.groupby("series_id").agg(
        cells=("abs_err", "size"), live_mae=("abs_err", "mean"), coverage80=("inside80", "mean")
    )
    bt = backtest.drop_duplicates("series_id").set_index("series_id")
    per["backtest_wmae"] = bt["wmae"].reindex(per.index)
    group = bt.get("group")
    if group is None and "group" in a:
        group = a.drop_duplicates("series_id").set_index("series_id")["group"]
    per["group"] = group.reindex(per.index).fillna(ALL).astype(str) if group is not None else ALL
    # a perfect backtest (WMAE 0) would make any error infinite: floor the denominator at a small share of
    # the series' level so that flat zero series cannot raise an alarm on their own
    floor = np.maximum(
        per["backtest_wmae"].fillna(0),
        1e-6 + 0.01 * joined.groupby("series_id")["y"].mean().abs().reindex(per.index),
    )
    per["ratio"] = per["live_mae"] / floor
    return per.reset_index()


def group_drift(per_series: pd.DataFrame, config: MonitoringConfig) -> list[dict]:
    """One drift entry per series group (the drift.json ``features`` shape: statistic = median error ratio)."""
    out = []
    for name, g in per_series.dropna(subset=["ratio"]).groupby("group", sort=True):
        logs = np.log(np.clip(g["ratio"].to_numpy(dtype=float), 1e-9, None))
        if len(logs) >= 2 and np.any(logs != 0):
            p = float(stats.wilcoxon(logs, alternative="greater").pvalue)
        else:
            p = float("nan")
        median = float(np.median(g["ratio"]))
        drifted = median >= config.forecast_error_ratio and p == p and p < config.p_value
        out.append(
            {
                "name": str(name),
                "psi": None,
                "statistic": round(median, 6),
                "p_value": p,
                "drifted": bool(drifted),
                "test": "wilcoxon log(live/backtest error) > 0",
                "series": int(len(g)),
                "cells": int(g["cells"].sum()),
                "coverage80": float(g["coverage80"].mean()) if g["coverage80"].notna().any() else None,
            }
        )
    return out


def forecast_alarm(groups: list[dict], config: MonitoringConfig) -> Alarm:
    """Decay of the forecasts: a group whose errors grew past the threshold, significantly, on enough cells."""
    alarm = Alarm()
    cells = sum(g["cells"] for g in groups)
    if cells < config.min_forecast_cells:
        alarm.notes.append(
            f"only {cells:,} series-days with actuals (minimum {config.min_forecast_cells:,}): forecast error "
            "reported, no alarm"
        )
        return alarm
    for g in groups:
        if g["drifted"]:
            alarm.reasons.append(
                f"series group {g['name']}: live error {g['statistic']:.2f}x the backtest's over {g['series']} "
                f"series (p={g['p_value']:.2g})"
            )
    alarm.fired = bool(alarm.reasons)
    return alarm
