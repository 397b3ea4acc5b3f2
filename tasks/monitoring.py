"""Monitoring tasks: the champion's reference, today's scored population, labelled calls, outputs, the event.

Plain functions first (tests call them on a small lake); the Prefect tasks at the end are thin wrappers that
pass paths and small dicts.

- **Reference**: built once per model version from the population the champion scored on its training
  partition (the customers export recorded in its ``model.json`` lineage, with the same eligibility and scoring
  rows as the call list), stored at ``catalog.monitoring_reference``.
- **Today**: the eligible population of the latest validated export, scored by the champion; the scores are
  kept (``scores.parquet``, the prediction log) so that tomorrow's calls off the list (the random control
  group) have the probability the champion gave them.
- **Realised**: contacts made from a call list whose outcomes are now known. A contact on date *c* belongs to
  the latest list published before *c*: listed if the customer is on it, control otherwise.
"""

from __future__ import annotations

import json
import math
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from callcast import catalog
from callcast.lake import Lake, open_lake, utc_now_iso
from callcast.runtime import code_version, get_logger
from models.monitoring.config import MonitoringConfig
from models.monitoring.drift import build_reference, compare_feature, compare_to_reference, feature_frame
from models.monitoring.performance import estimated_performance, realised_performance
from models.monitoring.report import charts, html_report, markdown
from models.monitoring.rules import data_drift_alarm, decide, performance_alarm

MODEL = "propensity"
DRIFT_JSON = "drift.json"
DRIFT_HTML = "drift.html"
SCORES = "scores.parquet"
CALL_LIST_CSV = "call_list.csv"
HOLDOUT_AUC_KEYS = ("within_date_auc", "within_month_auc", "roc_auc")


def _settings(lake_url: str | None):
    from callcast.settings import get_settings

    return get_settings(lake_url=lake_url) if lake_url else get_settings()


def clean_json(value: Any) -> Any:
    """NaN/inf -> None, numpy scalars -> Python (strict JSON for other tools)."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- the scored population ------------------------------------------------------------------------------


def model_features(info: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The champion's input features as recorded in its model.json."""
    features = info.get("features") or {}
    return list(features.get("categorical", [])), list(features.get("numeric", []))


POPULATION_RULE = "customers not opted out and not yet buyers (no cool-off)"
"""Which customers drift is measured on (a reference built under another rule is rebuilt)."""
CONTEXT_COLUMNS = ("day", "month", "ctx_volume_7d", "ctx_rate_90d")
"""Scoring-row columns set by the call date (the same for every customer scored that day)."""


def with_context(rows: pd.DataFrame, context: dict[str, Any]) -> pd.DataFrame:
    """``rows`` with the call-date columns of another day (e.g. the reference's)."""
    out = rows.copy()
    if "contact_date" in out:
        out["contact_date"] = np.datetime64(context["call_date"], "ns")
    for column in CONTEXT_COLUMNS:
        if column in out and column in context:
            out[column] = context[column]
    return out


