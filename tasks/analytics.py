"""Prefect tasks of the business analyses: read validated exports (and call lists, forecasts, the champion),
run the pure analyses of :mod:`models.analytics`, commit ``analytics/<name>/dt=<as-of>/`` and publish a
Prefect markdown artifact with the key figures and the charts embedded.

Inputs are read through the same guards as training and scoring (:func:`tasks.checks.require_validated`,
:func:`tasks.checks.require_validated_history`): a quarantined or unvalidated partition is never read; when
the latest one is bad the last good one is used and the report says so (counted, not silent).
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from callcast import catalog
from callcast.lake import Lake, open_lake, utc_now_iso
from callcast.runtime import code_version, get_logger
from models.analytics import analyses
from models.analytics.config import AnalyticsSettings
from models.analytics.report import render_markdown

PROPENSITY = "propensity"


def _lake(lake_url: str | None) -> Lake:
    from callcast.settings import get_settings

    return open_lake(get_settings(lake_url=lake_url) if lake_url else get_settings())


def _lineage(lake: Lake, prefix: str, day: date) -> dict[str, Any]:
    manifest = lake.read_manifest(prefix, day)
    return {
        "table": manifest.get("table", prefix.rsplit("/", 1)[-1]),
        "partition_date": day.isoformat(),
        "rows": manifest.get("rows"),
        "sha256": manifest.get("sha256") or [f["sha256"] for f in manifest.get("files", [])],
    }


def _fallback_warnings(lake: Lake, table: str, used: list[date], as_of: date) -> list[str]:
    """Say so when the partitions read are not all the committed ones up to ``as_of`` (a bad one was skipped)."""
    committed = [d for d in lake.partitions(catalog.raw(table)) if d <= as_of]
    if not committed or not used:
        return []
    if len(used) == 1 and used[0] != committed[-1]:
        return [
            f"{table}: partition {committed[-1]} is not validated or failed its checks; {used[0]} was used."
        ]
    skipped = [d for d in committed if d not in set(used)]
    if len(used) > 1 and skipped:
        return [
            f"{table}: {len(skipped)} slice(s) from {skipped[0]} on are not validated or failed; history ends {used[-1]}."
        ]
    return []


# -- readers -----------------------------------------------------------------------------------------


def read_people(
    lake: Lake, as_of: date
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]], list[str]]:
    """Validated customers snapshot and contacts history up to ``as_of`` (the training reader), + warnings."""
    from tasks.training import read_validated_inputs

    customers, contacts, inputs = read_validated_inputs(lake, as_of)
    customers_day = [date.fromisoformat(i["partition_date"]) for i in inputs if i["table"] == "customers"]
    contact_days = [
        date.fromisoformat(i["partition_date"]) for i in inputs if i["table"] == "campaign_contacts"
    ]
    warnings = _fallback_warnings(lake, "customers", customers_day, as_of)
    warnings += _fallback_warnings(lake, "campaign_contacts", contact_days, as_of)
    return customers, contacts, inputs, warnings


def read_sales_inputs(
    lake: Lake, as_of: date
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[dict[str, Any]], list[str]]:
    """Validated sales history (revenue kept as exact text) and the stores/products snapshots up to ``as_of``."""
    from callcast.csvio import pandas_read_options
    from tasks.checks import require_validated, require_validated_history

    log = get_logger()
    days = require_validated_history(lake, "sales", as_of, logger=log)
    if not days:
        from callcast.errors import PartitionNotFoundError

        raise PartitionNotFoundError(
            f"No exported sales up to {as_of} in {lake.describe()}: run the export and validate flows first."
        )
    slices, inputs = [], []
    for day in days:
        options = pandas_read_options(lake.read_manifest(catalog.raw("sales"), day).get("columns") or [])
        dtype = {**options["dtype"], "revenue": "string", "unit_price": "string"}
        slices.append(lake.read_csv(catalog.raw("sales"), day, catalog.raw_file_name("sales"), dtype=dtype))
        inputs.append(_lineage(lake, catalog.raw("sales"), day))
    warnings = _fallback_warnings(lake, "sales", days, as_of)
    frames = []
    for table in ("stores", "products"):
        day = require_validated(
            lake,
            table,
            lake.latest_partition(catalog.raw(table), as_of),
            logger=log,
        )
        frames.append(lake.read_csv(catalog.raw(table), day, catalog.raw_file_name(table)))
        inputs.append(_lineage(lake, catalog.raw(table), day))
        warnings += _fallback_warnings(lake, table, [day], as_of)
    sales = pd.concat(slices, ignore_index=True)
    log.info("Sales inputs: %d slice(s) up to %s, %s rows", len(days), days[-1], f"{len(sales):,}")
    return sales, frames[0], frames[1], inputs, warnings


def read_forecasts(
    lake: Lake, last_actual: date, as_of: date, look_back: int = 8
) -> tuple[pd.DataFrame | None, date | None, int]:
    """The newest committed forecasts (partition ≤ ``as_of``) whose first forecast date is on or before
    ``last_actual``, i.e. with periods the sales have closed; also how many partitions exist at all.

    Partition dates are export dates, not the data's calendar (the demo's sales are historical), so the
    forecasts' own dates decide. At most ``look_back`` newest partitions are inspected.
    """
    days = [d for d in lake.partitions(catalog.forecasts()) if d <= as_of]
    for day in reversed(days[-look_back:]):
        dates = lake.read_csv(catalog.forecasts(), day, "forecasts.csv", usecols=["date"])["date"]
        if len(dates) and pd.to_datetime(dates).min() <= pd.Timestamp(last_actual):
            return lake.read_csv(catalog.forecasts(), day, "forecasts.csv"), day, len(days)
    return None, None, len(days)


def read_call_lists(lake: Lake, as_of: date) -> pd.DataFrame | None:
    """Every committed call list up to ``as_of``: list date, call date, customer, estimated base rate."""
    days = [d for d in lake.partitions(catalog.call_lists()) if d <= as_of]
    if not days:
        return None
    frames = []
    for day in days:
        manifest = lake.read_manifest(catalog.call_lists(), day)
        names = [f["name"] for f in manifest.get("files", [])]
        name = "call_list.csv" if "call_list.csv" in names else next(n for n in names if n.endswith(".csv"))
        listed = lake.read_csv(catalog.call_lists(), day, name, usecols=["customer_id"])
        base = manifest.get("eligible_base_rate")
        frames.append(
            pd.DataFrame(
                {
                    "list_date": day.isoformat(),
                    "call_date": manifest.get("call_date") or day.isoformat(),
                    "customer_id": listed["customer_id"].astype("int64"),
                    "estimated_base_rate": float(base) if base is not None else float("nan"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def champion_scores(
    lake: Lake, customers: pd.DataFrame, contacts: pd.DataFrame
) -> tuple[pd.Series | None, str | None]:
    """The champion's probability for every customer on the next call date, or ``(None, None)`` without one."""
    from callcast.settings import get_settings
    from models.propensity.features import customer_features_as_of
    from tasks import registry

    try:
        model, info = registry.load_model(lake, PROPENSITY, "champion")
    except registry.RegistryError as exc:
        get_logger().warning("No champion for the segment scores: %s", exc)
        return None, None
    config = get_settings().propensity
    last = pd.to_datetime(contacts["contact_date"]).max() if len(contacts) else pd.Timestamp.today()
    requests = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].astype("int64").to_numpy(),
            "as_of": last + pd.Timedelta(days=1),
        }
    )
    rows = customer_features_as_of(
        contacts, customers, requests, config.context_rate_prior, config.context_rate_prior_weight
    )
    p = model.predict_proba(rows)[:, 1]
    return pd.Series(p, index=pd.Index(requests["customer_id"], name="customer_id")), str(info["version"])


