"""Forecast monitoring: as actual sales arrive, the committed forecasts' error against their backtest error.

Per series-day with a known actual: the absolute error of the committed forecast against the series' backtest
WMAE (what the selection promised), and whether the actual fell inside the 80% interval. Per series group: the
ratio of live to promised error and a one-sided t-test that the live errors exceed the promise. The alarm follows the propensity rule: a threshold (``forecast_error_ratio``), significance
(``p_value``), a minimum sample (``min_forecast_cells`` series-days) and persistence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from models.monitoring.config import MonitoringConfig
from models.monitoring.rules import Alarm

ALL = "all"


def cell_errors(forecasts: pd.DataFrame, actuals: pd.DataFrame, backtest: pd.DataFrame) -> pd.DataFrame:
    """One row per series-day with an actual: absolute error, the series' backtest WMAE, inside the 80% band.

    ``forecasts``: series_id, date, forecast, lo80, hi80; ``actuals``: series_id, date, y (and ``group``);
    ``backtest``: series_id, wmae (and ``group``).
    """
    f = forecasts.assign(date=pd.to_datetime(forecasts["date"]))
    a = actuals.assign(date=pd.to_datetime(actuals["date"]))
    cells = f.merge(a[["series_id", "date", "y"]], on=["series_id", "date"], how="inner")
    cells["abs_err"] = (cells["y"] - cells["forecast"]).abs()
    if {"lo80", "hi80"} <= set(cells):
        cells["inside80"] = cells["y"].between(cells["lo80"], cells["hi80"]).astype(float)
    else:
        cells["inside80"] = np.nan
    bt = backtest.drop_duplicates("series_id").set_index("series_id")
    group = bt.get("group")
    if group is None and "group" in a:
        group = a.drop_duplicates("series_id").set_index("series_id")["group"]
    cells["group"] = cells["series_id"].map(group).fillna(ALL).astype(str) if group is not None else ALL
    # A perfect backtest (WMAE 0) would make any error infinite: floor the promise at 1% of the series' level.
    level = cells.groupby("series_id")["y"].transform("mean").abs()
    cells["backtest_wmae"] = np.maximum(
        cells["series_id"].map(bt["wmae"]).astype(float).fillna(0), 1e-6 + 0.01 * level
    )
    return cells


def series_errors(cells: pd.DataFrame) -> pd.DataFrame:
    """Per series: cells, live MAE, backtest WMAE, their ratio, 80% interval coverage, group."""
    per = cells.groupby("series_id").agg(
        group=("group", "first"),
        cells=("abs_err", "size"),
        live_mae=("abs_err", "mean"),
        backtest_wmae=("backtest_wmae", "first"),
        coverage80=("inside80", "mean"),
    )
    per["ratio"] = per["live_mae"] / per["backtest_wmae"]
    return per.reset_index()


def group_drift(cells: pd.DataFrame, config: MonitoringConfig) -> list[dict]:
    """One drift entry per series group (the drift.json ``features`` shape).

    ``statistic`` is the group's live MAE over the MAE its backtest promised on the same cells; ``p_value`` a
    one-sided t-test that the live absolute errors exceed the promise (cells of a day correlate across series,
    so it is optimistic; the ratio threshold and the persistence rule guard against that).
    """
    out = []
    for name, g in cells.groupby("group", sort=True):
        excess = (g["abs_err"] - g["backtest_wmae"]).to_numpy(dtype=float)
        p = (
            float(stats.ttest_1samp(excess, 0.0, alternative="greater").pvalue)
            if len(g) >= 3
            else float("nan")
        )
        ratio = float(g["abs_err"].sum() / g["backtest_wmae"].sum())
        drifted = ratio >= config.forecast_error_ratio and p == p and p < config.p_value
        out.append(
            {
                "name": str(name),
                "psi": None,
                "statistic": round(ratio, 6),
                "p_value": p,
                "drifted": bool(drifted),
                "test": "t-test live abs error > backtest WMAE",
                "series": int(g["series_id"].nunique()),
                "cells": int(len(g)),
                "coverage80": float(g["inside80"].mean()) if g["inside80"].notna().any() else None,
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
