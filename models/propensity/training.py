"""Choose, measure and refit the propensity recipe.

1. **Selection** (training part only): every candidate of the profile, with a seeded random search over its
   grid, is refitted at the rolling origins inside the training part (``selection_origins``) and scored on the
   next window by the **within-date AUC**; the recipe (candidate + parameters) with the best mean over those
   windows, among those passing the behaviour tests, is chosen. The holdout never takes part in choosing.
2. **Measurement**: the chosen recipe, fitted on the training part (the *selection fit*), is scored on the
   chronological holdout, beside plain logistic regression on the raw pre-call columns (the baseline) with
   paired day-block bootstrap intervals; then both are refitted at ``rolling_origins`` (>= 5 windows) over the
   whole table.
3. **Fresh champion**: the chosen recipe is refitted on every labelled contact (training part and holdout);
   that fit is what gets registered and served. Its figures are the selection fit's (it has no holdout left).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from models.propensity.config import BASELINE_CANDIDATE, Candidate, Profile, PropensityConfig
from models.propensity.estimators import build_pipeline, set_model_params
from models.propensity.evaluation import (
    bootstrap_intervals,
    date_stats,
    decision_metrics,
    evaluate,
)
from models.propensity.gate import behaviour_tests
from models.propensity.split import Window, chronological_holdout, rolling_origin


@dataclass
class CandidateResult:
    """One candidate after search (on the selection windows) and its selection fit (training part)."""

    name: str
    estimator: str
    feature_set: str
    params: dict[str, Any]
    selection_auc: float  # mean within-date AUC over the selection windows
    selection_windows: list[float]
    n_tried: int
    seconds: float
    holdout: dict[str, float]
    behaviour_passed: bool
    pipeline: Pipeline = field(repr=False)
    holdout_p: np.ndarray = field(repr=False)
    calibration_note: str = ""


@dataclass
class TrainingResult:
    """Everything a run produced: candidates, the chosen recipe, its fresh refit, holdout and rolling figures."""

    profile: str
    chosen: CandidateResult
    baseline: CandidateResult
    candidates: list[CandidateResult]
    final_pipeline: Pipeline = field(repr=False)
    table_rows: int = 0
    train_window: tuple[str, str] = ("", "")
    holdout_window: tuple[str, str] = ("", "")
    fit_window: tuple[str, str] = ("", "")
    holdout_y: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    holdout_dates: pd.Series = field(default_factory=pd.Series, repr=False)
    holdout_frame: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    holdout_intervals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    rolling: list[dict[str, Any]] = field(default_factory=list)
    rate_by_quarter: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def recency_weights(dates: pd.Series, half_life_days: float | None) -> np.ndarray | None:
    """Weights halving every ``half_life_days`` back from the latest date; None when off."""
    if not half_life_days:
        return None
    days = pd.to_datetime(dates).to_numpy("datetime64[D]").astype(np.int64)
    return np.power(0.5, (days.max() - days) / half_life_days)


def _fit(pipeline: Pipeline, X: pd.DataFrame, y: np.ndarray, w: np.ndarray | None) -> Pipeline:
    return pipeline.fit(X, y, model__sample_weight=w) if w is not None else pipeline.fit(X, y)


def _grid_size(grid: dict[str, list[Any]]) -> int:
    return int(np.prod([len(v) for v in grid.values()])) if grid else 1


def parameter_settings(
    candidate: Candidate, config: PropensityConfig, profile: Profile
) -> list[dict[str, Any]]:
    """The seeded settings tried for ``candidate``: the whole grid if small enough, else a random sample."""
    n_iter = config.search_iterations[profile]
    if _grid_size(candidate.grid) > n_iter:
        return [dict(p) for p in ParameterSampler(candidate.grid, n_iter=n_iter, random_state=config.seed)]
    return [dict(p) for p in ParameterGrid(candidate.grid)]


def window_auc(
    candidate: Candidate,
    params: dict[str, Any],
    table: pd.DataFrame,
    y: np.ndarray,
    dates: pd.Series,
    window: Window,
    config: PropensityConfig,
) -> float:
    """Within-date AUC on ``window.test`` of the (uncalibrated: ranking only) recipe fitted on ``window.train``."""
    pipe = set_model_params(build_pipeline(candidate, config, calibrated=False), params)
    _fit(
        pipe,
        table.iloc[window.train],
        y[window.train],
        recency_weights(dates.iloc[window.train], config.recency_half_life_days),
    )
    p = pipe.predict_proba(table.iloc[window.test])[:, 1]
    stats = date_stats(y[window.test], p, dates.iloc[window.test], config.capacity_share)
    return decision_metrics(stats)["within_date_auc"]


@dataclass(frozen=True)
class Trial:
    """One search trial: a candidate (estimator on a feature set) with one parameter setting of its search."""

    candidate: str
    index: int
    params: dict[str, Any]


@dataclass(frozen=True)
class SearchOutcome:
    """A candidate's search, however it ran (serially here, or as mapped trials on a Dask cluster)."""

    params: dict[str, Any]
    selection_auc: float
    selection_windows: list[float]
    n_tried: int
    seconds: float = 0.0


