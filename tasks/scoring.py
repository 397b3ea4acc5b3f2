"""Call-list I/O and Prefect tasks: read validated exports, score chunk files, write and publish the call list.

The rules (eligibility, scoring rows, deciles, bands, ranking, capacity, expected sales, reasons, the CSV and
the workbook) are plain functions in :mod:`models.call_list`; this module only moves data between the lake,
a private scratch folder and the delivery folder.

Publishing (nothing is published on a refusal):

1. The call-list partition of the export date (``catalog.partition(catalog.call_lists(), day)``) is committed
   by the lake's protocol: ``call_list.csv`` (the machine contract), ``call_list.xlsx`` (for people) and the
   manifest (lineage, eligibility, expected sales, staleness).
2. Under the call-list dataset's lease (one pointer writer at a time), ``latest`` moves only forward in
   partition date (``force=True`` moves it back): the files are first copied to an immutable, content-addressed
   folder (``catalog.call_list_latest_file``), then the pointer ``catalog.call_list_latest_pointer()`` is
   replaced in one atomic put naming those files and their SHA-256, and only then are older copies removed.
   A reader of the pointer always finds the file it describes (:func:`read_latest_call_list` verifies it).
3. Still under the lease, the serving context of the model version (decile cuts, call-date context) is written
   only when ``latest`` moved: the endpoint follows the latest list, never an older rerun.
4. The workbook is delivered to ``CALLCAST_SCORING__DELIVERY_DIR`` when set (temporary file, atomic rename).

Scratch files (they hold names and phone numbers) live in a private ``callcast-score-<pid>-*`` folder removed on
every exit; folders left by a killed run are removed by the next run.

Crash tests stop a real process at ``CALLCAST_FAULT_POINT`` = ``scoring.files_written`` (scratch written, nothing
published), ``scoring.latest_copied`` (partition committed, new copies uploaded, pointer not moved) or
``scoring.pointer_moved`` (pointer moved, old copies not yet removed).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task

from callcast import catalog
from callcast.lake import Lake, open_lake, utc_now_iso
from callcast.runtime import code_version, get_logger
from callcast.storage import fault_point
from models import call_list as rules
from models.propensity.config import PropensityConfig
from models.propensity.features import latest_contacts
from models.propensity.reasons import PopulationProfile

MODEL_NAME = "propensity"
TABLE_CUSTOMERS = "customers"
TABLE_CONTACTS = "campaign_contacts"
WORKDIR_PREFIX = "callcast-score-"


class StaleInputError(rules.CallListRefused):
    """The export the list should be built from is missing or did not pass its checks."""


# -- model loading (verified, cached per process) ------------------------------------------------------------

_MODEL_CACHE: dict[tuple[str, str, str], Any] = {}
_MODEL_LOCK = threading.Lock()


def load_champion(lake: Lake, alias_or_version: str = "champion") -> tuple[Any, dict[str, Any]]:
    """The registered model (integrity checked by the registry) and its model.json, cached per process."""
    from tasks import registry

    info = registry.read_model_info(lake, MODEL_NAME, alias_or_version)
    key = (lake.describe(), info["version"], str(info.get("pickle_sha256")))
    with _MODEL_LOCK:
        if key not in _MODEL_CACHE:
            model, info = registry.load_model(lake, MODEL_NAME, info["version"])
            _MODEL_CACHE.clear()
            _MODEL_CACHE[key] = model
        return _MODEL_CACHE[key], info


# -- scratch folder ----------------------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_orphaned_workdirs(root: Path | None = None) -> int:
    """Remove scratch folders of scoring runs whose process is gone (killed runs); returns how many."""
    root = Path(root or tempfile.gettempdir())
    removed = 0
    for path in root.glob(f"{WORKDIR_PREFIX}*"):
        match = re.match(rf"{re.escape(WORKDIR_PREFIX)}(\d+)-", path.name)
        if path.is_dir() and match and not _pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


@contextlib.contextmanager
def scoring_workdir(root: Path | None = None) -> Iterator[str]:
    """A private (0700) scratch folder for one scoring run, removed on every exit path."""
    removed = remove_orphaned_workdirs(root)
    if removed:
        get_logger().warning("removed %d scratch folder(s) left by killed scoring runs", removed)
    path = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-", dir=root)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- reading the validated inputs -----------------------------------------------------------------------------


def _lake(lake_url: str | None) -> Lake:
    from callcast.settings import get_settings

    return open_lake(get_settings(lake_url=lake_url) if lake_url else get_settings())


def manifest_lineage(lake: Lake, table: str, day: date) -> dict[str, Any]:
    """Which input partition was read: date, rows, the data files' SHA-256 and the manifest's own SHA-256."""
    raw = lake.storage.get_bytes(catalog.manifest(catalog.raw(table), day))
    manifest = json.loads(raw)
    return {
        "table": manifest.get("table", table),
        "partition_date": day.isoformat(),
        "rows": manifest.get("rows"),
        "sha256": manifest.get("sha256") or [f["sha256"] for f in manifest.get("files", [])],
        "manifest_sha256": hashlib.sha256(raw).hexdigest(),
    }


def read_contacts(lake: Lake, days: Iterable[date]) -> pd.DataFrame:
    """Every version of every contact in the given ``campaign_contacts`` slices (scoring's columns only)."""
    wanted = rules.CONTACT_HISTORY_COLUMNS
    name = catalog.raw_file_name(TABLE_CONTACTS)
    slices = [lake.read_csv(catalog.raw(TABLE_CONTACTS), d, name, usecols=wanted) for d in days]
    return pd.concat(slices, ignore_index=True) if slices else pd.DataFrame(columns=wanted)


def iter_customer_chunks(
    lake: Lake, day: date, chunk_rows: int, workdir: Path, columns: Sequence[str]
) -> Iterator[pd.DataFrame]:
    """The customers snapshot in chunks of ``chunk_rows`` (typed from its manifest): id, the pre-call
    ``columns`` of the company's customer schema, name, phone and the opt-out flag."""
    from callcast.csvio import pandas_read_options

    prefix = catalog.raw(TABLE_CUSTOMERS)
    manifest = lake.read_manifest(prefix, day)
    options = pandas_read_options(manifest.get("columns") or [])
    wanted = ["customer_id", *columns, *rules.CONTACT_DETAILS, "opted_out"]
    options["dtype"] = {k: v for k, v in options["dtype"].items() if k in wanted}
    options["parse_dates"] = [c for c in options["parse_dates"] if c in wanted]
    path = lake.fetch(prefix, day, catalog.raw_file_name(TABLE_CUSTOMERS), workdir)
    with pd.read_csv(path, usecols=wanted, chunksize=chunk_rows, **options) as reader:
        yield from reader


def _problem(lake: Lake, table: str, day: date) -> str | None:
    """Why a raw partition may not be used (None = committed and passed its checks)."""
    from data_checks.errors import QuarantinedPartitionError
    from tasks.checks import _verdict

    if not lake.has_partition(catalog.raw(table), day):
        return f"the {table} export of {day} is missing"
    verdict = _verdict(lake, table, day)
    if verdict is None:
        return None
    if isinstance(verdict, QuarantinedPartitionError):
        return (
            f"the {table} export of {day} failed its checks ({'; '.join(verdict.failed) or 'see its result'})"
        )
    return f"the {table} export of {day} has not been validated"


def resolve_inputs(lake: Lake, requested: date, allow_stale: bool) -> dict[str, Any]:
    """The export to build the list from: ``requested`` if both tables' exports of that date exist and passed
    their checks; otherwise the latest earlier validated one if ``allow_stale`` (flagged), else a refusal."""
    from tasks.checks import require_validated_history

    log = get_logger()
    problems = [p for t in (TABLE_CUSTOMERS, TABLE_CONTACTS) if (p := _problem(lake, t, requested))]
    day = requested
    if problems:
        good = [
            d
            for d in reversed(lake.partitions(catalog.raw(TABLE_CUSTOMERS)))
            if d < requested and not any(_problem(lake, t, d) for t in (TABLE_CUSTOMERS, TABLE_CONTACTS))
        ]
        fallback = good[0] if good else None
        why = "; ".join(problems)
        if not allow_stale or fallback is None:
            hint = (
                f"or pass --allow-stale (CALLCAST_SCORING__FALLBACK_TO_LAST_GOOD=true) to build it from {fallback}"
                if fallback
                else "no earlier validated export exists either"
            )
            raise StaleInputError(
                f"No call list for {requested}: {why}. Run the export and its checks for {requested}, {hint}."
            )
        log.warning("STALE call list: %s; building from the export of %s (allow_stale).", why, fallback)
        day = fallback
    contact_days = require_validated_history(
        lake, TABLE_CONTACTS, day, fallback_to_last_good=False, logger=log
    )
    return {"customers_day": day, "contact_days": contact_days, "stale_days": (requested - day).days}


def prepare_chunks(
    lake: Lake,
    workdir: Path,
    requested: date,
    call_date: date | None,
    cooloff_days: int,
    chunk_rows: int,
    allow_stale: bool,
    config: PropensityConfig,
) -> dict[str, Any]:
    """Validated inputs -> eligible scoring rows as parquet chunk files in ``workdir``; returns paths + facts.

    Refuses (nothing written outside ``workdir``): a stale or unvalidated export (unless ``allow_stale``), a call
    date outside the data, and a day with nobody eligible.
    """
    log = get_logger()
    inputs = resolve_inputs(lake, requested, allow_stale)
    customers_day, contact_days = inputs["customers_day"], inputs["contact_days"]
    contacts = read_contacts(lake, contact_days)
    span = rules.data_span(contacts, customers_day)
    call_date = call_date or rules.default_call_date(span)
    rules.check_call_date(call_date, span)
    if span.last_event is not None and (call_date - span.last_event).days > 7:
        log.warning(
            "The contact history ends on %s, %d days before the call date %s: the 7-day contact volume is 0 and "
            "the 90-day rate leans on the prior; scores describe a quiet campaign.",
            span.last_event, (call_date - span.last_event).days, call_date,
        )  # fmt: skip
    contacts = latest_contacts(contacts) if len(contacts) else contacts  # one version per contact, once
    history = rules.contacts_as_of(contacts, call_date)
    summary = rules.contact_summary(history)
    context = rules.scoring_context(history, call_date, config)
    del history
    lineage = [manifest_lineage(lake, TABLE_CUSTOMERS, customers_day)]
    lineage += [manifest_lineage(lake, TABLE_CONTACTS, d) for d in contact_days]
    chunk_paths: list[str] = []
    totals: dict[str, int] = {}
    profile = PopulationProfile()
    chunks = iter_customer_chunks(lake, customers_day, chunk_rows, workdir, config.customer_columns())
    for i, customers in enumerate(chunks):
        mask, counts = rules.eligibility(customers, summary, call_date, cooloff_days)
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
        chosen = customers.loc[mask]
        own = contacts[contacts["customer_id"].isin(chosen["customer_id"])] if len(contacts) else contacts
        rows = rules.scoring_rows_as_of(chosen, own, call_date, config, context)
        profile.add(rows)
        path = workdir / f"chunk-{i:05d}.parquet"
        rows.to_parquet(path, index=False)
        chunk_paths.append(str(path))
        log.info(
            "prepared chunk %d: %s customers, %s eligible", i + 1, f"{len(customers):,}", f"{len(rows):,}"
        )
    log.info(
        "Scoring %s eligible of %s customers (excluded: %s opted out, %s already bought, %s in %d-day "
        "cool-off) for calls on %s, from the export of %s",
        f"{totals.get('eligible', 0):,}", f"{totals.get('customers', 0):,}", f"{totals.get('opted_out', 0):,}",
        f"{totals.get('already_bought', 0):,}", f"{totals.get('in_cooloff', 0):,}", cooloff_days, call_date,
        customers_day,
    )  # fmt: skip
    if not totals.get("eligible"):
        rules.refuse_empty(pd.DataFrame(), totals, call_date)
    return {
        "chunks": chunk_paths,
        "customers_partition": customers_day.isoformat(),
        "requested_partition": requested.isoformat(),
        "stale_days": inputs["stale_days"],
        "contacts_partitions": [d.isoformat() for d in contact_days],
        "call_date": call_date.isoformat(),
        "context": context,
        "counts": totals,
        "inputs": lineage,
        "population": profile.to_json(),
    }


# -- scoring chunks ----------------------------------------------------------------------------------------


def score_chunk_file(model: Any, chunk_path: str | Path, keep: int | None) -> dict[str, Any]:
    """Score one chunk file: all probabilities to ``.probs.npy``, the ``keep`` best rows to ``.top.parquet``."""
    rules.check_capacity(keep)
    chunk_path = Path(chunk_path)
    rows = pd.read_parquet(chunk_path)
    p = rules.predict(model, rows)
    rows["probability"] = p
    probs_path = chunk_path.with_suffix(".probs.npy")
    top_path = chunk_path.with_suffix(".top.parquet")
    np.save(probs_path, p)
    rules.top_rows(rows, keep).to_parquet(top_path, index=False)
    return {"probs": str(probs_path), "top": str(top_path), "rows": len(rows)}


def merge_scored(scored: Sequence[Mapping[str, Any]], keep: int | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The ``keep`` best rows over every chunk, and every probability (for deciles and the base rate)."""
    probs = np.concatenate([np.load(s["probs"]) for s in scored]) if scored else np.empty(0)
    return rules.merge_top([pd.read_parquet(s["top"]) for s in scored], keep), probs


# -- publishing ----------------------------------------------------------------------------------------------


def read_latest_pointer(lake: Lake) -> dict[str, Any] | None:
    key = catalog.call_list_latest_pointer()
    return lake.read_json(key) if lake.storage.exists(key) else None


def publish_call_list(
    lake: Lake,
    partition_date: date,
    files: Mapping[str, Path],
    manifest: Mapping[str, Any],
    force: bool = False,
    serving: tuple[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Commit the call-list partition of ``partition_date``, then move ``latest`` unless a newer list is there
    (``force`` moves it back); ``serving`` (key, document) is written only if ``latest`` moved.

    Returns the committed manifest and the new pointer (None when ``latest`` stayed on a newer list).
    """
    document = lake.commit_partition(catalog.call_lists(), partition_date, files, manifest)
    # One pointer writer at a time: read, compare dates, copy, replace and clean up under the dataset's lease,
    # so two runs can neither move `latest` backwards nor delete the copies the other's pointer names.
    with lake.lease(catalog.call_lists(), None, owner="call-list latest pointer"):
        pointer = _move_latest(lake, partition_date, files, document, force)
        if pointer is not None and serving is not None:
            lake.write_json(serving[0], serving[1])  # the endpoint follows the latest list only
        return document, pointer


def _move_latest(
    lake: Lake, partition_date: date, files: Mapping[str, Path], document: Mapping[str, Any], force: bool
) -> dict[str, Any] | None:
    current = read_latest_pointer(lake)
    if current and date.fromisoformat(current["partition_date"]) > partition_date and not force:
        get_logger().warning(
            "call list %s committed; latest stays on the newer list of %s (pass force to move it back)",
            partition_date, current["partition_date"],
        )  # fmt: skip
        return None
    digests = {_logical(e): e["sha256"] for e in document["files"]}
    version = hashlib.sha256("".join(digests[n] for n in sorted(digests)).encode()).hexdigest()[:16]
    keys = {name: catalog.call_list_latest_file(version, name) for name in files}
    for name, path in files.items():
        lake.storage.put_file(Path(path), keys[name])
    fault_point("scoring.latest_copied")
    pointer = {
        "partition_date": partition_date.isoformat(),
        "call_date": document.get("call_date"),
        "partition": catalog.partition(catalog.call_lists(), partition_date),
        "files": {
            name: {"key": keys[name], "sha256": digests[name], "path": lake.describe(keys[name])}
            for name in files
        },
        "path": lake.describe(keys[rules.CALL_LIST_CSV]),
        "rows": document.get("rows"),
        "sha256": digests[rules.CALL_LIST_CSV],
        "model_version": document.get("model_version"),
        "finished_at": document.get("finished_at"),
    }
    lake.write_json(catalog.call_list_latest_pointer(), pointer)  # the commit: one atomic put
    fault_point("scoring.pointer_moved")
    keep = set(keys.values())
    folder = catalog.call_list_latest_dir() + "/"
    for key in lake.storage.list(folder):
        if key.startswith(folder) and key not in keep:  # a blob prefix listing also matches latest.json
            lake.storage.delete(key)
    return pointer


def _logical(entry: Mapping[str, Any]) -> str:
    """A manifest file entry's logical name (the lake stores files under content-addressed names)."""
    return str(entry.get("logical_name") or entry["name"])


def partition_file_key(document: Mapping[str, Any], prefix: str, day: date, logical: str) -> str:
    """The storage key of a committed file, by its logical name, from the partition's manifest."""
    for entry in document.get("files") or []:
        if _logical(entry) == logical:
            return catalog.partition_file(prefix, day, entry["name"])
    return catalog.partition_file(prefix, day, logical)


def read_latest_call_list(lake: Lake, name: str = rules.CALL_LIST_CSV) -> bytes:
    """The latest list's file, verified against the pointer's SHA-256."""
    from callcast.errors import StorageError

    pointer = read_latest_pointer(lake)
    if pointer is None:
        raise StorageError("No call list has been published yet: run `callcast score`.")
    entry = pointer["files"][name]
    data = lake.storage.get_bytes(entry["key"])
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise StorageError(
            f"{entry['path']} does not match the SHA-256 in latest.json; rerun `callcast score`."
        )
    return data


def deliver_workbook(xlsx_path: Path, delivery_dir: Path | None, call_date: str) -> str | None:
    """Copy the workbook into the delivery folder as ``call_list_<call date>.xlsx`` (atomic replace)."""
    if delivery_dir is None:
        return None
    folder = Path(delivery_dir).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"call_list_{call_date}.xlsx"
    fd, tmp = tempfile.mkstemp(prefix=".call_list-", suffix=".xlsx.part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle, open(xlsx_path, "rb") as source:
            shutil.copyfileobj(source, handle)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(target)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def build_call_list(
    lake: Lake,
    workdir: Path,
    scored: Sequence[Mapping[str, Any]],
    prepared: Mapping[str, Any],
    model_version: str,
    capacity: int | None,
    cooloff_days: int,
    delivery_dir: Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Merge chunks, rank, cut, add deciles, bands and reasons; write CSV + workbook; publish; deliver."""
    log = get_logger()
    rules.check_capacity(capacity)
    started = utc_now_iso()
    model, info = load_champion(lake, model_version)
    candidates, probs = merge_scored(scored, capacity)
    cuts = rules.decile_cuts(probs)
    reference = PopulationProfile.from_json(prepared["population"]).reference()
    frame = rules.finish_call_list(model, candidates, cuts, capacity, model_version, reference)
    call_date = date.fromisoformat(prepared["call_date"])
    rules.refuse_empty(frame, prepared["counts"], call_date)
    sales = rules.expected_sales(frame["probability"].to_numpy(dtype=float), probs)
    bands = rules.score_bands(frame["rank"].to_numpy(), len(probs))
    day = date.fromisoformat(prepared["customers_partition"])
    facts = {
        "rows": len(frame),
        "eligible": int(len(probs)),
        "call_date": prepared["call_date"],
        "partition_date": day.isoformat(),
        "model_version": model_version,
        "capacity": capacity,
        "eligibility": prepared["counts"],
        "stale_days": prepared.get("stale_days", 0),
        "chunks": len(scored),
        "generated_at": started,
        **sales,
    }
    csv_path = Path(workdir) / rules.CALL_LIST_CSV
    csv_path.write_bytes(rules.call_list_csv(frame))
    xlsx_path = Path(workdir) / rules.CALL_LIST_XLSX
    rules.build_workbook(frame, bands, facts).save(xlsx_path)
    manifest = {
        "table": catalog.call_lists(),
        "rows": len(frame),
        "columns": [
            {"name": n, "type": t} for n, t in zip(rules.CALL_LIST_HEADER, rules.CALL_LIST_TYPES, strict=True)
        ],
        "mode": "snapshot",
        "source": "scoring of the propensity champion",
        "model": MODEL_NAME,
        "model_version": model_version,
        "model_sha256": info.get("pickle_sha256"),
        "model_candidate": info.get("candidate"),
        "inputs": prepared["inputs"],
        "call_date": prepared["call_date"],
        "requested_partition": prepared.get("requested_partition"),
        "stale_days": prepared.get("stale_days", 0),
        "capacity": capacity,
        "cooloff_days": cooloff_days,
        "eligibility": prepared["counts"],
        "scored_rows": int(len(probs)),
        "decile_cuts": cuts,
        "reason_reference": reference,
        **{k: (None if v != v else round(v, 6)) for k, v in sales.items()},
        "started_at": started,
        "code_version": code_version(),
    }
    files = {rules.CALL_LIST_CSV: csv_path, rules.CALL_LIST_XLSX: xlsx_path}
    fault_point("scoring.files_written")
    serving = {
        "model": MODEL_NAME,
        "model_version": model_version,
        "partition_date": day.isoformat(),
        "scored_rows": int(len(probs)),
        "decile_cuts": cuts,
        **prepared["context"],
        "written_at": utc_now_iso(),
    }
    document, pointer = publish_call_list(
        lake,
        day,
        files,
        manifest,
        force=force,
        serving=(catalog.serving_context(MODEL_NAME, model_version), serving),
    )
    delivered = deliver_workbook(xlsx_path, delivery_dir, prepared["call_date"])
    path = lake.describe(partition_file_key(document, catalog.call_lists(), day, rules.CALL_LIST_CSV))
    text = rules.headline(facts)
    log.info("call list %s: %s", path, text)
    if delivered:
        log.info("workbook delivered to %s", delivered)
    return {
        **facts,
        "path": path,
        "workbook": lake.describe(
            partition_file_key(document, catalog.call_lists(), day, rules.CALL_LIST_XLSX)
        ),
        "latest": pointer["path"] if pointer else None,
        "latest_moved": pointer is not None,
        "delivered_to": delivered,
        "headline": text,
        "sha256": {_logical(e): e["sha256"] for e in document["files"]},
        "head": head_records(frame, bands),
    }


def head_records(frame: pd.DataFrame, bands: Sequence[str] = (), n: int = 10) -> list[dict[str, Any]]:
    """The first ``n`` list rows as JSON-ready dicts (probability rounded as in the CSV), with their band."""
    out = []
    for i, row in enumerate(frame.head(n).to_dict("records")):
        row["probability"] = round(float(row["probability"]), rules.PROBABILITY_DIGITS)
        row["rank"], row["customer_id"], row["decile"] = (
            int(row["rank"]), int(row["customer_id"]), int(row["decile"]),
        )  # fmt: skip
        if i < len(bands):
            row["band"] = bands[i]
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
        "pickle_sha256": info.get("pickle_sha256"),
        "candidate": info.get("candidate"),
    }


def retry_unless_refused(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry transient failures (storage blips), never a refusal (it is an answer)."""
    from data_checks.errors import PartitionRefusedError

    try:
        state.result(raise_on_failure=True)
    except (rules.CallListRefused, PartitionRefusedError):
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient
        return True
    return False


@task(
    name="prepare-scoring-chunks", retries=1, retry_delay_seconds=5, retry_condition_fn=retry_unless_refused
)
def prepare_chunks_task(
    workdir: str,
    requested: date,
    call_date: date | None,
    cooloff_days: int,
    chunk_rows: int,
    allow_stale: bool,
    propensity: PropensityConfig,
    lake_url: str | None = None,
) -> dict[str, Any]:
    """Eligible customers of the requested validated export, as chunk files in ``workdir`` (a refusal is not
    retried; a transient failure is, once)."""
    return prepare_chunks(
        _lake(lake_url),
        Path(workdir),
        requested,
        call_date,
        cooloff_days,
        chunk_rows,
        allow_stale,
        propensity,
    )


@task(name="score-chunk")
def score_chunk_task(
    chunk_path: str, model_version: str, keep: int | None, lake_url: str | None = None
) -> dict[str, Any]:
    """Score one chunk file with the given model version (loaded once per worker, integrity checked)."""
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
    delivery_dir: str | None = None,
    force: bool = False,
    lake_url: str | None = None,
) -> dict[str, Any]:
    """Merge chunks, rank, cut, add deciles, bands and reasons; commit the list, move ``latest``, deliver."""
    return build_call_list(
        _lake(lake_url), Path(workdir), scored, prepared, model_version, capacity, cooloff_days,
        Path(delivery_dir) if delivery_dir else None, force,
    )  # fmt: skip


@task(name="announce-call-list")
def announce_call_list_task(summary: dict[str, Any]) -> None:
    """Emit ``callcast.call_list.published`` with the list's path, workbook, delivery and headline."""
    from prefect.events import emit_event

    emit_event(
        event="callcast.call_list.published",
        resource={"prefect.resource.id": f"callcast.model.{MODEL_NAME}"},
        payload={
            k: summary.get(k)
            for k in (
                "path",
                "workbook",
                "delivered_to",
                "headline",
                "partition_date",
                "call_date",
                "rows",
                "expected_sales",
                "random_expected",
                "model_version",
                "latest_moved",
                "stale_days",
            )
        },  # fmt: skip
    )
