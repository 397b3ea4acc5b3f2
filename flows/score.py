"""Flow: champion + validated exports -> eligible customers in chunks -> scores -> ranked call list in the lake.

``resolve champion → prepare chunks → score chunks (in parallel on Dask when asked) → rank, cut, reasons →
commit call_lists/dt=YYYY-MM-DD/ and the latest copy``. Tasks exchange file paths, never DataFrames.
"""

from __future__ import annotations

import tempfile
from datetime import date
from typing import Any

from prefect import flow, unmapped
from prefect.task_runners import ThreadPoolTaskRunner

from callcast.runtime import dask_task_runner
from tasks.scoring import (
    build_call_list_task,
    prepare_chunks_task,
    resolve_champion_task,
    score_chunk_task,
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
    lake_url: str | None = None,
) -> dict[str, Any]:
    """Score the eligible customers of the latest validated export with the champion; publish the call list.

    ``capacity`` (default: settings) is the number of calls the team can make; ``call_date`` (default: the day
    after the latest contact in the data) anchors the cool-off; ``use_dask`` (default: on when a Dask address
    is configured) scores the chunks on a Dask cluster.
    """
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    from callcast.settings import get_settings

    settings = get_settings(lake_url=lake_url) if lake_url else get_settings()
    cfg = settings.scoring
    capacity = capacity if capacity is not None else cfg.capacity
    cooloff = cooloff_days if cooloff_days is not None else cfg.cooloff_days
    use_dask = bool(settings.dask_address) if use_dask is None else use_dask
    champion = resolve_champion_task(lake_url)
    with tempfile.TemporaryDirectory(prefix="callcast-score-") as workdir:
        prepared = prepare_chunks_task(
            workdir, partition_date, call_date, cooloff, cfg.chunk_rows, cfg.fallback_to_last_good, lake_url
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
            workdir, scored, prepared, champion["version"], capacity, cooloff, lake_url
        )
    create_table_artifact(
        key="call-list-head",
        table=summary["head"],
        description=f"Call list {summary['partition_date']} (first rows) — {summary['path']}",
    )
    create_markdown_artifact(key="call-list-summary", markdown=summary_markdown(summary, prepared))
    print(
        f"call list {summary['path']}: {summary['rows']:,} calls out of {summary['eligible']:,} eligible; "
        f"expected sales {summary['expected_sales']:.1f} vs {summary['random_expected']:.1f} at random "
        f"({summary['lift']:.2f}x), model {summary['model_version']}"
    )
    return summary


def summary_markdown(summary: dict[str, Any], prepared: dict[str, Any]) -> str:
    """The run's summary for people: where the list is, expected sales vs random, who was excluded."""
    c = prepared["counts"]
    return "\n".join(
        [
            f"# Call list {summary['partition_date']}",
            "",
            f"- File: `{summary['path']}` (always-current copy: `{summary['latest']}`)",
            f"- Model: propensity {summary['model_version']}; calls on {prepared['call_date']}",
            f"- Calls: {summary['rows']:,} of {summary['eligible']:,} eligible customers",
            f"- **Expected sales: {summary['expected_sales']:.1f}**, against {summary['random_expected']:.1f} "
            f"calling the same number at random (lift {summary['lift']:.2f}x; eligible base rate "
            f"{summary['eligible_base_rate']:.2%})",
            f"- Excluded: {c.get('opted_out', 0):,} opted out, {c.get('already_bought', 0):,} already bought, "
            f"{c.get('in_cooloff', 0):,} contacted within the cool-off (of {c.get('customers', 0):,})",
        ]
    )
