"""Serving-time scoring of the linear champion in plain Python, verified against the pipeline it came from.

The logistic-regression champion (``BankFeatures`` -> ``LeakageGuard`` -> ``ColumnTransformer[OneHotEncoder,
SimpleImputer + StandardScaler]`` -> ``RecalibratedClassifier(LogisticRegression)``) is a sum of per-feature
terms: a weight per category and an affine term per numeric feature. :func:`compile_linear` reads those
weights out of the fitted steps; :class:`LinearScorer` then scores one scoring row (a dict) in microseconds
instead of the pipeline's ~7 ms per ``predict_proba`` call.

A compiled scorer is only used after :func:`serving_scorer` has checked, on a few thousand varied rows
(unseen and missing categories, never-contacted defaults, extreme numerics, many call-date contexts), that
it gives the pipeline's probabilities to ``tolerance``. Any other model (forests, boosting, an unknown step,
a failed check) is refused with the reason, and the caller keeps scoring with the pipeline.

Rows are the scoring rows of :func:`models.call_list.scoring_rows`; :func:`scoring_row` builds the same row
for one record without pandas (tests prove they agree).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from callcast.schema import BANK_CATEGORIES
from models.propensity.features import AGE_BAND_LABELS, AGE_BANDS, CUSTOMER_COLUMNS

HISTORY_COLUMNS = ("contact", "campaign", "previous", "poutcome")
_MONTH_INDEX = {name: float(i) for i, name in enumerate(BANK_CATEGORIES["month"])}
_INT_COLUMNS = {"age", "balance", "campaign", "previous"}


class ServingConfig(BaseModel):
    """How a compiled scorer is checked before it serves."""

    verify_rows: int = Field(default=3000, ge=100, description="Rows compared with the pipeline at load.")
    tolerance: float = Field(default=1e-12, gt=0, description="Largest accepted |probability difference|.")
    seed: int = 20260101


class NotCompilable(ValueError):
    """The model is not the known linear structure (or failed verification); score with the pipeline."""


# -- one scoring row, without pandas ---------------------------------------------------------------------


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def scoring_row(
    record: Mapping[str, Any], context: Mapping[str, Any], never_contacted: Mapping[str, Any]
) -> dict[str, Any]:
    """One customer's scoring row, as :func:`models.call_list.scoring_rows` builds it for a one-row frame.

    ``record`` holds the customer columns and optionally the history columns (missing = never contacted,
    filled from ``never_contacted``); ``context`` is the call-date context.
    """
    cid = record.get("customer_id")
    row: dict[str, Any] = {"customer_id": 0 if cid is None else int(cid)}
    for column in CUSTOMER_COLUMNS[1:]:
        value = record[column]
        row[column] = int(value) if column in _INT_COLUMNS else value
    for column in HISTORY_COLUMNS:
        value = record.get(column)
        value = never_contacted[column] if _missing(value) else value
        row[column] = int(value) if column in _INT_COLUMNS else value
    row["contact_date"] = np.datetime64(context["call_date"], "ns")
    row["day"] = int(context["day"])
    row["month"] = str(context["month"])
    row["ctx_volume_7d"] = float(context["ctx_volume_7d"])
    row["ctx_rate_90d"] = float(context["ctx_rate_90d"])
    return row


# -- per-row twins of the feature step (models.propensity.features) ---------------------------------------


def _num(value: Any) -> float:
    """A value as float (NaN = missing or not a number), like ``pd.to_numeric(errors="coerce")``."""
    if _missing(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _signed_log(x: float) -> float:
    return x if x != x else math.copysign(math.log1p(abs(x)), x) if x != 0 else 0.0


def _log1p(x: float) -> float:
    """``np.log1p`` without exceptions: NaN below -1, -inf at -1."""
    return math.nan if not x >= -1 else -math.inf if x == -1 else math.log1p(x)


def _log1p_pos(x: float) -> float:
    return x if x != x else math.log1p(max(x, 0.0))


def _month_angle(row: Mapping[str, Any]) -> float:
    month = row.get("month")
    idx = math.nan if _missing(month) else _MONTH_INDEX.get(str(month).lower(), math.nan)
    return 2 * math.pi * idx / 12


def _logit_rate(row: Mapping[str, Any]) -> float:
    rate = _num(row.get("ctx_rate_90d"))
    if rate != rate:
        return rate
    rate = min(max(rate, 1e-4), 1 - 1e-4)
    return math.log(rate / (1 - rate))


def _prev_success(row: Mapping[str, Any]) -> float:
    value = row.get("poutcome")
    return 0.0 if _missing(value) else (1.0 if str(value).lower() == "success" else 0.0)


def _age_band(row: Mapping[str, Any]) -> str | None:
    age = _num(row.get("age"))
    if not (AGE_BANDS[0] <= age < AGE_BANDS[-1]):  # NaN fails too
        return None
    return AGE_BAND_LABELS[bisect_right(AGE_BANDS, age) - 1]


_NUMERIC_DERIVED: dict[str, Callable[[Mapping[str, Any]], float]] = {
    "balance_slog": lambda r: _signed_log(_num(r.get("balance"))),
    "campaign_log": lambda r: _log1p_pos(_num(r.get("campaign"))),
    "previous_log": lambda r: _log1p_pos(_num(r.get("previous"))),
    "prev_success": _prev_success,
    "month_sin": lambda r: math.sin(_month_angle(r)),
    "month_cos": lambda r: math.cos(_month_angle(r)),
    "ctx_volume_7d_log": lambda r: _log1p(_num(r.get("ctx_volume_7d"))),
    "ctx_rate_90d_logit": _logit_rate,
}


def _cross(*parts: Callable[[Mapping[str, Any]], str | None]) -> Callable[[Mapping[str, Any]], str | None]:
    """A categorical interaction as :func:`models.propensity.features._cross` spells it (``a|b``)."""

    def get(row: Mapping[str, Any]) -> str | None:
        values = [part(row) for part in parts]
        return None if any(v is None for v in values) else "|".join(values)  # type: ignore[arg-type]

    return get


def _raw(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    def get(row: Mapping[str, Any]) -> str | None:
        value = row.get(name)
        return None if _missing(value) else str(value)

    return get


_CATEGORICAL_DERIVED: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "age_band": _age_band,
    "poutcome_x_contact": _cross(_raw("poutcome"), _raw("contact")),
    "housing_x_loan": _cross(_raw("housing"), _raw("loan")),
    "age_band_x_marital": _cross(_age_band, _raw("marital")),
    "job_x_education": _cross(_raw("job"), _raw("education")),
}


def _unknown_derived(name: str) -> None:
    """A derived feature this module cannot compute: refuse rather than read a raw column of that name."""
    from models.propensity.features import CONTEXT_COLUMNS, DERIVED_FEATURES

    known = {*_NUMERIC_DERIVED, *_CATEGORICAL_DERIVED, *CONTEXT_COLUMNS}
    if name in DERIVED_FEATURES and name not in known:
        raise NotCompilable(f"derived feature {name!r} has no compiled form")


def _numeric_getter(name: str) -> Callable[[Mapping[str, Any]], float]:
    _unknown_derived(name)
    if name in _NUMERIC_DERIVED:
        return _NUMERIC_DERIVED[name]
    if name in _CATEGORICAL_DERIVED:
        raise NotCompilable(f"{name!r} is categorical but used as a numeric feature")
    return lambda r: _num(r.get(name))


def _category_getter(name: str) -> Callable[[Mapping[str, Any]], str | None]:
    _unknown_derived(name)
    if name in _CATEGORICAL_DERIVED:
        return _CATEGORICAL_DERIVED[name]
    if name in _NUMERIC_DERIVED:
        raise NotCompilable(f"derived numeric {name!r} used as a categorical feature")

    def get(row: Mapping[str, Any]) -> str | None:
        value = row.get(name)
        return None if _missing(value) else str(value)

    return get


# -- the compiled scorer ----------------------------------------------------------------------------------


def _expit(z: float) -> float:
    if z < -700:  # exp would overflow; numpy gives 1 / inf = 0 here
        return 0.0
    return 1.0 / (1.0 + math.exp(-z))


@dataclass(frozen=True)
class CategoricalTerm:
    name: str
    get: Callable[[Mapping[str, Any]], str | None]
    weights: dict[str, float]
    other: float  # weight of an unseen or missing value (code -1)


@dataclass(frozen=True)
class NumericTerm:
    name: str
    get: Callable[[Mapping[str, Any]], float]
    fill: float  # imputed value for a missing one
    mean: float
    scale: float
    coef: float


@dataclass(frozen=True)
class LinearScorer:
    """The linear champion as weights: ``intercept + sum(terms)`` -> logistic -> optional Platt map."""

    categorical: tuple[CategoricalTerm, ...]
    numeric: tuple[NumericTerm, ...]
    intercept: float
    platt: tuple[float, float] | None  # (slope, intercept) of RecalibratedClassifier, None = plain model
    clip: float = 1e-6

    def decision(self, row: Mapping[str, Any]) -> float:
        """The logistic regression's decision value for one scoring row."""
        z = self.intercept
        for term in self.categorical:
            key = term.get(row)
            z += term.other if key is None else term.weights.get(key, term.other)
        for term in self.numeric:
            x = term.get(row)
            if x != x:
                x = term.fill
            z += (x - term.mean) / term.scale * term.coef
        return z

    def probability(self, row: Mapping[str, Any]) -> float:
        """Probability of a sale for one scoring row (the pipeline's ``predict_proba[:, 1]``)."""
        p = _expit(self.decision(row))
        if self.platt is None:
            return p
        slope, intercept = self.platt
        p = min(max(p, self.clip), 1 - self.clip)
        return _expit(slope * math.log(p / (1 - p)) + intercept)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Probabilities for several scoring rows (float64)."""
        return np.fromiter((self.probability(r) for r in rows), dtype=np.float64, count=len(rows))


def compile_linear(pipeline: Any) -> LinearScorer:
    """Read the weights out of a fitted linear champion; :class:`NotCompilable` for any other structure."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from models.propensity.estimators import _EPS, RecalibratedClassifier
    from models.propensity.features import BankFeatures, LeakageGuard

    if type(pipeline) is not Pipeline:
        raise NotCompilable(f"not a sklearn Pipeline: {type(pipeline).__name__}")
    steps = [step for _, step in pipeline.steps]
    model = steps[-1] if steps else None
    platt: tuple[float, float] | None = None
    if type(model) is RecalibratedClassifier:
        if model.method not in ("none", "sigmoid"):
            raise NotCompilable(f"unknown recalibration method {model.method!r}")
        platt = (float(model.slope_), float(model.intercept_))
        model = model.estimator_
    if type(model) is not LogisticRegression:
        raise NotCompilable(f"estimator {type(model).__name__} is not a LogisticRegression")
    if len(model.classes_) != 2 or model.coef_.shape[0] != 1:
        raise NotCompilable("not a binary logistic regression")
    if len(steps) != 4 or not (
        type(steps[0]) is BankFeatures
        and type(steps[1]) is LeakageGuard
        and type(steps[2]) is ColumnTransformer
    ):
        kinds = [type(s).__name__ for s in steps]
        raise NotCompilable(f"steps {kinds} are not features -> guard -> ColumnTransformer -> model")
    features, _, encode, _ = steps
    if not hasattr(features, "categories_"):
        raise NotCompilable("feature step pickled before category codes existed")
    coef = np.asarray(model.coef_[0], dtype=np.float64)
    if not np.all(np.isfinite(coef)):
        raise NotCompilable("non-finite coefficients")

    names = list(features.get_feature_names_out())
    bank_categories = dict(zip(features.categorical, features.categories_, strict=True))
    categorical: list[CategoricalTerm] = []
    numeric: list[NumericTerm] = []
    used = 0
    for name, transformer, columns in encode.transformers_:
        block = encode.output_indices_[name]
        if transformer == "drop" or len(columns) == 0:
            continue
        cols = [names[c] if isinstance(c, (int, np.integer)) else str(c) for c in columns]
        w = coef[block]
        used += block.stop - block.start
        if type(transformer) is OneHotEncoder:
            ohe = transformer
            if (
                ohe.handle_unknown != "ignore"
                or ohe.drop_idx_ is not None
                or getattr(ohe, "_infrequent_enabled", False)
            ):
                raise NotCompilable("one-hot encoder drops, groups infrequent, or errors on unknowns")
            offset = 0
            for col, ohe_cats in zip(cols, ohe.categories_, strict=True):
                if col not in bank_categories:
                    raise NotCompilable(f"one-hot column {col!r} is not a categorical of the feature step")
                position = {float(c): offset + i for i, c in enumerate(ohe_cats)}
                offset += len(ohe_cats)
                weights = {
                    str(label): float(w[position[float(code)]])
                    for code, label in enumerate(bank_categories[col])
                    if float(code) in position
                }
                other = float(w[position[-1.0]]) if -1.0 in position else 0.0
                categorical.append(CategoricalTerm(col, _category_getter(col), weights, other))
            if offset != len(w):
                raise NotCompilable("one-hot output width does not match the coefficients")
        elif type(transformer) is Pipeline and [type(s) for _, s in transformer.steps] == [
            SimpleImputer,
            StandardScaler,
        ]:
            imputer, scaler = (s for _, s in transformer.steps)
            if imputer.add_indicator or not (
                isinstance(imputer.missing_values, float) and math.isnan(imputer.missing_values)
            ):
                raise NotCompilable("imputer adds indicators or imputes something other than NaN")
            fill = np.asarray(imputer.statistics_, dtype=np.float64)
            if len(fill) != len(cols) or not np.all(np.isfinite(fill)) or len(w) != len(cols):
                raise NotCompilable("imputer drops columns (a feature was empty in training)")
            mean = scaler.mean_ if scaler.with_mean else np.zeros(len(cols))
            scale = scaler.scale_ if scaler.with_std else np.ones(len(cols))
            for j, col in enumerate(cols):
                if col in bank_categories:
                    raise NotCompilable(f"categorical {col!r} scaled as a numeric")
                numeric.append(
                    NumericTerm(
                        col,
                        _numeric_getter(col),
                        float(fill[j]),
                        float(mean[j]),
                        float(scale[j]),
                        float(w[j]),
                    )
                )
        else:
            raise NotCompilable(f"encoder block {name!r} ({type(transformer).__name__}) is not supported")
    if used != len(coef):
        raise NotCompilable(f"encoder gives {used} columns, the model has {len(coef)} coefficients")
    return LinearScorer(tuple(categorical), tuple(numeric), float(model.intercept_[0]), platt, clip=_EPS)


