"""Configuration of the propensity model: seeds, split, feature sets, candidates, search profiles, gate."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Profile = Literal["quick", "full"]

BASE_CATEGORICAL = ["job", "marital", "education", "default", "housing", "loan", "contact", "poutcome"]
BASE_NUMERIC = ["age", "balance", "campaign", "previous"]
CONTEXT_NUMERIC = ["ctx_volume_7d_log", "ctx_rate_90d_logit"]


class FeatureSet(BaseModel):
    """Columns (raw or derived by :func:`models.propensity.features.derive_columns`) fed to the encoder."""

    categorical: list[str]
    numeric: list[str]
    description: str = ""


class Candidate(BaseModel):
    """One estimator on one feature set, with its hyper-parameter grid (``model__`` params of the pipeline)."""

    name: str
    estimator: Literal["logreg", "random_forest", "hist_gb"]
    feature_set: str
    grid: dict[str, list[Any]]
    profiles: list[Profile] = Field(default_factory=lambda: ["quick", "full"])
    calibration: Literal["sigmoid", "none"] | None = Field(
        default=None, description="Overrides PropensityConfig.calibration for this candidate."
    )


def _default_feature_sets() -> dict[str, FeatureSet]:
    return {
        "base": FeatureSet(
            categorical=BASE_CATEGORICAL, numeric=BASE_NUMERIC, description="UCI columns as they are"
        ),
        "engineered": FeatureSet(
            categorical=[*BASE_CATEGORICAL, "age_band", "month"],
            numeric=[
                "age",
                "balance_slog",
                "campaign_log",
                "previous_log",
                "prev_success",
                "month_sin",
                "month_cos",
            ],
            description="previous-campaign flags and log counts, signed-log balance, age bands, contact-month seasonality",
        ),
        "context": FeatureSet(
            categorical=BASE_CATEGORICAL,
            numeric=[*BASE_NUMERIC, *CONTEXT_NUMERIC],
            description="UCI columns + campaign context known before the call (7-day contact volume, 90-day conversion rate of outcomes already known)",
        ),
        "context_engineered": FeatureSet(
            categorical=[*BASE_CATEGORICAL, "age_band"],
            numeric=["age", "balance_slog", "campaign_log", "previous_log", "prev_success", *CONTEXT_NUMERIC],
            description="engineered customer features + campaign context (no contact month)",
        ),
    }


_LOGREG_GRID = {"model__C": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}
# Forests: 80 trees on half-size bootstrap samples, depth <= 12 (fit ~1 s, predict >= 200k rows/s per core).
_RF_GRID = {
    "model__n_estimators": [80],
    "model__max_depth": [8, 12],
    "model__min_samples_leaf": [30, 60],
    "model__max_features": [0.3, 0.5],
}
# Boosting stops early on a seeded 10% validation split; at most 100 small trees keeps the champion's
# predict_proba above 200k rows/s per core (its cost grows with the number of trees, and with their depth).
# Learning rate 0.2 and 31-leaf trees stopped after ~20 trees and broke the previous-success behaviour test.
_HGB_GRID = {
    "model__learning_rate": [0.05, 0.1],
    "model__max_iter": [100],
    "model__max_leaf_nodes": [7, 15],
    "model__min_samples_leaf": [100, 200],
    "model__l2_regularization": [0.0, 1.0],
}


def _calibration_for(feature_set: str) -> Literal["sigmoid", "none"] | None:
    # The context features carry the current conversion level already; a window recalibration on top
    # double-counts the shift (holdout Brier 0.259 vs 0.182 for logreg/context), so those stay as fitted.
    return "none" if feature_set.startswith("context") else None


def _default_candidates() -> list[Candidate]:
    # quick (the demo) keeps all three families on the feature sets that win in full: the context sets,
    # plus logreg/base as the no-frills baseline. full runs every family on every feature set.
    quick_sets = {
        "logreg": {"base", "context_engineered"},
        "random_forest": {"context"},
        "hist_gb": {"context", "context_engineered"},
    }
    grids = {"logreg": _LOGREG_GRID, "random_forest": _RF_GRID, "hist_gb": _HGB_GRID}
    out = []
    for estimator in ("logreg", "random_forest", "hist_gb"):
        for feature_set in ("base", "engineered", "context", "context_engineered"):
            profiles: list[Profile] = ["quick", "full"] if feature_set in quick_sets[estimator] else ["full"]
            out.append(
                Candidate(
                    name=f"{estimator}/{feature_set}",
                    estimator=estimator,  # type: ignore[arg-type]
                    feature_set=feature_set,
                    grid=grids[estimator],
                    profiles=profiles,
                    calibration=_calibration_for(feature_set),
                )
            )
    return out


class PropensityConfig(BaseModel):
    """Everything that shapes a propensity training run. Defaults are the project's choices."""

    seed: int = 20260101
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="Most recent share of contacts held out."
    )
    feature_sets: dict[str, FeatureSet] = Field(default_factory=_default_feature_sets)
    candidates: list[Candidate] = Field(default_factory=_default_candidates)
    search_iterations: dict[str, int] = Field(default_factory=lambda: {"quick": 4, "full": 8})
    search_cv_splits: dict[str, int] = Field(
        default_factory=lambda: {"quick": 3, "full": 3},
        description="Time-ordered CV folds; the same count in both profiles gives the same 'most recent fold'.",
    )
    rolling_origins: list[float] = Field(
        default_factory=lambda: [0.6, 0.7, 0.8, 0.9],
        description="Rolling-origin train ends, as shares of rows.",
    )
    rolling_horizon: float = Field(
        default=0.1, description="Test window after each origin, as a share of rows."
    )
    recency_half_life_days: float | None = Field(
        default=None,
        description="Sample weight halves every this many days back from the training end; None = off.",
    )
    calibration: Literal["sigmoid", "none"] = "sigmoid"
    calibration_window_fraction: float = Field(
        default=0.15,
        gt=0,
        lt=0.5,
        description="Latest share of training rows the probabilities are recalibrated on.",
    )
    context_rate_prior: float = Field(
        default=0.1, description="Prior conversion rate of the 90-day context rate."
    )
    context_rate_prior_weight: float = Field(default=20.0, description="Pseudo-contacts behind that prior.")
    n_jobs: int = Field(default=2, description="Cores for random forests (joblib threads).")
    threads: int = Field(
        default=1,
        ge=1,
        description="OpenMP/BLAS threads while training (boosting, linear algebra). 1 avoids the stalls of "
        "spinning OpenMP threads on a shared, loaded machine.",
    )
    promotion_metric: Literal["roc_auc", "pr_auc", "brier", "gains_at_20"] = "roc_auc"
    promotion_margin: float = Field(
        default=0.005, ge=0, description="Required improvement over the champion."
    )
    behaviour_sample_rows: int = Field(default=2000, description="Holdout rows the behaviour tests perturb.")
    excluded_features: dict[str, str] = Field(
        default_factory=lambda: {
            "duration": "length of the call: known only after the call, so it leaks the outcome",
            "pdays": "excluded by the company's specification",
            "name": "identity, not a behaviour signal",
            "phone": "identity, not a behaviour signal",
            "opted_out": "decides who may be called, not who buys",
            "day": "day of month ties rows to campaign calendars of the past; no stable meaning ahead",
        }
    )

    def candidates_for(self, profile: Profile) -> list[Candidate]:
        return [c for c in self.candidates if profile in c.profiles]
