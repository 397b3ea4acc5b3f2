"""Daily export: every table of the operational database → dated CSV partitions in the lake."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from prefect.events import emit_event
from prefect.tasks import exponential_backoff

from callcast.database import connect_check, masked_url, resolve_tables, source_engine
from callcast.lake import open_lake
from callcast.runtime import company_today, get_logger
from callcast.settings import get_settings
from tasks.export import export_table_task, refuse_future_date


def check_lake_writable(lake_url: str | None) -> str:
    """Write and remove a probe object, so an unwritable lake fails before any export starts."""
    lake = open_lake(get_settings(**({"lake_url": lake_url} if lake_url else {})))
    probe = f"_probe/{os.getpid()}-{datetime.now(UTC).timestamp()}"
    lake.storage.put_bytes(probe, b"ok")
    lake.storage.delete(probe)
    return lake.describe()


@task(name="preflight", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2))
def preflight(tables: list[str] | None, lake_url: str | None) -> list[str]:
    """Check the database and the lake answer, and resolve the table list from the catalog."""
    settings = get_settings()
    engine = source_engine(settings.resolved_database_url())  # a missing SQLite file is refused, not created
    try:
        connect_check(engine)
        resolved = resolve_tables(engine, tables or settings.export.tables, exclude=settings.export.exclude)
        source = masked_url(engine.url)
    finally:
        engine.dispose()
    where = check_lake_writable(lake_url)
    get_logger().info("Exporting %d table(s) from %s to %s", len(resolved), source, where)
    return resolved


def announce(manifest: dict[str, Any]) -> None:
    """Emit ``callcast.export.completed`` for one table with the manifest's summary."""
    emit_event(
        event="callcast.export.completed",
        resource={
            "prefect.resource.id": f"callcast.table.{manifest['table']}",
            "prefect.resource.name": manifest["table"],
        },
        payload={
            key: manifest.get(key)
            for key in (
                "table",
                "partition_date",
                "rows",
                "bytes",
                "sha256",
                "mode",
                "watermark",
                "code_version",
            )
        },
    )


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
