"""The scoring flow on a small lake: call list + workbook committed, latest pointer, delivery, lineage, the
endpoint agrees with the batch, settings reach scoring as they reach training, refusals publish nothing."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from callcast import catalog
from callcast.lake import open_lake

DAY = date(2010, 11, 30)


@pytest.mark.integration
def test_score_flow_writes_the_call_list_and_the_endpoint_agrees(
    prefect_harness, callcast_home, tmp_path, commit_validated_partition, monkeypatch
):
    from fastapi.testclient import TestClient
    from openpyxl import load_workbook

    from app.api import create_app
    from callcast.settings import get_settings
    from demo_company.bank import bank_tables, load_bank_full
    from flows.score import score_call_list
    from models.call_list import CallListRefused
    from models.propensity.config import PropensityConfig
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table
    from tasks import registry, scoring
    from tasks.training import build_training_table_task

    delivery = tmp_path / "phone-team"
    monkeypatch.setenv("CALLCAST_SCORING__DELIVERY_DIR", str(delivery))
    monkeypatch.setenv("CALLCAST_PROPENSITY__CONTEXT_RATE_PRIOR", "0.9")
    monkeypatch.setenv("CALLCAST_PROPENSITY__CONTEXT_RATE_PRIOR_WEIGHT", "500")
    customers, contacts = bank_tables(seed=3, bank=load_bank_full().iloc[::10].reset_index(drop=True))
    lake = open_lake()
    commit_validated_partition(lake, "customers", customers, DAY)
    commit_validated_partition(lake, "campaign_contacts", contacts, DAY)
    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == "hist_gb/context")
    table = build_training_table(customers, contacts)
    model = build_pipeline(candidate, config).fit(table, table["y"].to_numpy())
    registry.register_model(lake, "propensity", model, {"candidate": candidate.name})
    registry.set_alias(lake, "propensity", "champion", "v0001")

    # refusals first: nothing is published
    for bad in ({"capacity": 0}, {"call_date": date(1900, 1, 1)}, {"partition_date": date(2010, 12, 1)}):
        with pytest.raises(CallListRefused):
            score_call_list(**{"partition_date": DAY, "capacity": 200, **bad})
    assert not lake.storage.list(catalog.call_lists() + "/") and not delivery.exists()

    summary = score_call_list(partition_date=DAY, capacity=200)
    data = Path(summary["path"]).read_bytes()
    listed = pd.read_csv(io.BytesIO(data), keep_default_na=False)
    assert list(listed.columns) == [
        "rank",
        "customer_id",
        "name",
        "phone",
        "probability",
        "decile",
        "reasons",
        "model_version",
    ]
    assert len(listed) == summary["rows"] == 200
    assert listed["rank"].tolist() == list(range(1, 201))
    assert listed["probability"].is_monotonic_decreasing and (listed["model_version"] == "v0001").all()
    assert listed["reasons"].str.len().gt(0).mean() > 0.5 and listed["reasons"].nunique() > 10
    buyers = set(contacts.loc[contacts["y"] == "yes", "customer_id"])
    opted = set(customers.loc[customers["opted_out"], "customer_id"])
    assert not (set(listed["customer_id"]) & (buyers | opted))
    assert summary["expected_sales"] > summary["random_expected"] > 0
    assert summary["headline"].startswith(f"200 calls for {summary['call_date']}: expect")

    manifest = lake.read_manifest(catalog.call_lists(), DAY)
    assert manifest["model_version"] == "v0001" and manifest["rows"] == 200
    assert {i["table"] for i in manifest["inputs"]} == {"customers", "campaign_contacts"}
    assert all(len(i["manifest_sha256"]) == 64 for i in manifest["inputs"])
    assert Path(summary["latest"]).read_bytes() == data == scoring.read_latest_call_list(lake)
    book = load_workbook(summary["delivered_to"])
    assert [r[2] for r in book["calls"].iter_rows(min_row=2, values_only=True)] == listed["name"].tolist()

    # The endpoint gives the same probability and decile for the same customers (history as of the call date).
    from models import call_list as rules
    from models.propensity.features import latest_contacts

    call_date = date.fromisoformat(summary["call_date"])
    sample = listed.iloc[[0, 50, 199]]
    chosen = customers.set_index("customer_id").loc[sample["customer_id"]].reset_index()
    rows = rules.scoring_rows_as_of(chosen, latest_contacts(contacts), call_date, get_settings().propensity)
    request = [
        {"customer_id": int(r["customer_id"]), **{k: r[k] for k in ("job", "marital", "education", "default",
         "housing", "loan", "contact", "poutcome")}, **{k: int(r[k]) for k in ("age", "balance", "campaign",
         "previous")}}
        for r in rows.to_dict("records")
    ]  # fmt: skip
    app = create_app(get_settings(), lake, start_reloader=False)
    with TestClient(app, base_url="http://127.0.0.1") as client:  # a loopback request: no API key needed
        response = client.post("/score", json={"customers": request})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["probability"] for r in results] == sample["probability"].tolist()
    assert [r["decile"] for r in results] == sample["decile"].tolist()

    # Same list when the chunks are scored on a 2-worker local Dask cluster.
    again = score_call_list(partition_date=DAY, capacity=200, use_dask=True)
    assert Path(again["path"]).read_bytes() == data

    # Capacity and chunk size from the settings: five chunks give the one-chunk list byte for byte
    assert summary["chunks"] == 1
    monkeypatch.setenv("CALLCAST_SCORING__CAPACITY", "200")
    monkeypatch.setenv("CALLCAST_SCORING__CHUNK_ROWS", "1000")
    chunked = score_call_list(partition_date=DAY)
    assert chunked["chunks"] == 5 and Path(chunked["path"]).read_bytes() == data

    # CALLCAST_SCORING__FALLBACK_TO_LAST_GOOD allows a stale list (the export of 2010-12-01 is missing)
    monkeypatch.setenv("CALLCAST_SCORING__FALLBACK_TO_LAST_GOOD", "true")
    stale = score_call_list(partition_date=date(2010, 12, 1), capacity=200)
    assert stale["stale_days"] == 1 and stale["partition_date"] == DAY.isoformat()
    monkeypatch.delenv("CALLCAST_SCORING__FALLBACK_TO_LAST_GOOD")

    # A propensity setting override reaches scoring as it reaches training: rebuild the list for a historical
    # call date; its serving context equals the training rows' context on that date (both read the settings).
    historical = pd.Timestamp(table["contact_date"].iloc[len(table) // 2]).date()
    score_call_list(partition_date=DAY, capacity=50, call_date=historical, cooloff_days=0)
    serving = lake.read_json(catalog.serving_context("propensity", "v0001"))
    built = build_training_table_task.fn(str(tmp_path), None, None)
    trained = pd.read_pickle(built["table_path"])
    on_day = trained[trained["contact_date"] == pd.Timestamp(historical)]
    assert len(on_day) and serving["call_date"] == historical.isoformat()
    assert serving["ctx_rate_90d"] == pytest.approx(float(on_day["ctx_rate_90d"].iloc[0]), abs=1e-12)
    assert serving["ctx_volume_7d"] == float(on_day["ctx_volume_7d"].iloc[0])
    default = table[table["contact_date"] == pd.Timestamp(historical)]["ctx_rate_90d"].iloc[0]
    assert abs(serving["ctx_rate_90d"] - default) > 0.05  # the override changed the feature
