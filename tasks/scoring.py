"""Call-list scoring: eligibility, chunked scoring, ranking, deciles, reasons, and the committed call list.

The scoring row of a customer (what the champion sees) is built the way the training table is:
customer attributes from the latest validated ``customers`` snapshot, plus the contact context of the call
that is about to happen:

- ``contact``, ``campaign``, ``previous``, ``poutcome``: copied from the customer's *latest known contact*
  (latest ``contact_date``, then ``contact_id``), i.e. their history as the model saw it in training. A
  customer never contacted gets ``contact="unknown"``, ``campaign=1``, ``previous=0``, ``poutcome="unknown"``.
- ``contact_date``, ``day``, ``month``: the *call date*; ``ctx_volume_7d`` / ``ctx_rate_90d``: the campaign
  context on the call date, from :func:`models.propensity.features.context_for_dates` (contacts strictly
  before it), the same function training uses.

The call date is a parameter; by default it is the day after the latest contact date in the data (the demo's
contacts are historical, so "today" would put every customer 15 years past their last call). The cool-off is
counted back from the call date: a customer last contacted ``cooloff_days`` days or fewer before it is skipped.

Plain functions first (tests call them on tiny frames); the Prefect tasks at the end are thin wrappers that do
the I/O and pass file paths, never DataFrames.
"""

from __future__ import annotations

import csv
import hashlib
import json
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task

from callcast.lake import MANIFEST_NAME, Lake, open_lake, partition_key, utc_now_iso
from callcast.runtime import code_version, get_logger
from models.propensity.config import PropensityConfig
from models.propensity.features import CUSTOMER_COLUMNS, context_for_dates, latest_contacts
from models.propensity.reasons import explain

MODEL_NAME = "propensity"
CALL_LIST_PREFIX = "call_lists"
CALL_LIST_NAME = "call_list.csv"
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
LATEST_CSV_KEY = f"{CALL_LIST_PREFIX}/latest/{CALL_LIST_NAME}"
LATEST_JSON_KEY = f"{CALL_LIST_PREFIX}/latest.json"
HISTORY_COLUMNS = ["contact", "campaign", "previous", "poutcome"]
"""Columns of the customer's latest contact carried into the scoring row."""
CONTACT_DETAILS = ["name", "phone"]
"""The only personal columns the phone team receives (besides the customer id)."""
PROBABILITY_DIGITS = 6
NEVER_CONTACTED = {"contact": "unknown", "campaign": 1, "previous": 0, "poutcome": "unknown"}


# -- eligibility and scoring rows -------------------------------------------------------------------------


def contact_summary(contacts: pd.DataFrame) -> pd.DataFrame:
    """One row per customer (index ``customer_id``): latest contact's history columns, its date, ``bought``.

    ``contacts`` may hold several versions of a contact (incremental slices); the latest ``updated_at`` wins.
    ``bought`` is True if any of the customer's contacts ended with ``y == "yes"``.
    """
    if contacts.empty:
        return pd.DataFrame(
            {"last_contact_date": pd.Series(dtype="datetime64[ns]"), "bought": pd.Series(dtype=bool)}
            | {c: pd.Series(dtype=object) for c in HISTORY_COLUMNS},
            index=pd.Index([], name="customer_id", dtype="int64"),
        )
    history = latest_contacts(contacts)
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


def default_call_date(summary: pd.DataFrame) -> date:
    """The day after the latest contact date in the data (the demo's contacts are historical)."""
    if summary.empty or summary["last_contact_date"].isna().all():
        return date.today()
    return (pd.Timestamp(summary["last_contact_date"].max()) + pd.Timedelta(days=1)).date()


