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


def feature_values(frame: pd.DataFrame, name: str) -> np.ndarray | pd.Series:
    """One feature's values for every row: the raw column (as it is) or the derived one (vectorised)."""
    if name in _DERIVED:
        return _DERIVED[name](frame)
    if name in frame.columns:
        return frame[name]
    raise KeyError(f"feature {name!r} is neither an input column nor a known derived feature")


def derive_columns(frame: pd.DataFrame, wanted: Iterable[str]) -> pd.DataFrame:
    """The ``wanted`` columns, raw or derived, as a new frame (vectorised; no row loops)."""
    out = {name: np.asarray(feature_values(frame, name), dtype=object) for name in wanted}
    return pd.DataFrame(out, index=frame.index)


def _num(frame: pd.DataFrame, col: str) -> np.ndarray:
    """A column as float64 (NaN = missing or not a number); no copy through object dtype for numeric columns."""
    values = frame[col]
    if not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)):
        values = pd.to_numeric(values.astype(object), errors="coerce")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _lookup(values, table: dict[str, float], default: float = np.nan) -> np.ndarray:
    """Map each value through ``table`` by its lower-cased string form; only distinct values are looked up."""
    codes, uniques = pd.factorize(values)
    mapped = np.array([table.get(str(u).lower(), default) for u in uniques] + [default], dtype=np.float64)
    return mapped[codes]  # code -1 (missing) picks the trailing default


def _month_angle(frame: pd.DataFrame) -> np.ndarray:
    idx = _lookup(frame["month"], _MONTH_INDEX)
    return 2 * np.pi * idx / 12  # NaN for an unknown month: imputed (linear, forest) or native (boosting)


def _age_band(frame: pd.DataFrame) -> pd.Categorical:
    age = _num(frame, "age")
    band = np.searchsorted(np.asarray(AGE_BANDS, dtype=np.float64), age, side="right") - 1
    band[~((age >= AGE_BANDS[0]) & (age < AGE_BANDS[-1]))] = -1  # NaN or out of range -> missing
    return pd.Categorical.from_codes(band, categories=list(AGE_BAND_LABELS))


def _logit_rate(frame: pd.DataFrame) -> np.ndarray:
    rate = np.clip(_num(frame, "ctx_rate_90d"), 1e-4, 1 - 1e-4)
    return np.log(rate / (1 - rate))


def _signed_log(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


_DERIVED = {
    "balance_slog": lambda f: _signed_log(_num(f, "balance")),
    "campaign_log": lambda f: np.log1p(np.clip(_num(f, "campaign"), 0, None)),
    "previous_log": lambda f: np.log1p(np.clip(_num(f, "previous"), 0, None)),
    "prev_success": lambda f: _lookup(f["poutcome"], {"success": 1.0}, default=0.0),
    "month_sin": lambda f: np.sin(_month_angle(f)),
    "month_cos": lambda f: np.cos(_month_angle(f)),
    "age_band": _age_band,
    "ctx_volume_7d_log": lambda f: np.log1p(_num(f, "ctx_volume_7d")),
    "ctx_rate_90d_logit": _logit_rate,
}


def _category_codes(values, categories: pd.Index) -> np.ndarray:
    """Position of each value's string form in ``categories``; -1 for a missing or unseen value."""
    codes, uniques = pd.factorize(values)
    lookup = np.append(categories.get_indexer(np.asarray(uniques, dtype=object).astype(str)), -1)
    return lookup[codes]  # code -1 (missing) picks the trailing -1


class BankFeatures(TransformerMixin, BaseEstimator):
    """Select and derive one feature set's columns as one float matrix (a DataFrame over a C-ordered array).

    Categoricals become integer codes of the categories seen in ``fit`` (sorted; -1 = unseen or missing),
    numerics float64 (NaN = missing). The categories are fixed at fit, so transforming costs one hash of the
    distinct values per column and no object-dtype copy of the rows.
    """

    def __init__(self, categorical: Sequence[str] = (), numeric: Sequence[str] = ()) -> None:
        self.categorical = categorical
        self.numeric = numeric

    def fit(self, X: pd.DataFrame, y=None) -> BankFeatures:
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.categories_ = []
        for name in self.categorical:
            uniques = pd.unique(pd.Series(feature_values(X, name)).dropna())
            self.categories_.append(np.unique(np.asarray(uniques, dtype=object).astype(str)).astype(object))
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if not hasattr(self, "categories_"):
            return self._string_frame(X)
        n_cat = len(self.categorical)
        out = np.empty((len(X), n_cat + len(self.numeric)), dtype=np.float64)
        for j, (name, categories) in enumerate(zip(self.categorical, self.categories_, strict=True)):
            out[:, j] = _category_codes(feature_values(X, name), pd.Index(categories))
        for j, name in enumerate(self.numeric, start=n_cat):
            values = feature_values(X, name)
            out[:, j] = _num(X, name) if isinstance(values, pd.Series) else values
        return pd.DataFrame(out, columns=self.get_feature_names_out(), index=X.index, copy=False)

    def _string_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """Output of models pickled before ``categories_`` existed: string categoricals for their own encoder."""
        cats = derive_columns(X, self.categorical).astype(str).astype(object)
        nums = pd.DataFrame(
            {
                name: np.asarray(pd.to_numeric(feature_values(X, name), errors="coerce"), dtype=float)
                for name in self.numeric
            },
            index=X.index,
        )
        return pd.concat([cats, nums], axis=1)

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
