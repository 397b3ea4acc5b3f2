"""Rolling-origin backtest, model choice (per series or pooled), calibrated intervals, final fit and forecast.

A batch holds whole pools (series sharing the pool column's value, e.g. one department across stores), so
pooled seasonality (SVD of the pool's history matrix at each fold origin) and pooled choice need no data
from other batches. Intervals need the whole panel's backtest residuals: ``calibrate`` reduces the batches'
residual files to quantiles per model and horizon step, which ``forecast_batch`` applies.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from models.forecasting.candidates import BASELINES, Forecast, fit_forecast, min_history
from models.forecasting.config import INTERMITTENT_MODELS, ForecastConfig
from models.forecasting.data import ALL_GROUP, Series, iter_series
from models.forecasting.metrics import mase, seasonal_scale, smape

FORECAST_COLUMNS = ["series_id", "date", "forecast", "lo80", "hi80", "lo95", "hi95", "model"]
METRIC_COLUMNS = ["series_id", "model", "folds", "points", "abs_err_w", "weight", "wmae", "mase", "smape"]
RESIDUAL_COLUMNS = ["series_id", "model", "step", "resid", "scale", "actual", "pred", "weight"]
QUANTILES = (0.025, 0.1, 0.9, 0.975)
MIN_POOL = 4  # series a pool needs before its evidence may overrule a series' own backtest

FALLBACK_RULES = (
    "all-zero history -> 'zero'; constant history -> 'mean'; shorter than one season -> 'ses' against 'mean' "
    "in short folds; intermittent (share of zero periods above intermittent_zero_share) -> croston/sba/tsb "
    "against seasonal naive; any other series -> every candidate its history allows (seasonal models need "
    "a season and a quarter) against seasonal naive in rolling-origin folds (fewer and shorter folds when "
    "history is short). Choice: the series' own lowest backtest WMAE when it has min_series_points backtest "
    "points, else the pool's best model by mean log WMAE ratio to seasonal naive; with naive_guard a series "
    "whose own backtest favours seasonal naive gets seasonal naive. Negative values are modelled (additive "
    "models); forecasts are clipped at 0 only when the history has none."
)

log = logging.getLogger("callcast.forecast")


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
    kind: str = "regular"


def level_factor(pred: np.ndarray, history: np.ndarray, cfg: ForecastConfig) -> np.ndarray:
    """Per-step multiplier of the error scale: 1, or with ``interval_scaling="level"`` the square root of the
    forecast's level relative to the history's mean level (errors of sales grow with their level)."""
    if cfg.interval_scaling != "level":
        return np.ones(pred.size)
    base = float(np.mean(np.abs(history))) if history.size else 0.0
    if base <= 0:
        return np.ones(pred.size)
    return np.sqrt(np.clip(np.abs(pred), 0.25 * base, 4 * base) / base)


def series_scale(y: np.ndarray, season: int) -> float:
    """Scale of a series' errors: in-sample seasonal-naive MAE, else first-difference MAE, else mean |y|."""
    for lag in (season, 1):
        if y.size > lag:
            v = float(np.mean(np.abs(y[lag:] - y[:-lag])))
            if v > 0:
                return v
    v = float(np.mean(np.abs(y))) if y.size else 0.0
    return v


def plan_series(s: Series, cfg: ForecastConfig, freq: str) -> Plan:
    """Apply the fallback rules: a fixed baseline, or the candidates to backtest against seasonal naive."""
    m, n = cfg.season(freq), s.y.size
    if n == 0 or np.all(s.y == 0):
        return Plan(["zero"], "all-zero history", True, "zero")
    if np.ptp(s.y) == 0:
        return Plan(["mean"], "constant history", True, "constant")
    zero_share = float(np.mean(s.y == 0))
    if zero_share > cfg.intermittent_zero_share:
        models = [c for c in cfg.candidates if c in INTERMITTENT_MODELS]
        base = "snaive" if n >= m + cfg.min_fold_horizon_for(freq) else "mean"
        return Plan([base, *models], f"intermittent ({zero_share:.0%} zero periods)", False, "intermittent")
    if n < m + cfg.min_fold_horizon_for(freq):
        models = [c for c in cfg.candidates if c == "ses"]
        return Plan(
            ["mean", *models], f"short history ({n} periods, under one season + a fold)", False, "short"
        )
    models = [c for c in cfg.candidates if c not in INTERMITTENT_MODELS and c != "ses"]
    return Plan(["snaive", *models], "lowest backtest WMAE", False, "regular")


