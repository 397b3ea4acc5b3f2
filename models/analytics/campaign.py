"""Campaign effectiveness: conversion by channel, month, calls and previous outcome; diminishing returns of
repeated calls and the break-even call; who to stop calling; lift of the call lists against other calling.

The bank's contact rows carry ``campaign``: the number of calls made to that customer in the campaign, the
last one included, and ``y``: whether the campaign ended in a sale. The sale (if any) happened on the last
call, so the conversion of the *k*-th call (its hazard) is::

    h(k) = sales with campaign == k  /  contacts with campaign >= k

the share of customers still being called at call *k* who buy on it. Repeated calls pay while
``h(k) × value per sale ≥ cost per call``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit

from models.analytics.stats import rate_difference, rate_ratio, rate_table, wilson_interval
from models.propensity.features import latest_contacts

CHANNEL_ORDER = ["cellular", "telephone", "unknown"]
POUTCOME_ORDER = ["success", "failure", "other", "unknown"]
STOP_LIST_COLUMNS = ["customer_id", "name", "phone", "reason"]
LIFT_COLUMNS = [
    "list_date", "call_date", "listed", "listed_contacts", "listed_pending", "listed_sales", "listed_rate",
    "listed_lo95", "listed_hi95", "other_contacts", "other_sales", "other_rate", "other_lo95", "other_hi95",
    "lift", "lift_lo95", "lift_hi95", "estimated_base_rate", "lift_vs_estimated",
]  # fmt: skip


def labelled_contacts(contacts: pd.DataFrame) -> pd.DataFrame:
    """One row per contact (latest version) whose outcome is known, with ``sale`` and ``month`` (YYYY-MM)."""
    frame = latest_contacts(contacts) if "updated_at" in contacts else contacts.copy()
    y = frame["y"].astype("string")
    frame = frame.loc[y.isin(["yes", "no"]).fillna(False).to_numpy()].copy()
    frame["sale"] = frame["y"].astype("string").eq("yes").to_numpy(dtype=bool)
    frame["contact_date"] = pd.to_datetime(frame["contact_date"])
    frame["month"] = frame["contact_date"].dt.strftime("%Y-%m")
    frame["campaign"] = pd.to_numeric(frame["campaign"]).astype("int64")
    return frame.reset_index(drop=True)


def campaign_bucket(calls: pd.Series, cap: int) -> pd.Series:
    """Calls in the campaign as labels ``1`` … ``cap-1`` and ``cap+``."""
    values = pd.to_numeric(calls).astype("int64")
    return values.where(values < cap, cap).map(lambda k: f"{k}+" if k == cap else str(k))


def conversion_tables(labelled: pd.DataFrame, cap: int) -> dict[str, pd.DataFrame]:
    """Conversion with 95% Wilson intervals by channel, month, calls in the campaign and previous outcome."""
    work = labelled.assign(calls=campaign_bucket(labelled["campaign"], cap))
    return {
        "by_channel": rate_table(work, "contact", order=CHANNEL_ORDER).rename(columns={"contact": "channel"}),
        "by_month": rate_table(work, "month"),
        "by_calls": rate_table(work, "calls", order=[*map(str, range(1, cap)), f"{cap}+"]),
        "by_previous_outcome": rate_table(work, "poutcome", order=POUTCOME_ORDER).rename(
            columns={"poutcome": "previous_outcome"}
        ),
    }


def channel_differences(by_channel: pd.DataFrame) -> pd.DataFrame:
    """Each channel's conversion minus the busiest channel's, with Newcombe's 95% interval."""
    rows = by_channel[by_channel["contacts"] > 0]
    if rows.empty:
        return pd.DataFrame(columns=["channel", "reference", "difference", "lo95", "hi95"])
    ref = rows.loc[rows["contacts"].idxmax()]
    out = []
    for r in rows.itertuples(index=False):
        if r.channel == ref["channel"]:
            continue
        d, lo, hi = rate_difference(r.sales, r.contacts, ref["sales"], ref["contacts"])
        out.append(
            {"channel": r.channel, "reference": ref["channel"], "difference": d, "lo95": lo, "hi95": hi}
        )
    return pd.DataFrame(out, columns=["channel", "reference", "difference", "lo95", "hi95"])