def scored_population(
    lake: Lake,
    model: Any,
    info: dict[str, Any],
    partition_date: date,
    settings,
    workdir: Path,
    reference_context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Customers the champion could score on ``partition_date`` (not opted out, not yet buyers), as the call list
    builds their rows: features, scores and ids.

    The cool-off is deliberately not applied: working through the list removes the best prospects from the
    day's eligible pool for 30 days, a shift the campaign causes itself (a 60-day closed-loop run showed the
    eligible pool's score PSI climbing past 0.25 with no change in the customers). Drift is measured on the
    customer base; the list's own selection is not mistaken for it.

    ``population_scores`` are the same customers scored with the reference's call-date context: a model whose
    probabilities follow the campaign's current conversion level (the context features) shifts every score
    when the level moves; scoring with the reference's context isolates the drift of the population.
    """
    from models.call_list import predict
    from tasks.scoring import prepare_chunks

    prepared = prepare_chunks(
        lake,
        workdir,
        requested=partition_date,
        call_date=None,
        cooloff_days=0,  # the campaign's own selection (recently called customers) is not drift
        chunk_rows=settings.scoring.chunk_rows,
        allow_stale=False,
        config=settings.propensity,
    )
    categorical, numeric = model_features(info)
    parts: dict[str, list[np.ndarray]] = {name: [] for name in [*categorical, *numeric]}
    scores, population_scores, ids = [], [], []
    for path in prepared["chunks"]:
        rows = pd.read_parquet(path)
        scores.append(predict(model, rows))
        population_scores.append(
            predict(model, with_context(rows, reference_context)) if reference_context else scores[-1]
        )
        ids.append(rows["customer_id"].to_numpy(dtype=np.int64))
        for name, values in feature_frame(rows, categorical, numeric).items():
            parts[name].append(values)
        Path(path).unlink(missing_ok=True)
    return {
        "features": {k: np.concatenate(v) if v else np.empty(0) for k, v in parts.items()},
        "kinds": {**{c: "categorical" for c in categorical}, **{n: "numeric" for n in numeric}},
        "scores": np.concatenate(scores) if scores else np.empty(0),
        "population_scores": np.concatenate(population_scores) if population_scores else np.empty(0),
        "context": prepared["context"],
        "customer_id": np.concatenate(ids) if ids else np.empty(0, dtype=np.int64),
        "call_date": prepared["call_date"],
        "customers_partition": prepared["customers_partition"],
        "counts": prepared["counts"],
    }


def holdout_auc(info: dict[str, Any]) -> tuple[str | None, float | None]:
    """The champion's holdout ranking figure: within-date AUC if recorded, else within-month, else ROC AUC."""
    metrics = info.get("metrics") or {}
    for key in HOLDOUT_AUC_KEYS:
        value = metrics.get(key)
        if isinstance(value, int | float) and value == value:
            return key, float(value)
    return None, None


def training_partition(info: dict[str, Any]) -> date:
    """The customers export the champion was trained on (from its lineage)."""
    for entry in info.get("inputs", []):
        if entry.get("table") == "customers":
            return date.fromisoformat(entry["partition_date"])
    raise ValueError(f"{MODEL} {info.get('version')} records no customers partition in its lineage")


def ensure_reference(
    lake: Lake, model: Any, info: dict[str, Any], settings, config: MonitoringConfig, workdir: Path
) -> dict[str, Any]:
    """The champion's reference (built from its training partition the first time, then read)."""
    key = catalog.monitoring_reference(MODEL, info["version"])
    if lake.storage.exists(key):
        stored = lake.read_json(key)
        if stored.get("population") == POPULATION_RULE:
            return stored
    log = get_logger()
    day = training_partition(info)
    log.info("Building the monitoring reference of %s %s from the export of %s", MODEL, info["version"], day)
    population = scored_population(lake, model, info, day, settings, workdir)
    metric, value = holdout_auc(info)
    estimated = estimated_performance(population["scores"], settings.scoring.capacity)
    reference = build_reference(
        population["features"],
        population["kinds"],
        population["scores"],
        config,
        meta={
            "model": MODEL,
            "version": info["version"],
            "partition_date": day.isoformat(),
            "population": POPULATION_RULE,
            "call_date": population["call_date"],
            "context": population["context"],
            "expected_auc": estimated["expected_auc"],
            "expected_rate": estimated["expected_rate"],
            "holdout_metric": metric,
            "holdout_auc": value,
            "built_at": utc_now_iso(),
        },
    )
    lake.write_json(key, clean_json(reference))
    return reference


# -- labelled calls ---------------------------------------------------------------------------------------


def list_for_contact_dates(list_dates: list[date], contact_dates: pd.Series) -> pd.Series:
    """For each contact date, the latest call-list partition strictly before it (NaT when none)."""
    if not list_dates:
        return pd.Series(pd.NaT, index=contact_dates.index)
    lists = np.array(sorted(list_dates), dtype="datetime64[D]")
    days = pd.to_datetime(contact_dates).to_numpy("datetime64[D]")
    pos = np.searchsorted(lists, days, side="left") - 1
    out = np.where(pos >= 0, lists[np.clip(pos, 0, None)], np.datetime64("NaT"))
    return pd.Series(pd.to_datetime(out), index=contact_dates.index)


def logged_scores(lake: Lake, day: date) -> pd.Series | None:
    """The champion's probability of every eligible customer on ``day`` (monitoring's prediction log)."""
    prefix = catalog.monitoring(MODEL)
    if not lake.has_partition(prefix, day):
        return None
    with lake.scratch_dir() as scratch:
        frame = pd.read_parquet(lake.fetch(prefix, day, SCORES, scratch))
    return frame.set_index("customer_id")["probability"]


def called_contacts(lake: Lake, as_of: date, window_days: int) -> tuple[pd.DataFrame, dict[str, int]]:
    """Contacts of the last ``window_days`` call dates made from a call list, with group and probability.

    Returns the frame (``contact_date``, ``customer_id``, ``y`` (1/0, NaN while pending), ``probability``,
    ``group``) and counts of what was left out and why (never dropped silently).
    """
    from models.propensity.features import latest_contacts
    from tasks.checks import require_validated_history
    from tasks.scoring import read_contacts

    days = require_validated_history(lake, "campaign_contacts", as_of)
    contacts = latest_contacts(read_contacts(lake, days))
    contacts["contact_date"] = pd.to_datetime(contacts["contact_date"])
    start = pd.Timestamp(as_of - timedelta(days=window_days))
    recent = contacts[contacts["contact_date"] > start].copy()
    list_dates = [d for d in lake.partitions(catalog.call_lists()) if d <= as_of]
    recent["list_date"] = list_for_contact_dates(list_dates, recent["contact_date"])
    counts = {"contacts_in_window": int(len(recent)), "without_a_list": int(recent["list_date"].isna().sum())}
    recent = recent[recent["list_date"].notna()]
    frames = []
    unscored = 0
    for list_day, group in recent.groupby("list_date"):
        day = pd.Timestamp(list_day).date()
        listed = lake.read_csv(
            catalog.call_lists(), day, CALL_LIST_CSV, usecols=["customer_id", "probability"]
        )
        probability = group["customer_id"].map(listed.set_index("customer_id")["probability"])
        on_list = probability.notna()
        logged = logged_scores(lake, day) if (~on_list).any() else None
        if logged is not None:
            probability = probability.fillna(group["customer_id"].map(logged))
        unscored += int(probability.isna().sum())
        frames.append(
            pd.DataFrame(
                {
                    "contact_date": group["contact_date"].to_numpy(),
                    "customer_id": group["customer_id"].to_numpy(),
                    "y": group["y"].map({"yes": 1.0, "no": 0.0}).to_numpy(dtype=float),
                    "probability": probability.to_numpy(dtype=float),
                    "group": np.where(on_list, "listed", "control"),
                }
            )
        )
    counts["control_without_a_logged_score"] = unscored
    frame = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["contact_date", "customer_id", "y", "probability", "group"])
    )
    return frame, counts


