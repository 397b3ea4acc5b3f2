"""Candidate pipelines: feature step, leakage guard, encoder, estimator with latest-window recalibration."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.propensity.config import Candidate, FeatureSet, PropensityConfig
from models.propensity.features import BankFeatures, LeakageGuard

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class RecalibratedClassifier(ClassifierMixin, BaseEstimator):
    """Platt-recalibrate ``estimator`` on the latest rows, then refit it on all rows.

    The Platt map (slope, intercept on the logit) is learnt from a fit on all but the latest window,
    scored on that window; the final estimator is refit on every row and the map applied to it.

    Rows must arrive oldest first. Recalibrating on the latest window moves the probabilities to the
    current conversion level, which drifts a lot in this data. Predicting costs one extra affine map
    and a sigmoid. ``method="none"`` fits ``estimator`` on all rows and leaves its probabilities as they are.
    """

    def __init__(self, estimator=None, method: str = "sigmoid", window_fraction: float = 0.15) -> None:
        self.estimator = estimator
        self.method = method
        self.window_fraction = window_fraction

    def fit(self, X, y, sample_weight=None) -> RecalibratedClassifier:
        y = np.asarray(y)
        self.classes_ = np.array([0, 1])
        n = len(y)
        base = clone(self.estimator)
        if self.method == "none":
            base.fit(X, y, sample_weight=sample_weight)
            self.estimator_, self.slope_, self.intercept_ = base, 1.0, 0.0
            return self
        cut = int(round(n * (1 - self.window_fraction)))
        head_w = None if sample_weight is None else np.asarray(sample_weight)[:cut]
        base.fit(X[:cut], y[:cut], sample_weight=head_w)
        z = _logit(base.predict_proba(X[cut:])[:, 1]).reshape(-1, 1)
        if len(np.unique(y[cut:])) < 2:
            raise ValueError(
                "the calibration window holds a single class; enlarge calibration_window_fraction"
            )
        platt = LogisticRegression(C=1e4, max_iter=1000).fit(z, y[cut:])
        # Refit on every row (the latest window carries the most relevant signal); keep the Platt map.
        self.estimator_ = clone(self.estimator).fit(X, y, sample_weight=sample_weight)
        self.slope_ = float(platt.coef_[0, 0])
        self.intercept_ = float(platt.intercept_[0])
        return self

    def decision_function(self, X) -> np.ndarray:
        return self.slope_ * _logit(self.estimator_.predict_proba(X)[:, 1]) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def make_estimator(kind: str, seed: int, n_jobs: int = 1):
    """A fresh, seeded estimator of the named kind with the project's defaults."""
    if kind == "logreg":
        return LogisticRegression(C=0.1, max_iter=2000)
    if kind == "random_forest":
        return RandomForestClassifier(
            n_estimators=80,
            max_depth=12,
            min_samples_leaf=30,
            max_features=0.5,
            max_samples=0.5,
            random_state=seed,
            n_jobs=n_jobs,
        )
    if kind == "hist_gb":
        return HistGradientBoostingClassifier(
            max_iter=100,
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=10,
            random_state=seed,
            categorical_features=None,
        )
    raise ValueError(f"unknown estimator {kind!r}: use logreg, random_forest or hist_gb")


def make_encoder(kind: str, feature_set: FeatureSet):
    """The step after :class:`BankFeatures` (categorical codes first, then numerics).

    Linear model: one-hot of the codes (codes unseen in fit are ignored) + median-imputed, scaled numerics.
    Random forest: median imputation of missing numerics. Histogram boosting: nothing (``"passthrough"``); it
    reads the codes as native categoricals (-1 = missing) and handles missing numerics itself.
    """
    if kind == "logreg":
        cat = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
        num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        return ColumnTransformer(
            [("cat", cat, list(feature_set.categorical)), ("num", num, list(feature_set.numeric))],
            verbose_feature_names_out=False,
        )
    if kind == "random_forest":
        return SimpleImputer(strategy="median", keep_empty_features=True)
    if kind == "hist_gb":
        return "passthrough"
    raise ValueError(f"unknown estimator {kind!r}: use logreg, random_forest or hist_gb")


def build_pipeline(candidate: Candidate, config: PropensityConfig, calibrated: bool = True) -> Pipeline:
    """features -> leakage guard -> encoder -> estimator (wrapped for recalibration when ``calibrated``)."""
    feature_set = config.feature_sets[candidate.feature_set]
    estimator = make_estimator(candidate.estimator, config.seed, config.n_jobs)
    if candidate.estimator == "hist_gb":
        n_cat = len(feature_set.categorical)
        estimator.set_params(
            categorical_features=[i < n_cat for i in range(n_cat + len(feature_set.numeric))]
        )
    steps = [
        (
            "features",
            BankFeatures(categorical=list(feature_set.categorical), numeric=list(feature_set.numeric)),
        ),
        ("guard", LeakageGuard()),
        ("encode", make_encoder(candidate.estimator, feature_set)),
    ]
    if calibrated:
        model = RecalibratedClassifier(
            estimator,
            method=candidate.calibration or config.calibration,
            window_fraction=config.calibration_window_fraction,
        )
    else:
        model = estimator
    return Pipeline([*steps, ("model", model)])


def set_model_params(pipeline: Pipeline, params: dict) -> Pipeline:
    """Apply ``model__*`` search parameters to a calibrated or plain pipeline."""
    model = pipeline.named_steps["model"]
    if isinstance(model, RecalibratedClassifier):
        params = {k.replace("model__", "model__estimator__", 1): v for k, v in params.items()}
    return pipeline.set_params(**params)
