"""Candidate models and baselines: each fits one series and returns a mean and a standard deviation path."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.forecasting.config import YEAR_PERIODS, ForecastConfig

BASELINES: tuple[str, ...] = ("snaive", "mean", "zero")
Z80, Z95 = 1.2815515655446004, 1.959963984540054


@dataclass
class Forecast:
    """Point forecast and its standard deviation per step, plus the fitted parameters."""

    mean: np.ndarray
    sd: np.ndarray
    params: dict[str, float] = field(default_factory=dict)

    def intervals(self, nonnegative: bool) -> dict[str, np.ndarray]:
        """Point forecast with 80% and 95% normal intervals (clipped at 0 for counts)."""
        out = {
            "forecast": self.mean,
            "lo80": self.mean - Z80 * self.sd,
            "hi80": self.mean + Z80 * self.sd,
            "lo95": self.mean - Z95 * self.sd,
            "hi95": self.mean + Z95 * self.sd,
        }
        if nonnegative:
            out = {k: np.maximum(v, 0.0) for k, v in out.items()}
        return out


@dataclass
class SeriesInput:
    """One regular series: history, regressors and the dates to forecast."""

    y: np.ndarray
    dates: pd.DatetimeIndex
    X: np.ndarray  # (n, k) regressors in history
    X_future: np.ndarray  # (h, k) assumed future regressor values
    future_dates: pd.DatetimeIndex
    freq: str
    season: int


def _check(fc: Forecast, h: int) -> Forecast:
    if fc.mean.shape != (h,) or not (np.all(np.isfinite(fc.mean)) and np.all(np.isfinite(fc.sd))):
        raise ValueError("model produced a non-finite or mis-shaped forecast")
    fc.sd = np.maximum(fc.sd, 0.0)
    return fc


def snaive(s: SeriesInput) -> Forecast:
    """Seasonal naive: the value one season earlier; sd grows with the number of seasons ahead."""
    m, h, y = s.season, len(s.future_dates), s.y
    if y.size < m:
        raise ValueError("seasonal naive needs one full season of history")
    mean = np.array([y[y.size - m + (i % m)] for i in range(h)], float)
    resid = y[m:] - y[:-m]
    sigma = float(np.std(resid, ddof=1)) if resid.size > 1 else float(np.std(y))
    k = np.arange(h) // m
    return Forecast(mean, sigma * np.sqrt(k + 1.0))


def window_mean(s: SeriesInput, window: int) -> Forecast:
    """Mean of the last ``window`` periods, flat; sd from the same window."""
    tail = s.y[-window:]
    sigma = float(np.std(tail, ddof=1)) if tail.size > 1 else 0.0
    h = len(s.future_dates)
    return Forecast(np.full(h, float(np.mean(tail))), np.full(h, sigma * np.sqrt(1 + 1 / tail.size)))


def zero(s: SeriesInput) -> Forecast:
    """All-zero history: forecast 0 with zero-width intervals."""
    h = len(s.future_dates)
    return Forecast(np.zeros(h), np.zeros(h))


def ets(s: SeriesInput, cfg: ForecastConfig) -> Forecast:
    """Additive Holt-Winters ETS(A,Ad,A) (trend per config) with heuristic initial states (needs 2 seasons)."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    h, n = len(s.future_dates), s.y.size
    model = ETSModel(
        pd.Series(s.y),
        error="add",
        trend=None if cfg.ets_trend == "none" else "add",
        damped_trend=cfg.ets_trend == "damped",
        seasonal="add",
        seasonal_periods=s.season,
        initialization_method="heuristic",
    )
    res = model.fit(disp=False)
    pred = res.get_prediction(start=n, end=n + h - 1)
    sd = np.sqrt(np.asarray(pred.forecast_variance, float))
    params = {str(k): float(v) for k, v in zip(res.param_names, res.params, strict=False)}
    return _check(Forecast(np.asarray(pred.predicted_mean, float), sd, params), h)


