"""Candidate models and baselines: each fits one series and returns a mean and a standard deviation path.

All models are additive (negative weeks from returns are modelled, not refused). The seasonal ones share
one calendar: ``SeriesInput.keys`` gives every period (history and future) a *seasonal key* — its position
in the season, or, for a period holding a calendar event (Easter, Thanksgiving, Christmas, the user's
holidays), the event itself — so that a moving holiday is compared with the same holiday a year earlier.

- ``snaive``: seasonal naive, the baseline every series is judged against (plain lag of one season).
- ``snaive_cal``: seasonal naive on the calendar (event periods copy last year's same event period).
- ``seas_ses``: robust classical decomposition (centred moving-average trend, seasonal index per key,
  outliers clipped at 3 MADs and refitted) + simple exponential smoothing of the seasonally adjusted level.
  Needs one season and a quarter of history (65 weeks), so two-year weekly series are backtested with it.
- ``seas_lowrank``: the same, with the seasonal index taken from the series' low-rank (SVD) reconstruction
  within its pool (department across stores): shared seasonality, own level.
- ``combo``: the mean of ``seas_ses``, ``seas_lowrank`` (when available) and ``snaive_cal``.
- ``stl_ets``: statsmodels robust STL (seasonal smoother ``stl_seasonal`` cycles, degree ``stl_seasonal_deg``)
  + exponential smoothing of the adjusted series; the future season repeats the calendar-aligned last cycle.
- ``ets`` (statsmodels Holt-Winters ETS), ``sarimax`` (regression with ARIMA errors on Fourier terms and
  regressors): for long series (two seasons).
- ``ses``: non-seasonal exponential smoothing (series shorter than a season).
- ``croston``, ``sba`` (Syntetos-Boylan), ``tsb`` (Teunter-Syntetos-Babai): intermittent demand.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from models.forecasting.config import INTERMITTENT_MODELS, YEAR_PERIODS, ForecastConfig

BASELINES: tuple[str, ...] = ("snaive", "mean", "zero")
SEASONAL_MODELS: tuple[str, ...] = (
    "seas_ses",
    "seas_lowrank",
    "snaive_cal",
    "combo",
    "stl_ets",
    "ets",
    "sarimax",
)
Z80, Z95 = 1.2815515655446004, 1.959963984540054
SES_ALPHAS = np.array([0.02, 0.05, 0.1, 0.2, 0.3, 0.5])


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
    """One regular series: history, regressors, the dates to forecast and the seasonal keys."""

    y: np.ndarray
    dates: pd.DatetimeIndex
    X: np.ndarray  # (n, k) regressors in history
    X_future: np.ndarray  # (h, k) assumed future regressor values
    future_dates: pd.DatetimeIndex
    freq: str
    season: int
    keys: np.ndarray | None = None  # (n + h,) seasonal key per period: position, or season + event index
    y_shared: np.ndarray | None = None  # (n,) low-rank reconstruction of the history within the pool
    smooth: int = 0  # half-width of the seasonal index smoothing across neighbouring positions

    def seasonal_keys(self) -> np.ndarray:
        """Keys of history and future (positions only when no calendar was given)."""
        n, h = self.y.size, len(self.future_dates)
        if self.keys is not None:
            return self.keys
        return np.arange(n + h) % self.season


def min_history(model: str, season: int) -> int:
    """Periods of history a model needs."""
    m = season
    need = {
        "snaive": m, "snaive_cal": m, "seas_ses": m + max(2, m // 4), "seas_lowrank": m + max(2, m // 4),
        "combo": m + max(2, m // 4), "stl_ets": m + m // 2, "ets": 2 * m + 2, "sarimax": 2 * m,
        "ses": 4, "croston": 4, "sba": 4, "tsb": 4, "mean": 1, "zero": 0,
    }  # fmt: skip
    return need[model]


def _check(fc: Forecast, h: int) -> Forecast:
    if fc.mean.shape != (h,) or not (np.all(np.isfinite(fc.mean)) and np.all(np.isfinite(fc.sd))):
        raise ValueError("model produced a non-finite or mis-shaped forecast")
    fc.sd = np.maximum(fc.sd, 0.0)
    return fc


# ------------------------------------------------------------------------------------------ baselines
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


# ---------------------------------------------------------------------------------- calendar helpers
def aligned_sources(keys: np.ndarray, n: int, h: int, m: int, freq: str) -> np.ndarray:
    """For each future period, the history index its seasonal value comes from.

    One season back (several if the horizon is longer than a season); an event period takes the same event's
    period within a few periods of that; a regular period whose one-season-back source was an event takes
    the nearest regular period instead.
    """
    offsets = (0, -1, 1, -2, 2, -3, 3) if freq == "W" else (0, -m, m)
    src = np.empty(h, int)
    for i in range(h):
        t = n + i
        j = t - m
        while j >= n:
            j -= m
        k = keys[t]
        best = j
        if k >= m:
            for d in offsets:
                if 0 <= j + d < n and keys[j + d] == k:
                    best = j + d
                    break
        elif keys[j] >= m:
            for d in offsets[1:]:
                if 0 <= j + d < n and keys[j + d] < m:
                    best = j + d
                    break
        src[i] = best
    return src


def snaive_cal(s: SeriesInput) -> Forecast:
    """Seasonal naive with calendar-aligned events."""
    m, h, y = s.season, len(s.future_dates), s.y
    if y.size < m:
        raise ValueError("seasonal naive needs one full season of history")
    src = aligned_sources(s.seasonal_keys(), y.size, h, m, s.freq)
    resid = y[m:] - y[:-m]
    sigma = float(np.std(resid, ddof=1)) if resid.size > 1 else float(np.std(y))
    k = np.arange(h) // m
    return Forecast(y[src].astype(float), sigma * np.sqrt(k + 1.0))


# ------------------------------------------------------------------------------------ decomposition
def centred_trend(y: np.ndarray, m: int) -> np.ndarray:
    """Centred moving average over one season (2×m for even m), ends held at the nearest value."""
    n = y.size
    w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    if n < w.size:
        return np.full(n, float(np.mean(y)))
    core = np.convolve(y, w, mode="valid")
    half = (w.size - 1) // 2
    out = np.empty(n)
    out[half : half + core.size] = core
    out[:half] = core[0]
    out[half + core.size :] = core[-1]
    return out


def seasonal_index(y: np.ndarray, keys: np.ndarray, m: int, smooth: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seasonal value per key (positions centred to mean 0; events relative to the trend) and counts.

    Robust: values further than 3 MADs from their key's index are clipped and the index recomputed once.
    ``smooth`` > 0 (seasons of 12+ periods): a triangular moving average of half-width ``smooth`` across
    neighbouring positions (the low-pass step of STL; holiday keys are not smoothed).
    """
    n = y.size
    kh = keys[:n]
    size = int(keys.max()) + 1 if keys.size else m
    d = y - centred_trend(y, m)
    cnt = np.bincount(kh, minlength=size).astype(float)
    idx = np.divide(np.bincount(kh, d, minlength=size), cnt, out=np.zeros(size), where=cnt > 0)
    r = d - idx[kh]
    mad = 1.4826 * float(np.median(np.abs(r - np.median(r))))
    if mad > 0:
        d = idx[kh] + np.clip(r, -3 * mad, 3 * mad)
        idx = np.divide(np.bincount(kh, d, minlength=size), cnt, out=np.zeros(size), where=cnt > 0)
    reg = cnt[:m] > 0
    if reg.any():
        idx -= float(np.mean(idx[:m][reg]))
    idx[:m][~reg] = 0.0
    if smooth > 0 and m >= 12:  # low-pass across neighbouring weeks (events keep their own keys)
        w = np.r_[np.arange(1, smooth + 2), np.arange(smooth, 0, -1)].astype(float)
        vals = np.where(reg, idx[:m], 0.0)
        pad = np.r_[vals[-smooth:], vals, vals[:smooth]]
        wts = np.r_[reg[-smooth:], reg, reg[:smooth]].astype(float)
        num = np.convolve(pad, w, mode="valid")
        den = np.convolve(wts, w, mode="valid")
        idx[:m] = np.divide(num, den, out=idx[:m].copy(), where=den > 0)
    return idx, cnt


