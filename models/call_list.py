"""Call-list rules, as plain functions: who may be called, scoring rows, deciles and score bands, ranking, the
capacity cut, expected sales against random calling, and the two files people and machines receive.

No I/O and no Prefect here: :mod:`tasks.scoring` reads the lake, writes the files and publishes; the HTTP API
(``app/api``) builds its rows and deciles with the same functions, so the endpoint and the batch agree.

**Point in time.** A scoring row describes the customer *before the next call*, as of the call date: only
contacts dated before the call date count (one placed on the call date itself gives only its pre-call record,
exactly its training row), and only outcomes known before it (a sale not known yet is no sale, and no reason
to skip the customer either). The campaign context (7-day volume, 90-day conversion)
comes from :func:`models.propensity.features.context_for_dates` with the propensity settings in force — the
function and the settings training uses. :func:`scoring_rows_as_of` is the one place batch rows are built,
by the point-in-time builder of :mod:`models.propensity.features` that builds every training row.

**Eligibility.** Excluded: opted out; already a buyer (a contact with a known ``y == "yes"`` before the call
date); last contacted ``cooloff_days`` days or fewer before the call date (0 = no cool-off).

**Deciles and bands.** Deciles are cut over every *eligible* customer of the call date (decile 1 = top 10% of
them), so the endpoint can place any customer on the same scale; a list shorter than 10% of the eligible
population is all decile 1. The workbook adds a finer band people understand: "top 1%", "top 2%", "top 5%" ...
from the customer's rank among everyone eligible.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from callcast.errors import CallcastError
from callcast.schema import BANK_CATEGORIES
from models.propensity import features
from models.propensity.config import PropensityConfig
from models.propensity.features import (
    CUSTOMER_COLUMNS,
    HISTORY_COLUMNS,
    NEVER_CONTACTED,
    context_for_dates,
    latest_contacts,
)
from models.propensity.reasons import explain

CALL_LIST_CSV = "call_list.csv"
CALL_LIST_XLSX = "call_list.xlsx"
CALL_LIST_HEADER = [
    "rank",
    "customer_id",
    "name",
    "phone",
    "probability",
    "decile",
    "reasons",
    "model_version",
]
CALL_LIST_TYPES = ["integer", "integer", "string", "string", "float", "integer", "string", "string"]
"""The contract: the CSV's columns and their types (UTF-8, comma, no BOM, ``\\n`` line ends)."""
CONTACT_DETAILS = ["name", "phone"]
"""The only personal columns the phone team receives (besides the customer id)."""
PROBABILITY_DIGITS = 6
BANDS = (1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
"""Score bands, in percent of the eligible population: "top 1%", "top 2%", "top 5%", ..."""
CONTACT_HISTORY_COLUMNS = [
    "contact_id", "customer_id", "contact_date", "contact", "campaign", "previous", "poutcome",
    "y", "outcome_known_on", "updated_at",
]  # fmt: skip
"""The contact columns scoring reads (never ``duration`` or ``pdays``)."""


class CallListRefused(CallcastError):
    """A call list that must not be published: bad input, or nobody to call. Nothing is written."""


# -- inputs: capacity, call date, the data's span ----------------------------------------------------------


def check_capacity(capacity: int | None) -> None:
    """Refuse a capacity that is not a positive number of calls (None = call every eligible customer)."""
    if capacity is not None and (isinstance(capacity, bool) or int(capacity) != capacity or capacity <= 0):
        raise CallListRefused(
            f"Capacity {capacity!r} is not a number of calls: give a whole number of at least 1 "
            "(--capacity or CALLCAST_SCORING__CAPACITY)."
        )


@dataclass(frozen=True)
class DataSpan:
    """What the contact history covers: its first contact, its latest event (a contact or a known outcome),
    and the date of the export it was read from."""

    first_contact: date | None
    last_event: date | None
    export_date: date

    @property
    def earliest_call_date(self) -> date | None:
        return None if self.first_contact is None else self.first_contact + timedelta(days=1)

    @property
    def latest_call_date(self) -> date:
        return max(d for d in (self.last_event, self.export_date) if d is not None) + timedelta(days=1)


def data_span(contacts: pd.DataFrame, export_date: date) -> DataSpan:
    """The span of ``contacts`` (any version of each contact), for the call-date default and check."""
    if contacts.empty:
        return DataSpan(None, None, export_date)
    days = pd.to_datetime(contacts["contact_date"])
    known = pd.to_datetime(contacts["outcome_known_on"]).dropna()
    last = max(days.max(), known.max()) if len(known) else days.max()
    return DataSpan(days.min().date(), pd.Timestamp(last).date(), export_date)


def default_call_date(span: DataSpan) -> date:
    """The day after the data's latest event (contact or known outcome); with no contacts, the day after the
    export. For the daily run that is today; for the demo's historical contacts, the day after its history."""
    return (span.last_event or span.export_date) + timedelta(days=1)


def check_call_date(call_date: date, span: DataSpan) -> None:
    """Refuse a call date the data cannot describe: on or before its first contact, or after its export."""
    earliest, latest = span.earliest_call_date, span.latest_call_date
    if (earliest is not None and call_date < earliest) or call_date > latest:
        have = (
            f"contacts from {span.first_contact}, last event {span.last_event}"
            if span.first_contact
            else "no contacts"
        )
        window = f"between {earliest} and {latest}" if earliest else f"on or before {latest}"
        raise CallListRefused(
            f"Call date {call_date} is outside the data ({have}; export of {span.export_date}): "
            f"choose a call date {window}, or score a newer export."
        )


# -- point in time: the contact history as known before the call date -------------------------------------


def contacts_as_of(contacts: pd.DataFrame, call_date: date) -> pd.DataFrame:
    """The contact history known before ``call_date``: latest version of each contact, dated before the call
    date, with outcomes known only if they were known before it (else ``y``/``outcome_known_on`` empty)."""
    if contacts.empty:
        return contacts.copy()
    history = latest_contacts(contacts)
    history["contact_date"] = pd.to_datetime(history["contact_date"])
    history["outcome_known_on"] = pd.to_datetime(history["outcome_known_on"])
    cutoff = pd.Timestamp(call_date)
    history = history[history["contact_date"] < cutoff].copy()
    unknown = ~(history["outcome_known_on"] < cutoff)
    history["y"] = history["y"].astype(object).where(~unknown, None)
    history.loc[unknown, "outcome_known_on"] = pd.NaT
    return history.reset_index(drop=True)


def contact_summary(history: pd.DataFrame) -> pd.DataFrame:
    """One row per customer (index ``customer_id``): latest contact's history columns, its date, ``bought``.

    ``history`` is the point-in-time history of :func:`contacts_as_of` (one version per contact). ``bought`` is
    True if any of the customer's contacts ended with a known ``y == "yes"``.
    """
    if history.empty:
        return pd.DataFrame(
            {"last_contact_date": pd.Series(dtype="datetime64[ns]"), "bought": pd.Series(dtype=bool)}
            | {c: pd.Series(dtype=object) for c in HISTORY_COLUMNS},
            index=pd.Index([], name="customer_id", dtype="int64"),
        )
    history = history.copy()
    history["contact_date"] = pd.to_datetime(history["contact_date"])
    bought = (history["y"].astype("string") == "yes").fillna(False).astype(bool)
    bought_by_customer = bought.groupby(history["customer_id"].astype("int64")).any()
    last = history.sort_values(["customer_id", "contact_date", "contact_id"], kind="stable").drop_duplicates(
        "customer_id", keep="last"
    )
    out = pd.DataFrame(
        {
            "last_contact_date": last["contact_date"].to_numpy(),
            **{c: last[c].to_numpy() for c in HISTORY_COLUMNS},
        },
        index=pd.Index(last["customer_id"].astype("int64").to_numpy(), name="customer_id"),
    )
    out["bought"] = bought_by_customer.reindex(out.index).to_numpy(dtype=bool)
    return out


def eligibility(
    customers: pd.DataFrame, summary: pd.DataFrame, call_date: date, cooloff_days: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Who may be called on ``call_date``: a boolean mask over ``customers`` and exclusion counts.

    Excluded: opted out; already a buyer; last contacted ``cooloff_days`` days or fewer before ``call_date``
    (0 = no cool-off). A customer may fall under several rules; each count is of that rule alone.
    """
    ids = customers["customer_id"].astype("int64").to_numpy()
    opted = customers["opted_out"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    known = summary.reindex(ids)
    bought = known["bought"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    last = pd.to_datetime(known["last_contact_date"])
    days_since = (pd.Timestamp(call_date) - last).dt.days.to_numpy(dtype=float, na_value=np.inf)
    recent = days_since <= cooloff_days if cooloff_days > 0 else np.zeros(len(ids), dtype=bool)
    mask = ~(opted | bought | recent)
    counts = {
        "customers": len(ids),
        "opted_out": int(opted.sum()),
        "already_bought": int(bought.sum()),
        "in_cooloff": int(recent.sum()),
        "eligible": int(mask.sum()),
    }
    return mask, counts


def scoring_context(history: pd.DataFrame, call_date: date, config: PropensityConfig) -> dict[str, Any]:
    """Call-date columns shared by every scoring row: date, day, month and the campaign context features.

    ``config`` is the propensity section of the settings in force (its context prior must be training's).
    """
    if history.empty:
        volume, rate = 0.0, float(config.context_rate_prior)
    else:
        ctx = context_for_dates(
            history, [pd.Timestamp(call_date)], config.context_rate_prior, config.context_rate_prior_weight
        )
        volume, rate = float(ctx["ctx_volume_7d"].iloc[0]), float(ctx["ctx_rate_90d"].iloc[0])
    return {
        "call_date": call_date.isoformat(),
        "day": call_date.day,
        "month": BANK_CATEGORIES["month"][call_date.month - 1],
        "ctx_volume_7d": volume,
        "ctx_rate_90d": rate,
    }


def scoring_rows(
    records: pd.DataFrame, context: Mapping[str, Any], customer_columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """The model's input frame from request records: attributes + history + call-date context (the endpoint).

    ``records`` holds the customer columns (default the UCI ones; pass ``config.customer_columns()`` for a
    company schema) and the history columns (:data:`HISTORY_COLUMNS`; missing values mean never contacted),
    as the caller knows them before the call. The batch builds its rows with :func:`scoring_rows_as_of`.
    """
    n = len(records)
    cols: dict[str, Any] = {
        "customer_id": (
            records["customer_id"].astype("int64").to_numpy()
            if "customer_id" in records
            else np.zeros(n, "int64")
        )
    }
    for column in customer_columns if customer_columns is not None else CUSTOMER_COLUMNS[1:]:
        values = records[column]
        cols[column] = (
            pd.to_numeric(values).astype("int64").to_numpy()
            if column in ("age", "balance")
            else values.astype(object).to_numpy()
        )
    for column in HISTORY_COLUMNS:
        values = records[column] if column in records else pd.Series(np.nan, index=records.index)
        values = values.astype(object).where(values.notna(), NEVER_CONTACTED[column])
        cols[column] = (
            pd.to_numeric(values).astype("int64").to_numpy()
            if column in ("campaign", "previous")
            else values.to_numpy()
        )
    cols["contact_date"] = np.full(n, np.datetime64(context["call_date"], "ns"))
    cols["day"] = np.full(n, int(context["day"]), dtype="int64")
    cols["month"] = np.full(n, str(context["month"]), dtype=object)
    cols["ctx_volume_7d"] = np.full(n, float(context["ctx_volume_7d"]))
    cols["ctx_rate_90d"] = np.full(n, float(context["ctx_rate_90d"]))
    return pd.DataFrame(cols, index=records.index)


def scoring_rows_as_of(
    customers: pd.DataFrame,
    contacts: pd.DataFrame,
    call_date: date,
    config: PropensityConfig,
    context: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Scoring rows of ``customers`` for a call on ``call_date``, plus their name and phone.

    Built by :func:`models.propensity.features.scoring_rows_as_of`, the point-in-time builder training uses for
    every historical contact (with the same context prior from ``config``): a customer's scoring row as of a
    historical call date is that contact's training row. ``contacts`` is the contact history (the builder keeps
    only what was known before the call date).

    Chunked scoring passes only the chunk's customers' contacts (a customer's history columns depend on their
    own contacts only, so each chunk costs its own history, not the whole table's) together with ``context``,
    the call date's campaign context computed once from the whole history by :func:`scoring_context` (the
    same :func:`~models.propensity.features.context_for_dates`); it replaces the builder's context columns.
    """
    chosen = customers.reset_index(drop=True)
    rows = features.scoring_rows_as_of(
        contacts,
        chosen,
        call_date,
        customer_ids=chosen["customer_id"].astype("int64").to_numpy(),
        rate_prior=config.context_rate_prior,
        rate_prior_weight=config.context_rate_prior_weight,
        customer_columns=config.customer_columns(),
    )
    if context is not None:
        rows["ctx_volume_7d"] = float(context["ctx_volume_7d"])
        rows["ctx_rate_90d"] = float(context["ctx_rate_90d"])
    for column in CONTACT_DETAILS:
        if column in chosen:
            rows[column] = chosen[column].astype(str).to_numpy()
    return rows


# -- scoring, deciles, bands, ranking ------------------------------------------------------------------------


def predict(model: Any, rows: pd.DataFrame) -> np.ndarray:
    """Probability of a sale for each row (float64)."""
    if rows.empty:
        return np.empty(0, dtype=float)
    return np.asarray(model.predict_proba(rows)[:, 1], dtype=float)


def decile_cuts(probabilities: np.ndarray) -> list[float]:
    """Nine cut points, highest first: the 90th, 80th, ... 10th percentiles of the scored population."""
    p = np.asarray(probabilities, dtype=float)
    if p.size == 0:
        return []
    return [float(x) for x in np.quantile(p, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])]


def assign_deciles(probabilities: np.ndarray | Sequence[float], cuts: Sequence[float]) -> np.ndarray:
    """Decile 1 = at or above the 90th percentile cut ... decile 10 = below the 10th percentile cut."""
    p = np.asarray(probabilities, dtype=float).reshape(-1, 1)
    if not cuts:
        return np.ones(len(p), dtype=int)
    return 1 + (p < np.asarray(cuts, dtype=float).reshape(1, -1)).sum(axis=1)


def decile_of(probability: float, cuts: Sequence[float]) -> int | None:
    """One customer's decile on the batch's scale (None without cut points): :func:`assign_deciles` for one."""
    if not cuts:
        return None
    return 1 + sum(probability < cut for cut in cuts)


def score_bands(ranks: np.ndarray | Sequence[int], eligible: int) -> list[str]:
    """ "top 1%", "top 2%", "top 5%", "top 10%", "top 20%" ... from each rank among ``eligible`` customers."""
    share = 100.0 * np.asarray(ranks, dtype=float) / max(int(eligible), 1)
    idx = np.searchsorted(np.asarray(BANDS, dtype=float), share - 1e-9, side="left")
    return [f"top {BANDS[min(i, len(BANDS) - 1)]}%" for i in idx]


def rank_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Highest probability first; ties by customer id (stable, so reruns give the same list)."""
    return frame.sort_values(
        ["probability", "customer_id"], ascending=[False, True], kind="stable"
    ).reset_index(drop=True)


def top_rows(frame: pd.DataFrame, keep: int | None) -> pd.DataFrame:
    """The ``keep`` best rows of ``frame`` by the list order (all rows when ``keep`` is None)."""
    if keep is not None and len(frame) > keep:
        p = frame["probability"].to_numpy(dtype=float)
        kth = np.partition(p, len(p) - keep)[len(p) - keep]  # the keep-th largest probability
        frame = frame.loc[p >= kth]  # ties at the threshold stay in, so the id tie-break still holds
    ranked = rank_frame(frame)
    return ranked if keep is None else ranked.head(keep)


def merge_top(tops: Sequence[pd.DataFrame], keep: int | None) -> pd.DataFrame:
    """The ``keep`` best rows over the per-chunk bests (each chunk kept its own ``keep`` best): top-k merge."""
    tops = [t for t in tops if len(t)]
    if not tops:
        return pd.DataFrame(columns=["customer_id", "probability", *CONTACT_DETAILS])
    return top_rows(pd.concat(tops, ignore_index=True), keep)


def expected_sales(list_probabilities: np.ndarray, all_probabilities: np.ndarray) -> dict[str, float]:
    """Expected sales of the list vs calling as many eligible customers at random (mean probability)."""
    listed = np.asarray(list_probabilities, dtype=float)
    base_rate = float(np.mean(all_probabilities)) if len(all_probabilities) else 0.0
    expected = float(listed.sum())
    random_expected = base_rate * len(listed)
    return {
        "expected_sales": expected,
        "random_expected": random_expected,
        "eligible_base_rate": base_rate,
        "lift": expected / random_expected if random_expected > 0 else float("nan"),
    }


def finish_call_list(
    model: Any,
    candidates: pd.DataFrame,
    cuts: Sequence[float],
    capacity: int | None,
    model_version: str,
    reference: Mapping[str, Any] | None = None,
    top_reasons: int = 3,
) -> pd.DataFrame:
    """The call list in the contract's columns: ranked, cut to ``capacity``, deciles and reasons added.

    ``candidates`` holds scoring rows plus ``name``, ``phone`` and ``probability``; ``reference`` is the
    average eligible customer the reasons compare against (default: the candidates' own). Reasons are
    computed only for the rows that make the cut.
    """
    listed = top_rows(candidates, capacity)
    reasons = explain(model, listed, reference, top=top_reasons) if len(listed) else []
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(listed) + 1),
            "customer_id": listed["customer_id"].astype("int64").to_numpy(),
            "name": listed["name"].astype(str).to_numpy(),
            "phone": listed["phone"].astype(str).to_numpy(),
            "probability": listed["probability"].to_numpy(dtype=float),
            "decile": assign_deciles(listed["probability"].to_numpy(dtype=float), cuts),
            "reasons": list(reasons),
            "model_version": model_version,
        },
        columns=CALL_LIST_HEADER,
    )


def refuse_empty(frame: pd.DataFrame, counts: Mapping[str, int], call_date: date) -> None:
    """Refuse a list with nobody on it (and say who was excluded)."""
    if len(frame):
        return
    raise CallListRefused(
        f"Nobody to call on {call_date}: {counts.get('eligible', 0):,} eligible of "
        f"{counts.get('customers', 0):,} customers ({counts.get('opted_out', 0):,} opted out, "
        f"{counts.get('already_bought', 0):,} already bought, {counts.get('in_cooloff', 0):,} in the cool-off). "
        "Nothing was published; check the export and the cool-off setting."
    )


# -- what machines and people receive -------------------------------------------------------------------


def call_list_csv(frame: pd.DataFrame) -> bytes:
    """The contract CSV: header, RFC 4180 quoting, UTF-8 without BOM, ``\\n`` line ends, 6-digit probability."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CALL_LIST_HEADER)
    for row in frame[CALL_LIST_HEADER].itertuples(index=False, name=None):
        rank, cid, name, phone, p, decile, reasons, version = row
        writer.writerow([rank, cid, name, phone, f"{p:.{PROBABILITY_DIGITS}f}", decile, reasons, version])
    return buffer.getvalue().encode("utf-8")


def headline(summary: Mapping[str, Any]) -> str:
    """One line for people: calls, expected buyers against random calling, model."""
    lift = summary.get("lift")
    lift_text = f" ({lift:.1f}x)" if isinstance(lift, float) and lift == lift else ""
    return (
        f"{summary['rows']:,} calls for {summary['call_date']}: expect {summary['expected_sales']:.1f} buyers "
        f"vs {summary['random_expected']:.1f} calling at random{lift_text}; model {summary['model_version']}"
    )


def summary_rows(summary: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The workbook's ``summary`` sheet: label and typed value per line."""
    counts = summary.get("eligibility") or {}
    lift = summary.get("lift")
    return [
        ("Call date", date.fromisoformat(summary["call_date"])),
        ("Data date (export)", date.fromisoformat(summary["partition_date"])),
        ("Model version", summary["model_version"]),
        ("Capacity (calls the team can make)", summary.get("capacity")),
        ("Calls on this list", summary["rows"]),
        ("Expected buyers from this list", round(float(summary["expected_sales"]), 1)),
        ("Expected buyers calling at random", round(float(summary["random_expected"]), 1)),
        ("Lift over random calling", round(float(lift), 2) if lift == lift and lift is not None else None),
        ("Eligible customers", summary["eligible"]),
        ("Excluded: opted out", counts.get("opted_out")),
        ("Excluded: already bought", counts.get("already_bought")),
        ("Excluded: contacted within the cool-off", counts.get("in_cooloff")),
        ("Stale data (days behind the requested export)", summary.get("stale_days", 0)),
        ("Generated at (UTC)", summary.get("generated_at")),
    ]


def build_workbook(frame: pd.DataFrame, bands: Sequence[str], summary: Mapping[str, Any]):
    """The people's workbook: sheet ``calls`` (the CSV's rows and columns as typed cells, plus the score band;
    frozen header, filters, widths) and sheet ``summary``. Returns an ``openpyxl.Workbook``."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "calls"
    header = [*CALL_LIST_HEADER, "band"]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    probabilities = frame["probability"].to_numpy(dtype=float)
    for i, row in enumerate(frame[CALL_LIST_HEADER].itertuples(index=False, name=None)):
        rank, cid, name, phone, _, decile, reasons, version = row
        sheet.append(
            [
                int(rank),
                int(cid),
                str(name),
                str(phone),
                round(float(probabilities[i]), PROBABILITY_DIGITS),
                int(decile),
                str(reasons),
                str(version),
                bands[i],
            ]
        )
    widths = {"A": 7, "B": 12, "C": 30, "D": 18, "E": 12, "F": 8, "G": 70, "H": 14, "I": 10}
    for column, width in widths.items():
        sheet.column_dimensions[column].width = width
    for cell in sheet["D"][1:]:
        cell.number_format = "@"  # phone numbers stay text
    for cell in sheet["E"][1:]:
        cell.number_format = "0.0%"
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:I{max(len(frame) + 1, 1)}"

    info = book.create_sheet("summary")
    info.append(["", "Call list"])
    info["B1"].font = Font(bold=True)
    info.append(["Headline", headline(summary)])
    for label, value in summary_rows(summary):
        info.append([label, value])
        if isinstance(value, date):
            info.cell(row=info.max_row, column=2).number_format = "yyyy-mm-dd"
    info.column_dimensions["A"].width = 46
    info.column_dimensions["B"].width = 90
    return book