# -- diminishing returns ------------------------------------------------------------------------------


def call_hazard(labelled: pd.DataFrame, max_k: int) -> pd.DataFrame:
    """Conversion of the k-th call for k = 1 … ``max_k``: customers reached, sales on that call, 95% Wilson."""
    calls = labelled["campaign"].to_numpy(dtype=int)
    sale = labelled["sale"].to_numpy(dtype=bool)
    ks = np.arange(1, max_k + 1)
    at_risk = np.array([(calls >= k).sum() for k in ks])
    sales = np.array([((calls == k) & sale).sum() for k in ks])
    lo, hi = wilson_interval(sales, at_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(at_risk > 0, sales / at_risk, np.nan)
    return pd.DataFrame(
        {"call": ks, "reached": at_risk, "sales": sales, "rate": rate, "lo95": lo, "hi95": hi}
    )


@dataclass(frozen=True)
class DecayFit:
    """``h(k) = first_call_rate × exp(-decay × (k - 1))``, fitted by binomial maximum likelihood."""

    first_call_rate: float
    decay: float
    decay_lo95: float
    decay_hi95: float
    calls_used: int

    def rate(self, k: np.ndarray | int) -> np.ndarray:
        return np.minimum(self.first_call_rate * np.exp(-self.decay * (np.asarray(k, dtype=float) - 1)), 1.0)

    @property
    def per_call_factor(self) -> float:
        """Each further call converts this fraction of the previous one."""
        return float(np.exp(-self.decay))

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "per_call_factor": self.per_call_factor}


def fit_decay(labelled: pd.DataFrame) -> DecayFit:
    """Fit the geometric decay of the k-th call's conversion on every call number observed."""
    max_k = int(labelled["campaign"].max()) if len(labelled) else 0
    table = call_hazard(labelled, max_k) if max_k else call_hazard(labelled, 1)
    table = table[table["reached"] > 0]
    if table["sales"].sum() == 0:
        return DecayFit(0.0, float("nan"), float("nan"), float("nan"), len(table))
    k = table["call"].to_numpy(dtype=float) - 1
    s = table["sales"].to_numpy(dtype=float)
    f = (table["reached"] - table["sales"]).to_numpy(dtype=float)

    def nll(theta: np.ndarray) -> float:
        h = np.clip(expit(theta[0]) * np.exp(-theta[1] * k), 1e-12, 1 - 1e-12)
        return -float(np.sum(s * np.log(h) + f * np.log1p(-h)))

    start = np.array([np.log(max(s[0], 0.5) / max(f[0], 0.5)), 0.1])
    res = optimize.minimize(
        nll, start, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000}
    )
    a, b = res.x
    # 95% Wald interval of the decay from the observed information (finite-difference Hessian).
    eps = 1e-4
    hess = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            e_i, e_j = np.eye(2)[i] * eps, np.eye(2)[j] * eps
            hess[i, j] = (
                nll(res.x + e_i + e_j)
                - nll(res.x + e_i - e_j)
                - nll(res.x - e_i + e_j)
                + nll(res.x - e_i - e_j)
            ) / (4 * eps * eps)
    try:
        se = float(np.sqrt(np.linalg.inv(hess)[1, 1]))
    except np.linalg.LinAlgError:
        se = float("nan")
    return DecayFit(float(expit(a)), float(b), float(b - 1.96 * se), float(b + 1.96 * se), len(table))


