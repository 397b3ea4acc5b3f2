"""The scoring flow on a small lake: call list committed, latest copy, lineage, endpoint agrees with the batch."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from callcast.lake import open_lake

DAY = date(2010, 11, 30)


@pytest.mark.integration
def test_score_flow_writes_the_call_list_and_the_endpoint_agrees(
    prefect_harness, callcast_home, tmp_path, commit_validated_partition
):
    from fastapi.testclient import TestClient

    from app.api import create_app
    from callcast.settings import get_settings
    from demo_company.bank import bank_tables, load_bank_full
    from flows.score import score_call_list
    from models.propensity.config import PropensityConfig
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table
    from tasks import registry

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

    summary = score_call_list(capacity=200)
    listed = pd.read_csv(summary["path"], keep_default_na=False)
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
    assert listed["reasons"].str.len().gt(0).mean() > 0.5
    buyers = set(contacts.loc[contacts["y"] == "yes", "customer_id"])
    opted = set(customers.loc[customers["opted_out"], "customer_id"])
    assert not (set(listed["customer_id"]) & (buyers | opted))
    assert summary["expected_sales"] > summary["random_expected"] > 0

    manifest = lake.read_manifest("call_lists", DAY)
    assert manifest["model_version"] == "v0001" and manifest["rows"] == 200
    assert {i["table"] for i in manifest["inputs"]} == {"customers", "campaign_contacts"}
    assert all(len(i["manifest_sha256"]) == 64 for i in manifest["inputs"])
    assert Path(summary["latest"]).read_bytes() == Path(summary["path"]).read_bytes()

    # The endpoint gives the same probability and decile for the same customers.
    history = contacts.set_index("customer_id")
    sample = listed.iloc[[0, 50, 199]]
    request = []
    for cid in sample["customer_id"]:
        c, h = customers.set_index("customer_id").loc[cid], history.loc[cid]
        request.append(
            {"customer_id": int(cid), **{k: c[k] for k in ("job", "marital", "education", "default",
                                                          "housing", "loan")},
             "age": int(c["age"]), "balance": int(c["balance"]), "contact": h["contact"],
             "campaign": int(h["campaign"]), "previous": int(h["previous"]), "poutcome": h["poutcome"]}
        )  # fmt: skip
    with TestClient(create_app(get_settings(), lake, start_reloader=False), base_url="http://127.0.0.1") as client:
        results = client.post("/score", json={"customers": request}).json()["results"]
    assert [r["probability"] for r in results] == sample["probability"].tolist()
    assert [r["decile"] for r in results] == sample["decile"].tolist()

    # Same list when the chunks are scored on a 2-worker local Dask cluster.
    again = score_call_list(capacity=200, use_dask=True)
    assert Path(again["path"]).read_bytes() == Path(summary["path"]).read_bytes()
