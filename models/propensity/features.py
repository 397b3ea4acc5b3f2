"""Point-in-time feature rows, campaign-context features, the feature transformer and the leakage allowlist.

One builder, :func:`customer_features_as_of`, makes every row the propensity model ever sees: training rows
(each historical contact, as the customer was before that call) and scoring rows (each customer, as they are
before a call on the call date). Training and serving therefore cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from callcast.schema import BANK_CATEGORIES, PRE_CALL_COLUMNS

FORBIDDEN_FEATURES: dict[str, str] = {
    "duration": "known only after the call (leaks the outcome)",
    "pdays": "days since the customer was last contacted in a previous campaign: excluded by the company's "
    "specification (never rebuild it from the history either)",
}
"""Columns that may never reach the feature matrix, whatever the configuration or the schema says."""

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
HISTORY_COLUMNS = ["contact", "campaign", "previous", "poutcome"]
"""Pre-call columns of a contact that describe the customer's contact history (rolled forward for scoring)."""
NEVER_CONTACTED: dict[str, object] = {
    "contact": "unknown",
    "campaign": 1,
    "previous": 0,
    "poutcome": "unknown",
}
"""History columns of a customer with no earlier contact (the UCI file's own convention)."""
CONTEXT_COLUMNS = ["ctx_volume_7d", "ctx_rate_90d"]
HISTORY_INPUT_COLUMNS = [
    "contact_id", "customer_id", "contact_date", *HISTORY_COLUMNS, "y", "outcome_known_on",
]  # fmt: skip
"""Columns of ``campaign_contacts`` the builder reads (``updated_at`` too when versions overlap)."""
AGE_BANDS = (0, 25, 30, 40, 50, 60, 200)
AGE_BAND_LABELS = ("<25", "25-29", "30-39", "40-49", "50-59", "60+")
_MONTH_INDEX = {name: i for i, name in enumerate(BANK_CATEGORIES["month"])}


class LeakageError(ValueError):
    """A column not known before the call (or a forbidden one) reached the feature matrix."""


def pre_call_columns(schema: Mapping[str, Sequence[str]] | None = None) -> set[str]:
    """Every source column declared known before a call (``callcast.schema.PRE_CALL_COLUMNS`` by default)."""
    schema = PRE_CALL_COLUMNS if schema is None else schema
    return {str(c) for columns in schema.values() for c in columns}


def assert_no_leakage(columns: Iterable[str]) -> None:
    """Raise :class:`LeakageError` if any column is, or is derived from, a forbidden one."""
    names = [str(c) for c in columns]
    hits = {f: [c for c in names if c == f or c.startswith(f + "_")] for f in FORBIDDEN_FEATURES}
    hits = {f: cols for f, cols in hits.items() if cols}
    if hits:
        why = "; ".join(f"{cols} from {f!r}: {FORBIDDEN_FEATURES[f]}" for f, cols in hits.items())
        raise LeakageError(f"Refusing features {why}. Remove them from the feature set.")


def feature_sources(name: str) -> tuple[str, ...]:
    """The source columns a feature is computed from (itself for a raw column)."""
    if name in DERIVED_FEATURES:
        return DERIVED_FEATURES[name].sources
    return (name,)


def assert_pre_call(features: Iterable[str], allowed: Iterable[str] | None = None) -> None:
    """Raise :class:`LeakageError` naming every feature that is not known before the call.

    A feature is accepted if it is a declared pre-call source column (``allowed``, default: the schema's
    :data:`callcast.schema.PRE_CALL_COLUMNS`), or a named derived feature (:data:`DERIVED_FEATURES`) whose
    sources all are. The forbidden columns (``duration``, ``pdays``) are refused even if declared.
    """
    names = [str(f) for f in features]
    assert_no_leakage(names)
    allowed_set = pre_call_columns() if allowed is None else {str(a) for a in allowed}
    refused = []
    for name in names:
        missing = [s for s in feature_sources(name) if s not in allowed_set]
        if missing:
            refused.append(name if missing == [name] else f"{name} (from {', '.join(missing)})")
    if refused:
        raise LeakageError(
            f"Refusing feature(s) {', '.join(repr(r) for r in refused)}: not declared as known before the call. "
            "Only columns listed as pre-call in the schema (callcast.schema.PRE_CALL_COLUMNS, or "
            "CALLCAST_PROPENSITY__EXTRA_PRE_CALL_COLUMNS) and features derived from them by the named functions of "
            "models.propensity.features may train the model."
        )