def break_even(fit: DecayFit, hazard: pd.DataFrame, break_even_rate: float) -> dict[str, object]:
    """The last call worth making (fitted curve) and the first call shown to lose money (Wilson upper bound).

    ``last_worth_call`` is the largest k with ``h(k) ≥ cost / value`` (0: not even the first call pays;
    None: every call in the curve's range still pays, or the curve does not decay).
    """
    ks = hazard["call"].to_numpy(dtype=int)
    fitted = fit.rate(ks)
    paying = ks[fitted >= break_even_rate]
    if fit.first_call_rate < break_even_rate:
        last = 0
    elif not np.isfinite(fit.decay) or fit.decay <= 0 or len(paying) == len(ks):
        last = None
    else:
        last = int(paying.max())
    losing = hazard.loc[hazard["hi95"] < break_even_rate, "call"]
    return {
        "break_even_rate": break_even_rate,
        "last_worth_call": last,
        "first_losing_call_evidence": int(losing.min()) if len(losing) else None,
    }


def stop_calling_list(
    customers: pd.DataFrame,
    contacts: pd.DataFrame,
    last_worth_call: int | None,
    fit: DecayFit,
    break_even_rate: float,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Customers the phone team should stop calling, with the reason in words; and counts per reason.

    - opted out (never call);
    - no sale yet and already called ``last_worth_call`` times or more in their latest campaign: the next
      call is expected to convert below the break-even rate. Customers who bought are not listed (they are
      not called for this product again anyway).
    """
    people = customers[["customer_id", "name", "phone", "opted_out"]].copy()
    people["customer_id"] = people["customer_id"].astype("int64")
    frame = latest_contacts(contacts) if "updated_at" in contacts and len(contacts) else contacts.copy()
    reasons: dict[int, list[str]] = {}
    counts = {"opted_out": 0, "beyond_break_even": 0}
    for cid in people.loc[
        people["opted_out"].astype("boolean").fillna(False).to_numpy(dtype=bool), "customer_id"
    ]:
        reasons.setdefault(int(cid), []).append("opted out: never call")
        counts["opted_out"] += 1
    if last_worth_call is not None and len(frame):
        frame = frame.assign(contact_date=pd.to_datetime(frame["contact_date"]))
        bought = frame.loc[
            frame["y"].astype("string").eq("yes").fillna(False).to_numpy(dtype=bool), "customer_id"
        ]
        last = frame.sort_values(
            ["customer_id", "contact_date", "contact_id"], kind="stable"
        ).drop_duplicates("customer_id", keep="last")
        last = last[~last["customer_id"].isin(set(bought))]
        calls = pd.to_numeric(last["campaign"]).astype("int64")
        over = last.loc[(calls >= max(last_worth_call, 1)).to_numpy()]
        for cid, n in zip(
            over["customer_id"].astype("int64"), pd.to_numeric(over["campaign"]).astype("int64"), strict=True
        ):
            nxt = float(fit.rate(int(n) + 1))
            reasons.setdefault(int(cid), []).append(
                f"called {n} times in the latest campaign without a sale; call {n + 1} converts at about "
                f"{nxt:.1%}, below the break-even {break_even_rate:.1%}"
            )
            counts["beyond_break_even"] += 1
    listed = people[people["customer_id"].isin(reasons)].copy()
    listed["reason"] = listed["customer_id"].map(lambda c: "; ".join(reasons[int(c)]))
    listed = listed.sort_values("customer_id", kind="stable").reset_index(drop=True)
    counts["listed"] = len(listed)
    return listed[STOP_LIST_COLUMNS], counts


# -- lift of the call lists ---------------------------------------------------------------------------


def call_list_lift(lists: pd.DataFrame, contacts: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Conversion of listed customers' contacts against other contacts in the same window, per list.

    ``lists``: ``list_date``, ``call_date``, ``customer_id`` (+ optional ``estimated_base_rate``: the
    model's mean probability over the eligible customers). Each contact is attributed to the most recent list
    whose call date is on or before the contact's date, if within ``window_days`` of it (so no contact counts
    twice); it is a *listed* contact when its customer is on that list, else an *other* contact (in the demo's
    closed loop: the random control group). Outcomes not known yet are pending, never failures. The last row
    (``list_date = "all"``) pools every list. Lift = listed rate / other rate with the Katz interval.
    """
    if lists.empty or contacts.empty:
        return pd.DataFrame(columns=LIFT_COLUMNS)
    frame = latest_contacts(contacts) if "updated_at" in contacts else contacts.copy()
    frame["contact_date"] = pd.to_datetime(frame["contact_date"]).astype("datetime64[ns]")
    y = frame["y"].astype("string")
    frame["known"] = y.isin(["yes", "no"]).fillna(False).to_numpy(dtype=bool)
    frame["sale"] = y.eq("yes").fillna(False).to_numpy(dtype=bool)
    frame["customer_id"] = frame["customer_id"].astype("int64")
    heads = (
        lists[["list_date", "call_date"]]
        .drop_duplicates()
        .assign(call_ts=lambda d: pd.to_datetime(d["call_date"]).astype("datetime64[ns]"))
        .sort_values(["call_ts", "list_date"], kind="stable")
        .drop_duplicates("call_ts", keep="last")
    )
    attributed = pd.merge_asof(
        frame.sort_values("contact_date", kind="stable"),
        heads[["call_ts", "list_date"]],
        left_on="contact_date",
        right_on="call_ts",
        direction="backward",
    )
    attributed = attributed[
        attributed["list_date"].notna()
        & (attributed["contact_date"] < attributed["call_ts"] + pd.Timedelta(days=window_days))
    ]
    members = set(zip(lists["list_date"].astype(str), lists["customer_id"].astype("int64"), strict=True))
    attributed = attributed.assign(
        listed=[
            (str(d), int(c)) in members
            for d, c in zip(attributed["list_date"], attributed["customer_id"], strict=True)
        ]
    )
    rows = []
    totals = np.zeros(6)
    for (list_date, call_date), group in lists.groupby(["list_date", "call_date"], sort=True):
        window = attributed[attributed["list_date"].astype(str) == str(list_date)]
        listed = window["listed"].to_numpy(dtype=bool)  # an empty object column would select columns
        mine, other = window.loc[listed], window.loc[~listed]
        counts = np.array([
            mine["known"].sum(), (~mine["known"]).sum(), mine["sale"].sum(),
            other["known"].sum(), other["sale"].sum(), len(group),
        ], dtype=float)  # fmt: skip
        totals += counts
        base = group["estimated_base_rate"].iloc[0] if "estimated_base_rate" in group else np.nan
        rows.append(_lift_row(str(list_date), str(call_date), counts, float(base)))
    if len(rows) > 1:
        rows.append(_lift_row("all", "", totals, float("nan")))
    return pd.DataFrame(rows, columns=LIFT_COLUMNS)


def _lift_row(list_date: str, call_date: str, c: np.ndarray, base: float) -> dict[str, object]:
    known, pending, sales, other_known, other_sales, listed = c
    (llo,), (lhi,) = (np.atleast_1d(x) for x in wilson_interval(sales, known))
    (olo,), (ohi,) = (np.atleast_1d(x) for x in wilson_interval(other_sales, other_known))
    lift, lo, hi = rate_ratio(sales, known, other_sales, other_known)
    rate = sales / known if known else np.nan
    return {
        "list_date": list_date, "call_date": call_date, "listed": int(listed), "listed_contacts": int(known),
        "listed_pending": int(pending), "listed_sales": int(sales), "listed_rate": rate, "listed_lo95": llo,
        "listed_hi95": lhi, "other_contacts": int(other_known), "other_sales": int(other_sales),
        "other_rate": other_sales / other_known if other_known else np.nan, "other_lo95": olo, "other_hi95": ohi,
        "lift": lift, "lift_lo95": lo, "lift_hi95": hi, "estimated_base_rate": base,
        "lift_vs_estimated": rate / base if known and base and np.isfinite(base) and base > 0 else np.nan,
    }  # fmt: skip
