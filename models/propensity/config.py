"""Configuration of the propensity model: seeds, split, feature sets, candidates, search profiles, gate."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from callcast.schema import CustomerSchema

Profile = Literal["quick", "full", "large"]
"""Search profiles: ``quick`` (the demo), ``full`` (the daily retraining), ``large`` (more candidates and
trials for a big company: meant for a Dask cluster, see flows.train_propensity's ``use_dask``)."""

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
    profiles: list[Profile] = Field(
        default_factory=lambda: ["quick", "full", "large"],
        description="Search profiles that try this candidate; [] = buildable by name but never searched.",
    )
    calibration: Literal["sigmoid", "none"] | None = Field(
        default=None, description="Overrides PropensityConfig.calibration for this candidate."
    )
    monotonic: dict[str, int] = Field(
        default_factory=dict,
        description="Boosting only: feature -> +1 (score never falls as it grows) or -1; others free.",
    )
    target_encode: list[str] = Field(
        default_factory=list,
        description="Logistic regression only: categorical features target-encoded (cross-fitted) instead of one-hot.",
    )


ENGINEERED_CATEGORICAL = [*BASE_CATEGORICAL, "age_band"]
ENGINEERED_NUMERIC = ["age", "balance_slog", "campaign_log", "previous_log", "prev_success"]
INTERACTIONS = ["poutcome_x_contact", "housing_x_loan", "age_band_x_marital"]
# Boosting under a monotonic constraint: the previous outcome enters only as prev_success (+1) and the count of
# earlier contacts, so "a previous success never lowers the score" holds by construction, not by luck.
MONOTONE_CATEGORICAL = ["job", "marital", "education", "default", "housing", "loan", "contact"]
MONOTONE_NUMERIC = ["age", "balance", "campaign", "previous", "prev_success"]


def _default_feature_sets() -> dict[str, FeatureSet]:
    return {
        "raw": FeatureSet(
            categorical=BASE_CATEGORICAL,
            numeric=BASE_NUMERIC,
            description="the raw pre-call columns as they are (the plain baseline)",
        ),
        "customer": FeatureSet(
            categorical=ENGINEERED_CATEGORICAL,
            numeric=ENGINEERED_NUMERIC,
            description="pre-call columns + age bands, signed-log balance, log counts, previous-success flag",
        ),
        "interactions": FeatureSet(
            categorical=[*ENGINEERED_CATEGORICAL, *INTERACTIONS],
            numeric=ENGINEERED_NUMERIC,
            description="customer + previous outcome x channel, housing x personal loan, age band x marital",
        ),
        "interactions_te": FeatureSet(
            categorical=[*ENGINEERED_CATEGORICAL, *INTERACTIONS, "job_x_education"],
            numeric=ENGINEERED_NUMERIC,
            description="interactions + job x education (48 levels, target-encoded)",
        ),
        "monotone": FeatureSet(
            categorical=MONOTONE_CATEGORICAL,
            numeric=MONOTONE_NUMERIC,
            description="pre-call columns with the previous outcome as a monotone previous-success flag",
        ),
        "monotone_context": FeatureSet(
            categorical=MONOTONE_CATEGORICAL,
            numeric=[*MONOTONE_NUMERIC, *CONTEXT_NUMERIC],
            description="monotone + campaign context (regime-dependent effects; level for calibration)",
        ),
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


# The large profile's forests: deeper trees and smaller leaves are worth trying on a big company's data.
_RF_LARGE_GRID = {
    "model__n_estimators": [80],
    "model__max_depth": [8, 12, 16],
    "model__min_samples_leaf": [15, 30, 60],
    "model__max_features": [0.3, 0.5, 0.7],
}


_HGB_MONO_GRID = {
    "model__learning_rate": [0.05, 0.1],
    "model__max_iter": [100],
    "model__max_leaf_nodes": [7, 15],
    "model__min_samples_leaf": [100, 200],
}


def _calibration_for(feature_set: str) -> Literal["sigmoid", "none"] | None:
    # The context features carry the current conversion level already; a window recalibration on top
    # double-counts the shift (holdout Brier 0.259 vs 0.182 for logreg/context), so those stay as fitted.
    return "none" if "context" in feature_set else None


BASELINE_CANDIDATE = "logreg/raw"
"""Plain logistic regression on the raw pre-call columns: always evaluated beside the chosen recipe."""


def _default_candidates() -> list[Candidate]:
    """Searched candidates (quick and full) followed by the earlier recipes (buildable by name, never searched)."""
    searched = [
        Candidate(name="logreg/raw", estimator="logreg", feature_set="raw", grid=_LOGREG_GRID),
        Candidate(name="logreg/customer", estimator="logreg", feature_set="customer", grid=_LOGREG_GRID),
        Candidate(
            name="logreg/interactions", estimator="logreg", feature_set="interactions", grid=_LOGREG_GRID
        ),
        Candidate(
            name="logreg/interactions_te",
            estimator="logreg",
            feature_set="interactions_te",
            grid=_LOGREG_GRID,
            target_encode=["job_x_education"],
            profiles=["full", "large"],
        ),
        Candidate(
            name="hist_gb/monotone",
            estimator="hist_gb",
            feature_set="monotone",
            grid=_HGB_MONO_GRID,
            monotonic={"prev_success": 1},
        ),
        Candidate(
            name="hist_gb/monotone_context",
            estimator="hist_gb",
            feature_set="monotone_context",
            grid=_HGB_MONO_GRID,
            monotonic={"prev_success": 1},
            calibration="none",
            profiles=["full", "large"],
        ),
        # large only: forests with a wider grid (27 settings, 16 sampled) -- too slow for one process daily
        Candidate(
            name="random_forest/customer",
            estimator="random_forest",
            feature_set="customer",
            grid=_RF_LARGE_GRID,
            profiles=["large"],
        ),
        Candidate(
            name="random_forest/monotone_context",
            estimator="random_forest",
            feature_set="monotone_context",
            grid=_RF_LARGE_GRID,
            calibration="none",
            profiles=["large"],
        ),
    ]
    grids = {"logreg": _LOGREG_GRID, "random_forest": _RF_GRID, "hist_gb": _HGB_GRID}
    archived = [
        Candidate(
            name=f"{estimator}/{feature_set}",
            estimator=estimator,  # type: ignore[arg-type]
            feature_set=feature_set,
            grid=grids[estimator],
            profiles=[],
            calibration=_calibration_for(feature_set),
        )
        for estimator in ("logreg", "random_forest", "hist_gb")
        for feature_set in ("base", "engineered", "context", "context_engineered")
    ]
    return [*searched, *archived]


class PropensityConfig(BaseModel):
    """Everything that shapes a propensity training run. Defaults are the project's choices."""

    seed: int = Field(
        default=20260101, description="Seed of every random step of training (search, models, bootstrap)."
    )
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=0.5, description="Most recent share of contacts held out."
    )
    feature_sets: dict[str, FeatureSet] = Field(
        default_factory=_default_feature_sets,
        description="Named feature sets (raw pre-call columns or named derived features of them).",
    )
    candidates: list[Candidate] = Field(
        default_factory=_default_candidates,
        description="Estimator x feature set x grid; each lists the profiles that search it.",
    )
    search_iterations: dict[str, int] = Field(
        default_factory=lambda: {"quick": 2, "full": 6, "large": 16},
        description="Parameter settings tried per candidate (seeded random search).",
    )
    selection_origins: list[float] = Field(
        default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9],
        description="Rolling origins inside the training part (shares of its rows) on which candidates and "
        "their parameters are chosen by the mean within-date AUC; the holdout is never used for choosing.",
    )
    selection_horizon: float = Field(default=0.1, description="Test window after each selection origin.")
    rolling_origins: list[float] = Field(
        default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9],
        description="Rolling-origin train ends over the whole table (shares of rows) for the reported "
        "evaluation of the chosen recipe and the plain baseline (at least five windows).",
    )
    rolling_horizon: float = Field(
        default=0.1, description="Test window after each origin, as a share of rows."
    )
    capacity_share: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="Per-date capture is measured at this share of each date's contacts called first.",
    )
    bootstrap_samples: int = Field(default=1000, ge=50, description="Day-block bootstrap draws.")
    bootstrap_level: float = Field(default=0.9, gt=0.5, lt=1, description="Confidence level of intervals.")
    recency_half_life_days: float | None = Field(
        default=None,
        description="Sample weight halves every this many days back from the training end; None = off.",
    )
    calibration: Literal["sigmoid", "none"] = Field(
        default="sigmoid",
        description="Platt recalibration on the latest training rows (a slope that would invert the ranking is "
        "refused: only the level moves), or none.",
    )
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
    promotion_metric: Literal["within_date_auc", "capture_at_capacity"] = Field(
        default="within_date_auc",
        description="Decision metric the gate compares on the same holdout (the champion's recipe refitted "
        "on the same training part).",
    )
    promotion_margin: float = Field(
        default=0.005, ge=0, description="Required improvement over the champion."
    )
    customer_schema: CustomerSchema = Field(
        default_factory=CustomerSchema,
        description="Derived from CALLCAST_CUSTOMERS__* (set there; setting it here is refused).",
    )
    behaviour_sample_rows: int = Field(default=2000, description="Holdout rows the behaviour tests perturb.")
    excluded_features: dict[str, str] = Field(
        description="Columns kept out of the model and why (shown on the card; the pre-call allowlist enforces it).",
        default_factory=lambda: {
            "duration": "length of the call: known only after the call, so it leaks the outcome",
            "pdays": "days since a previous campaign's contact: excluded by the company's specification "
            "(and never rebuilt from the contact history under another name)",
            "name": "identity, not a behaviour signal",
            "phone": "identity, not a behaviour signal",
            "opted_out": "decides who may be called, not who buys",
            "day": "day of month ties rows to campaign calendars of the past; no stable meaning ahead",
        },
    )

    def candidates_for(self, profile: Profile) -> list[Candidate]:
        return [c for c in self.candidates if profile in c.profiles]

    def candidate(self, name: str) -> Candidate:
        """The candidate called ``name`` (searched or archived)."""
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(f"unknown propensity candidate {name!r}; known: {[c.name for c in self.candidates]}")

    def pre_call_columns(self) -> dict[str, list[str]]:
        """Source columns known before a call, per table: the schema's, adjusted by ``customer_schema``."""
        return {t: list(c) for t, c in self.customer_schema.pre_call_columns().items()}

    def allowed_columns(self) -> list[str]:
        return sorted({c for columns in self.pre_call_columns().values() for c in columns})

    def customer_columns(self) -> list[str]:
        """Customer attributes the feature builder copies into every row (``customer_id`` excluded)."""
        return self.customer_schema.customer_columns()

    def for_schema(self, schema: CustomerSchema) -> PropensityConfig:
        """This configuration for a company's customer schema.

        Features reading a dropped column (raw or derived, e.g. ``balance_slog``) leave every feature set and
        its monotonic constraints; extra columns join every feature set as categorical or numeric features.
        """
        from models.propensity.features import feature_sources

        dropped = set(schema.dropped_columns)
        extra_cat = [c.name for c in schema.extra_columns if c.kind == "categorical"]
        extra_num = [c.name for c in schema.extra_columns if c.kind == "numeric"]

        def keep(names: list[str]) -> list[str]:
            return [n for n in names if not dropped & set(feature_sources(n))]

        feature_sets = {
            name: fs.model_copy(
                update={
                    "categorical": keep(fs.categorical) + [c for c in extra_cat if c not in fs.categorical],
                    "numeric": keep(fs.numeric) + [c for c in extra_num if c not in fs.numeric],
                }
            )
            for name, fs in self.feature_sets.items()
        }
        candidates = [
            c.model_copy(update={"monotonic": {k: v for k, v in c.monotonic.items() if keep([k])}})
            for c in self.candidates
        ]
        return self.model_copy(
            update={"customer_schema": schema, "feature_sets": feature_sets, "candidates": candidates}
        )
