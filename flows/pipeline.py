"""The main job: export → validate → train/promote → score → forecast, as one parent flow.

Each step is its own flow (a subflow run here, a deployment of its own in ``prefect.yaml``). A step that
finds quarantined data stops the job with the check's message; nothing downstream reads bad data.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from callcast import catalog
from callcast.errors import CallcastError
from callcast.runtime import company_today, get_logger
from flows.export import daily_export
from flows.forecast import forecast_sales
from flows.monitor import monitor_propensity
from flows.score import score_call_list
from flows.train_propensity import train_propensity
from flows.validate import validate_exports
from tasks.state import publish_state_task


class QuarantineStop(CallcastError):
    """Validation failed for a table the rest of the job needs."""


@flow(name="daily-pipeline", log_prints=True)
def daily_pipeline(
    partition_date: date | None = None,
    profile: str = "quick",
    capacity: int | None = None,
    train: bool = True,
    forecast: bool = True,
) -> dict[str, Any]:
    """Run the whole day: export, checks, (re)training with the promotion gate, call list, monitoring, forecasts."""
    logger = get_logger()
    day = partition_date or company_today()
    summary: dict[str, Any] = {"partition_date": day.isoformat()}

    manifests = daily_export(partition_date=day)
    summary["export"] = {m["table"]: {"rows": m["rows"], "mode": m["mode"]} for m in manifests}

    statuses = validate_exports(partition_date=day, tables=[m["table"] for m in manifests])
    summary["checks"] = statuses
    failed = sorted(table for table, status in statuses.items() if status == "failed")
    if failed:
        publish_state_task(day)  # the UI shows which table stopped the day
        raise QuarantineStop(
            f"Data checks failed for {', '.join(failed)} on {day}: the partitions are quarantined, so training, "
            "scoring and forecasting did not run. Read "
            f"{', '.join(catalog.check_result(t, day) for t in failed)} in the lake, fix the source, "
            "then rerun the export and this job."
        )

    if train:
        summary["model"] = train_propensity(profile=profile)
    summary["call_list"] = score_call_list(partition_date=day, capacity=capacity)
    monitored = monitor_propensity(partition_date=day)
    summary["monitoring"] = {**monitored["document"], "location": monitored["location"]}
    if forecast:
        summary["forecast"] = forecast_sales()
    publish_state_task(day, summary.get("call_list"))
    logger.info("Daily pipeline for %s finished", day)
    return summary
