"""The monitoring flow on a small lake: contract of drift.json, report, artifact, event, settings honoured."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pytest

from callcast import catalog
from callcast.lake import open_lake

DAY = date(2010, 11, 30)
CONTRACT_KEYS = {"model", "partition_date", "drift_detected", "features", "prediction_psi", "performance"}


@pytest.fixture
def small_lake(callcast_home, commit_validated_partition):
    """A validated export of 1 in 4 UCI customers and a champion trained on it (lineage recorded)."""
    from demo_company.bank import bank_tables, load_bank_full
    from models.propensity.config import PropensityConfig
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table
    from tasks import registry

    customers, contacts = bank_tables(seed=3, bank=load_bank_full().iloc[::4].reset_index(drop=True))
    lake = open_lake()
    commit_validated_partition(lake, "customers", customers, DAY)
    commit_validated_partition(lake, "campaign_contacts", contacts, DAY)
    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == "logreg/context_engineered")
    table = build_training_table(customers, contacts)
    model = build_pipeline(candidate, config).fit(table, table["y"].to_numpy())
    fs = config.feature_sets[candidate.feature_set]
    registry.register_model(
        lake,
        "propensity",
        model,
        {
            "candidate": candidate.name,
            "features": {"categorical": fs.categorical, "numeric": fs.numeric},
            "metrics": {"within_date_auc": 0.7},
            "inputs": [{"table": "customers", "partition_date": DAY.isoformat()}],
        },
    )
    registry.set_alias(lake, "propensity", "champion", "v0001")
    return lake, customers, contacts


def _shifted(customers, share=0.6, seed=1):
    rng = np.random.default_rng(seed)
    moved = customers.copy()
    pick = rng.random(len(moved)) < share
    moved.loc[pick, "balance"] = (moved.loc[pick, "balance"] * 0.2).round().astype(int)
    moved.loc[pick, "age"] = (moved.loc[pick, "age"] + 12).clip(upper=95)
    return moved


def _artifact_markdown(key: str) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC
        )
    return found[0].data if found else ""


@pytest.mark.integration
def test_monitoring_flow_reports_stable_then_drift_and_emits_the_event(
    prefect_harness, small_lake, commit_validated_partition
):
    from flows.monitor import monitor_propensity

    lake, customers, contacts = small_lake
    first = monitor_propensity(partition_date=DAY)
    doc = first["document"]
    assert (
        set(doc) >= CONTRACT_KEYS
        and doc["model"] == "propensity"
        and doc["partition_date"] == DAY.isoformat()
    )
    assert doc["drift_detected"] is False and first["event_emitted"] is False
    assert {"name", "psi", "statistic", "p_value", "drifted"} <= set(doc["features"][0])
    assert all(f["psi"] < 1e-9 for f in doc["features"])  # the reference is this very population
    assert {"realised", "estimated"} <= set(doc["performance"]) and doc["performance"]["realised"] is None
    assert lake.storage.exists(catalog.monitoring_reference("propensity", "v0001"))
    stored = json.loads(lake.read_bytes(catalog.monitoring("propensity"), DAY, "drift.json"))
    assert stored["partition_date"] == DAY.isoformat()
    assert "<html" in lake.read_bytes(catalog.monitoring("propensity"), DAY, "drift.html").decode()

    day = DAY + timedelta(days=1)
    commit_validated_partition(lake, "customers", _shifted(customers), day)
    commit_validated_partition(lake, "campaign_contacts", contacts.head(0), day)
    second = monitor_propensity(partition_date=day)
    doc = second["document"]
    drifted = {f["name"] for f in doc["features"] if f["drifted"]}
    assert doc["drift_detected"] is True and second["event_emitted"] is True
    assert "age" in drifted and any(r.startswith("feature age") for r in doc["reasons"])
    assert not {"job", "marital", "education"} & drifted  # untouched columns stay quiet
    html = lake.read_bytes(catalog.monitoring("propensity"), day, "drift.html").decode()
    assert html.count("data:image/png;base64,") >= 2  # a chart per drifting feature (+ performance)
    markdown = _artifact_markdown("monitoring-propensity")
    assert "DRIFT DETECTED" in markdown and "data:image/png;base64," in markdown


@pytest.mark.integration
def test_settings_decide_the_alarm(prefect_harness, small_lake, commit_validated_partition, monkeypatch):
    from flows.monitor import monitor_propensity

    lake, customers, contacts = small_lake
    monitor_propensity(partition_date=DAY)
    day = DAY + timedelta(days=1)
    commit_validated_partition(lake, "customers", _shifted(customers), day)
    commit_validated_partition(lake, "campaign_contacts", contacts.head(0), day)
    monkeypatch.setenv("CALLCAST_MONITORING__MIN_SAMPLE", "1000000")  # more rows than scored: no alarm
    doc = monitor_propensity(partition_date=day)["document"]
    assert doc["drift_detected"] is False and any("minimum 1,000,000" in n for n in doc["notes"])
    monkeypatch.delenv("CALLCAST_MONITORING__MIN_SAMPLE")
    monkeypatch.setenv("CALLCAST_MONITORING__PERSISTENCE_DAYS", "2")
    monkeypatch.setenv("CALLCAST_MONITORING__PSI_ACT", "0.2")
    doc = monitor_propensity(partition_date=day)["document"]
    # yesterday's run (the min-sample one) raised no alarm, so today's alarm waits for a second day
    assert doc["alarm_today"] and doc["status"] == "pending" and not doc["drift_detected"]
    assert doc["thresholds"]["psi_act"] == 0.2


@pytest.mark.integration
def test_forecast_monitoring_compares_committed_forecasts_with_arriving_sales(
    prefect_harness, callcast_home, commit_validated_partition, tmp_path
):
    import pandas as pd

    from demo_company.database import sales_config
    from demo_company.sales import iter_sales, make_products
    from flows.monitor import monitor_forecasts
    from models.forecasting.data import prepare_demo_series

    lake = open_lake()
    cfg = sales_config("tiny", 5)
    sales = pd.concat(list(iter_sales(cfg, chunk_days=30)), ignore_index=True)
    products = make_products(cfg)
    day = pd.to_datetime(sales["sale_date"]).max().date()
    origin = day - timedelta(days=14)
    commit_validated_partition(lake, "sales", sales, day)
    commit_validated_partition(lake, "products", products, day)
    series = prepare_demo_series(sales, products, "D")
    after = series[pd.to_datetime(series["date"]) > pd.Timestamp(origin)]

    def commit_forecasts(error_scale: float) -> None:
        rng = np.random.default_rng(0)
        fc = after[["series_id", "date"]].copy()
        fc["forecast"] = after["y"].to_numpy() + rng.normal(0, 1.0, len(after)) * error_scale
        fc["lo80"], fc["hi80"] = fc["forecast"] - 1.3, fc["forecast"] + 1.3
        fc["lo95"], fc["hi95"], fc["model"] = fc["forecast"] - 2, fc["forecast"] + 2, "test"
        backtest = pd.DataFrame({"series_id": after["series_id"].unique(), "wmae": 0.8})
        files = {
            "forecasts.csv": tmp_path / "forecasts.csv",
            "backtest_series.csv": tmp_path / "backtest_series.csv",
        }
        fc.to_csv(files["forecasts.csv"], index=False)
        backtest.to_csv(files["backtest_series.csv"], index=False)
        lake.commit_partition(catalog.forecasts(), origin, files, {"table": "forecasts"})

    commit_forecasts(1.0)
    calm = monitor_forecasts(partition_date=day)["document"]
    assert calm["model"] == "forecast" and calm["forecast_partition"] == origin.isoformat()
    assert calm["drift_detected"] is False and calm["performance"]["realised"]["cells"] >= 100
    assert 0.7 < calm["performance"]["realised"]["error_ratio"] < 1.4
    commit_forecasts(4.0)  # the same forecasts, four times as wrong
    worse = monitor_forecasts(partition_date=day)
    assert worse["document"]["drift_detected"] is True and worse["event_emitted"] is True
    assert all(g["drifted"] for g in worse["document"]["features"])
