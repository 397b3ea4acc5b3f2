"""Candidate pipelines: feature step, leakage guard, encoder, estimator with latest-window recalibration."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder

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

    Recalibration never inverts the ranking: a slope at or below ``min_slope`` (the window ranks the other way
    round, or not at all) is refused -- only the level is moved (slope 1, intercept fitted), a warning is
    issued and ``calibration_note_`` says why.
    """

    def __init__(
        self, estimator=None, method: str = "sigmoid", window_fraction: float = 0.15, min_slope: float = 0.05
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.window_fraction = window_fraction
        self.min_slope = min_slope

    def fit(self, X, y, sample_weight=None) -> RecalibratedClassifier:
        y = np.asarray(y)
        self.classes_ = np.array([0, 1])
        n = len(y)
        base = clone(self.estimator)
        self.calibration_note_ = ""
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
        slope, intercept = platt_map(z[:, 0], y[cut:], self.min_slope)
        if slope is None:
            self.calibration_note_ = (
                f"recalibration slope {intercept[1]:.3f} <= {self.min_slope} on the latest "
                f"{self.window_fraction:.0%} of rows would flatten or invert the ranking: refused, only the "
                "level was moved (slope 1)"
            )
            warnings.warn(self.calibration_note_, RuntimeWarning, stacklevel=2)
            slope, intercept = 1.0, intercept[0]
        # Refit on every row (the latest window carries the most relevant signal); keep the Platt map.
        self.estimator_ = clone(self.estimator).fit(X, y, sample_weight=sample_weight)
        self.slope_ = float(slope)
        self.intercept_ = float(intercept)
        return self

    def decision_function(self, X) -> np.ndarray:
        return self.slope_ * _logit(self.estimator_.predict_proba(X)[:, 1]) + self.intercept_

    def predict_proba(self, X) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def platt_map(z: np.ndarray, y: np.ndarray, min_slope: float = 0.05):
    """Platt map ``(slope, intercept)`` of logits ``z`` to outcomes ``y``.

    If the fitted slope is at or below ``min_slope`` (it would flatten or invert the ranking) returns
    ``(None, (intercept with slope fixed at 1, refused slope))`` instead.
    """
    platt = LogisticRegression(C=1e4, max_iter=1000).fit(z.reshape(-1, 1), y)
    slope = float(platt.coef_[0, 0])
    if slope > min_slope:
        return slope, float(platt.intercept_[0])
    # level only: the intercept b maximising the likelihood of sigmoid(z + b)
    from scipy.optimize import brentq

    def score(b: float) -> float:
        return float(np.sum(y - 1 / (1 + np.exp(-(z + b)))))

    b = brentq(score, -30, 30) if score(-30) > 0 > score(30) else 0.0
    return None, (float(b), slope)


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


def make_encoder(
    kind: str, feature_set: FeatureSet, target_encode: list[str] | tuple[str, ...] = (), *, seed: int
):
    """The step after :class:`BankFeatures` (categorical codes first, then numerics).

    Linear model: one-hot of the codes (codes unseen in fit are ignored) + median-imputed, scaled numerics.
    Random forest: median imputation of missing numerics. Histogram boosting: nothing (``"passthrough"``); it
    reads the codes as native categoricals (-1 = missing) and handles missing numerics itself.
    """
    if kind == "logreg":
        encoded = [c for c in target_encode if c in feature_set.categorical]
        cat = OneHotEncoder(handle_unknown="ignore", sparse_output=False, dtype=np.float64)
        num = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        parts = [
            ("cat", cat, [c for c in feature_set.categorical if c not in encoded]),
            ("num", num, list(feature_set.numeric)),
        ]
        if encoded:
            # cross-fitted in fit_transform (no row sees its own outcome), then scaled like the numerics; the
            # folds are seeded (TargetEncoder's own shuffle is unseeded: two fits would differ)
            folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
            te = Pipeline(
                [("target", TargetEncoder(target_type="binary", cv=folds)), ("scale", StandardScaler())]
            )
            parts.append(("te", te, encoded))
        return ColumnTransformer(parts, verbose_feature_names_out=False)
    if kind == "random_forest":
        return SimpleImputer(strategy="median", keep_empty_features=True)
    if kind == "hist_gb":
        return "passthrough"
    raise ValueError(f"unknown estimator {kind!r}: use logreg, random_forest or hist_gb")


def build_pipeline(candidate: Candidate, config: PropensityConfig, calibrated: bool = True) -> Pipeline:
    """features -> leakage guard -> encoder -> estimator (wrapped for recalibration when ``calibrated``)."""
    feature_set = config.feature_sets[candidate.feature_set]
    estimator = make_estimator(candidate.estimator, config.seed, config.n_jobs)
    names = [*feature_set.categorical, *feature_set.numeric]
    unknown = set(candidate.monotonic) - set(feature_set.numeric)
    if unknown:
        raise ValueError(
            f"{candidate.name}: monotonic constraints on {sorted(unknown)}, not numeric features"
        )
    if candidate.monotonic and candidate.estimator != "hist_gb":
        raise ValueError(f"{candidate.name}: monotonic constraints need estimator hist_gb")
    if candidate.estimator == "hist_gb":
        n_cat = len(feature_set.categorical)
        estimator.set_params(categorical_features=[i < n_cat for i in range(len(names))])
        if candidate.monotonic:
            estimator.set_params(monotonic_cst=[int(candidate.monotonic.get(n, 0)) for n in names])
    steps = [
        (
            "features",
            BankFeatures(categorical=list(feature_set.categorical), numeric=list(feature_set.numeric)),
        ),
        ("guard", LeakageGuard(allowed=config.allowed_columns())),
        ("encode", make_encoder(candidate.estimator, feature_set, candidate.target_encode, seed=config.seed)),
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
