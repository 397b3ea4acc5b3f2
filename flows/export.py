"""Daily export: every table of the operational database → dated CSV partitions in the lake."""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow
from prefect.artifacts import create_table_artifact
from prefect.tasks import exponential_backoff

from callcast.runtime import company_today
from callcast.settings import get_settings
from tasks.export import announce, export_table_task, preflight, refuse_future_date


@flow(name="daily-export", log_prints=True)
def daily_export(
    partition_date: date | None = None,
    tables: list[str] | None = None,
    lake_url: str | None = None,
) -> list[dict[str, Any]]:
    """Copy each table into ``raw/<table>/dt=<date>/``; snapshot or incremental per configuration.

    The source database URL comes from ``CALLCAST_DATABASE_URL`` (a secret, never a flow parameter).
    """
    settings = get_settings()
    today = company_today(settings)
    partition_date = partition_date or today
    refuse_future_date(partition_date, today)  # a future partition would cap every later slice
    resolved = preflight(tables, lake_url)
    exporter = export_table_task.with_options(
        retries=settings.export.retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=settings.export.retry_delay_seconds),
    )
    futures = exporter.map(resolved, partition_date=partition_date, lake_url=lake_url)
    manifests = [future.result() for future in futures]
    for manifest in manifests:
        announce(manifest)
    create_table_artifact(
        key="daily-export",
        table=[
            {
                "table": m["table"],
                "mode": m["mode"],
                "rows": m["rows"],
                "bytes": m["bytes"],
                "seconds": m.get("seconds"),
            }
            for m in manifests
        ],
        description=f"Daily export for {partition_date.isoformat()}: {sum(m['rows'] for m in manifests):,} rows.",
    )
    return manifests
