"""Rolling-origin backtest, per-series model choice with fallback rules, final fit and forecast."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.forecasting.candidates import fit_forecast
from models.forecasting.config import ForecastConfig
from models.forecasting.data import Series, iter_series
from models.forecasting.metrics import mase, seasonal_scale, smape

FORECAST_COLUMNS = ["series_id", "date", "forecast", "lo80", "hi80", "lo95", "hi95", "model"]
METRIC_COLUMNS = ["series_id", "model", "folds", "points", "abs_err_w", "weight", "wmae", "mase", "smape"]

FALLBACK_RULES = (
    "all-zero history -> 'zero' (forecast 0); "
    "negative values -> 'snaive' (seasonal naive; 'mean' if shorter than one season); "
    "intermittent (share of zero periods above intermittent_zero_share) -> 'mean' of the last mean_window "
    "periods; shorter than min_history (2 seasons + folds x horizon) -> 'snaive' ('mean' if shorter than one "
    "season); any other series -> the candidate with the lowest backtest WMAE (seasonal naive included). "
    "Forecasts and intervals are clipped at 0 unless the history has negative values."
)


def single_threaded_blas():
    """Limit BLAS to one thread: small fits run faster, and results match Dask workers (which do the same)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


@dataclass
class Plan:
    """Which models a series may use and why."""

    models: list[str]
    reason: str
    fallback: bool


def plan_series(s: Series, cfg: ForecastConfig, freq: str) -> Plan:
    """Apply the fallback rules: a fixed baseline, or the candidates to backtest."""
    m, n = cfg.season(freq), s.y.size
    if n == 0 or np.all(s.y == 0):
        return Plan(["zero"], "all-zero history", True)
    if np.any(s.y < 0):
        return Plan(["snaive" if n >= m else "mean"], "negative values", True)
    zero_share = float(np.mean(s.y == 0))
    if zero_share > cfg.intermittent_zero_share:
        return Plan(["mean"], f"intermittent ({zero_share:.0%} zero periods)", True)
    if n < cfg.min_history(freq):
        return Plan(["snaive" if n >= m else "mean"], f"short history ({n} < {cfg.min_history(freq)})", True)
    return Plan(["snaive", *cfg.candidates], "lowest backtest WMAE", False)


def _weights(s: Series, idx: slice, cfg: ForecastConfig) -> np.ndarray:
    col = cfg.holiday_column
    n = idx.stop - idx.start
    if col and col in s.regressors:
        flag = s.X[idx, s.regressors.index(col)] > 0
        return np.where(flag, cfg.holiday_weight, 1.0)
    return np.ones(n)