# -- publishing ------------------------------------------------------------------------------------


def publish(
    lake: Lake,
    output: analyses.AnalysisOutput,
    as_of: date,
    inputs: list[dict[str, Any]],
    cfg: AnalyticsSettings,
    started_at: str,
) -> dict[str, Any]:
    """Commit ``analytics/<name>/dt=<as_of>/`` (manifest last), then the Prefect markdown artifact."""
    prefix = catalog.analytics(output.name)
    manifest = {
        "table": prefix,
        "analysis": output.name,
        "rows": sum(output.rows.values()),
        "mode": "snapshot",
        "source": "callcast analytics",
        "inputs": inputs,
        "settings": cfg.model_dump(),
        "facts": output.facts,
        "warnings": output.warnings,
        "started_at": started_at,
        "code_version": code_version(),
    }
    meta = {name: {"rows": output.rows[name]} for name in output.files if name in output.rows}
    document = lake.commit_partition(prefix, as_of, dict(output.files), manifest, file_meta=meta)
    location = lake.describe(catalog.partition(prefix, as_of))
    stored = lake.file_entry(document, "report.html")["name"]  # content-addressed stored name
    report = lake.describe(catalog.partition_file(prefix, as_of, stored))
    try:
        from prefect.artifacts import create_markdown_artifact

        facts = [*output.facts, *[f"**Warning:** {w}" for w in output.warnings]]
        create_markdown_artifact(
            key=f"analytics-{output.name}",
            markdown=render_markdown(f"{output.title} — {as_of.isoformat()}", facts, output.images, report),
            description=f"{output.title} ({as_of.isoformat()})",
        )
    except Exception as exc:  # noqa: BLE001 - the committed report matters more than the UI copy
        get_logger().warning("Could not publish the %s artifact: %s", output.name, exc)
    get_logger().info("%s: %s", output.title, report)
    for warning in output.warnings:
        get_logger().warning("%s: %s", output.name, warning)
    return {
        "analysis": output.name,
        "as_of": as_of.isoformat(),
        "location": location,
        "report": report,
        "facts": output.facts,
        "warnings": output.warnings,
        "files": sorted(output.files),
        "rows": output.rows,
    }