def performance_now(called: pd.DataFrame, config: MonitoringConfig) -> dict[str, Any]:
    """Realised figures of labelled calls, and the CBPE expectation of calls still waiting for outcomes."""
    scored = called.dropna(subset=["probability"])
    labelled = scored.dropna(subset=["y"])
    pending = scored[scored["y"].isna()]
    realised = realised_performance(labelled, config.bootstrap, config.seed) if len(labelled) else None
    from models.monitoring.performance import expected_within_date_auc

    pending_est = {
        "calls": int(len(pending)),
        "expected_within_date_auc": (
            expected_within_date_auc(pending["probability"].to_numpy(), pending["contact_date"].to_numpy())
            if len(pending)
            else None
        ),
        "expected_rate": float(pending["probability"].mean()) if len(pending) else None,
    }
    return {"realised": realised, "pending": pending_est}


def per_date_performance(called: pd.DataFrame) -> list[dict[str, Any]]:
    """Per call date: expected (CBPE) and realised within-date AUC of the labelled calls (for the benchmark)."""
    from models.monitoring.performance import expected_within_date_auc, within_date_auc

    out = []
    labelled = called.dropna(subset=["probability", "y"])
    for day, group in labelled.groupby("contact_date"):
        y, p = group["y"].to_numpy(), group["probability"].to_numpy()
        d = np.zeros(len(group))
        out.append(
            {
                "contact_date": pd.Timestamp(day).date().isoformat(),
                "calls": int(len(group)),
                "buyers": int(y.sum()),
                "expected_auc": expected_within_date_auc(p, d),
                "realised_auc": within_date_auc(y, p, d),
            }
        )
    return out


