"""Validate the latest (or a given day's) raw export partitions: check results, Data Docs, events, artifact."""

from __future__ import annotations

from datetime import date

from prefect import flow

from callcast import catalog
from callcast.errors import PartitionNotFoundError
from callcast.runtime import company_today, get_logger
from callcast.schema import TABLE_NAMES
from tasks.checks import (
    announce_day_if_passed,
    emit_checks_failed,
    publish_checks_artifact,
    validate_partition_task,
)
from tasks.export import refuse_future_date


@flow(name="validate-exports")
def validate_exports(
    partition_date: date | None = None, tables: list[str] | None = None, lake_url: str | None = None
) -> dict[str, str]:
    """Validate each table's partition of ``partition_date`` (default: its latest); returns {table: status}."""
    from callcast.lake import open_lake
    from callcast.settings import get_settings

    logger = get_logger()
    settings = get_settings(**({"lake_url": lake_url} if lake_url else {}))
    if partition_date is not None:
        refuse_future_date(partition_date, company_today(settings), what="validate")
    lake = open_lake(settings)
    statuses: dict[str, str] = {}
    results = []
    for table in tables or list(TABLE_NAMES):
        day = partition_date or lake.latest_partition(catalog.raw(table))
        if day is None or not lake.has_partition(catalog.raw(table), day):
            logger.warning(
                "%s: no committed export partition%s; skipped.", table, f" for {day}" if day else ""
            )
            statuses[table] = "missing"
            continue
        result = validate_partition_task(table, day, lake_url)
        if result["status"] == "failed":
            emit_checks_failed(result)
        statuses[table] = result["status"]
        results.append(result)
    if not results:
        raise PartitionNotFoundError(
            f"Nothing was validated: no table has a committed export partition"
            f"{f' for {partition_date.isoformat()}' if partition_date else ''} in {lake.describe()}. "
            "Run the export for that date first (or check --date)."
        )
    publish_checks_artifact(results)
    for day in sorted({date.fromisoformat(r["partition_date"]) for r in results if r["status"] != "failed"}):
        announce_day_if_passed(day, lake_url)  # the day's last passing table starts scoring and monitoring
    return statuses
