"""Customer segmentation on standardised pre-call features (k-means), k chosen by the silhouette.

Features are what the company knows about a customer before calling: age, balance (signed log), housing
and personal loans, and the contacts before the campaign (from their latest contact). Two rare flags, credit
default (~2%) and a successful previous campaign (~4%), are profiled but not clustered on: as standardised
binaries they would each split off a tiny segment of their own and dominate the silhouette.
``duration`` (known only after the call) and ``pdays`` (excluded by the company) never enter:
:func:`models.propensity.features.assert_no_leakage` guards the feature matrix.

The number of segments is the k in ``[k_min, k_max]`` with the highest silhouette among those whose smallest
segment holds at least ``min_segment_share`` of the customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from models.analytics.stats import wilson_interval
from models.propensity.features import assert_no_leakage, latest_contacts

SEGMENT_FEATURES: dict[str, str] = {
    "age": "age (years)",
    "balance_log": "balance (signed log10 of 1 + |balance|)",
    "default": "share with a credit in default",
    "housing": "share with a housing loan",
    "loan": "share with a personal loan",
    "previous_log": "contacts before the campaign (log10 of 1 + n)",
    "prior_success": "share whose previous campaign succeeded",
}
CLUSTER_FEATURES = ["age", "balance_log", "housing", "loan", "previous_log"]
"""The features k-means sees (standardised); the others of :data:`SEGMENT_FEATURES` are profiled only."""
N_INIT = 4
_WORDS = {
    "age": ("older", "younger"),
    "balance_log": ("higher balances", "lower balances"),
    "default": ("more credit defaults", "fewer credit defaults"),
    "housing": ("more housing loans", "fewer housing loans"),
    "loan": ("more personal loans", "fewer personal loans"),
    "previous_log": ("contacted more before", "contacted less before"),
    "prior_success": ("more previous successes", "fewer previous successes"),
}


def customer_features(customers: pd.DataFrame, contacts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Pre-call features per customer (index ``customer_id``), in :data:`SEGMENT_FEATURES` order."""
    ids = customers["customer_id"].astype("int64").to_numpy()
    yes = {"yes": 1.0, "no": 0.0}
    balance = pd.to_numeric(customers["balance"]).to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "age": pd.to_numeric(customers["age"]).to_numpy(dtype=float),
            "balance_log": np.sign(balance) * np.log10(1 + np.abs(balance)),
            **{c: customers[c].astype("string").map(yes).astype(float).fillna(0.0).to_numpy() for c in ("default", "housing", "loan")},
        },
        index=pd.Index(ids, name="customer_id"),
    )  # fmt: skip
    previous = pd.Series(0.0, index=out.index)
    success = pd.Series(0.0, index=out.index)
    if contacts is not None and len(contacts):
        frame = latest_contacts(contacts) if "updated_at" in contacts else contacts.copy()
        frame["contact_date"] = pd.to_datetime(frame["contact_date"])
        last = frame.sort_values(
            ["customer_id", "contact_date", "contact_id"], kind="stable"
        ).drop_duplicates("customer_id", keep="last")
        last = last.set_index(last["customer_id"].astype("int64"))
        previous = pd.to_numeric(last["previous"]).astype(float).reindex(out.index).fillna(0.0)
        success = last["poutcome"].astype("string").eq("success").astype(float).reindex(out.index).fillna(0.0)
    out["previous_log"] = np.log10(1 + previous.to_numpy())
    out["prior_success"] = success.to_numpy()
    assert_no_leakage(out.columns)
    return out[list(SEGMENT_FEATURES)]


@dataclass
class SegmentationResult:
    """Labels (1 = largest segment), the k search curve and the fitted scaler/centres."""

    labels: pd.Series
    k: int
    curve: pd.DataFrame
    centres: pd.DataFrame
    criterion: str = "silhouette"
    notes: list[str] = field(default_factory=list)