def latest_call_list_ids(lake: Lake) -> list[int] | None:
    """Customer ids of the latest published call list, best first (None when no list was published yet).

    The demo's ``next-day`` passes them to the simulated phone team (``demo_company`` reads no lake itself).
    """
    import io

    from tasks.scoring import read_latest_call_list, read_latest_pointer

    if read_latest_pointer(lake) is None:
        return None
    frame = pd.read_csv(io.BytesIO(read_latest_call_list(lake)), usecols=["rank", "customer_id"])
    return frame.sort_values("rank")["customer_id"].astype(int).tolist()


# -- one monitoring run -----------------------------------------------------------------------------------


def previous_documents(lake: Lake, before: date, limit: int = 90, model: str = MODEL) -> list[dict[str, Any]]:
    """drift.json of earlier monitoring runs, oldest first."""
    prefix = catalog.monitoring(model)
    days = [d for d in lake.partitions(prefix) if d < before][-limit:]
    return [json.loads(lake.read_bytes(prefix, d, DRIFT_JSON)) for d in days]


def monitor_propensity(
    lake: Lake,
    partition_date: date,
    settings,
    workdir: Path,
    reason: str = "schedule",
    with_charts: bool = True,
) -> dict[str, Any]:
    """Compare today's scored population and the labelled calls with the champion's reference; commit outputs.

    ``with_charts=False`` leaves the charts out of the report (the closed-loop benchmark's daily runs).
    """
    from tasks.scoring import load_champion

    log = get_logger()
    config: MonitoringConfig = settings.monitoring
    started = utc_now_iso()
    model, info = load_champion(lake)
    reference = ensure_reference(lake, model, info, settings, config, workdir)
    population = scored_population(
        lake, model, info, partition_date, settings, workdir, reference.get("context")
    )
    rows = int(len(population["scores"]))
    drifts, score, skipped = compare_to_reference(
        reference, population["features"], population["population_scores"], config
    )
    level = compare_feature("__score_level__", reference["score"], population["scores"], config)
    estimated = estimated_performance(population["scores"], settings.scoring.capacity)
    called, call_counts = called_contacts(lake, partition_date, config.window_days)
    performance = performance_now(called, config)
    history = previous_documents(lake, partition_date)
    alarms = [
        data_drift_alarm(drifts, score, rows, config),
        performance_alarm(performance["realised"], estimated, reference.get("expected_auc"), config),
    ]
    if call_counts["control_without_a_logged_score"]:
        alarms[1].notes.append(
            f"{call_counts['control_without_a_logged_score']} control calls have no logged score "
            "(monitoring did not run on their list's day): left out of the realised figures"
        )
    verdict = decide(alarms, [bool(d.get("alarm_today")) for d in history], config)
    document = {
        "model": MODEL,
        "version": info["version"],
        "partition_date": partition_date.isoformat(),
        "drift_detected": verdict.drift_detected,
        "status": verdict.status,
        "alarm_today": verdict.alarm_today,
        "consecutive_alarms": verdict.consecutive,
        "reasons": verdict.reasons,
        "notes": verdict.notes,
        "features": [
            {k: f.as_dict()[k] for k in ("name", "psi", "statistic", "p_value", "drifted", "test", "level")}
            for f in drifts
        ],
        "prediction_psi": score.psi,
        "score_level": {
            "psi": level.psi,
            "mean_probability": float(np.mean(population["scores"])) if rows else None,
            "note": "today's probabilities, with today's call-date context (campaign conversion level); "
            "prediction_psi holds the context at the reference's, so that it measures the population",
        },
        "context": {"today": population["context"], "reference": reference.get("context")},
        "performance": {
            "realised": performance["realised"],
            "estimated": {**estimated, "pending_calls": performance["pending"]},
        },
        "feature_details": [f.as_dict() for f in drifts],
        "score_detail": score.as_dict(),
        "skipped_features": skipped,
        "sample": {
            "rows": rows,
            "min_sample": config.min_sample,
            "min_labelled": config.min_labelled,
            **call_counts,
        },
        "thresholds": config.model_dump(
            include={"psi_warn", "psi_act", "p_value", "feature_share", "persistence_days", "auc_tolerance"}
        ),
        "reference": {
            k: reference.get(k)
            for k in ("version", "partition_date", "rows", "expected_auc", "holdout_metric", "holdout_auc")
        },
        "call_date": population["call_date"],
        "eligibility": population["counts"],
        "per_date": per_date_performance(called),
        "reason": reason,
        "started_at": started,
        "code_version": code_version(),
    }
    document = clean_json(document)
    images = charts(document, history) if with_charts else {}
    files: dict[str, Path] = {}
    files[DRIFT_JSON] = workdir / DRIFT_JSON
    files[DRIFT_JSON].write_text(json.dumps(document, indent=2))
    files[DRIFT_HTML] = workdir / DRIFT_HTML
    files[DRIFT_HTML].write_text(html_report(document, images))
    for name, png in images.items():
        files[name] = workdir / name
        files[name].write_bytes(png)
    files[SCORES] = workdir / SCORES
    pd.DataFrame(
        {"customer_id": population["customer_id"], "probability": population["scores"].astype(np.float32)}
    ).to_parquet(files[SCORES], index=False)
    lake.commit_partition(
        catalog.monitoring(MODEL),
        partition_date,
        files,
        {"table": catalog.monitoring(MODEL), "rows": rows, "model_version": info["version"], "source": "monitoring",
         "drift_detected": verdict.drift_detected, "code_version": code_version()},
    )  # fmt: skip
    location = lake.describe(lake.data_file(catalog.monitoring(MODEL), partition_date, DRIFT_HTML))
    log.info(
        "monitoring %s %s on %s: %s (%d rows, prediction PSI %.3f)%s",
        MODEL, info["version"], partition_date, verdict.status, rows, score.psi,
        "; " + "; ".join(verdict.reasons) if verdict.reasons else "",
    )  # fmt: skip
    return {
        "document": document,
        "location": location,
        "markdown": markdown(document, images),
    }