def ses(a: np.ndarray) -> tuple[float, float, float]:
    """Simple exponential smoothing with alpha from a grid (in-sample one-step SSE): (level, alpha, sigma)."""
    n = a.size
    init = float(np.mean(a[: min(n, 4)]))
    best = (float("inf"), init, 0.1, 0.0)
    burn = min(4, n - 1)
    for alpha in SES_ALPHAS:
        lev = lfilter([alpha], [1.0, alpha - 1.0], a, zi=[(1 - alpha) * init])[0]
        prev = np.r_[init, lev[:-1]]
        err = a[burn:] - prev[burn:]
        sse = float(np.sum(err * err))
        if sse < best[0]:
            best = (sse, float(lev[-1]), float(alpha), float(np.sqrt(sse / max(1, err.size))))
    return best[1], best[2], best[3]


def _seasonal_level(y: np.ndarray, shape_source: np.ndarray, s: SeriesInput) -> Forecast:
    m, n, h = s.season, s.y.size, len(s.future_dates)
    keys = s.seasonal_keys()
    idx, cnt = seasonal_index(shape_source, keys, m, s.smooth)
    k_fut = keys[n : n + h].copy()
    missing = cnt[k_fut] == 0
    k_fut[missing] = np.arange(n, n + h)[missing] % m
    level, alpha, sigma = ses(y - idx[keys[:n]])
    mean = level + idx[k_fut]
    sd = sigma * np.sqrt(1.0 + np.arange(h) * alpha**2)
    return Forecast(mean, sd, {"alpha": alpha, "level": level})


