"""Flow: champion + validated exports -> eligible customers in chunks -> scores -> ranked call list in the lake.

``resolve champion → prepare chunks → score chunks (in parallel on Dask when asked) → rank, cut, reasons →
commit the day's call-list partition (CSV + workbook) → move latest → deliver the workbook → announce``. Tasks
exchange file paths, never DataFrames. The rules live in :mod:`models.call_list`, the I/O in
:mod:`tasks.scoring`; a refusal (stale export, call date outside the data, capacity below 1, nobody to call)
publishes nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from callcast.runtime import company_today, dask_task_runner
from models.call_list import check_capacity
from tasks.scoring import (
    announce_call_list_task,
    build_call_list_task,
    prepare_chunks_task,
    resolve_champion_task,
    score_chunk_task,
    scoring_workdir,
)


@flow(name="score-chunks")
def score_chunks(
    chunks: list[str], model_version: str, keep: int | None, lake_url: str | None = None
) -> list[dict[str, Any]]:
    """Score every chunk file (mapped; parallel under a Dask task runner)."""
    futures = score_chunk_task.map(chunks, unmapped(model_version), unmapped(keep), unmapped(lake_url))
    return [f.result() for f in futures]


@flow(name="score-call-list", log_prints=True)
def score_call_list(
    partition_date: date | None = None,
    capacity: int | None = None,
    use_dask: bool | None = None,
    call_date: date | None = None,
    cooloff_days: int | None = None,
    allow_stale: bool | None = None,
    force: bool = False,
    lake_url: str | None = None,
) -> dict[str, Any]:
    """Score the eligible customers of a validated export with the champion; publish and deliver the call list.

    ``partition_date`` (default: today in the company's time zone) is the export to build from: it must exist
    and have passed its checks, unless ``allow_stale`` (default: CALLCAST_SCORING__FALLBACK_TO_LAST_GOOD) lets an
    older validated export stand in (flagged as stale). ``capacity`` (default: settings) is the number of calls;
    ``call_date`` (default: the day after the data's latest event) anchors the features and the cool-off;
    ``force`` lets a rerun of an older day move ``latest`` back; ``use_dask`` (default: on when a Dask address is
    configured) scores the chunks on a Dask cluster.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from callcast.settings import get_settings

    settings = get_settings(lake_url=lake_url) if lake_url else get_settings()
    cfg = settings.scoring
    capacity = capacity if capacity is not None else cfg.capacity
    check_capacity(capacity)
    cooloff = cooloff_days if cooloff_days is not None else cfg.cooloff_days
    stale_ok = cfg.fallback_to_last_good if allow_stale is None else allow_stale
    requested = partition_date or company_today(settings)
    use_dask = bool(settings.dask_address) if use_dask is None else use_dask
    delivery = str(cfg.delivery_dir) if cfg.delivery_dir else None
    champion = resolve_champion_task(lake_url)
    with scoring_workdir() as workdir:
        prepared = prepare_chunks_task(
            workdir, requested, call_date, cooloff, cfg.chunk_rows, stale_ok, settings.propensity, lake_url
        )
        runner = (
            dask_task_runner(settings.dask_address, settings.dask_workers)
            if use_dask
            else ThreadPoolTaskRunner(max_workers=1)
        )
        scored = score_chunks.with_options(task_runner=runner)(
            prepared["chunks"], champion["version"], capacity, lake_url
        )
        summary = build_call_list_task(
            workdir, scored, prepared, champion["version"], capacity, cooloff, delivery, force, lake_url
        )
    announce_call_list_task(summary)
    create_table_artifact(
        key="call-list-head",
        table=summary["head"],
        description=f"Call list {summary['partition_date']} (first rows) — {summary['path']}",
    )
    create_markdown_artifact(key="call-list-summary", markdown=summary_markdown(summary))
    print(f"call list {summary['path']}: {summary['headline']}")
    return summary


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run's summary for people: where the list is, expected sales vs random, who was excluded."""
    c = summary["eligibility"]
    lines = [
        f"# Call list for {summary['call_date']}",
        "",
        f"**{summary['headline']}**",
        "",
        f"- Workbook: `{summary['workbook']}`"
        + (f" (delivered to `{summary['delivered_to']}`)" if summary.get("delivered_to") else ""),
        f"- CSV (machine contract): `{summary['path']}`",
        f"- Latest: `{summary['latest']}`"
        if summary["latest_moved"]
        else "- Latest: **not moved** (a newer list is published; rerun with force to move it back)",
        f"- Data: export of {summary['partition_date']}"
        + (f" — **STALE by {summary['stale_days']} day(s)**" if summary.get("stale_days") else ""),
        f"- Calls: {summary['rows']:,} of {summary['eligible']:,} eligible customers (capacity "
        f"{summary['capacity'] if summary['capacity'] is not None else 'all'})",
        f"- Eligible base rate {summary['eligible_base_rate']:.2%}; lift {summary['lift']:.2f}x",
        f"- Excluded: {c.get('opted_out', 0):,} opted out, {c.get('already_bought', 0):,} already bought, "
        f"{c.get('in_cooloff', 0):,} contacted within the cool-off (of {c.get('customers', 0):,})",
    ]
    return "\n".join(lines)
