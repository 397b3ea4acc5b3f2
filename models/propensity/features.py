"""Training table, campaign-context features, the feature transformer and the leakage guard."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from callcast.schema import BANK_CATEGORIES

FORBIDDEN_FEATURES: dict[str, str] = {
    "duration": "known only after the call (leaks the outcome)",
    "pdays": "excluded by the company's specification",
}
"""Columns that may never reach the feature matrix, whatever the configuration says."""

CUSTOMER_COLUMNS = [
    "customer_id",
    "age",
    "job",
    "marital",
    "education",
    "default",
    "balance",
    "housing",
    "loan",
]
CONTACT_COLUMNS = [
    "contact_id",
    "customer_id",
    "contact_date",
    "contact",
    "day",
    "month",
    "campaign",
    "previous",
    "poutcome",
]
AGE_BANDS = (0, 25, 30, 40, 50, 60, 200)
AGE_BAND_LABELS = ("<25", "25-29", "30-39", "40-49", "50-59", "60+")
_MONTH_INDEX = {name: i for i, name in enumerate(BANK_CATEGORIES["month"])}


class LeakageError(ValueError):
    """A forbidden column (``duration``, ``pdays``) reached the feature matrix."""


def assert_no_leakage(columns: Iterable[str]) -> None:
    """Raise :class:`LeakageError` if any column is, or is derived from, a forbidden one."""
    names = [str(c) for c in columns]
    hits = {f: [c for c in names if c == f or c.startswith(f + "_")] for f in FORBIDDEN_FEATURES}
    hits = {f: cols for f, cols in hits.items() if cols}
    if hits:
        why = "; ".join(f"{cols} from {f!r}: {FORBIDDEN_FEATURES[f]}" for f, cols in hits.items())
        raise LeakageError(f"Refusing features {why}. Remove them from the feature set.")


# -- training table ---------------------------------------------------------------------------------


def latest_contacts(contacts: pd.DataFrame) -> pd.DataFrame:
    """One row per contact_id: the one with the latest ``updated_at`` (incremental partitions overlap)."""
    frame = contacts.copy()
    frame["updated_at"] = pd.to_datetime(frame["updated_at"])
    frame = frame.sort_values(["contact_id", "updated_at"], kind="stable")
    return frame.drop_duplicates("contact_id", keep="last").reset_index(drop=True)


def build_training_table(
    customers: pd.DataFrame,
    contacts: pd.DataFrame,
    as_of: pd.Timestamp | str | None = None,
    rate_prior: float = 0.1,
    rate_prior_weight: float = 20.0,
) -> pd.DataFrame:
    """Labelled contacts joined to their customer, with campaign context, oldest first.

    ``contacts`` may hold several versions of a contact (deduplicated here). Only outcomes known on or before
    ``as_of`` are labels; ``duration`` and ``pdays`` are dropped.
    """
    history = latest_contacts(contacts)
    history["contact_date"] = pd.to_datetime(history["contact_date"])
    history["outcome_known_on"] = pd.to_datetime(history["outcome_known_on"])
    if as_of is not None:
        cutoff = pd.Timestamp(as_of)
        history = history[history["contact_date"] <= cutoff].copy()
        history.loc[history["outcome_known_on"] > cutoff, ["y", "outcome_known_on"]] = None
    labelled = history[history["y"].notna()]
    table = labelled[CONTACT_COLUMNS + ["y"]].merge(
        customers[CUSTOMER_COLUMNS], on="customer_id", how="inner", validate="many_to_one"
    )
    table = add_context_features(table, history, rate_prior=rate_prior, rate_prior_weight=rate_prior_weight)
    table["y"] = (table["y"].astype(str) == "yes").astype(np.int8)
    table = table.sort_values(["contact_date", "contact_id"], kind="stable").reset_index(drop=True)
    return table


def context_for_dates(
    history: pd.DataFrame,
    dates: Sequence | pd.Series,
    rate_prior: float = 0.1,
    rate_prior_weight: float = 20.0,
) -> pd.DataFrame:
    """Campaign context on each date, from contacts strictly before it: 7-day volume, 90-day conversion rate.

    The rate counts only outcomes already known (``outcome_known_on`` before the date), smoothed towards
    ``rate_prior``. The scorer calls this with the call date to give new rows the same columns.
    """
    contact_days = pd.to_datetime(history["contact_date"]).to_numpy("datetime64[D]")
    known = pd.to_datetime(history["outcome_known_on"]).to_numpy("datetime64[D]")
    bought = (history["y"].astype(str) == "yes").to_numpy()
    has_outcome = ~np.isnat(known)
    wanted = pd.to_datetime(pd.Series(dates)).to_numpy("datetime64[D]")
    uniq, inverse = np.unique(wanted, return_inverse=True)
    order = np.argsort(contact_days, kind="stable")
    sorted_days = contact_days[order]
    vol = np.empty(len(uniq))
    rate = np.empty(len(uniq))
    for i, day in enumerate(uniq):
        vol[i] = np.searchsorted(sorted_days, day, "left") - np.searchsorted(sorted_days, day - 7, "left")
        lo = np.searchsorted(sorted_days, day - 90, "left")
        hi = np.searchsorted(sorted_days, day, "left")
        window = order[lo:hi]
        ok = has_outcome[window] & (known[window] < day)
        n = ok.sum()
        k = bought[window][ok].sum()
        rate[i] = (k + rate_prior * rate_prior_weight) / (n + rate_prior_weight)
    return pd.DataFrame({"ctx_volume_7d": vol[inverse], "ctx_rate_90d": rate[inverse]})


def add_context_features(
    frame: pd.DataFrame,
    history: pd.DataFrame,
    date_column: str = "contact_date",
    rate_prior: float = 0.1,
    rate_prior_weight: float = 20.0,
) -> pd.DataFrame:
    """``frame`` with ``ctx_volume_7d`` and ``ctx_rate_90d`` for its ``date_column`` (see :func:`context_for_dates`)."""
    ctx = context_for_dates(history, frame[date_column], rate_prior, rate_prior_weight)
    out = frame.reset_index(drop=True).copy()
    out[["ctx_volume_7d", "ctx_rate_90d"]] = ctx.to_numpy()
    return out


# -- derived columns and the transformer ---------------------------------------------------------------


def derive_columns(frame: pd.DataFrame, wanted: Iterable[str]) -> pd.DataFrame:
    """The ``wanted`` columns, raw or derived, as a new frame (vectorised; no row loops)."""
    out: dict[str, object] = {}
    for name in wanted:
        if name in frame.columns and name not in _DERIVED:
            out[name] = frame[name].to_numpy(dtype=object)
        elif name in _DERIVED:
            out[name] = _DERIVED[name](frame)
        else:
            raise KeyError(f"feature {name!r} is neither an input column nor a known derived feature")
    return pd.DataFrame(out, index=frame.index)


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    return pd.to_numeric(frame[col], errors="coerce").astype("Float64").to_numpy(dtype=float, na_value=np.nan)


def _month_angle(frame: pd.DataFrame) -> np.ndarray:
    idx = frame["month"].astype(str).str.lower().map(_MONTH_INDEX).to_numpy(dtype=float)
    return 2 * np.pi * idx / 12  # NaN for an unknown month -> imputed later


_DERIVED = {
    "balance_slog": lambda f: np.sign(_num(f, "balance")) * np.log1p(np.abs(_num(f, "balance"))),
    "campaign_log": lambda f: np.log1p(np.clip(_num(f, "campaign"), 0, None)),
    "previous_log": lambda f: np.log1p(np.clip(_num(f, "previous"), 0, None)),
    "prev_success": lambda f: (f["poutcome"].astype(str) == "success").to_numpy(dtype=float),
    "month_sin": lambda f: np.sin(_month_angle(f)),
    "month_cos": lambda f: np.cos(_month_angle(f)),
    "age_band": lambda f: np.asarray(
        pd.cut(_num(f, "age"), AGE_BANDS, right=False, labels=AGE_BAND_LABELS).astype(str), dtype=object
    ),
    "ctx_volume_7d_log": lambda f: np.log1p(_num(f, "ctx_volume_7d")),
    "ctx_rate_90d_logit": lambda f: np.log(
        np.clip(_num(f, "ctx_rate_90d"), 1e-4, 1 - 1e-4)
        / (1 - np.clip(_num(f, "ctx_rate_90d"), 1e-4, 1 - 1e-4))
    ),
}


class BankFeatures(TransformerMixin, BaseEstimator):
    """Select and derive one feature set's columns; categoricals as strings, numerics as floats."""

    def __init__(self, categorical: Sequence[str] = (), numeric: Sequence[str] = ()) -> None:
        self.categorical = categorical
        self.numeric = numeric

    def fit(self, X: pd.DataFrame, y=None) -> BankFeatures:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        cats = derive_columns(X, self.categorical)
        nums = derive_columns(X, self.numeric)
        out = pd.concat(
            [cats.astype(str).astype(object), nums.apply(pd.to_numeric, errors="coerce").astype(float)],
            axis=1,
        )
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray([*self.categorical, *self.numeric], dtype=object)


class LeakageGuard(TransformerMixin, BaseEstimator):
    """Pass-through step that raises :class:`LeakageError` if a forbidden column reaches it (fit and predict)."""

    def fit(self, X: pd.DataFrame, y=None) -> LeakageGuard:
        assert_no_leakage(X.columns)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        assert_no_leakage(X.columns)
        return X

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(list(input_features) if input_features is not None else [], dtype=object)