# -- verification -----------------------------------------------------------------------------------------


def verification_rows(
    n: int,
    seed: int,
    never_contacted: Mapping[str, Any],
    categories: Mapping[str, Sequence[str]] = BANK_CATEGORIES,
) -> list[dict[str, Any]]:
    """``n`` varied scoring rows: known, unseen and missing categories, never-contacted history, extreme
    numerics, many call-date contexts (rate 0 and 1 included)."""
    rng = np.random.default_rng(seed)
    months = list(categories["month"])
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"customer_id": int(rng.integers(1, 10**7))}
        for col in ("job", "marital", "education", "default", "housing", "loan", "contact", "poutcome"):
            u = rng.random()
            known = list(categories[col])
            row[col] = (
                known[int(rng.integers(len(known)))] if u < 0.93 else "never-seen" if u < 0.98 else None
            )
        age = int(rng.integers(18, 100)) if rng.random() < 0.97 else None
        row["age"] = age
        row["balance"] = int(rng.choice([-1, 1]) * rng.pareto(1.2) * 500) if rng.random() < 0.98 else None
        row["campaign"] = int(rng.integers(1, 60)) if rng.random() < 0.98 else None
        row["previous"] = int(rng.integers(0, 300) * (rng.random() < 0.3))
        if i % 7 == 0:  # never contacted: the defaults scoring_rows fills in
            row.update(never_contacted)
        day = int(rng.integers(1, 29))
        month_i = int(rng.integers(12))
        row["contact_date"] = np.datetime64(f"2026-{month_i + 1:02d}-{day:02d}", "ns")
        row["day"] = day
        row["month"] = months[month_i] if rng.random() < 0.97 else "never-seen"
        row["ctx_volume_7d"] = float(rng.choice([0.0, float(rng.integers(0, 5000))]))
        row["ctx_rate_90d"] = float(rng.choice([0.0, 1.0, float(rng.random())], p=[0.05, 0.05, 0.9]))
        rows.append(row)
    return rows


