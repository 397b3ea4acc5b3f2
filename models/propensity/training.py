"""Train every candidate (seeded search inside the training part), evaluate on the chronological holdout."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterSampler
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from models.propensity.config import Candidate, Profile, PropensityConfig
from models.propensity.estimators import build_pipeline, set_model_params
from models.propensity.evaluation import evaluate
from models.propensity.gate import behaviour_tests
from models.propensity.split import chronological_holdout, rolling_origin, time_series_folds


@dataclass
class CandidateResult:
    """One candidate after search and final fit."""

    name: str
    estimator: str
    feature_set: str
    params: dict[str, Any]
    cv_auc: float
    recent_fold_auc: float
    n_tried: int
    seconds: float
    holdout: dict[str, float]
    behaviour_passed: bool
    pipeline: Pipeline = field(repr=False)
    holdout_p: np.ndarray = field(repr=False)


@dataclass
class TrainingResult:
    """Everything a run produced: candidates, the chosen one, holdout and rolling-origin figures."""

    profile: str
    chosen: CandidateResult
    candidates: list[CandidateResult]
    table_rows: int
    train_window: tuple[str, str]
    holdout_window: tuple[str, str]
    holdout_y: np.ndarray = field(repr=False)
    holdout_dates: pd.Series = field(repr=False)
    holdout_frame: pd.DataFrame = field(repr=False)
    rolling: list[dict[str, Any]] = field(default_factory=list)
    rate_by_quarter: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def recency_weights(dates: pd.Series, half_life_days: float | None) -> np.ndarray | None:
    """Weights halving every ``half_life_days`` back from the latest date; None when off."""
    if not half_life_days:
        return None
    days = pd.to_datetime(dates).to_numpy("datetime64[D]").astype(np.int64)
    return np.power(0.5, (days.max() - days) / half_life_days)


def _fit(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, w: np.ndarray | None) -> Pipeline:
    return pipeline.fit(X, y, model__sample_weight=w) if w is not None else pipeline.fit(X, y)


def search_candidate(
    candidate: Candidate,
    X: pd.DataFrame,
    y: np.ndarray,
    dates: pd.Series,
    config: PropensityConfig,
    profile: Profile,
) -> tuple[dict[str, Any], float, float, int]:
    """Seeded random search scored by time-ordered CV AUC inside the training rows only.

    Returns the best parameters, their mean CV AUC, their AUC on the most recent fold, and settings tried.
    """
    samples = (
        list(
            ParameterSampler(
                candidate.grid, n_iter=config.search_iterations[profile], random_state=config.seed
            )
        )
        if _grid_size(candidate.grid) > config.search_iterations[profile]
        else _full_grid(candidate.grid)
    )
    folds = time_series_folds(len(y), config.search_cv_splits[profile])
    best: tuple[float, dict[str, Any], float] = (-np.inf, {}, -np.inf)
    for params in samples:
        scores = []
        for fold in folds:
            pipe = set_model_params(build_pipeline(candidate, config, calibrated=False), params)
            w = recency_weights(dates.iloc[fold.train], config.recency_half_life_days)
            _fit(pipe, X.iloc[fold.train], y[fold.train], w)
            scores.append(roc_auc_score(y[fold.test], pipe.predict_proba(X.iloc[fold.test])[:, 1]))
        score = float(np.mean(scores))
        if score > best[0] + 1e-12:
            best = (score, dict(params), float(scores[-1]))
    return best[1], best[0], best[2], len(samples)


def _grid_size(grid: dict[str, list[Any]]) -> int:
    return int(np.prod([len(v) for v in grid.values()])) if grid else 1


def _full_grid(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    from sklearn.model_selection import ParameterGrid

    return list(ParameterGrid(grid))


def fit_final(
    candidate: Candidate,
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    dates: pd.Series,
    config: PropensityConfig,
) -> Pipeline:
    """The calibrated pipeline with the chosen parameters, fitted on the given (training) rows."""
    pipe = set_model_params(build_pipeline(candidate, config, calibrated=True), params)
    return _fit(pipe, X, y, recency_weights(dates, config.recency_half_life_days))


def train_propensity_model(
    table: pd.DataFrame,
    config: PropensityConfig | None = None,
    profile: Profile = "quick",
    log: Callable[[str], None] | None = None,
) -> TrainingResult:
    """Search, fit and evaluate every candidate of ``profile``; choose by the most recent CV fold's AUC.

    Runs with ``config.threads`` OpenMP/BLAS threads (forests still use ``config.n_jobs`` joblib threads).
    """
    config = config or PropensityConfig()
    with threadpool_limits(limits=config.threads):
        return _train_all(table, config, profile, log or (lambda message: None))


def _train_all(
    table: pd.DataFrame, config: PropensityConfig, profile: Profile, log: Callable[[str], None]
) -> TrainingResult:
    started = time.perf_counter()
    dates = pd.to_datetime(table["contact_date"])
    y = table["y"].to_numpy(dtype=int)
    split = chronological_holdout(dates, config.holdout_fraction)
    X_train, y_train, d_train = table.iloc[split.train], y[split.train], dates.iloc[split.train]
    X_test, y_test, d_test = table.iloc[split.test], y[split.test], dates.iloc[split.test]
    results: list[CandidateResult] = []
    chosen_specs = config.candidates_for(profile)
    for i, candidate in enumerate(chosen_specs, 1):
        t0 = time.perf_counter()
        params, cv_auc, recent_auc, tried = search_candidate(
            candidate, X_train, y_train, d_train, config, profile
        )
        pipe = fit_final(candidate, params, X_train, y_train, d_train, config)
        p = pipe.predict_proba(X_test)[:, 1]
        metrics = evaluate(y_test, p, d_test)
        passed = all(b.passed for b in behaviour_tests(pipe, X_train.tail(config.behaviour_sample_rows)))
        seconds = time.perf_counter() - t0
        results.append(
            CandidateResult(
                candidate.name,
                candidate.estimator,
                candidate.feature_set,
                params,
                cv_auc,
                recent_auc,
                tried,
                seconds,
                metrics,
                passed,
                pipe,
                p,
            )
        )
        log(
            f"[{i}/{len(chosen_specs)}] {candidate.name}: cv AUC {cv_auc:.3f}, recent fold {recent_auc:.3f} ({tried} settings), holdout AUC "
            f"{metrics['roc_auc']:.3f}, gains@20 {metrics['gains_at_20']:.3f}, behaviour "
            f"{'ok' if passed else 'FAILED'}, {seconds:.1f}s"
        )
    eligible = [r for r in results if r.behaviour_passed] or results
    # The most recent fold is the one closest to how the model will be used (the rate drifts over time).
    chosen = max(eligible, key=lambda r: (r.recent_fold_auc, r.cv_auc))
    log(f"chosen by most-recent-fold AUC among candidates passing the behaviour tests: {chosen.name}")
    spec = next(c for c in chosen_specs if c.name == chosen.name)
    rolling = rolling_evaluation(spec, chosen.params, table, config)
    holdout_frame = pd.DataFrame(
        {"contact_date": d_test.to_numpy(), "y": y_test, "p_chosen": chosen.holdout_p}
    )
    quarters = pd.DataFrame({"q": dates.dt.to_period("Q").astype(str), "y": y})
    rate_by_quarter = [
        {"period": q, "rows": int(len(g)), "base_rate": float(g["y"].mean())}
        for q, g in quarters.groupby("q")
    ]
    return TrainingResult(
        profile=profile,
        chosen=chosen,
        candidates=results,
        table_rows=len(table),
        train_window=(str(d_train.min().date()), str(d_train.max().date())),
        holdout_window=(str(d_test.min().date()), str(d_test.max().date())),
        holdout_y=y_test,
        holdout_dates=d_test.reset_index(drop=True),
        holdout_frame=holdout_frame,
        rolling=rolling,
        rate_by_quarter=rate_by_quarter,
        seconds=time.perf_counter() - started,
    )


def rolling_evaluation(
    candidate: Candidate, params: dict[str, Any], table: pd.DataFrame, config: PropensityConfig
) -> list[dict[str, Any]]:
    """Refit the chosen candidate at several origins; score the next window, recalibrated and not."""
    dates = pd.to_datetime(table["contact_date"])
    y = table["y"].to_numpy(dtype=int)
    plain = candidate.model_copy(update={"calibration": "none"})
    recal = candidate.model_copy(update={"calibration": "sigmoid"})
    rows = []
    for window in rolling_origin(dates, config.rolling_origins, config.rolling_horizon):
        X_tr, y_tr, d_tr = table.iloc[window.train], y[window.train], dates.iloc[window.train]
        X_te, y_te, d_te = table.iloc[window.test], y[window.test], dates.iloc[window.test]
        if len(np.unique(y_te)) < 2:
            continue
        row: dict[str, Any] = {
            "train_end": str(d_tr.max().date()),
            "test_start": str(d_te.min().date()),
            "test_end": str(d_te.max().date()),
            "test_rows": int(len(y_te)),
            "base_rate": float(y_te.mean()),
        }
        for label, spec in (("recalibrated", recal), ("plain", plain)):
            pipe = fit_final(spec, params, X_tr, y_tr, d_tr, config)
            m = evaluate(y_te, pipe.predict_proba(X_te)[:, 1])
            for key in ("roc_auc", "brier", "base_rate_brier", "gains_at_20", "mean_predicted"):
                row[f"{label}_{key}"] = m[key]
        rows.append(row)
    return rows


def refit_like(pipeline: Pipeline) -> Pipeline:
    """An unfitted copy of a fitted pipeline (same steps and parameters)."""
    return clone(pipeline)