def eligibility(
    customers: pd.DataFrame, summary: pd.DataFrame, call_date: date, cooloff_days: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Who may be called on ``call_date``: a boolean mask over ``customers`` and exclusion counts.

    Excluded: opted out; already a buyer (any contact with ``y == "yes"``); last contacted ``cooloff_days``
    days or fewer before ``call_date`` (0 = no cool-off). A customer may fall under several rules; each
    count is of that rule alone.
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


def scoring_context(
    history: pd.DataFrame, call_date: date, config: PropensityConfig | None = None
) -> dict[str, Any]:
    """Call-date columns shared by every scoring row: date, day, month and the campaign context features."""
    config = config or PropensityConfig()
    if history.empty:
        volume, rate = 0.0, float(config.context_rate_prior)
    else:
        ctx = context_for_dates(
            history, [pd.Timestamp(call_date)], config.context_rate_prior, config.context_rate_prior_weight
        )
        volume, rate = float(ctx["ctx_volume_7d"].iloc[0]), float(ctx["ctx_rate_90d"].iloc[0])
    from callcast.schema import BANK_CATEGORIES

    return {
        "call_date": call_date.isoformat(),
        "day": call_date.day,
        "month": BANK_CATEGORIES["month"][call_date.month - 1],
        "ctx_volume_7d": volume,
        "ctx_rate_90d": rate,
    }


def scoring_rows(records: pd.DataFrame, context: Mapping[str, Any]) -> pd.DataFrame:
    """The model's input frame for customers about to be called: attributes + history + call-date context.

    ``records`` holds the customer columns and the history columns (:data:`HISTORY_COLUMNS`; missing values
    mean never contacted). The batch flow and the HTTP endpoint both build rows here, so they agree.
    """
    n = len(records)
    cols: dict[str, Any] = {
        "customer_id": (
            records["customer_id"].astype("int64").to_numpy()
            if "customer_id" in records
            else np.zeros(n, "int64")
        )
    }
    for column in CUSTOMER_COLUMNS[1:]:
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


# -- scoring, ranking, deciles ---------------------------------------------------------------------------


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
    top_reasons: int = 3,
) -> pd.DataFrame:
    """The call list in the contract's columns: ranked, cut to ``capacity``, deciles and reasons added.

    ``candidates`` holds scoring rows plus ``name``, ``phone`` and ``probability``. Reasons are computed only
    for the rows that make the cut.
    """
    listed = top_rows(candidates, capacity)
    reasons = explain(model, listed, top=top_reasons) if len(listed) else []
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


def write_call_list_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write the call list with the contract's header (RFC 4180 quoting, UTF-8, ``\\n`` line ends)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CALL_LIST_HEADER)
        for row in frame[CALL_LIST_HEADER].itertuples(index=False, name=None):
            rank, cid, name, phone, p, decile, reasons, version = row
            writer.writerow([rank, cid, name, phone, f"{p:.{PROBABILITY_DIGITS}f}", decile, reasons, version])
    return path


# -- model loading (verified, cached per process) ------------------------------------------------------------

_MODEL_CACHE: dict[tuple[str, str, str], Any] = {}
_MODEL_LOCK = threading.Lock()


def load_champion(lake: Lake, alias_or_version: str = "champion") -> tuple[Any, dict[str, Any]]:
    """The registered model (SHA-256 verified by the registry) and its model.json, cached per process."""
    from tasks import registry

    info = registry.read_model_info(lake, MODEL_NAME, alias_or_version)
    key = (lake.describe(), info["version"], info["pickle_sha256"])
    with _MODEL_LOCK:
        if key not in _MODEL_CACHE:
            model, info = registry.load_model(lake, MODEL_NAME, info["version"])
            _MODEL_CACHE.clear()
            _MODEL_CACHE[key] = model
        return _MODEL_CACHE[key], info


# -- lake I/O ----------------------------------------------------------------------------------------------


def _lake(lake_url: str | None) -> Lake:
    from callcast.settings import get_settings

    return open_lake(get_settings(lake_url=lake_url) if lake_url else get_settings())


def manifest_lineage(lake: Lake, prefix: str, day: date) -> dict[str, Any]:
    """Which input partition was read: date, rows, the data files' SHA-256 and the manifest's own SHA-256."""
    raw = lake.storage.get_bytes(f"{partition_key(prefix, day)}/{MANIFEST_NAME}")
    manifest = json.loads(raw)
    return {
        "table": manifest.get("table", prefix.split("/")[-1]),
        "partition_date": day.isoformat(),
        "rows": manifest.get("rows"),
        "sha256": manifest.get("sha256") or [f["sha256"] for f in manifest.get("files", [])],
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
    }


