"""Validation I/O: fetch raw partitions, write check results and Data Docs, and guard downstream reads."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from prefect import task

from callcast import catalog
from callcast.errors import PartitionNotFoundError
from callcast.lake import Lake
from callcast.runtime import get_logger
from data_checks.config import ChecksConfig
from data_checks.errors import PartitionNotValidatedError, QuarantinedPartitionError
from data_checks.result import CheckResult

GOOD = ("passed", "warning")


def result_key(table: str, partition_date: date) -> str:
    return catalog.check_result(table, partition_date)


def docs_prefix(table: str, partition_date: date) -> str:
    return catalog.partition_file(catalog.checks(table), partition_date, catalog.DATA_DOCS)


def _fallback(explicit: bool | None) -> bool:
    """A reader's explicit choice, else the configured rule for every reader of validated data."""
    if explicit is not None:
        return explicit
    from callcast.settings import get_settings

    return get_settings().checks.fallback_to_last_good


def read_check_result(lake: Lake, table: str, partition_date: date) -> dict[str, Any] | None:
    """The stored check result of a raw partition, or None if it was never validated."""
    key = result_key(table, partition_date)
    return lake.read_json(key) if lake.storage.exists(key) else None


def _previous_rows(lake: Lake, table: str, partition_date: date, manifest: dict) -> int | None:
    """Rows of the previous partition when comparable (for an incremental table: not the first full load)."""
    earlier = [d for d in lake.partitions(catalog.raw(table)) if d < partition_date]
    if not earlier:
        return None
    previous = lake.read_manifest(catalog.raw(table), earlier[-1])
    if manifest.get("mode") == "incremental" and not (previous.get("watermark") or {}).get("low"):
        return None  # the previous slice was the initial backfill: not a daily volume
    return previous.get("rows")


def validate_raw_partition(
    lake: Lake, table: str, partition_date: date, config: ChecksConfig | None = None
) -> CheckResult:
    """Validate ``raw/<table>/dt=<date>``; upload its Data Docs, then write result.json (last, atomically)."""
    from data_checks.validate import validate_partition

    logger = get_logger()
    prefix = catalog.raw(table)
    lake.read_manifest(prefix, partition_date)  # a clear PartitionNotFoundError when it is not committed
    manifest_bytes = lake.storage.get_bytes(catalog.manifest(prefix, partition_date))
    manifest = json.loads(manifest_bytes)
    name = catalog.raw_file_name(table)
    with lake.scratch_dir() as scratch:
        # Resolved through the manifest and verified against its size and SHA-256 (refused on mismatch).
        path = lake.fetch(prefix, partition_date, name, scratch)
        docs = scratch / "data_docs"

        def progress(rows: int, seconds: float) -> None:
            total = manifest.get("rows") or 0
            eta = f", ETA {seconds / rows * (total - rows):.0f}s" if total > rows > 0 else ""
            logger.info("%s: %s/%s rows checked (%s rows/s%s)", table, f"{rows:,}", f"{total:,}",
                        f"{rows / max(seconds, 1e-9):,.0f}", eta)  # fmt: skip

        result = validate_partition(
            path, table, partition_date, manifest, _previous_rows(lake, table, partition_date, manifest),
            config or ChecksConfig(), docs_dir=docs, on_progress=progress,
        )  # fmt: skip
        result.manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
        upload_tree(lake, docs, docs_prefix(table, partition_date))
    result.data_docs = lake.describe(f"{docs_prefix(table, partition_date)}/index.html")
    lake.write_json(result_key(table, partition_date), result.to_json())
    log = logger.warning if result.status != "passed" else logger.info
    log("%s", result.summary())
    return result


def upload_tree(lake: Lake, local_dir: Path, prefix: str) -> int:
    """Copy every file under ``local_dir`` to ``prefix`` (old files of that prefix removed first)."""
    for key in lake.storage.list(prefix + "/"):
        lake.storage.delete(key)
    count = 0
    for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
        lake.storage.put_file(path, f"{prefix}/{path.relative_to(local_dir).as_posix()}")
        count += 1
    return count


def _failed_names(result: dict[str, Any]) -> list[str]:
    return [
        f"{f['expectation']}" + (f" on {f['column']}" if f.get("column") else "") + f" ({f['details']})"
        for f in result.get("failed_expectations", [])
        if f.get("severity") == "critical"
    ]


def _verdict(lake: Lake, table: str, partition_date: date) -> Exception | None:
    result = read_check_result(lake, table, partition_date)
    if result is None:
        return PartitionNotValidatedError(table, partition_date)
    if result.get("status") not in GOOD:
        return QuarantinedPartitionError(table, partition_date, _failed_names(result))
    return None


def require_validated(
    lake: Lake,
    table: str,
    partition_date: date | None = None,
    *,
    fallback_to_last_good: bool | None = None,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
) -> date:
    """The raw partition date to use: ``partition_date`` (default: latest) if it passed its checks.

    Raises :class:`QuarantinedPartitionError` / :class:`PartitionNotValidatedError`; with
    ``fallback_to_last_good`` (default: ``CALLCAST_CHECKS__FALLBACK_TO_LAST_GOOD``) returns the latest earlier
    good partition instead and logs a warning that it did.
    """
    logger = logger or get_logger()
    fallback_to_last_good = _fallback(fallback_to_last_good)
    dates = lake.partitions(catalog.raw(table))
    if partition_date is None:
        if not dates:
            raise PartitionNotFoundError(
                f"No committed partition of {table} in {lake.describe(catalog.raw(table))}. "
                "Run the export (callcast export) first."
            )
        partition_date = dates[-1]
    problem = _verdict(lake, table, partition_date)
    if problem is None:
        return partition_date
    if not fallback_to_last_good:
        raise problem
    for candidate in reversed([d for d in dates if d < partition_date]):
        if _verdict(lake, table, candidate) is None:
            logger.warning("%s Falling back to the last good partition %s.", problem, candidate.isoformat())
            return candidate
    raise QuarantinedPartitionError(
        table, partition_date, getattr(problem, "failed", []) or ["not validated"],
        hint="No earlier good partition to fall back to. Fix and re-export, then rerun the validate flow.",
    )  # fmt: skip