def max_difference(scorer: LinearScorer, pipeline: Any, rows: Sequence[Mapping[str, Any]]) -> float:
    """Largest |compiled - pipeline| probability over ``rows`` (NaN anywhere counts as infinite)."""
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    expected = np.asarray(pipeline.predict_proba(frame)[:, 1], dtype=np.float64)
    got = scorer.predict(rows)
    diff = np.abs(got - expected)
    return float("inf") if not np.all(np.isfinite(diff)) else float(diff.max(initial=0.0))


def serving_scorer(
    pipeline: Any,
    never_contacted: Mapping[str, Any],
    config: ServingConfig | None = None,
    extra_rows: Sequence[Mapping[str, Any]] = (),
) -> tuple[LinearScorer | None, str]:
    """The compiled scorer if the model compiles and matches the pipeline on varied rows, else ``None``.

    The second value says which path serves and why, for logs and ``/model``.
    """
    config = config or ServingConfig()
    try:
        scorer = compile_linear(pipeline)
    except NotCompilable as exc:
        return None, f"pipeline ({exc})"
    except (AttributeError, KeyError, IndexError, TypeError) as exc:  # an unexpected fitted layout
        return None, f"pipeline (could not read the weights: {type(exc).__name__}: {exc})"
    rows = [*verification_rows(config.verify_rows, config.seed, never_contacted), *extra_rows]
    try:
        diff = max_difference(scorer, pipeline, rows)
    except Exception as exc:  # the check itself failed: never serve unverified weights
        return None, f"pipeline (verification failed: {type(exc).__name__}: {exc})"
    if not diff <= config.tolerance:
        return None, f"pipeline (compiled scorer differs by {diff:.3g} > {config.tolerance:g})"
    return scorer, f"compiled (max |dp| {diff:.1e} on {len(rows)} rows)"