def _read_contacts(lake: Lake, days: Iterable[date]) -> pd.DataFrame:
    wanted = [
        "contact_id", "customer_id", "contact_date", "contact", "campaign", "previous", "poutcome",
        "y", "outcome_known_on", "updated_at",
    ]  # fmt: skip
    slices = [
        lake.read_csv("raw/campaign_contacts", d, "campaign_contacts.csv.gz", usecols=wanted) for d in days
    ]
    return pd.concat(slices, ignore_index=True) if slices else pd.DataFrame(columns=wanted)


def iter_customer_chunks(lake: Lake, day: date, chunk_rows: int, workdir: Path) -> Iterator[pd.DataFrame]:
    """The customers snapshot in chunks of ``chunk_rows`` (typed from its manifest)."""
    from callcast.csvio import pandas_read_options

    manifest = lake.read_manifest("raw/customers", day)
    options = pandas_read_options(manifest.get("columns") or [])
    wanted = [*CUSTOMER_COLUMNS, *CONTACT_DETAILS, "opted_out"]
    options["dtype"] = {k: v for k, v in options["dtype"].items() if k in wanted}
    options["parse_dates"] = [c for c in options["parse_dates"] if c in wanted]
    path = lake.fetch("raw/customers", day, "customers.csv.gz", workdir)
    with pd.read_csv(path, usecols=wanted, chunksize=chunk_rows, **options) as reader:
        yield from reader


def prepare_chunks(
    lake: Lake,
    workdir: Path,
    partition_date: date | None = None,
    call_date: date | None = None,
    cooloff_days: int = 30,
    chunk_rows: int = 200_000,
    fallback_to_last_good: bool = False,
    config: PropensityConfig | None = None,
) -> dict[str, Any]:
    """Validated inputs -> eligible scoring rows as parquet chunk files in ``workdir``; returns paths + facts.

    Reads the validated ``customers`` snapshot (latest, or ``partition_date``) in chunks and every validated
    ``campaign_contacts`` slice up to it (deduplicated by ``contact_id``, latest ``updated_at`` wins).
    """
    from tasks.checks import require_validated, require_validated_history

    log = get_logger()
    customers_day = require_validated(
        lake, "customers", partition_date, fallback_to_last_good=fallback_to_last_good, logger=log
    )
    contact_days = require_validated_history(
        lake, "campaign_contacts", customers_day, fallback_to_last_good=fallback_to_last_good, logger=log
    )
    contacts = _read_contacts(lake, contact_days)
    summary = contact_summary(contacts)
    call_date = call_date or default_call_date(summary)
    context = scoring_context(latest_contacts(contacts) if len(contacts) else contacts, call_date, config)
    del contacts
    inputs = [manifest_lineage(lake, "raw/customers", customers_day)]
    inputs += [manifest_lineage(lake, "raw/campaign_contacts", d) for d in contact_days]
    chunk_paths: list[str] = []
    totals: dict[str, int] = {}
    for i, customers in enumerate(iter_customer_chunks(lake, customers_day, chunk_rows, workdir)):
        mask, counts = eligibility(customers, summary, call_date, cooloff_days)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
        chosen = customers.loc[mask].reset_index(drop=True)
        history = summary[HISTORY_COLUMNS].reindex(chosen["customer_id"].astype("int64").to_numpy())
        records = pd.concat([chosen, history.reset_index(drop=True)], axis=1)
        rows = scoring_rows(records, context)
        for column in CONTACT_DETAILS:
            rows[column] = chosen[column].astype(str).to_numpy()
        path = workdir / f"chunk-{i:05d}.parquet"
        rows.to_parquet(path, index=False)
        chunk_paths.append(str(path))
        log.info(
            "prepared chunk %d: %s customers, %s eligible", i + 1, f"{len(customers):,}", f"{len(rows):,}"
        )
    log.info(
        "Scoring %s eligible of %s customers (excluded: %s opted out, %s already bought, %s in %d-day "
        "cool-off) for calls on %s",
        f"{totals.get('eligible', 0):,}", f"{totals.get('customers', 0):,}", f"{totals.get('opted_out', 0):,}",
        f"{totals.get('already_bought', 0):,}", f"{totals.get('in_cooloff', 0):,}", cooloff_days, call_date,
    )  # fmt: skip
    return {
        "chunks": chunk_paths,
        "customers_partition": customers_day.isoformat(),
        "contacts_partitions": [d.isoformat() for d in contact_days],
        "call_date": call_date.isoformat(),
        "context": context,
        "counts": totals,
        "inputs": inputs,
    }