# -- the point-in-time builder ----------------------------------------------------------------------


def latest_contacts(contacts: pd.DataFrame) -> pd.DataFrame:
    """One row per contact_id: the one with the latest ``updated_at`` (incremental partitions overlap)."""
    frame = contacts.copy()
    if "updated_at" not in frame.columns:
        return frame.drop_duplicates("contact_id", keep="last").reset_index(drop=True)
    frame["updated_at"] = pd.to_datetime(frame["updated_at"])
    frame = frame.sort_values(["contact_id", "updated_at"], kind="stable")
    return frame.drop_duplicates("contact_id", keep="last").reset_index(drop=True)


def _day(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values)).dt.normalize().astype("datetime64[ns]")


def customer_features_as_of(
    contacts: pd.DataFrame,
    customers: pd.DataFrame,
    requests: pd.DataFrame,
    rate_prior: float = 0.1,
    rate_prior_weight: float = 20.0,
    customer_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The model's input rows: each requested customer as known at the start of the ``as_of`` day.

    Signature (the one builder of training and scoring rows)::

        customer_features_as_of(contacts, customers, requests, rate_prior=0.1, rate_prior_weight=20.0,
                                customer_columns=None) -> DataFrame

    - ``contacts``: the ``campaign_contacts`` history (columns :data:`HISTORY_INPUT_COLUMNS`, plus
      ``updated_at`` when slices overlap: the latest version of each ``contact_id`` wins).
    - ``customers``: the ``customers`` snapshot (``customer_id`` + ``customer_columns``, default the UCI
      attributes ``age ... loan``).
    - ``requests``: one row per wanted feature row: ``customer_id``, ``as_of`` (the call date) and optionally
      ``contact_id`` (training: the contact the row describes).

    Returns one row per request, in request order: ``customer_id`` (and ``contact_id`` when requested),
    the customer columns, ``contact, campaign, previous, poutcome`` (history), ``contact_date`` (= ``as_of``),
    ``day``, ``month`` and the campaign context ``ctx_volume_7d``, ``ctx_rate_90d``.

    Point in time: only what was known before any call on ``as_of`` is used --
    - a contact already placed *on* ``as_of`` (a historical contact: the training row) contributes its
      pre-call record (channel, campaign counter, earlier contacts, earlier outcome), never its outcome;
    - otherwise the history columns roll forward from the customer's latest contact *before* ``as_of``: if its
      outcome was known before ``as_of`` a new campaign starts (``campaign=1``, ``previous`` = earlier contacts
      + that campaign's contacts, ``poutcome`` = ``success``/``failure``); if not, the same campaign continues
      (``campaign`` + 1, ``previous`` and ``poutcome`` unchanged); the channel is the last one used;
    - a customer never contacted gets :data:`NEVER_CONTACTED`;
    - the context counts contacts strictly before ``as_of`` and outcomes known before it.
    No recency feature (days since a contact) is built: that is ``pdays`` under another name.

    Training calls it for every labelled contact with ``as_of = contact_date`` and its ``contact_id``
    (:func:`build_training_table`); scoring calls it for every customer with ``as_of = call_date``
    (:func:`scoring_rows_as_of`). Rebuilding a historical contact's scoring row as of its date gives
    exactly its training row (tested).
    """
    columns = list(customer_columns or CUSTOMER_COLUMNS[1:])
    req = pd.DataFrame(
        {
            "customer_id": requests["customer_id"].astype("int64").to_numpy(),
            "as_of": _day(requests["as_of"]).to_numpy(),
        }
    )
    with_contact = "contact_id" in requests.columns
    if with_contact:
        req["contact_id"] = pd.to_numeric(requests["contact_id"]).astype("Int64").to_numpy()
    req["_order"] = np.arange(len(req))
    history = _history(contacts)
    hist_cols = ["contact_id", "customer_id", "contact_date", *HISTORY_COLUMNS, "y", "outcome_known_on"]
    history = history[hist_cols]

    # 1. a contact placed on the as-of day: its pre-call record
    if with_contact:
        same_day = req[["_order", "contact_id"]].merge(
            history[["contact_id", *HISTORY_COLUMNS]], on="contact_id", how="inner"
        )
    else:
        on_day = history.sort_values(["customer_id", "contact_date", "contact_id"], kind="stable")
        on_day = on_day.drop_duplicates(["customer_id", "contact_date"], keep="first")
        same_day = req[["_order", "customer_id", "as_of"]].merge(
            on_day[["customer_id", "contact_date", *HISTORY_COLUMNS]],
            left_on=["customer_id", "as_of"],
            right_on=["customer_id", "contact_date"],
            how="inner",
        )
    same_day = same_day.set_index("_order")

    # 2. otherwise: roll forward from the latest contact strictly before the as-of day
    ordered = req.sort_values("as_of", kind="stable")
    prior = history.sort_values(["contact_date", "contact_id"], kind="stable").rename(
        columns={c: f"last_{c}" for c in hist_cols if c != "customer_id"}
    )
    prior["_on"] = prior["last_contact_date"]
    last = pd.merge_asof(
        ordered[["_order", "customer_id", "as_of"]],
        prior,
        left_on="as_of",
        right_on="_on",
        by="customer_id",
        allow_exact_matches=False,
        direction="backward",
    ).set_index("_order")
    last = last.reindex(req["_order"])
    has_last = last["last_contact_id"].notna().to_numpy()
    known = (
        has_last
        & last["last_y"].notna().to_numpy()
        & (last["last_outcome_known_on"] < req["as_of"].to_numpy()).to_numpy()
    )
    bought = (last["last_y"].astype("string") == "yes").fillna(False).to_numpy(dtype=bool)
    last_campaign = pd.to_numeric(last["last_campaign"]).to_numpy(dtype=float)
    last_previous = pd.to_numeric(last["last_previous"]).to_numpy(dtype=float)
    n = len(req)
    campaign = np.full(n, float(NEVER_CONTACTED["campaign"]))
    previous = np.full(n, float(NEVER_CONTACTED["previous"]))
    poutcome = np.full(n, NEVER_CONTACTED["poutcome"], dtype=object)
    contact = np.full(n, NEVER_CONTACTED["contact"], dtype=object)
    cont = has_last & ~known
    campaign[known], previous[known] = 1.0, (last_previous + last_campaign)[known]
    poutcome[known] = np.where(bought[known], "success", "failure")
    campaign[cont], previous[cont] = last_campaign[cont] + 1, last_previous[cont]
    poutcome[cont] = last["last_poutcome"].to_numpy(dtype=object)[cont]
    contact[has_last] = last["last_contact"].to_numpy(dtype=object)[has_last]
    rolled = pd.DataFrame(
        {"contact": contact, "campaign": campaign, "previous": previous, "poutcome": poutcome},
        index=req["_order"],
    )
    if len(same_day):
        rolled.loc[same_day.index, HISTORY_COLUMNS] = same_day[HISTORY_COLUMNS].to_numpy(dtype=object)

    # 3. customer attributes (the snapshot) and the call date's context
    attrs = customers[["customer_id", *columns]].copy()
    attrs["customer_id"] = attrs["customer_id"].astype("int64")
    attrs = attrs.drop_duplicates("customer_id", keep="last").set_index("customer_id")
    missing = ~req["customer_id"].isin(attrs.index)
    if missing.any():
        raise KeyError(
            f"{int(missing.sum())} requested customer(s) are not in the customers snapshot "
            f"(e.g. {req.loc[missing, 'customer_id'].head(3).tolist()}); refresh the customers export."
        )
    out = pd.DataFrame({"customer_id": req["customer_id"].to_numpy()})
    if with_contact:
        out.insert(0, "contact_id", req["contact_id"].to_numpy())
    picked = attrs.loc[req["customer_id"].to_numpy(), columns]
    for c in columns:
        out[c] = picked[c].to_numpy()
    out["contact"] = rolled["contact"].to_numpy(dtype=object)
    out["campaign"] = rolled["campaign"].to_numpy(dtype=float).astype("int64")
    out["previous"] = rolled["previous"].to_numpy(dtype=float).astype("int64")
    out["poutcome"] = rolled["poutcome"].to_numpy(dtype=object)
    as_of = pd.DatetimeIndex(req["as_of"])
    out["contact_date"] = as_of.to_numpy()
    out["day"] = as_of.day.to_numpy(dtype="int64")
    out["month"] = np.asarray(BANK_CATEGORIES["month"], dtype=object)[as_of.month.to_numpy() - 1]
    ctx = context_for_dates(history, req["as_of"], rate_prior, rate_prior_weight)
    out[CONTEXT_COLUMNS] = ctx[CONTEXT_COLUMNS].to_numpy()
    return out


def _history(contacts: pd.DataFrame) -> pd.DataFrame:
    """Deduplicated contacts with day-resolution dates; fails naming the columns it lacks."""
    need = [c for c in HISTORY_INPUT_COLUMNS if c not in contacts.columns]
    if need:
        raise KeyError(f"campaign_contacts lacks {need}: the feature builder needs {HISTORY_INPUT_COLUMNS}")
    history = latest_contacts(contacts) if contacts["contact_id"].duplicated().any() else contacts.copy()
    history = history.reset_index(drop=True)
    history["customer_id"] = history["customer_id"].astype("int64")
    history["contact_date"] = _day(history["contact_date"]).to_numpy()
    history["outcome_known_on"] = _day(history["outcome_known_on"]).to_numpy()
    return history


def scoring_rows_as_of(
    contacts: pd.DataFrame,
    customers: pd.DataFrame,
    call_date,
    customer_ids: Sequence[int] | None = None,
    rate_prior: float = 0.1,
    rate_prior_weight: float = 20.0,
    customer_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Scoring rows of ``customer_ids`` (default: every customer) for a call on ``call_date``.

    A thin wrapper of :func:`customer_features_as_of` with ``as_of = call_date`` for every customer.
    """
    ids = customers["customer_id"] if customer_ids is None else pd.Series(customer_ids)
    requests = pd.DataFrame({"customer_id": np.asarray(ids, dtype="int64"), "as_of": pd.Timestamp(call_date)})
    return customer_features_as_of(
        contacts, customers, requests, rate_prior, rate_prior_weight, customer_columns
    )


def build_training_table(
    customers: pd.DataFrame,
    contacts: pd.DataFrame,
    as_of: pd.Timestamp | str | None = None,
    rate_prior: float = 0.1,
    rate_prior_weight: float = 20.0,
    customer_columns: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Labelled contacts as the customer was before each call (:func:`customer_features_as_of`), oldest first.

    ``contacts`` may hold several versions of a contact (deduplicated here). Only outcomes known on or before
    ``as_of`` are labels (and history). Columns not declared pre-call (``duration``, ``pdays``, anything
    else) never enter the table: the builder only emits its own columns, plus ``y`` (0/1).
    """
    history = _history(contacts)
    if as_of is not None:
        cutoff = pd.Timestamp(as_of)
        history = history[history["contact_date"] <= cutoff].copy()
        history.loc[history["outcome_known_on"] > cutoff, ["y", "outcome_known_on"]] = None
    labelled = history[history["y"].notna()].sort_values(["contact_date", "contact_id"], kind="stable")
    requests = pd.DataFrame(
        {
            "customer_id": labelled["customer_id"].to_numpy(),
            "as_of": labelled["contact_date"].to_numpy(),
            "contact_id": labelled["contact_id"].to_numpy(),
        }
    )
    known_customers = set(customers["customer_id"].astype("int64"))
    keep = requests["customer_id"].isin(known_customers).to_numpy()
    table = customer_features_as_of(
        history, customers, requests[keep], rate_prior, rate_prior_weight, customer_columns
    )
    table["y"] = (labelled["y"].astype(str).to_numpy()[keep] == "yes").astype(np.int8)
    return table.reset_index(drop=True)


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
    if name in DERIVED_FEATURES and not (name in CONTEXT_COLUMNS and name in frame.columns):
        return DERIVED_FEATURES[name](frame)
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


def _cross(*columns: str):
    """A categorical interaction: the values of ``columns`` joined by ``|`` (missing if any part is)."""

    def make(frame: pd.DataFrame) -> np.ndarray:
        parts = [frame[c].astype(object).to_numpy() for c in columns]
        joined = np.array(["|".join(map(str, v)) for v in zip(*parts, strict=True)], dtype=object)
        missing = np.zeros(len(frame), dtype=bool)
        for part in parts:
            missing |= pd.isna(part)
        joined[missing] = None
        return joined

    return make


def _age_band_values(frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(_age_band(frame).astype(object))


@dataclass(frozen=True)
class DerivedFeature:
    """A feature computed by a named, vectorised function from declared source columns."""

    function: object
    sources: tuple[str, ...]
    description: str = ""

    def __call__(self, frame: pd.DataFrame):
        return self.function(frame)  # type: ignore[operator]


DERIVED_FEATURES: dict[str, DerivedFeature] = {
    "balance_slog": DerivedFeature(
        lambda f: _signed_log(_num(f, "balance")), ("balance",), "signed log of balance"
    ),
    "campaign_log": DerivedFeature(
        lambda f: np.log1p(np.clip(_num(f, "campaign"), 0, None)),
        ("campaign",),
        "log(1 + contacts this campaign)",
    ),
    "previous_log": DerivedFeature(
        lambda f: np.log1p(np.clip(_num(f, "previous"), 0, None)), ("previous",), "log(1 + earlier contacts)"
    ),
    "prev_success": DerivedFeature(
        lambda f: _lookup(f["poutcome"], {"success": 1.0}, default=0.0),
        ("poutcome",),
        "previous campaign succeeded",
    ),
    "month_sin": DerivedFeature(lambda f: np.sin(_month_angle(f)), ("month",), "contact-month seasonality"),
    "month_cos": DerivedFeature(lambda f: np.cos(_month_angle(f)), ("month",), "contact-month seasonality"),
    "age_band": DerivedFeature(_age_band, ("age",), "age band"),
    "ctx_volume_7d": DerivedFeature(
        lambda f: _num(f, "ctx_volume_7d"), ("contact_date",), "contacts in the 7 days before the call date"
    ),
    "ctx_rate_90d": DerivedFeature(
        lambda f: _num(f, "ctx_rate_90d"),
        ("contact_date",),
        "conversion of outcomes known before the call date, 90 days back",
    ),
    "ctx_volume_7d_log": DerivedFeature(
        lambda f: np.log1p(_num(f, "ctx_volume_7d")), ("contact_date",), "log 7-day contact volume"
    ),
    "ctx_rate_90d_logit": DerivedFeature(
        _logit_rate, ("contact_date",), "logit of the 90-day known conversion"
    ),
    "poutcome_x_contact": DerivedFeature(
        _cross("poutcome", "contact"), ("poutcome", "contact"), "previous outcome x channel"
    ),
    "housing_x_loan": DerivedFeature(
        _cross("housing", "loan"), ("housing", "loan"), "housing loan x personal loan"
    ),
    "age_band_x_marital": DerivedFeature(
        lambda f: _cross("age_band", "marital")(f.assign(age_band=_age_band_values(f))),
        ("age", "marital"),
        "age band x marital status",
    ),
    "job_x_education": DerivedFeature(_cross("job", "education"), ("job", "education"), "job x education"),
}
"""Named derived features and the source columns they read (checked against the pre-call allowlist)."""
_DERIVED = DERIVED_FEATURES


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
    """Pass-through step enforcing the pre-call allowlist on the feature names (at fit and at predict).

    ``allowed`` lists the source columns known before a call (default: the schema's
    :data:`callcast.schema.PRE_CALL_COLUMNS`); every feature must be one of them or a named derived feature
    of them (:func:`assert_pre_call`). ``duration`` and ``pdays`` are refused whatever ``allowed`` says.
    """

    def __init__(self, allowed: Sequence[str] | None = None) -> None:
        self.allowed = allowed

    def fit(self, X: pd.DataFrame, y=None) -> LeakageGuard:
        assert_pre_call(X.columns, getattr(self, "allowed", None))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        assert_pre_call(X.columns, getattr(self, "allowed", None))
        return X

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(list(input_features) if input_features is not None else [], dtype=object)
