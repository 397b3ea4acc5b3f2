"""A company with its own customer schema, end to end: seed -> export -> checks -> train -> call list -> API.

The operational database has no ``balance`` and two extra customer columns; only the settings say so
(``CALLCAST_CUSTOMERS__*``). Export reflects the table, the checks expect exactly those columns, training uses the
extra ones and never ``balance``, and the call list is scored from rows built with the same columns.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from callcast.database import make_engine

pytestmark = pytest.mark.integration

EXTRA = [{"name": "income_band", "kind": "categorical"}, {"name": "tenure_years", "kind": "numeric"}]


def _variant_database(url: str) -> None:
    from callcast.schema import CustomerSchema
    from demo_company.database import build_demo_database, insert_frame

    engine = make_engine(url)
    build_demo_database(engine, size="tiny", seed=3)
    schema = CustomerSchema(extra_columns=EXTRA, dropped_columns=["balance"])
    with engine.begin() as conn:
        frame = pd.read_sql(sa.text("SELECT * FROM customers ORDER BY customer_id"), conn)
        bought = pd.read_sql(sa.text("SELECT customer_id, y FROM campaign_contacts"), conn)
        conn.execute(sa.text("DROP TABLE customers"))
        table = schema.customers_table(sa.MetaData())
        table.create(conn)
        rng = np.random.default_rng(1)
        yes = frame["customer_id"].isin(bought.loc[bought["y"] == "yes", "customer_id"]).to_numpy()
        frame = frame.drop(columns=["balance"]).assign(
            income_band=np.where(rng.random(len(frame)) < 0.3 + 0.3 * yes, "high", "low"),
            tenure_years=rng.integers(0, 30, len(frame)).astype(float),
        )
        for column in ("created_at",):
            frame[column] = pd.to_datetime(frame[column])
        frame["opted_out"] = frame["opted_out"].astype(bool)
        insert_frame(conn, table, frame[[c.name for c in table.c]])
    engine.dispose()


def test_a_variant_customer_schema_flows_from_export_to_the_call_list(
    prefect_harness, callcast_home, monkeypatch
):
    monkeypatch.setenv("CALLCAST_CUSTOMERS__DROPPED_COLUMNS", '["balance"]')
    monkeypatch.setenv("CALLCAST_CUSTOMERS__EXTRA_COLUMNS", json.dumps(EXTRA))
    _variant_database(f"sqlite:///{callcast_home / 'callcast.db'}")
    from callcast.lake import open_lake
    from flows.export import daily_export
    from flows.score import score_call_list
    from flows.train_propensity import train_propensity
    from flows.validate import validate_exports
    from tasks import registry

    day = date(2010, 11, 30)
    daily_export(partition_date=day, tables=["customers", "campaign_contacts"])
    statuses = validate_exports(partition_date=day, tables=["customers", "campaign_contacts"])
    assert (
        statuses == {"customers": "passed", "campaign_contacts": "passed"}
        or "failed" not in statuses.values()
    )
    trained = train_propensity(profile="quick")
    assert trained["promoted"]
    lake = open_lake()
    model, info = registry.load_model(lake, "propensity", "champion")
    used = info["features"]["categorical"] + info["features"]["numeric"]
    assert "income_band" in used and "tenure_years" in used
    assert not {"balance", "balance_slog"} & set(used)
    assert info["pre_call_columns"]["customers"][-2:] == ["income_band", "tenure_years"]
    scored = score_call_list(partition_date=day)
    assert scored["rows"] > 0 and all(0 <= r["probability"] <= 1 for r in scored["head"])
    # the served model uses the extra column in the direction the data holds
    row = pd.DataFrame([{**scored["head"][0], "contact_date": pd.Timestamp(day), "day": 30, "month": "nov"}])
    rich = row.assign(income_band="high", tenure_years=5.0, age=40, job="admin.", marital="single",
                      education="tertiary", default="no", housing="no", loan="no", contact="cellular",
                      campaign=1, previous=1, poutcome="failure", ctx_volume_7d=0.0, ctx_rate_90d=0.3)  # fmt: skip
    poor = rich.assign(income_band="low")
    assert model.predict_proba(rich)[0, 1] > model.predict_proba(poor)[0, 1]
    # ... and the HTTP API asks for exactly this company's columns and agrees with the model's direction
    from fastapi.testclient import TestClient

    from app.api import create_app
    from callcast.settings import get_settings

    customer = {"age": 40, "job": "admin.", "marital": "single", "education": "tertiary", "default": "no",
                "housing": "no", "loan": "no", "contact": "cellular", "campaign": 1, "previous": 1,
                "poutcome": "failure", "tenure_years": 5.0}  # fmt: skip
    with TestClient(
        create_app(get_settings(), lake, start_reloader=False), base_url="http://127.0.0.1"
    ) as api:
        high = api.post("/score", json={**customer, "income_band": "high"})
        low = api.post("/score", json={**customer, "income_band": "low"})
        assert high.status_code == 200 and low.status_code == 200, high.text
        assert high.json()["probability"] > low.json()["probability"]
        missing = api.post("/score", json=customer)  # an extra column is required
        assert missing.status_code == 422 and "income_band" in missing.text
        dropped = api.post("/score", json={**customer, "income_band": "high", "balance": 100})
        assert dropped.status_code == 422 and "balance" in dropped.text  # the company has no balance
        batch = api.post("/score", json={"customers": [{**customer, "income_band": "high"}] * 3})
        assert batch.status_code == 200 and len(batch.json()["results"]) == 3