def fold_origins(n: int, h: int, cfg: ForecastConfig, freq: str, need: int) -> tuple[list[int], int]:
    """Fold origins (history lengths) and fold length: ``folds`` × ``horizon`` if history allows, else
    fewer folds, else one shorter fold (down to ``min_fold_horizon``); none if even that does not fit."""
    folds = cfg.folds
    while folds > 0 and n - folds * h < need:
        folds -= 1
    if folds:
        return [n - k * h for k in range(folds, 0, -1)], h
    hf = n - need
    if hf >= cfg.min_fold_horizon_for(freq):
        return [need], min(hf, h)
    return [], h


def _weights(s: Series, idx: slice, cfg: ForecastConfig) -> np.ndarray:
    col = cfg.holiday_column
    n = idx.stop - idx.start
    if col and col in s.regressors:
        flag = s.X[idx, s.regressors.index(col)] > 0
        return np.where(flag, cfg.holiday_weight, 1.0)
    return np.ones(n)


# ---------------------------------------------------------------------------------- pooled seasonality
class LowRank:
    """SVD smoothing of each pool's history matrix, per origin date (cached within a batch)."""

    def __init__(self, series: list[Series], cfg: ForecastConfig) -> None:
        self.cfg = cfg
        self.by_group: dict[str, list[Series]] = {}
        for s in series:
            self.by_group.setdefault(s.group, []).append(s)
        self.cache: dict[tuple[str, pd.Timestamp], dict[str, np.ndarray]] = {}

    def get(self, s: Series, end: int) -> np.ndarray | None:
        """The reconstruction of ``s.y[:end]`` within its pool, or None for pools under 4 series."""
        if "seas_lowrank" not in self.cfg.candidates and "combo" not in self.cfg.candidates:
            return None
        members = self.by_group.get(s.group, [])
        if len(members) < 4:
            return None
        origin = s.dates[end - 1]
        key = (s.group, origin)
        if key not in self.cache:
            self.cache[key] = self._reconstruct(members, origin)
        rec = self.cache[key].get(s.series_id)
        return None if rec is None else rec[-end:] if rec.size >= end else None

    def _reconstruct(self, members: list[Series], origin: pd.Timestamp) -> dict[str, np.ndarray]:
        rows, ids = [], []
        for s in members:
            end = int(np.searchsorted(s.dates.values, origin.to_datetime64(), side="right"))
            if end > 0:
                rows.append(s.y[:end])
                ids.append(s.series_id)
        width = max(r.size for r in rows)
        mat = np.full((len(rows), width), np.nan)
        for i, r in enumerate(rows):
            mat[i, width - r.size :] = r
        mu = np.nanmean(mat, axis=1, keepdims=True)
        sd = np.nanstd(mat, axis=1, keepdims=True)
        sd[sd == 0] = 1.0
        z = np.nan_to_num((mat - mu) / sd)
        rank = min(self.cfg.lowrank_rank, max(1, len(rows) // 3))
        u, sv, vt = np.linalg.svd(z, full_matrices=False)
        rec = (u[:, :rank] * sv[:rank]) @ vt[:rank] * sd + mu
        return {sid: rec[i, width - r.size :] for i, (sid, r) in enumerate(zip(ids, rows, strict=True))}


# ------------------------------------------------------------------------------------------- backtest
@dataclass
class SeriesBacktest:
    """Backtest outcome of one series: per-model metrics, per-model scaled residuals, plan and folds."""

    series: Series
    plan: Plan
    rows: list[dict]
    resid: dict[str, list[tuple[int, float, float, float, float, float]]]
    folds: int


def backtest_one(s: Series, cfg: ForecastConfig, freq: str, lowrank: LowRank | None) -> SeriesBacktest:
    """Rolling-origin backtest of the series' allowed models (seasonal naive always included if possible)."""
    plan = plan_series(s, cfg, freq)
    h, m, n = cfg.horizon_for(freq), cfg.season(freq), s.y.size
    models = list(dict.fromkeys(plan.models + (["snaive"] if n >= m else [])))
    if plan.kind in ("zero", "constant"):
        models = plan.models + (["snaive"] if n >= m else [])
    comparator = plan.models[0]
    others = [min_history(x, m) for x in plan.models[1:] if x != "snaive_cal"]
    need = max(min_history(comparator, m), min(others) if others else 0)
    origins, hf = fold_origins(n, h, cfg, freq, need)  # folds where the models proper can run
    if not origins:  # else folds for what the history allows (calendar seasonal naive, say)
        others = [min_history(x, m) for x in plan.models[1:]]
        need = max(min_history(comparator, m), min(others) if others else 0)
        origins, hf = fold_origins(n, h, cfg, freq, need)
    clip = cfg.nonnegative and not np.any(s.y < 0)
    rows: list[dict] = []
    resid: dict[str, list] = {}
    for model in models:
        if not origins or min(origins) < min_history(model, m):
            continue
        acc = {"abs_err_w": 0.0, "weight": 0.0, "mase": [], "smape": [], "points": 0}
        res: list = []
        try:
            for end in origins:
                y_shared = lowrank.get(s, end) if lowrank and model in ("seas_lowrank", "combo") else None
                if model == "seas_lowrank" and y_shared is None:
                    raise ValueError("no pool reconstruction")
                fc = fit_forecast(model, s.input(end, hf, freq, cfg, y_shared), cfg)
                pred = np.maximum(fc.mean, 0.0) if clip else fc.mean
                actual = s.y[end : end + hf]
                w = _weights(s, slice(end, end + hf), cfg)
                acc["abs_err_w"] += float(np.sum(w * np.abs(actual - pred)))
                acc["weight"] += float(np.sum(w))
                acc["mase"].append(mase(actual, pred, seasonal_scale(s.y[:end], m)))
                acc["smape"].append(smape(actual, pred))
                acc["points"] += hf
                scale = series_scale(s.y[:end], m) * level_factor(pred, s.y[:end], cfg)
                for i in range(hf):
                    r = (actual[i] - pred[i]) / scale[i] if scale[i] > 0 else 0.0
                    res.append((i, r, float(scale[i]), float(actual[i]), float(pred[i]), float(w[i])))
        except Exception:  # noqa: BLE001 - a failing candidate is simply not chosen
            continue
        mases = [x for x in acc["mase"] if np.isfinite(x)]
        rows.append(
            {
                "series_id": s.series_id,
                "model": model,
                "folds": len(origins),
                "points": acc["points"],
                "abs_err_w": acc["abs_err_w"],
                "weight": acc["weight"],
                "wmae": acc["abs_err_w"] / acc["weight"] if acc["weight"] else float("nan"),
                "mase": float(np.mean(mases)) if mases else float("nan"),
                "smape": float(np.mean(acc["smape"])) if acc["smape"] else float("nan"),
            }
        )
        resid[model] = res
    return SeriesBacktest(s, plan, rows, resid, len(origins))


def pooled_scores(results: list[SeriesBacktest]) -> dict[tuple[str, str], float]:
    """(pool, model) -> mean log ratio of the model's backtest WMAE to seasonal naive's over the pool."""
    acc: dict[tuple[str, str], list[float]] = {}
    for r in results:
        by = {row["model"]: row["wmae"] for row in r.rows}
        base = by.get("snaive", by.get("mean"))
        if base is None or not np.isfinite(base):
            continue
        for model, v in by.items():
            if np.isfinite(v):
                ratio = (v + 1e-9) / (base + 1e-9)
                acc.setdefault((r.series.group, model), []).append(float(np.log(ratio)))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def choose(
    r: SeriesBacktest, cfg: ForecastConfig, pooled: dict[tuple[str, str], float], pool_sizes: dict[str, int]
) -> dict:
    """The series' model and the stated reason (see ``FALLBACK_RULES``)."""
    s, plan = r.series, r.plan
    by = {row["model"]: row for row in r.rows}
    base = "snaive" if "snaive" in by else ("mean" if "mean" in by else None)
    out = {"series_id": s.series_id, "group": s.group, "n_obs": int(s.y.size), "folds": r.folds}
    if plan.fallback:
        return {**out, "model": plan.models[0], "reason": plan.reason, "fallback": True}
    cands = [x for x in plan.models if x not in BASELINES and x in by]
    if not cands:
        why = "no backtest fold fits the history" if not r.rows else "every candidate failed in the backtest"
        return {**out, "model": base or plan.models[0], "reason": f"{plan.reason}: {why}", "fallback": True}
    points = max(row["points"] for row in r.rows)
    own = cfg.selection == "series" or (cfg.selection == "auto" and points >= cfg.min_series_points)
    pool_n = pool_sizes.get(s.group, 1)
    scored = [x for x in cands if (s.group, x) in pooled]
    if own or base is None or pool_n < MIN_POOL or not scored:
        best = min(cands, key=lambda x: by[x]["wmae"])
        how = f"lowest own backtest WMAE ({points} points)"
        own = True
    else:
        best = min(scored, key=lambda x: pooled[(s.group, x)])
        how = f"best model of pool {s.group!r} ({pool_n} series; {points} own backtest points)"
    if base is not None and by[best]["wmae"] > by[base]["wmae"]:
        if own or cfg.naive_guard or plan.kind == "intermittent":
            name = "seasonal naive" if base == "snaive" else "mean"
            return {
                **out,
                "model": base,
                "reason": f"{name} beat {best} in this series' backtest",
                "fallback": True,
            }
        how += "; own backtest favours seasonal naive"
    kind = f"{plan.reason}; " if plan.kind != "regular" else ""
    return {**out, "model": best, "reason": f"{kind}{how}", "fallback": False}


def backtest_frame(
    frame: pd.DataFrame, cfg: ForecastConfig, freq: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Backtest every series of a prepared frame: (metric rows, choices, residuals of the chosen models)."""
    with single_threaded_blas():
        series = list(iter_series(frame))
        lowrank = LowRank(series, cfg)
        results = []
        t0, last = time.perf_counter(), time.perf_counter()
        for i, s in enumerate(series, 1):
            results.append(backtest_one(s, cfg, freq, lowrank))
            if time.perf_counter() - last > 30:
                last = time.perf_counter()
                log.info("backtest: %d/%d series (%.0f series/s)", i, len(series), i / (last - t0))
    pooled = pooled_scores(results)
    pool_sizes = pd.Series([r.series.group for r in results]).value_counts().to_dict()
    rows, choices, resid = [], [], []
    for r in results:
        rows += r.rows
        c = choose(r, cfg, pooled, pool_sizes)
        choices.append(c)
        for step, res, scale, actual, pred, w in r.resid.get(c["model"], []):
            resid.append((r.series.series_id, c["model"], step, res, scale, actual, pred, w))
    return (
        pd.DataFrame(rows, columns=METRIC_COLUMNS),
        pd.DataFrame(
            choices, columns=["series_id", "group", "n_obs", "folds", "model", "reason", "fallback"]
        ),
        pd.DataFrame(resid, columns=RESIDUAL_COLUMNS),
    )


# ------------------------------------------------------------------------------------------ intervals
def calibrate(resid: pd.DataFrame, horizon: int, min_samples: int = 100) -> dict:
    """Quantiles (2.5, 10, 90, 97.5%) of scaled backtest residuals per model and horizon step.

    A step uses the residuals of neighbouring steps too until it has ``min_samples``; a model with fewer
    than 30 residuals uses all models' residuals; with fewer than 30 overall, the models' own normal
    intervals are used (``{}``).
    """
    out: dict = {"quantiles": list(QUANTILES), "models": {}, "samples": {}}
    r = resid[np.isfinite(resid["resid"]) & (resid["scale"] > 0)]
    if len(r) < 30:
        return {}

    def table(part: pd.DataFrame) -> list[list[float]]:
        steps = part["step"].to_numpy()
        vals = part["resid"].to_numpy()
        rows = []
        for i in range(horizon):
            w = 0
            while True:
                sel = np.abs(steps - min(i, steps.max())) <= w
                if sel.sum() >= min(min_samples, vals.size) or w > horizon:
                    break
                w += 1
            rows.append([float(x) for x in np.quantile(vals[sel], QUANTILES)])
        return rows

    out["models"]["*"] = table(r)
    out["samples"]["*"] = int(len(r))
    for model, part in r.groupby("model"):
        if len(part) >= 30:
            out["models"][str(model)] = table(part)
            out["samples"][str(model)] = int(len(part))
    return out


def apply_intervals(
    fc: Forecast, model: str, scale: float | np.ndarray, calib: dict, clip: bool
) -> dict[str, np.ndarray]:
    """Point forecast with calibrated 80%/95% intervals (``f + q × scale``), ordered around the forecast."""
    table = (calib or {}).get("models", {}).get(model) or (calib or {}).get("models", {}).get("*")
    scale = np.broadcast_to(np.asarray(scale, float), fc.mean.shape)
    if not table or np.all(scale <= 0):
        out = fc.intervals(False)
    else:
        q = np.asarray(table, float)[: fc.mean.size]
        f = fc.mean
        out = {
            "forecast": f,
            "lo95": f + q[:, 0] * scale,
            "lo80": f + q[:, 1] * scale,
            "hi80": f + q[:, 2] * scale,
            "hi95": f + q[:, 3] * scale,
        }
    f = out["forecast"]
    out["lo80"] = np.minimum(out["lo80"], f)
    out["hi80"] = np.maximum(out["hi80"], f)
    out["lo95"] = np.minimum(out["lo95"], out["lo80"])
    out["hi95"] = np.maximum(out["hi95"], out["hi80"])
    if clip:
        out = {k: np.maximum(v, 0.0) for k, v in out.items()}
    if np.all(scale > 0):  # a varying series never gets a zero-width interval
        eps = 1e-6 * scale
        out["hi80"] = np.maximum(out["hi80"], out["lo80"] + eps)
        out["hi95"] = np.maximum(out["hi95"], out["hi80"] + eps)
    return out


def interval_coverage(resid: pd.DataFrame, calib: dict, clip_floor: bool = True) -> dict[str, float]:
    """Share of backtest actuals inside the calibrated 80% and 95% intervals of the chosen models."""
    if resid.empty or not calib:
        return {"coverage80": float("nan"), "coverage95": float("nan")}
    inside80 = inside95 = total = 0
    for model, part in resid.groupby("model"):
        table = calib["models"].get(str(model)) or calib["models"]["*"]
        q = np.asarray(table, float)
        steps = np.minimum(part["step"].to_numpy(), len(q) - 1)
        sc, pred, act = part["scale"].to_numpy(), part["pred"].to_numpy(), part["actual"].to_numpy()
        lo95, lo80 = pred + q[steps, 0] * sc, np.minimum(pred + q[steps, 1] * sc, pred)
        hi80, hi95 = np.maximum(pred + q[steps, 2] * sc, pred), pred + q[steps, 3] * sc
        if clip_floor:
            lo95, lo80 = np.minimum(lo95, lo80), lo80
        inside80 += int(np.sum((act >= lo80) & (act <= hi80)))
        inside95 += int(np.sum((act >= np.minimum(lo95, lo80)) & (act <= np.maximum(hi95, hi80))))
        total += len(part)
    return {"coverage80": inside80 / total, "coverage95": inside95 / total}


# ------------------------------------------------------------------------------------ final forecast
def forecast_frame(
    frame: pd.DataFrame, choices: pd.DataFrame, cfg: ForecastConfig, freq: str, calib: dict | None = None
) -> tuple[pd.DataFrame, list[dict]]:
    """Fit each series' chosen model on its whole history and forecast ``horizon`` periods.

    Returns the forecast rows (the forecast CSV contract) and the fitted parameters per series. A chosen
    model that fails on the full history falls back to seasonal naive (or the window mean), and says so.
    """
    chosen = dict(zip(choices["series_id"], choices["model"], strict=True))
    h, m = cfg.horizon_for(freq), cfg.season(freq)
    out, fitted = [], []
    with single_threaded_blas():
        series = list(iter_series(frame))
        lowrank = LowRank(series, cfg)
        for s in series:
            model = chosen.get(s.series_id) or plan_series(s, cfg, freq).models[0]
            note = None
            try:
                y_shared = lowrank.get(s, s.y.size) if model in ("seas_lowrank", "combo") else None
                fc = fit_forecast(model, s.input(s.y.size, h, freq, cfg, y_shared), cfg)
            except Exception as exc:  # noqa: BLE001 - documented fallback
                note = f"{model} failed on the full history ({type(exc).__name__}); seasonal naive used"
                model = "snaive" if s.y.size >= m else "mean"
                fc = fit_forecast(model, s.input(s.y.size, h, freq, cfg), cfg)
            inp_dates = s.input(s.y.size, h, freq, cfg).future_dates
            clip = cfg.nonnegative and not np.any(s.y < 0)
            scale = series_scale(s.y, m) * level_factor(fc.mean, s.y, cfg)
            calib_use = calib if cfg.interval_method == "conformal" else None
            iv = apply_intervals(fc, model, scale, calib_use or {}, clip)
            out.append(pd.DataFrame({"series_id": s.series_id, "date": inp_dates, **iv, "model": model}))
            fitted.append({"series_id": s.series_id, "model": model, "params": fc.params, "note": note})
    frame_out = pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=FORECAST_COLUMNS)
    return frame_out[FORECAST_COLUMNS], fitted


# ----------------------------------------------------------------------------------- batch file I/O
def backtest_batch(batch: Path, out_dir: Path, cfg: ForecastConfig, freq: str) -> tuple[Path, Path, Path]:
    """Backtest one batch file; writes ``<name>.metrics/.choices/.resid.parquet``."""
    frame = pd.read_parquet(batch)
    metrics, choices, resid = backtest_frame(frame, cfg, freq)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = tuple(out_dir / f"{batch.stem}.{kind}.parquet" for kind in ("metrics", "choices", "resid"))
    metrics.to_parquet(paths[0], index=False)
    choices.to_parquet(paths[1], index=False)
    resid.to_parquet(paths[2], index=False)
    return paths  # type: ignore[return-value]


def calibrate_files(resid_files: list[Path], out: Path, horizon: int) -> Path:
    """Reduce the batches' residual files to one calibration JSON."""
    cols = ["model", "step", "resid", "scale"]
    resid = pd.concat([pd.read_parquet(p, columns=cols) for p in resid_files], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(calibrate(resid, horizon)))
    return out


def forecast_batch(
    batch: Path, choices: Path, out_dir: Path, cfg: ForecastConfig, freq: str, calibration: Path | None = None
) -> tuple[Path, Path]:
    """Final fit + forecast of one batch; writes ``<name>.forecast.parquet`` and ``<name>.fitted.json``."""
    frame = pd.read_parquet(batch)
    calib = json.loads(Path(calibration).read_text()) if calibration else None
    fc, fitted = forecast_frame(frame, pd.read_parquet(choices), cfg, freq, calib)
    out_dir.mkdir(parents=True, exist_ok=True)
    fpath, ppath = out_dir / f"{batch.stem}.forecast.parquet", out_dir / f"{batch.stem}.fitted.json"
    fc.to_parquet(fpath, index=False)
    ppath.write_text(json.dumps(fitted))
    return fpath, ppath


__all__ = ["ALL_GROUP", "FORECAST_COLUMNS", "backtest_frame", "forecast_frame", "plan_series"]