FORECAST_MODEL = "forecast"


def monitor_forecasts(lake: Lake, partition_date: date, settings, workdir: Path) -> dict[str, Any] | None:
    """Error of the latest committed forecasts on the actual sales known by ``partition_date``, per series group.

    Returns None (and logs why) when no forecasts were committed before that day.
    """
    from models.forecasting.data import prepare_demo_series
    from models.monitoring.forecast import cell_errors, forecast_alarm, group_drift, series_errors
    from models.monitoring.report import forecast_html, forecast_markdown
    from tasks.forecasting import load_demo_history

    log = get_logger()
    config: MonitoringConfig = settings.monitoring
    origin = lake.latest_partition(catalog.forecasts(), partition_date)
    if origin is None:
        log.info("forecast monitoring: no committed forecasts up to %s; nothing to compare", partition_date)
        return None
    forecasts = lake.read_csv(catalog.forecasts(), origin, "forecasts.csv")
    backtest = lake.read_csv(catalog.forecasts(), origin, "backtest_series.csv")
    sales, products, _ = load_demo_history(settings.lake_url, partition_date)
    actuals = prepare_demo_series(sales, products, "D", settings.forecast)
    actuals = actuals[pd.to_datetime(actuals["date"]) > pd.Timestamp(origin)]
    cells = cell_errors(forecasts, actuals, backtest)
    per_series = series_errors(cells)
    groups = group_drift(cells, config)
    alarm = forecast_alarm(groups, config)
    history = previous_documents(lake, partition_date, model=FORECAST_MODEL)
    verdict = decide([alarm], [bool(d.get("alarm_today")) for d in history], config)
    document = clean_json(
        {
            "model": FORECAST_MODEL,
            "forecast_partition": origin.isoformat(),
            "partition_date": partition_date.isoformat(),
            "drift_detected": verdict.drift_detected,
            "status": verdict.status,
            "alarm_today": verdict.alarm_today,
            "consecutive_alarms": verdict.consecutive,
            "reasons": verdict.reasons,
            "notes": verdict.notes,
            "features": groups,
            "prediction_psi": None,
            "performance": {
                "realised": {
                    "series": int(len(per_series)),
                    "cells": int(per_series["cells"].sum()) if len(per_series) else 0,
                    "error_ratio": float(cells["abs_err"].sum() / cells["backtest_wmae"].sum())
                    if len(cells)
                    else None,
                    "median_series_error_ratio": float(per_series["ratio"].median())
                    if len(per_series)
                    else None,
                    "coverage80": float(per_series["coverage80"].mean()) if len(per_series) else None,
                },
                "estimated": None,
            },
            "thresholds": config.model_dump(
                include={"forecast_error_ratio", "p_value", "min_forecast_cells", "persistence_days"}
            ),
            "started_at": utc_now_iso(),
            "code_version": code_version(),
        }
    )
    files = {DRIFT_JSON: workdir / f"forecast-{DRIFT_JSON}", DRIFT_HTML: workdir / f"forecast-{DRIFT_HTML}"}
    files[DRIFT_JSON].write_text(json.dumps(document, indent=2))
    files[DRIFT_HTML].write_text(forecast_html(document))
    prefix = catalog.monitoring(FORECAST_MODEL)
    lake.commit_partition(
        prefix,
        partition_date,
        files,
        {"table": prefix, "rows": len(groups), "source": "monitoring",
         "drift_detected": verdict.drift_detected, "code_version": code_version()},
    )  # fmt: skip
    location = lake.describe(lake.data_file(prefix, partition_date, DRIFT_HTML))
    log.info("forecast monitoring on %s (forecasts of %s): %s", partition_date, origin, verdict.status)
    return {"document": document, "location": location, "markdown": forecast_markdown(document)}