def seas_ses(s: SeriesInput) -> Forecast:
    """Robust seasonal index (calendar keys) + SES level."""
    if s.y.size < min_history("seas_ses", s.season):
        raise ValueError("seas_ses needs a season and a quarter of history")
    return _seasonal_level(s.y, s.y, s)


def seas_lowrank(s: SeriesInput) -> Forecast:
    """Seasonal index of the pool's low-rank reconstruction + the series' own SES level."""
    if s.y_shared is None or s.y.size < min_history("seas_lowrank", s.season):
        raise ValueError("seas_lowrank needs a pool reconstruction and a season and a quarter of history")
    return _seasonal_level(s.y, s.y_shared, s)


def combo(s: SeriesInput) -> Forecast:
    """Equal-weight mean of seas_ses, seas_lowrank (if available) and snaive_cal."""
    parts = [seas_ses(s), snaive_cal(s)]
    if s.y_shared is not None:
        parts.append(seas_lowrank(s))
    return Forecast(np.mean([p.mean for p in parts], axis=0), np.mean([p.sd for p in parts], axis=0))


def stl_ets(s: SeriesInput, cfg: ForecastConfig) -> Forecast:
    """Robust STL (short-series smoother settings) + SES of the adjusted series; season calendar-aligned."""
    from statsmodels.tsa.seasonal import STL

    m, n, h = s.season, s.y.size, len(s.future_dates)
    if n < min_history("stl_ets", m):
        raise ValueError("stl_ets needs a season and a half of history")
    seasonal = cfg.stl_seasonal if cfg.stl_seasonal % 2 == 1 else cfg.stl_seasonal + 1
    res = STL(
        s.y, period=m, seasonal=seasonal, seasonal_deg=cfg.stl_seasonal_deg, robust=cfg.stl_robust
    ).fit()
    season = np.asarray(res.seasonal, float)
    level, alpha, sigma = ses(s.y - season)
    src = aligned_sources(s.seasonal_keys(), n, h, m, s.freq)
    mean = level + season[src]
    return _check(Forecast(mean, sigma * np.sqrt(1.0 + np.arange(h) * alpha**2), {"alpha": alpha}), h)