def backtest_series(s: Series, cfg: ForecastConfig, freq: str) -> tuple[list[dict], dict]:
    """Rolling-origin backtest of the allowed models; returns metric rows and the choice.

    Folds are the last ``folds`` non-overlapping windows of ``horizon`` periods. Baselines of fallback
    series are backtested against seasonal naive too when history allows, so the overall report covers
    every series that has enough data. A model that fails in any fold is out.
    """
    plan = plan_series(s, cfg, freq)
    h, m, n = cfg.horizon_for(freq), cfg.season(freq), s.y.size
    models = list(dict.fromkeys(plan.models + ["snaive"]))
    folds = min(cfg.folds, max(0, (n - m) // h))
    clip = cfg.nonnegative and not np.any(s.y < 0)
    rows: list[dict] = []
    for model in models:
        acc = {"abs_err_w": 0.0, "weight": 0.0, "mase": [], "smape": [], "points": 0}
        try:
            for k in range(folds, 0, -1):
                end = n - k * h
                fc = fit_forecast(model, s.input(end, h, freq, cfg), cfg)
                pred = np.maximum(fc.mean, 0.0) if clip else fc.mean
                actual = s.y[end : end + h]
                w = _weights(s, slice(end, end + h), cfg)
                acc["abs_err_w"] += float(np.sum(w * np.abs(actual - pred)))
                acc["weight"] += float(np.sum(w))
                acc["mase"].append(mase(actual, pred, seasonal_scale(s.y[:end], m)))
                acc["smape"].append(smape(actual, pred))
                acc["points"] += h
        except Exception:  # noqa: BLE001 - a failing candidate is simply not chosen
            continue
        if folds == 0:
            continue
        mases = [x for x in acc["mase"] if np.isfinite(x)]
        rows.append(
            {
                "series_id": s.series_id,
                "model": model,
                "folds": folds,
                "points": acc["points"],
                "abs_err_w": acc["abs_err_w"],
                "weight": acc["weight"],
                "wmae": acc["abs_err_w"] / acc["weight"],
                "mase": float(np.mean(mases)) if mases else float("nan"),
                "smape": float(np.mean(acc["smape"])),
            }
        )
    if plan.fallback:
        choice, reason = plan.models[0], plan.reason
    else:
        scored = {r["model"]: r["wmae"] for r in rows if r["model"] in plan.models}
        if scored:
            choice = min(scored, key=lambda k: (scored[k], plan.models.index(k)))
            reason = plan.reason
        else:
            choice, reason = "snaive", "every candidate failed in the backtest"
    return rows, {
        "series_id": s.series_id,
        "model": choice,
        "reason": reason,
        "fallback": plan.fallback,
        "n_obs": n,
    }


def backtest_frame(frame: pd.DataFrame, cfg: ForecastConfig, freq: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Backtest every series of a prepared frame: (metric rows, choices)."""
    rows, choices = [], []
    with single_threaded_blas():
        for s in iter_series(frame):
            r, c = backtest_series(s, cfg, freq)
            rows += r
            choices.append(c)
    return pd.DataFrame(rows, columns=METRIC_COLUMNS), pd.DataFrame(choices)


def forecast_frame(
    frame: pd.DataFrame, choices: pd.DataFrame, cfg: ForecastConfig, freq: str
) -> tuple[pd.DataFrame, list[dict]]:
    """Fit each series' chosen model on its whole history and forecast ``horizon`` periods.

    Returns the forecast rows (the forecast CSV contract) and the fitted parameters per series. A chosen
    model that fails on the full history falls back to seasonal naive (or the window mean).
    """
    chosen = dict(zip(choices["series_id"], choices["model"], strict=True))
    out, fitted = [], []
    with single_threaded_blas():
        _forecast_all(frame, chosen, cfg, freq, out, fitted)
    frame_out = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=FORECAST_COLUMNS)
    return frame_out[FORECAST_COLUMNS], fitted


def _forecast_all(
    frame: pd.DataFrame, chosen: dict[str, str], cfg: ForecastConfig, freq: str, out: list, fitted: list
) -> None:
    h, m = cfg.horizon_for(freq), cfg.season(freq)
    for s in iter_series(frame):
        model = chosen.get(s.series_id) or plan_series(s, cfg, freq).models[0]
        inp = s.input(s.y.size, h, freq, cfg)
        try:
            fc = fit_forecast(model, inp, cfg)
        except Exception:  # noqa: BLE001 - documented fallback
            model = "snaive" if s.y.size >= m else "mean"
            fc = fit_forecast(model, inp, cfg)
        iv = fc.intervals(cfg.nonnegative and not np.any(s.y < 0))
        out.append(pd.DataFrame({"series_id": s.series_id, "date": inp.future_dates, **iv, "model": model}))
        fitted.append({"series_id": s.series_id, "model": model, "params": fc.params})


def backtest_batch(batch: Path, out_dir: Path, cfg: ForecastConfig, freq: str) -> tuple[Path, Path]:
    """Backtest one batch file; writes ``<name>.metrics.parquet`` and ``<name>.choices.parquet``."""
    frame = pd.read_parquet(batch)
    metrics, choices = backtest_frame(frame, cfg, freq)
    out_dir.mkdir(parents=True, exist_ok=True)
    mpath, cpath = out_dir / f"{batch.stem}.metrics.parquet", out_dir / f"{batch.stem}.choices.parquet"
    metrics.to_parquet(mpath, index=False)
    choices.to_parquet(cpath, index=False)
    return mpath, cpath


def forecast_batch(
    batch: Path, choices: Path, out_dir: Path, cfg: ForecastConfig, freq: str
) -> tuple[Path, Path]:
    """Final fit + forecast of one batch; writes ``<name>.forecast.parquet`` and ``<name>.fitted.json``."""
    import json

    frame = pd.read_parquet(batch)
    fc, fitted = forecast_frame(frame, pd.read_parquet(choices), cfg, freq)
    out_dir.mkdir(parents=True, exist_ok=True)
    fpath, ppath = out_dir / f"{batch.stem}.forecast.parquet", out_dir / f"{batch.stem}.fitted.json"
    fc.to_parquet(fpath, index=False)
    ppath.write_text(json.dumps(fitted))
    return fpath, ppath