def score_chunk_file(model: Any, chunk_path: str | Path, keep: int | None) -> dict[str, Any]:
    """Score one chunk file: all probabilities to ``.probs.npy``, the ``keep`` best rows to ``.top.parquet``."""
    chunk_path = Path(chunk_path)
    rows = pd.read_parquet(chunk_path)
    p = predict(model, rows)
    rows["probability"] = p
    probs_path = chunk_path.with_suffix(".probs.npy")
    top_path = chunk_path.with_suffix(".top.parquet")
    np.save(probs_path, p)
    top_rows(rows, keep).to_parquet(top_path, index=False)
    return {"probs": str(probs_path), "top": str(top_path), "rows": len(rows)}


def merge_scored(scored: Sequence[Mapping[str, Any]], keep: int | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``keep`` best rows over every chunk, and every probability (for deciles and the base rate)."""
    probs = np.concatenate([np.load(s["probs"]) for s in scored]) if scored else np.empty(0)
    tops = [pd.read_parquet(s["top"]) for s in scored]
    tops = [t for t in tops if len(t)]
    if not tops:
        return pd.DataFrame(columns=["customer_id", "probability", *CONTACT_DETAILS]), probs
    candidates = pd.concat(tops, ignore_index=True)
    return top_rows(candidates, keep), probs


def serving_key(model_version: str) -> str:
    return f"{CALL_LIST_PREFIX}/serving/{MODEL_NAME}-{model_version}.json"


def publish_call_list(
    lake: Lake, partition_date: date, csv_path: Path, manifest: Mapping[str, Any]
) -> dict[str, Any]:
    """Commit ``call_lists/dt=<date>/`` (manifest last), then refresh the ``latest`` copy and pointer.

    If anything fails before the commit finishes, ``call_lists/latest/call_list.csv`` still holds the
    previous list: the copy is replaced in one atomic put only after the partition is committed.
    """
    document = lake.commit_partition(CALL_LIST_PREFIX, partition_date, {CALL_LIST_NAME: csv_path}, manifest)
    lake.storage.put_file(csv_path, LATEST_CSV_KEY)
    pointer = {
        "partition_date": partition_date.isoformat(),
        "path": lake.describe(f"{partition_key(CALL_LIST_PREFIX, partition_date)}/{CALL_LIST_NAME}"),
        "latest_copy": lake.describe(LATEST_CSV_KEY),
        "rows": document.get("rows"),
        "sha256": document.get("sha256"),
        "model_version": document.get("model_version"),
        "finished_at": document.get("finished_at"),
    }
    lake.write_json(LATEST_JSON_KEY, pointer)
    return document


def head_records(frame: pd.DataFrame, n: int = 10) -> list[dict[str, Any]]:
    """The first ``n`` list rows as JSON-ready dicts (probability rounded as in the CSV)."""
    out = []
    for row in frame.head(n).to_dict("records"):
        row["probability"] = round(float(row["probability"]), PROBABILITY_DIGITS)
        row["rank"], row["customer_id"], row["decile"] = (
            int(row["rank"]), int(row["customer_id"]), int(row["decile"]),
        )  # fmt: skip
        out.append(row)
    return out


# -- Prefect tasks --------------------------------------------------------------------------------------------


@task(name="resolve-champion", retries=1, retry_delay_seconds=2)
def resolve_champion_task(lake_url: str | None = None) -> dict[str, Any]:
    """Load (and so verify) the champion once; returns its version and pickle hash for the chunk tasks."""
    model, info = load_champion(_lake(lake_url))
    get_logger().info("champion: %s %s (%s)", MODEL_NAME, info["version"], info.get("candidate"))
    return {
        "version": info["version"],
        "pickle_sha256": info["pickle_sha256"],
        "candidate": info.get("candidate"),
    }


@task(name="prepare-scoring-chunks", retries=1, retry_delay_seconds=5)
def prepare_chunks_task(
    workdir: str,
    partition_date: date | None = None,
    call_date: date | None = None,
    cooloff_days: int = 30,
    chunk_rows: int = 200_000,
    fallback_to_last_good: bool = False,
    lake_url: str | None = None,
) -> dict[str, Any]:
    """Eligible customers of the latest validated export, as chunk files in ``workdir``."""
    return prepare_chunks(
        _lake(lake_url), Path(workdir), partition_date, call_date, cooloff_days, chunk_rows,
        fallback_to_last_good,
    )  # fmt: skip


@task(name="score-chunk")
def score_chunk_task(
    chunk_path: str, model_version: str, keep: int | None, lake_url: str | None = None
) -> dict[str, Any]:
    """Score one chunk file with the given model version (loaded once per worker, SHA-256 verified)."""
    model, _ = load_champion(_lake(lake_url), model_version)
    return score_chunk_file(model, chunk_path, keep)


@task(name="build-call-list")
def build_call_list_task(
    workdir: str,
    scored: list[dict[str, Any]],
    prepared: dict[str, Any],
    model_version: str,
    capacity: int | None,
    cooloff_days: int,
    lake_url: str | None = None,
) -> dict[str, Any]:
    """Merge chunks, rank, cut, add deciles and reasons, commit the call list and refresh ``latest``."""
    log = get_logger()
    lake = _lake(lake_url)
    started = utc_now_iso()
    model, info = load_champion(lake, model_version)
    candidates, probs = merge_scored(scored, capacity)
    cuts = decile_cuts(probs)
    frame = finish_call_list(model, candidates, cuts, capacity, model_version)
    sales = expected_sales(frame["probability"].to_numpy(dtype=float), probs)
    csv_path = write_call_list_csv(frame, Path(workdir) / CALL_LIST_NAME)
    day = date.fromisoformat(prepared["customers_partition"])
    manifest = {
        "table": CALL_LIST_PREFIX,
        "rows": len(frame),
        "columns": [
            {"name": n, "type": t}
            for n, t in zip(
                CALL_LIST_HEADER,
                ["integer", "integer", "string", "string", "float", "integer", "string", "string"],
                strict=True,
            )
        ],
        "mode": "snapshot",
        "source": "scoring of the propensity champion",
        "model": MODEL_NAME,
        "model_version": model_version,
        "model_sha256": info["pickle_sha256"],
        "model_candidate": info.get("candidate"),
        "inputs": prepared["inputs"],
        "call_date": prepared["call_date"],
        "capacity": capacity,
        "cooloff_days": cooloff_days,
        "eligibility": prepared["counts"],
        "scored_rows": int(len(probs)),
        "decile_cuts": cuts,
        **{k: (None if v != v else round(v, 6)) for k, v in sales.items()},
        "started_at": started,
        "code_version": code_version(),
    }
    document = publish_call_list(lake, day, csv_path, manifest)
    serving = {
        "model": MODEL_NAME,
        "model_version": model_version,
        "partition_date": day.isoformat(),
        "scored_rows": int(len(probs)),
        "decile_cuts": cuts,
        **prepared["context"],
        "written_at": utc_now_iso(),
    }
    lake.write_json(serving_key(model_version), serving)
    path = lake.describe(f"{partition_key(CALL_LIST_PREFIX, day)}/{CALL_LIST_NAME}")
    log.info(
        "call list %s: %d rows; expected sales %.1f vs %.1f calling at random (lift %.2fx)",
        path, len(frame), sales["expected_sales"], sales["random_expected"], sales["lift"],
    )  # fmt: skip
    return {
        "path": path,
        "latest": lake.describe(LATEST_CSV_KEY),
        "partition_date": day.isoformat(),
        "rows": len(frame),
        "eligible": int(len(probs)),
        "model_version": model_version,
        "sha256": document.get("sha256"),
        "head": head_records(frame),
        **sales,
    }