def search_plan(config: PropensityConfig, profile: Profile) -> list[Trial]:
    """Every trial of a profile's search, in the order the serial search tries them."""
    specs = config.candidates_for(profile)
    if not specs:
        raise ValueError(f"no propensity candidate is enabled for profile {profile!r}")
    return [
        Trial(c.name, i, params)
        for c in specs
        for i, params in enumerate(parameter_settings(c, config, profile))
    ]


def training_part(
    table: pd.DataFrame, config: PropensityConfig
) -> tuple[pd.DataFrame, np.ndarray, pd.Series]:
    """The rows candidates are chosen on (everything before the chronological holdout): X, y, dates."""
    dates = pd.to_datetime(table["contact_date"]).reset_index(drop=True)
    table = table.reset_index(drop=True)
    y = table["y"].to_numpy(dtype=int)
    split = chronological_holdout(dates, config.holdout_fraction)
    return table.iloc[split.train], y[split.train], dates.iloc[split.train]


def score_setting(
    candidate: Candidate,
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    dates: pd.Series,
    config: PropensityConfig,
) -> list[float]:
    """Within-date AUC of one parameter setting on each selection window (training rows only)."""
    windows = rolling_origin(dates, config.selection_origins, config.selection_horizon)
    if len(windows) < 2:
        raise ValueError("fewer than two selection windows: add contacts or selection_origins")
    return [float(window_auc(candidate, params, X, y, dates, w, config)) for w in windows]


def best_setting(
    settings: list[dict[str, Any]], scores: list[list[float]]
) -> tuple[dict[str, Any], float, list[float]]:
    """The setting with the best mean window AUC; the earlier one wins ties (the search's order decides)."""
    best: tuple[float, dict[str, Any], list[float]] = (-np.inf, {}, [])
    for params, windows in zip(settings, scores, strict=True):
        score = float(np.nanmean(windows))
        if score > best[0] + 1e-12:
            best = (score, dict(params), [float(s) for s in windows])
    return best[1], best[0], best[2]


def search_candidate(
    candidate: Candidate,
    X: pd.DataFrame,
    y: np.ndarray,
    dates: pd.Series,
    config: PropensityConfig,
    profile: Profile,
) -> tuple[dict[str, Any], float, list[float], int]:
    """Seeded search scored by the mean within-date AUC over the selection windows (training rows only).

    Returns the best parameters, their mean within-date AUC, the per-window figures and settings tried.
    """
    settings = parameter_settings(candidate, config, profile)
    scores = [score_setting(candidate, params, X, y, dates, config) for params in settings]
    params, score, per_window = best_setting(settings, scores)
    return params, score, per_window, len(settings)