def choose_k(
    scaled: np.ndarray, k_range: Sequence[int], seed: int, sample: int, min_share: float = 0.0
) -> tuple[int, pd.DataFrame, dict[int, KMeans]]:
    """Fit k-means for each k; pick the highest silhouette (seeded sample of rows) among the k whose smallest
    segment holds at least ``min_share`` of the rows (all k if none qualifies, with ``eligible`` False)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # OpenMP threads contend on a shared small machine: 3-30x slower
        return _choose_k(scaled, k_range, seed, sample, min_share)


def _choose_k(
    scaled: np.ndarray, k_range: Sequence[int], seed: int, sample: int, min_share: float
) -> tuple[int, pd.DataFrame, dict[int, KMeans]]:
    rng = np.random.default_rng(seed)
    idx = (
        rng.choice(len(scaled), size=min(sample, len(scaled)), replace=False)
        if len(scaled) > sample
        else None
    )
    rows, fits = [], {}
    for k in k_range:
        if k >= len(scaled):
            break
        model = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(scaled)
        labels = model.labels_
        if len(np.unique(labels)) < 2:
            continue
        sub_x, sub_l = (scaled, labels) if idx is None else (scaled[idx], labels[idx])
        score = float(silhouette_score(sub_x, sub_l)) if len(np.unique(sub_l)) > 1 else float("nan")
        smallest = float(np.bincount(labels).min() / len(labels))
        rows.append(
            {"k": k, "silhouette": score, "inertia": float(model.inertia_), "smallest_share": smallest}
        )
        fits[k] = model
    curve = pd.DataFrame(rows, columns=["k", "silhouette", "inertia", "smallest_share"])
    if curve["silhouette"].notna().sum() == 0:
        raise ValueError("No k in the range gave two or more segments: too few distinct customers.")
    best = pick_k(curve, min_share)
    return best, curve, fits


def pick_k(curve: pd.DataFrame, min_share: float) -> int:
    """The k of highest silhouette among rows whose ``smallest_share`` ≥ ``min_share`` (marks ``eligible``);
    when no k qualifies (a far, small group splits off at every k), the highest silhouette overall."""
    curve["eligible"] = curve["smallest_share"] >= min_share
    pool = curve[curve["eligible"] & curve["silhouette"].notna()]
    if pool.empty:
        pool = curve[curve["silhouette"].notna()]
    return int(pool.loc[pool["silhouette"].idxmax(), "k"])


def segment_customers(
    features: pd.DataFrame,
    k_min: int,
    k_max: int,
    seed: int,
    silhouette_sample: int,
    min_share: float = 0.0,
    columns: Sequence[str] | None = None,
) -> SegmentationResult:
    """Standardise ``columns`` (default :data:`CLUSTER_FEATURES` present in ``features``), search k in
    ``[k_min, k_max]`` by silhouette (see :func:`choose_k`), and number segments by size (1 = largest)."""
    columns = list(columns) if columns is not None else [c for c in CLUSTER_FEATURES if c in features]
    features = features[columns]
    scaler = StandardScaler()
    x = scaler.fit_transform(features.to_numpy(dtype=float))
    x = np.nan_to_num(x)  # a constant column standardises to NaN: it carries no information
    k, curve, fits = choose_k(x, range(k_min, k_max + 1), seed, silhouette_sample, min_share)
    raw = fits[k].labels_
    sizes = np.bincount(raw, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    relabel = np.empty(k, dtype=int)
    relabel[order] = np.arange(1, k + 1)
    labels = pd.Series(relabel[raw], index=features.index, name="segment")
    centres = pd.DataFrame(
        scaler.inverse_transform(fits[k].cluster_centers_[order]),
        columns=features.columns,
        index=pd.Index(np.arange(1, k + 1), name="segment"),
    )
    return SegmentationResult(labels=labels, k=k, curve=curve, centres=centres)


def describe_segment(z: pd.Series, threshold: float = 0.5, top: int = 3) -> str:
    """Words for a segment from its standardised mean per feature (|z| ≥ threshold, strongest first)."""
    strong = z[z.abs() >= threshold].reindex(z.abs().sort_values(ascending=False).index).dropna().head(top)
    if strong.empty:
        return "close to the average customer"
    return ", ".join(_WORDS[name][0 if value > 0 else 1] for name, value in strong.items())


def segment_profiles(
    features: pd.DataFrame,
    labels: pd.Series,
    outcomes: pd.DataFrame | None = None,
    scores: pd.Series | None = None,
) -> pd.DataFrame:
    """Per segment: size, share, feature means, description, conversion (Wilson) and mean champion score.

    ``outcomes``: labelled contacts (``customer_id``, ``sale``); conversion counts contacts of the segment's
    customers. ``scores``: the champion's probability per customer (index ``customer_id``) or None.
    """
    frame = features.assign(segment=labels.reindex(features.index).to_numpy())
    means = frame.groupby("segment")[list(features.columns)].mean()
    overall_mean = features.mean()
    overall_sd = features.std(ddof=0).replace(0, np.nan)
    z = ((means - overall_mean) / overall_sd).fillna(0.0)
    sizes = frame.groupby("segment").size()
    out = means.copy()
    out.insert(0, "share", sizes / sizes.sum())
    out.insert(0, "customers", sizes)
    out["description"] = [describe_segment(z.loc[s]) for s in out.index]
    if outcomes is not None and len(outcomes):
        seg = outcomes["customer_id"].astype("int64").map(labels)
        grouped = outcomes.assign(segment=seg).dropna(subset=["segment"]).groupby("segment")["sale"]
        contacts = grouped.size().reindex(out.index, fill_value=0)
        sales = grouped.sum().reindex(out.index, fill_value=0)
        out["contacts"], out["sales"] = contacts.astype(int), sales.astype(int)
        out["conversion"] = np.where(contacts > 0, sales / contacts.where(contacts > 0), np.nan)
        out["conversion_lo95"], out["conversion_hi95"] = wilson_interval(
            sales.to_numpy(), contacts.to_numpy()
        )
    else:
        out["contacts"], out["sales"] = 0, 0
        out["conversion"] = out["conversion_lo95"] = out["conversion_hi95"] = np.nan
    if scores is not None:
        out["champion_mean_score"] = scores.groupby(labels.reindex(scores.index)).mean().reindex(out.index)
    else:
        out["champion_mean_score"] = np.nan
    out.index.name = "segment"
    return out.reset_index()


def sizes_over_time(created_at: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """Customers in the base at each month end, by (current) segment: rows = month, columns = segment."""
    created = pd.to_datetime(created_at.reindex(labels.index))
    month = created.dt.to_period("M")
    counts = pd.crosstab(month, labels).sort_index()
    if counts.empty:
        return counts
    full = pd.period_range(counts.index.min(), counts.index.max(), freq="M")
    cumulative = counts.reindex(full, fill_value=0).cumsum()
    cumulative.index = cumulative.index.astype(str)
    cumulative.index.name = "month"
    cumulative.columns = [f"segment_{c}" for c in cumulative.columns]
    return cumulative