def stl_ets(s: SeriesInput, cfg: ForecastConfig) -> Forecast:
    """STL decomposition (short seasonal smoother, constant degree) + simple exponential smoothing."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    from statsmodels.tsa.forecasting.stl import STLForecast

    h, n = len(s.future_dates), s.y.size
    seasonal = cfg.stl_seasonal if cfg.stl_seasonal % 2 == 1 else cfg.stl_seasonal + 1
    res = STLForecast(
        pd.Series(s.y),
        ETSModel,
        model_kwargs={"error": "add", "initialization_method": "heuristic"},
        period=s.season,
        seasonal=seasonal,
        seasonal_deg=cfg.stl_seasonal_deg,
        robust=False,
    ).fit(fit_kwargs={"disp": False})
    pred = res.get_prediction(start=n, end=n + h - 1)
    params = {str(k): float(v) for k, v in res.model_result.params.items()}
    return _check(
        Forecast(np.asarray(pred.predicted_mean, float), np.asarray(pred.se_mean, float), params), h
    )


def fourier_terms(dates: pd.DatetimeIndex, period_days: float, pairs: int) -> np.ndarray:
    """Sine/cosine pairs of a period in days, on absolute time (train and future line up)."""
    t = (dates - pd.Timestamp("1970-01-01")).days.to_numpy(dtype=float)
    cols = []
    for k in range(1, pairs + 1):
        cols += [np.sin(2 * np.pi * k * t / period_days), np.cos(2 * np.pi * k * t / period_days)]
    return np.column_stack(cols) if cols else np.empty((len(dates), 0))


def sarimax_design(s: SeriesInput, cfg: ForecastConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Exogenous design: constant, optional linear trend, Fourier seasonality, non-constant regressors."""
    n = s.y.size
    blocks_h, blocks_f, names = [np.ones((n, 1))], [np.ones((len(s.future_dates), 1))], ["const"]
    if cfg.sarimax_trend:
        scale = 365.25 / (1 if s.freq == "D" else 7)  # slope per year
        blocks_h.append((np.arange(n)[:, None] - n) / scale)
        blocks_f.append(np.arange(len(s.future_dates))[:, None] / scale)
        names.append("trend")
    if s.freq == "D" and cfg.fourier_weekly:
        blocks_h.append(fourier_terms(s.dates, 7.0, cfg.fourier_weekly))
        blocks_f.append(fourier_terms(s.future_dates, 7.0, cfg.fourier_weekly))
        names += [f"week_{i}" for i in range(2 * cfg.fourier_weekly)]
    if cfg.fourier_yearly and n >= YEAR_PERIODS[s.freq]:
        blocks_h.append(fourier_terms(s.dates, 365.25, cfg.fourier_yearly))
        blocks_f.append(fourier_terms(s.future_dates, 365.25, cfg.fourier_yearly))
        names += [f"year_{i}" for i in range(2 * cfg.fourier_yearly)]
    if s.X.shape[1]:
        varying = np.ptp(s.X, axis=0) > 0
        blocks_h.append(s.X[:, varying])
        blocks_f.append(s.X_future[:, varying])
        names += [f"x{i}" for i in np.flatnonzero(varying)]
    return np.hstack(blocks_h), np.hstack(blocks_f), names


def sarimax(s: SeriesInput, cfg: ForecastConfig) -> Forecast:
    """Regression with ARIMA errors: SARIMAX(p,d,q) on Fourier seasonality + holiday/promotion regressors.

    Regression coefficients live in the state vector (``mle_regression=False``, so the Kalman filter
    estimates them and the intervals include their uncertainty) and the scale is concentrated out.
    ``sarimax_fit="two_step"`` takes the ARMA parameters from a fit to the OLS residuals and runs one
    filter pass of the full model (~10x cheaper than ``"mle"``, which optimises them on the full model).
    """
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    h = len(s.future_dates)
    exog, exog_future, names = sarimax_design(s, cfg)
    model = SARIMAX(s.y, exog=exog, order=cfg.sarimax_order, mle_regression=False, concentrate_scale=True)
    if cfg.sarimax_fit == "two_step":
        beta = np.linalg.lstsq(exog, s.y, rcond=None)[0]
        arma = SARIMAX(s.y - exog @ beta, order=cfg.sarimax_order, concentrate_scale=True)
        res = model.filter(arma.fit(disp=False, maxiter=50).params)
    else:
        res = model.fit(disp=False, maxiter=50)
    fc = res.get_forecast(h, exog=exog_future)
    params = {str(k): float(v) for k, v in zip(res.param_names, np.atleast_1d(res.params), strict=False)}
    coefs = res.filtered_state[-exog.shape[1] :, -1] if exog.shape[1] else []
    params.update({f"beta_{nm}": float(c) for nm, c in zip(names, coefs, strict=False)})
    return _check(Forecast(np.asarray(fc.predicted_mean, float), np.asarray(fc.se_mean, float), params), h)


def fit_forecast(name: str, s: SeriesInput, cfg: ForecastConfig) -> Forecast:
    """Fit model ``name`` on the series' history and forecast its future dates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            if name == "snaive":
                return _check(snaive(s), len(s.future_dates))
            if name == "mean":
                return _check(window_mean(s, cfg.mean_window_for(s.freq)), len(s.future_dates))
            if name == "zero":
                return zero(s)
            if name == "ets":
                return ets(s, cfg)
            if name == "stl_ets":
                return stl_ets(s, cfg)
            if name == "sarimax":
                return sarimax(s, cfg)
    raise ValueError(f"unknown model {name!r}; choose from {BASELINES + ('ets', 'stl_ets', 'sarimax')}")