def _searched(
    candidate: Candidate,
    searched: dict[str, SearchOutcome] | None,
    X: pd.DataFrame,
    y: np.ndarray,
    dates: pd.Series,
    config: PropensityConfig,
    profile: Profile,
) -> tuple[dict[str, Any], float, list[float], int, float]:
    """A search done elsewhere (``searched``), or this candidate's search now; plus its seconds."""
    if searched is not None and candidate.name in searched:
        s = searched[candidate.name]
        return s.params, s.selection_auc, list(s.selection_windows), s.n_tried, s.seconds
    t0 = time.perf_counter()
    params, score, per_window, tried = search_candidate(candidate, X, y, dates, config, profile)
    return params, score, per_window, tried, time.perf_counter() - t0


def fit_final(
    candidate: Candidate,
    params: dict[str, Any],
    X: pd.DataFrame,
    y: np.ndarray,
    dates: pd.Series,
    config: PropensityConfig,
) -> Pipeline:
    """The calibrated pipeline with the chosen parameters, fitted on the given rows (oldest first)."""
    pipe = set_model_params(build_pipeline(candidate, config, calibrated=True), params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        fitted = _fit(pipe, X, y, recency_weights(dates, config.recency_half_life_days))
    for w in caught:  # re-issue: the caller counts and logs them (never silent)
        warnings.warn(str(w.message), RuntimeWarning, stacklevel=2)
    return fitted


def calibration_note(pipeline: Pipeline) -> str:
    return str(getattr(pipeline.named_steps.get("model"), "calibration_note_", "") or "")


def train_propensity_model(
    table: pd.DataFrame,
    config: PropensityConfig | None = None,
    profile: Profile = "quick",
    log: Callable[[str], None] | None = None,
    searched: dict[str, SearchOutcome] | None = None,
) -> TrainingResult:
    """Select on the training part, measure on the holdout and rolling windows, refit on every row.

    ``table`` is :func:`models.propensity.features.build_training_table`'s output (oldest first). Runs with
    ``config.threads`` OpenMP/BLAS threads (forests still use ``config.n_jobs`` joblib threads).
    ``searched`` holds candidate searches already done (e.g. as trials on a Dask cluster, by name); the
    others are searched here, one after the other. Both ways give the same result for the same seed.
    """
    config = config or PropensityConfig()
    with threadpool_limits(limits=config.threads):
        return _train_all(table, config, profile, log or (lambda message: None), searched)


def _result(
    candidate: Candidate,
    params: dict[str, Any],
    selection: tuple[float, list[float], int],
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    d_train: pd.Series,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    d_test: pd.Series,
    config: PropensityConfig,
    t0: float,
) -> CandidateResult:
    pipe = fit_final(candidate, params, X_train, y_train, d_train, config)
    p = pipe.predict_proba(X_test)[:, 1]
    metrics = evaluate(y_test, p, d_test, config.capacity_share)
    passed = all(b.passed for b in behaviour_tests(pipe, X_train.tail(config.behaviour_sample_rows)))
    return CandidateResult(
        candidate.name,
        candidate.estimator,
        candidate.feature_set,
        params,
        selection[0],
        selection[1],
        selection[2],
        time.perf_counter() - t0,
        metrics,
        passed,
        pipe,
        p,
        calibration_note(pipe),
    )


def windows_won(result: CandidateResult, baseline: CandidateResult) -> int:
    """Selection windows on which ``result`` ranks within dates at least as well as ``baseline``."""
    return sum(a >= b for a, b in zip(result.selection_windows, baseline.selection_windows, strict=True))


def beats_baseline(
    eligible: list[CandidateResult], results: list[CandidateResult], log: Callable[[str], None]
) -> list[CandidateResult]:
    """Keep only what wins: a recipe other than plain LR must match or beat it on most selection windows."""
    baseline = next((r for r in results if r.name == BASELINE_CANDIDATE), None)
    if baseline is None:
        return eligible
    n = len(baseline.selection_windows)
    kept = [r for r in eligible if r is baseline or 2 * windows_won(r, baseline) > n]
    dropped = [
        f"{r.name} ({windows_won(r, baseline)}/{n})" for r in eligible if not any(r is k for k in kept)
    ]
    if dropped:
        log(f"not kept, at least plain LR on half the selection windows or fewer: {', '.join(dropped)}")
    return kept or eligible


def _train_all(
    table: pd.DataFrame,
    config: PropensityConfig,
    profile: Profile,
    log: Callable[[str], None],
    searched: dict[str, SearchOutcome] | None = None,
) -> TrainingResult:
    started = time.perf_counter()
    dates = pd.to_datetime(table["contact_date"]).reset_index(drop=True)
    table = table.reset_index(drop=True)
    y = table["y"].to_numpy(dtype=int)
    split = chronological_holdout(dates, config.holdout_fraction)
    X_train, y_train, d_train = table.iloc[split.train], y[split.train], dates.iloc[split.train]
    X_test, y_test, d_test = table.iloc[split.test], y[split.test], dates.iloc[split.test]
    results: list[CandidateResult] = []
    specs = config.candidates_for(profile)
    if not specs:
        raise ValueError(f"no propensity candidate is enabled for profile {profile!r}")
    notes: list[str] = []
    for i, candidate in enumerate(specs, 1):
        params, sel_auc, per_window, tried, search_s = _searched(
            candidate, searched, X_train, y_train, d_train, config, profile
        )
        t0 = time.perf_counter() - search_s
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            r = _result(
                candidate,
                params,
                (sel_auc, per_window, tried),
                X_train,
                y_train,
                d_train,
                X_test,
                y_test,
                d_test,
                config,
                t0,
            )
        notes += [f"{candidate.name}: {w.message}" for w in caught]
        results.append(r)
        log(
            f"[{i}/{len(specs)}] {candidate.name}: within-date AUC on {len(per_window)} selection windows "
            f"{sel_auc:.3f} ({tried} settings); holdout within-date AUC {r.holdout['within_date_auc']:.3f}, "
            f"capture {r.holdout['capture_at_capacity']:.1%} vs {r.holdout['capture_random']:.1%} random; "
            f"behaviour {'ok' if r.behaviour_passed else 'FAILED'}, {r.seconds:.1f}s"
        )
    eligible = [r for r in results if r.behaviour_passed]
    if not eligible:
        notes.append("no candidate passed the behaviour tests: choosing among all (the gate will refuse it)")
        eligible = results
    eligible = beats_baseline(eligible, results, log)
    chosen = max(eligible, key=lambda r: (r.selection_auc, -len(r.name)))
    log(
        f"chosen by mean within-date AUC over the selection windows: {chosen.name} ({chosen.selection_auc:.3f})"
    )
    baseline = next((r for r in results if r.name == BASELINE_CANDIDATE), None)
    if baseline is None:
        spec = config.candidate(BASELINE_CANDIDATE)
        params, sel_auc, per_window, tried, search_s = _searched(
            spec, searched, X_train, y_train, d_train, config, profile
        )
        t0 = time.perf_counter() - search_s
        baseline = _result(
            spec,
            params,
            (sel_auc, per_window, tried),
            X_train,
            y_train,
            d_train,
            X_test,
            y_test,
            d_test,
            config,
            t0,
        )
    chosen_spec = config.candidate(chosen.name)
    baseline_spec = config.candidate(baseline.name)
    holdout_stats = {
        "chosen": date_stats(y_test, chosen.holdout_p, d_test, config.capacity_share),
        "baseline": date_stats(y_test, baseline.holdout_p, d_test, config.capacity_share),
    }
    intervals = bootstrap_intervals(
        holdout_stats, "baseline", config.bootstrap_samples, config.bootstrap_level, config.seed
    )
    rolling = rolling_evaluation(chosen_spec, chosen.params, baseline_spec, baseline.params, table, config)
    log(
        "rolling origins: chosen beats plain LR on "
        f"{sum(r['chosen']['within_date_auc'] >= r['baseline']['within_date_auc'] for r in rolling)}/{len(rolling)} windows"
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        final = fit_final(chosen_spec, chosen.params, table, y, dates, config)
    notes += [f"final refit: {w.message}" for w in caught]
    for note in notes:
        log(f"warning: {note}")
    holdout_frame = pd.DataFrame(
        {
            "contact_date": d_test.to_numpy(),
            "y": y_test,
            "p_chosen": chosen.holdout_p,
            "p_baseline": baseline.holdout_p,
        }
    )
    quarters = pd.DataFrame({"q": dates.dt.to_period("Q").astype(str), "y": y})
    rate_by_quarter = [
        {"period": q, "rows": int(len(g)), "base_rate": float(g["y"].mean())}
        for q, g in quarters.groupby("q")
    ]
    return TrainingResult(
        profile=profile,
        chosen=chosen,
        baseline=baseline,
        candidates=results,
        final_pipeline=final,
        table_rows=len(table),
        train_window=(str(d_train.min().date()), str(d_train.max().date())),
        holdout_window=(str(d_test.min().date()), str(d_test.max().date())),
        fit_window=(str(dates.min().date()), str(dates.max().date())),
        holdout_y=y_test,
        holdout_dates=d_test.reset_index(drop=True),
        holdout_frame=holdout_frame,
        holdout_intervals=intervals,
        rolling=rolling,
        rate_by_quarter=rate_by_quarter,
        warnings=notes,
        seconds=time.perf_counter() - started,
    )


ROLLING_KEYS = (
    "within_date_auc",
    "capture_at_capacity",
    "capture_random",
    "capture_lift",
    "roc_auc",
    "brier",
    "base_rate_brier",
    "mean_predicted",
    "base_rate",
)


def rolling_evaluation(
    candidate: Candidate,
    params: dict[str, Any],
    baseline: Candidate,
    baseline_params: dict[str, Any],
    table: pd.DataFrame,
    config: PropensityConfig,
) -> list[dict[str, Any]]:
    """Refit the chosen recipe and the baseline at each rolling origin; decision metrics with paired intervals."""
    dates = pd.to_datetime(table["contact_date"]).reset_index(drop=True)
    y = table["y"].to_numpy(dtype=int)
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
        stats = {}
        for label, spec, prm in (("chosen", candidate, params), ("baseline", baseline, baseline_params)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                pipe = fit_final(spec, prm, X_tr, y_tr, d_tr, config)
            p = pipe.predict_proba(X_te)[:, 1]
            m = evaluate(y_te, p, d_te, config.capacity_share)
            row[label] = {k: m[k] for k in ROLLING_KEYS}
            stats[label] = date_stats(y_te, p, d_te, config.capacity_share)
        row["intervals"] = bootstrap_intervals(
            stats, "baseline", config.bootstrap_samples, config.bootstrap_level, config.seed
        )
        rows.append(row)
    return rows


def holdout_scores_of_recipe(
    candidate_name: str,
    params: dict[str, Any],
    table: pd.DataFrame,
    config: PropensityConfig,
) -> np.ndarray:
    """Holdout probabilities of a recipe refitted on this table's training part (a fair champion comparison)."""
    table = table.reset_index(drop=True)
    dates = pd.to_datetime(table["contact_date"])
    y = table["y"].to_numpy(dtype=int)
    split = chronological_holdout(dates, config.holdout_fraction)
    spec = config.candidate(candidate_name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pipe = fit_final(
            spec, params, table.iloc[split.train], y[split.train], dates.iloc[split.train], config
        )
    return pipe.predict_proba(table.iloc[split.test])[:, 1]


def refit_like(pipeline: Pipeline) -> Pipeline:
    """An unfitted copy of a fitted pipeline (same steps and parameters)."""
    return clone(pipeline)