def require_validated_history(
    lake: Lake,
    table: str,
    until: date | None = None,
    *,
    fallback_to_last_good: bool | None = None,
    logger: logging.Logger | logging.LoggerAdapter | None = None,
) -> list[date]:
    """All raw partitions up to ``until`` (incremental tables are read as a history of slices).

    Refuses if any is quarantined or unvalidated; with ``fallback_to_last_good`` returns the slices before
    the first bad one and logs that it did (default: ``CALLCAST_CHECKS__FALLBACK_TO_LAST_GOOD``).
    """
    logger = logger or get_logger()
    fallback_to_last_good = _fallback(fallback_to_last_good)
    dates = [d for d in lake.partitions(catalog.raw(table)) if until is None or d <= until]
    for i, d in enumerate(dates):
        problem = _verdict(lake, table, d)
        if problem is None:
            continue
        if not fallback_to_last_good or i == 0:
            raise problem
        logger.warning("%s Using the %d partitions up to %s only.", problem, i, dates[i - 1].isoformat())
        return dates[:i]
    return dates


@task(
    name="validate-partition",
    task_run_name="validate-{table}-{partition_date}",
    retries=1,
    retry_delay_seconds=5,
)
def validate_partition_task(table: str, partition_date: date, lake_url: str | None = None) -> dict[str, Any]:
    """Validate one raw partition and store its check result and Data Docs in the lake."""
    from callcast.lake import open_lake
    from callcast.settings import get_settings

    settings = get_settings(**({"lake_url": lake_url} if lake_url else {}))
    config = getattr(settings, "checks", None) or ChecksConfig()
    return validate_raw_partition(open_lake(settings), table, partition_date, config).to_json()


def emit_checks_failed(result: dict[str, Any]) -> None:
    """Emit ``callcast.checks.failed`` for a quarantined partition (resource ``callcast.table.<table>``)."""
    from prefect.events import emit_event

    emit_event(
        event="callcast.checks.failed",
        resource={
            "prefect.resource.id": f"callcast.table.{result['table']}",
            "callcast.table": result["table"],
        },
        payload={
            "table": result["table"],
            "partition_date": result["partition_date"],
            "status": result["status"],
            "failed_expectations": [
                f["expectation"] for f in result["failed_expectations"] if f["severity"] == "critical"
            ],
            "result": result_key(result["table"], date.fromisoformat(result["partition_date"])),
        },
    )


def checks_markdown(results: list[dict[str, Any]]) -> str:
    """The artifact a person reads in the Prefect UI: one line per table, then what failed."""
    lines = [
        "# Data checks",
        "",
        "| table | partition | status | rows | Data Docs |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['table']} | {r['partition_date']} | **{r['status']}** | {r['rows_checked']:,} | {r.get('data_docs') or ''} |"
        )
    for r in results:
        if r["failed_expectations"]:
            lines += ["", f"## {catalog.partition_label(r['table'], r['partition_date'])}: {r['status']}"]
            lines += [f"- **{f['severity']}** {f['details']}" for f in r["failed_expectations"]]
    if any(r["status"] == "failed" for r in results):
        lines += ["", "Failed partitions are quarantined: training, scoring and forecasting refuse them."]
    return "\n".join(lines) + "\n"


def publish_checks_artifact(results: list[dict[str, Any]]) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        markdown=checks_markdown(results), key="data-checks", description="Raw partition checks"
    )


def day_verdicts(lake: Lake, partition_date: date, tables: list[str]) -> dict[str, str]:
    """Each required table's check status for one day (``missing`` when never exported or never checked)."""
    verdicts = {}
    for table in tables:
        result = read_check_result(lake, table, partition_date)
        verdicts[table] = result.get("status", "missing") if result else "missing"
    return verdicts


@task(name="announce-day-if-passed", task_run_name="announce-day-{partition_date}")
def announce_day_if_passed(partition_date: date, lake_url: str | None = None) -> dict[str, str]:
    """Emit ``callcast.checks.day_passed`` once every table the export copies has passed its checks that day.

    Scoring and monitoring deployments are triggered by this event (resource ``callcast.day.<date>``).
    """
    from prefect.events import emit_event

    from callcast.lake import open_lake
    from callcast.schema import TABLE_NAMES
    from callcast.settings import get_settings

    settings = get_settings(**({"lake_url": lake_url} if lake_url else {}))
    required = settings.export.tables or [t for t in TABLE_NAMES if t not in settings.export.exclude]
    verdicts = day_verdicts(open_lake(settings), partition_date, required)
    waiting = sorted(t for t, status in verdicts.items() if status not in GOOD)
    if waiting:
        get_logger().info(
            "Day %s not complete yet: %s", partition_date, ", ".join(f"{t} {verdicts[t]}" for t in waiting)
        )
        return verdicts
    emit_event(
        event="callcast.checks.day_passed",
        resource={"prefect.resource.id": f"callcast.day.{partition_date.isoformat()}"},
        payload={"partition_date": partition_date.isoformat(), "tables": verdicts},
    )
    get_logger().info(
        "Every table of %s passed its checks: callcast.checks.day_passed emitted", partition_date
    )
    return verdicts
