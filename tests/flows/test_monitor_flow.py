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