# -- Prefect tasks ----------------------------------------------------------------------------------------


@task(name="monitor-propensity", cache_policy=NO_CACHE)
def monitor_propensity_task(
    partition_date: date | None = None, lake_url: str | None = None, reason: str = "schedule"
) -> dict[str, Any]:
    """One monitoring run of the propensity champion on the latest (or given) validated export."""
    from callcast.runtime import company_today

    settings = _settings(lake_url)
    lake = open_lake(settings)
    day = partition_date or lake.latest_partition(catalog.raw("customers"), company_today(settings))
    if day is None:
        from callcast.errors import PartitionNotFoundError

        raise PartitionNotFoundError("No customers export to monitor: run `callcast export` first.")
    with tempfile.TemporaryDirectory(prefix="callcast-monitor-") as workdir:
        return monitor_propensity(lake, day, settings, Path(workdir), reason)


@task(name="monitor-forecasts", cache_policy=NO_CACHE)
def monitor_forecasts_task(
    partition_date: date | None = None, lake_url: str | None = None
) -> dict[str, Any] | None:
    """One forecast monitoring run on the sales known by the latest (or given) export."""
    from callcast.runtime import company_today

    settings = _settings(lake_url)
    lake = open_lake(settings)
    day = partition_date or lake.latest_partition(catalog.raw("sales"), company_today(settings))
    if day is None:
        from callcast.errors import PartitionNotFoundError

        raise PartitionNotFoundError(
            "No sales export to monitor the forecasts with: run `callcast export` first."
        )
    with tempfile.TemporaryDirectory(prefix="callcast-monitor-forecast-") as workdir:
        return monitor_forecasts(lake, day, settings, Path(workdir))


@task(name="emit-drift-event", cache_policy=NO_CACHE)
def emit_drift_event_task(document: dict[str, Any], location: str) -> bool:
    """Emit ``callcast.drift.detected`` (resource ``callcast.model.<model>``) when drift or decay was found."""
    if not document.get("drift_detected"):
        return False
    from prefect.events import emit_event

    model = document["model"]
    event = emit_event(
        event="callcast.drift.detected",
        resource={"prefect.resource.id": f"callcast.model.{model}", "prefect.resource.name": model},
        payload={
            "model": model,
            "version": document.get("version"),
            "partition_date": document["partition_date"],
            "reasons": document.get("reasons", []),
            "drifted_features": [f["name"] for f in document.get("features", []) if f.get("drifted")],
            "prediction_psi": document.get("prediction_psi"),
            "report": location,
        },
    )
    get_logger().warning("drift event emitted for %s: %s", model, "; ".join(document.get("reasons", [])))
    return event is not None


@task(name="publish-monitoring-artifact", cache_policy=NO_CACHE)
def publish_artifact_task(markdown_text: str, model: str, partition_date: str) -> None:
    """The report as a Prefect markdown artifact (charts embedded as data URIs)."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        key=f"monitoring-{model}", markdown=markdown_text, description=f"monitoring {model} {partition_date}"
    )