def ses_model(s: SeriesInput) -> Forecast:
    """Non-seasonal simple exponential smoothing (flat forecast)."""
    h = len(s.future_dates)
    level, alpha, sigma = ses(s.y)
    return Forecast(np.full(h, level), sigma * np.sqrt(1.0 + np.arange(h) * alpha**2), {"alpha": alpha})


# -------------------------------------------------------------------------------------- intermittent
def intermittent(s: SeriesInput, method: str, alpha: float = 0.1) -> Forecast:
    """Croston, SBA (Croston × (1 - alpha/2)) or TSB (demand probability updated every period)."""
    y, h = s.y, len(s.future_dates)
    nz = np.flatnonzero(y != 0)
    if nz.size < 2:  # too few demands to smooth: the average rate (0 without any)
        rate = float(np.mean(y)) if y.size else 0.0
        return Forecast(np.full(h, rate), np.full(h, float(np.std(y)) if y.size else 0.0), {"rate": rate})
    sizes = y[nz]
    if method == "tsb":
        occ = (y != 0).astype(float)
        p = lfilter([alpha], [1.0, alpha - 1.0], occ, zi=[(1 - alpha) * occ[: nz[0] + 1].mean()])[0]
        z = lfilter([alpha], [1.0, alpha - 1.0], sizes, zi=[(1 - alpha) * sizes[0]])[0]
        rate = float(p[-1] * z[-1])
        fitted = np.r_[occ.mean() * sizes[0], (p[:-1] * np.interp(np.arange(1, y.size), nz, z))]
    else:
        gaps = np.diff(np.r_[-1, nz]).astype(float)
        z = lfilter([alpha], [1.0, alpha - 1.0], sizes, zi=[(1 - alpha) * sizes[0]])[0]
        q = lfilter([alpha], [1.0, alpha - 1.0], gaps, zi=[(1 - alpha) * gaps[0]])[0]
        factor = 1.0 - alpha / 2 if method == "sba" else 1.0
        rate = float(factor * z[-1] / q[-1])
        fitted = np.full(y.size, rate)
    sigma = float(np.sqrt(np.mean((y - fitted) ** 2)))
    return Forecast(np.full(h, rate), np.full(h, sigma), {"rate": rate})


# --------------------------------------------------------------------------- statsmodels state space
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


MODELS: tuple[str, ...] = (*BASELINES, "snaive_cal", "seas_ses", "seas_lowrank", "combo", "stl_ets", "ets",
                           "sarimax", "ses", *INTERMITTENT_MODELS)  # fmt: skip


def fit_forecast(name: str, s: SeriesInput, cfg: ForecastConfig) -> Forecast:
    """Fit model ``name`` on the series' history and forecast its future dates."""
    h = len(s.future_dates)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            if name == "snaive":
                return _check(snaive(s), h)
            if name == "mean":
                return _check(window_mean(s, cfg.mean_window_for(s.freq)), h)
            if name == "zero":
                return zero(s)
            if name == "snaive_cal":
                return _check(snaive_cal(s), h)
            if name == "seas_ses":
                return _check(seas_ses(s), h)
            if name == "seas_lowrank":
                return _check(seas_lowrank(s), h)
            if name == "combo":
                return _check(combo(s), h)
            if name == "stl_ets":
                return stl_ets(s, cfg)
            if name == "ets":
                return ets(s, cfg)
            if name == "sarimax":
                return sarimax(s, cfg)
            if name == "ses":
                return _check(ses_model(s), h)
            if name in INTERMITTENT_MODELS:
                return _check(intermittent(s, name), h)
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}")
