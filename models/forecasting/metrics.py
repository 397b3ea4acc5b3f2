"""Forecast accuracy metrics: WMAE, MASE, sMAPE."""

from __future__ import annotations

import numpy as np


def wmae(actual: np.ndarray, forecast: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Weighted mean absolute error (holiday periods weigh more when ``weights`` says so)."""
    err = np.abs(np.asarray(actual, float) - np.asarray(forecast, float))
    w = np.ones_like(err) if weights is None else np.asarray(weights, float)
    return float(np.sum(w * err) / np.sum(w))


def seasonal_scale(history: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal-naive forecast (MASE denominator); lag 1 if history is short."""
    y = np.asarray(history, float)
    lag = season if y.size > season else 1
    if y.size <= lag:
        return float("nan")
    return float(np.mean(np.abs(y[lag:] - y[:-lag])))


def mase(actual: np.ndarray, forecast: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error; NaN when the scale is zero or unknown."""
    if not np.isfinite(scale) or scale <= 0:
        return float("nan")
    return wmae(actual, forecast) / scale


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE in percent (0..200); a period with actual = forecast = 0 counts as 0."""
    a, f = np.asarray(actual, float), np.asarray(forecast, float)
    denom = np.abs(a) + np.abs(f)
    ratio = np.divide(2 * np.abs(a - f), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100 * np.mean(ratio))
