"""Flow: champion + latest validated export + labelled calls -> drift and performance -> report, event.

``reference (once per champion) → today's scored population → drift per feature and of the score → realised
and estimated performance → rules (thresholds, minimum sample, persistence) → monitoring/<model>/dt=…/ →
callcast.drift.detected when drift or decay is declared → markdown artifact``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from prefect import flow

from tasks.monitoring import (
    emit_drift_event_task,
    monitor_forecasts_task,
    monitor_propensity_task,
    publish_artifact_task,
)


@flow(name="monitor-propensity", log_prints=True)
def monitor_propensity(partition_date: date | None = None, lake_url: str | None = None) -> dict[str, Any]:
    """Monitor the propensity champion on the latest (or given) validated export; emit the drift event."""
    result = monitor_propensity_task(partition_date, lake_url)
    document = result["document"]
    emitted = emit_drift_event_task(document, result["location"])
    publish_artifact_task(result["markdown"], document["model"], document["partition_date"])
    print(verdict_line(document, result["location"]))
    return {"document": document, "location": result["location"], "event_emitted": emitted}


@flow(name="monitor-forecasts", log_prints=True)
def monitor_forecasts(partition_date: date | None = None, lake_url: str | None = None) -> dict[str, Any]:
    """Committed forecasts against the actual sales that arrived since, per series group; emit the event."""
    result = monitor_forecasts_task(partition_date, lake_url)
    if result is None:
        print("forecast monitoring: no committed forecasts yet")
        return {"document": None, "event_emitted": False}
    document = result["document"]
    emitted = emit_drift_event_task(document, result["location"])
    publish_artifact_task(result["markdown"], document["model"], document["partition_date"])
    print(verdict_line(document, result["location"]))
    return {"document": document, "location": result["location"], "event_emitted": emitted}


def verdict_line(document: dict[str, Any], location: str) -> str:
    """One line for people: the verdict, why, and where the report is."""
    head = "DRIFT DETECTED" if document["drift_detected"] else document["status"].upper()
    why = "; ".join(document.get("reasons") or document.get("notes") or ["nothing moved"])
    return (
        f"monitoring {document['model']} {document.get('version', '')} on {document['partition_date']}: {head} "
        f"({why}); report {location}"
    )