def run_analysis(name: str, as_of: date, cfg: AnalyticsSettings, lake: Lake) -> dict[str, Any]:
    """Read the inputs of one analysis, compute it in a scratch folder and commit its outputs."""
    if name not in analyses.ANALYSES:
        raise ValueError(f"Unknown analysis {name!r}; choose one of {', '.join(analyses.ANALYSES)} or 'all'.")
    started = utc_now_iso()
    with tempfile.TemporaryDirectory(prefix=f"callcast-analytics-{name}-") as tmp:
        out_dir = Path(tmp)
        if name == "sales":
            sales, stores, products, inputs, warnings = read_sales_inputs(lake, as_of)
            last = pd.to_datetime(sales["sale_date"]).max().date() if len(sales) else as_of
            forecasts, forecast_day, n_forecasts = read_forecasts(lake, min(last, as_of), as_of)
            if forecast_day is not None:
                inputs.append(_lineage(lake, catalog.forecasts(), forecast_day))
            elif n_forecasts:
                warnings.append(
                    f"{n_forecasts} forecast partition(s) found, none with a forecast date on or before the last "
                    f"sale ({last}): forecast vs actual waits for those periods to close."
                )
            meta = _meta(inputs)
            output = analyses.sales_analysis(
                sales, stores, products, forecasts, forecast_day, cfg, out_dir, as_of, meta
            )
        else:
            customers, contacts, inputs, warnings = read_people(lake, as_of)
            meta = _meta(inputs)
            if name == "segmentation":
                scores, version = champion_scores(lake, customers, contacts)
                output = analyses.segmentation_analysis(
                    customers, contacts, scores, version, cfg, out_dir, as_of, meta
                )
            else:
                lists = read_call_lists(lake, as_of)
                output = analyses.campaign_analysis(customers, contacts, lists, cfg, out_dir, as_of, meta)
        output.warnings[:0] = warnings
        return publish(lake, output, as_of, inputs, cfg, started)


def _meta(inputs: list[dict[str, Any]]) -> str:
    parts: dict[str, list[str]] = {}
    for i in inputs:
        parts.setdefault(i["table"], []).append(i["partition_date"])
    return (
        "Inputs: "
        + "; ".join(
            f"{t} {d[0]}" if len(d) == 1 else f"{t} {len(d)} slices {d[0]}…{d[-1]}" for t, d in parts.items()
        )
        + f". Code {code_version()}."
    )


@task(
    name="analytics",
    task_run_name="analytics-{name}-{as_of}",
    cache_policy=NO_CACHE,
    retries=1,
    retry_delay_seconds=5,
)
def run_analysis_task(
    name: str, as_of: date, cfg: AnalyticsSettings, lake_url: str | None = None
) -> dict[str, Any]:
    """One analysis on the validated exports up to ``as_of``; outputs committed to ``analytics/<name>/dt=…``."""
    return run_analysis(name, as_of, cfg, _lake(lake_url))
