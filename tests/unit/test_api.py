"""The scoring endpoint with FastAPI's TestClient: validation, auth, body limit, hot swap, tampered champions."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.api import create_app
from callcast.lake import Lake
from callcast.settings import get_settings
from callcast.storage import LocalStorage
from tasks import registry

CUSTOMER = {
    "customer_id": 42, "age": 35, "job": "management", "marital": "married", "education": "tertiary",
    "default": "no", "balance": 1200, "housing": "no", "loan": "no", "contact": "cellular", "campaign": 1,
    "previous": 2, "poutcome": "success",
}  # fmt: skip


@pytest.fixture(scope="module")
def pipelines():
    """Two small fitted champions (logistic regression on different samples of the UCI data)."""
    from demo_company.bank import bank_tables, load_bank_full
    from models.propensity.config import PropensityConfig
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table

    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == "logreg/context")
    out = []
    for offset in (0, 1):
        customers, contacts = bank_tables(
            seed=3, bank=load_bank_full().iloc[offset::15].reset_index(drop=True)
        )
        table = build_training_table(customers, contacts)
        out.append(build_pipeline(candidate, config).fit(table, table["y"].to_numpy()))
    return out


def _settings(tmp_path: Path, **api):
    settings = get_settings(lake_url=str(tmp_path / "lake"))
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)})


def _lake_with(tmp_path: Path, model) -> Lake:
    lake = Lake(LocalStorage(tmp_path / "lake"))
    registry.register_model(lake, "propensity", model, {"candidate": "logreg/context"})
    registry.set_alias(lake, "propensity", "champion", registry.list_versions(lake, "propensity")[-1])
    return lake


def _client(tmp_path: Path, lake: Lake, base_url: str = "http://127.0.0.1", **api) -> TestClient:
    """A client whose requests arrive on ``base_url``'s address (the ASGI scope's ``server``)."""
    return TestClient(create_app(_settings(tmp_path, **api), lake, start_reloader=False), base_url=base_url)


def test_scores_one_customer_and_a_batch_consistently(tmp_path, pipelines):
    lake = _lake_with(tmp_path, pipelines[0])
    with _client(tmp_path, lake) as client:
        one = client.post("/score", json=CUSTOMER)
        assert one.status_code == 200
        body = one.json()
        assert body["customer_id"] == 42 and body["model_version"] == "v0001" and 0 < body["probability"] < 1
        assert body["decile"] is None  # no batch scoring has stored cut points yet
        batch = client.post("/score", json={"customers": [CUSTOMER, {**CUSTOMER, "poutcome": "failure"}]})
        results = batch.json()["results"]
        assert results[0]["probability"] == body["probability"]
        assert results[1]["probability"] < results[0]["probability"]
        assert client.get("/model").json()["version"] == "v0001"
        assert client.get("/health").json()["status"] == "ok"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({**CUSTOMER, "job": "astronaut"}, ["body", "job"]),
        ({**CUSTOMER, "age": 7}, ["body", "age"]),
        ({k: v for k, v in CUSTOMER.items() if k != "housing"}, ["body", "housing"]),
        ({**CUSTOMER, "duration": 300}, ["body", "duration"]),  # leaks the outcome: refused, not ignored
        ({"customers": [CUSTOMER, {**CUSTOMER, "balance": "lots"}]}, ["body", "customers", 1, "balance"]),
        ({"customers": []}, ["body", "customers"]),
        ([1, 2], ["body"]),
    ],
)
def test_invalid_input_is_a_422_naming_the_field(tmp_path, pipelines, payload, field):
    with _client(tmp_path, _lake_with(tmp_path, pipelines[0])) as client:
        response = client.post("/score", json=payload)
    assert response.status_code == 422
    assert field in [e["loc"] for e in response.json()["detail"]]


def test_malformed_json_is_422_and_oversized_body_is_413(tmp_path, pipelines):
    with _client(tmp_path, _lake_with(tmp_path, pipelines[0]), max_body_bytes=2048) as client:
        bad = client.post("/score", content=b'{"age": ', headers={"content-type": "application/json"})
        assert bad.status_code == 422
        big = client.post("/score", json={"customers": [CUSTOMER] * 50})
        assert big.status_code == 413


def test_api_key_is_required_beyond_loopback(tmp_path, pipelines):
    from callcast.errors import ConfigurationError

    lake = _lake_with(tmp_path, pipelines[0])
    with pytest.raises(ConfigurationError, match="API key"):
        create_app(_settings(tmp_path, host="0.0.0.0"), lake, start_reloader=False)
    with _client(tmp_path, lake, host="0.0.0.0", api_key=SecretStr("s3cret")) as client:
        assert client.post("/score", json=CUSTOMER).status_code == 401
        assert client.get("/model", headers={"X-API-Key": "wrong"}).status_code == 401
        assert client.post("/score", json=CUSTOMER, headers={"X-API-Key": "s3cret"}).status_code == 200
    with _client(tmp_path, lake) as client:  # loopback: no key needed
        assert client.post("/score", json=CUSTOMER).status_code == 200


def test_new_champion_is_picked_up_and_a_tampered_one_is_refused(tmp_path, pipelines):
    lake = _lake_with(tmp_path, pipelines[0])
    app = create_app(_settings(tmp_path), lake, start_reloader=False)
    holder = app.state.holder
    with TestClient(app, base_url="http://127.0.0.1") as client:
        before = client.post("/score", json=CUSTOMER).json()
        _lake_with(tmp_path, pipelines[1])  # v0002 promoted
        assert holder.refresh() is True
        after = client.post("/score", json=CUSTOMER).json()
        assert after["model_version"] == "v0002" and after["probability"] != before["probability"]

        registry.register_model(lake, "propensity", pipelines[0], {"candidate": "logreg/context"})
        registry.set_alias(lake, "propensity", "champion", "v0003")
        lake.storage.put_bytes("registry/propensity/v0003/model.pkl", b"not the registered pickle")
        assert holder.refresh() is False
        still = client.post("/score", json=CUSTOMER).json()
        assert still["model_version"] == "v0002"  # keeps serving the last good model
        health = client.get("/health").json()
        assert health["status"] == "degraded" and "ModelIntegrityError" in health["last_reload_error"]


def test_access_log_has_no_customer_data(tmp_path, pipelines, caplog):
    with _client(tmp_path, _lake_with(tmp_path, pipelines[0])) as client:
        with caplog.at_level(logging.INFO, logger="callcast.api.access"):
            client.post("/score?phone=+351912345678", json=CUSTOMER)
    lines = [r.getMessage() for r in caplog.records if r.name == "callcast.api.access"]
    assert lines and '"POST /score" 200' in lines[-1]
    assert all("management" not in line and "351912345678" not in line for line in lines)


def _bank_requests(n: int) -> list[dict]:
    """Single-customer request bodies from UCI rows; every fourth one without history (never contacted)."""
    from demo_company.bank import load_bank_full

    cols = ["age", "job", "marital", "education", "default", "balance", "housing", "loan", "contact",
            "campaign", "previous", "poutcome"]  # fmt: skip
    rows = load_bank_full().iloc[::97].head(n)[cols].to_dict("records")
    out = []
    for i, row in enumerate(rows):
        body = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        if i % 4 == 0:
            for k in ("contact", "campaign", "previous", "poutcome"):
                body.pop(k)
        out.append({"customer_id": i + 1, **body})
    return out


def _batch_expectation(model, bodies: list[dict], context: dict, cuts: list[float]):
    """What the call list would say: models.call_list's rows, predict, rounding and deciles."""
    import pandas as pd

    from models.call_list import PROBABILITY_DIGITS, assign_deciles, predict, scoring_rows

    records = pd.DataFrame([{**b, "customer_id": 0} for b in bodies])
    p = predict(model, scoring_rows(records, context))
    return [round(float(x), PROBABILITY_DIGITS) for x in p], assign_deciles(p, cuts).tolist()


def test_compiled_scorer_serves_the_batch_answers(tmp_path, pipelines):
    from callcast import catalog

    lake = _lake_with(tmp_path, pipelines[0])
    context = {
        "call_date": "2026-03-17",
        "day": 17,
        "month": "mar",
        "ctx_volume_7d": 240.0,
        "ctx_rate_90d": 0.21,
    }
    bodies = _bank_requests(120)
    probabilities, _ = _batch_expectation(pipelines[0], bodies, context, [])
    cuts = [float(c) for c in np.quantile(probabilities, [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])]
    lake.write_json(catalog.serving_context("propensity", "v0001"), {**context, "decile_cuts": cuts})
    expected_p, expected_d = _batch_expectation(pipelines[0], bodies, context, cuts)
    with _client(tmp_path, lake) as client:
        assert client.get("/model").json()["scorer"].startswith("compiled")
        singles = [client.post("/score", json=b).json() for b in bodies]
        batch = client.post("/score", json={"customers": bodies}).json()["results"]  # > INLINE_ROWS: batcher
    assert [r["probability"] for r in singles] == expected_p
    assert [r["decile"] for r in singles] == expected_d and len(set(expected_d)) == 10
    assert batch == singles
    assert [r["customer_id"] for r in singles] == list(range(1, 121))


def test_a_model_that_does_not_compile_is_served_by_the_pipeline(tmp_path, pipelines):
    from sklearn.ensemble import RandomForestClassifier

    from demo_company.bank import bank_tables, load_bank_full
    from models.propensity.config import PropensityConfig
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table

    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == "random_forest/context")
    customers, contacts = bank_tables(seed=3, bank=load_bank_full().iloc[::15].reset_index(drop=True))
    table = build_training_table(customers, contacts)
    forest = build_pipeline(candidate, config).set_params(model__estimator__n_estimators=5)
    forest.fit(table, table["y"].to_numpy())
    assert isinstance(forest.named_steps["model"].estimator_, RandomForestClassifier)
    lake = _lake_with(tmp_path, forest)
    bodies = _bank_requests(8)
    with _client(tmp_path, lake) as client:
        model = client.get("/model").json()
        results = [client.post("/score", json=b).json() for b in bodies]
    assert model["scorer"].startswith("pipeline") and "RandomForestClassifier" in model["scorer"]
    expected, _ = _batch_expectation(forest, bodies, model["scoring_context"], [])
    assert [r["probability"] for r in results] == expected


def test_no_champion_is_a_503_that_says_what_to_do(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    with _client(tmp_path, lake) as client:
        response = client.post("/score", json=CUSTOMER)
        assert response.status_code == 503 and "callcast train" in response.json()["detail"]
        assert str(tmp_path) not in response.text  # server paths stay in the log
        assert client.post("/score", json={**CUSTOMER, "age": 7}).status_code == 422  # validation first
        assert client.get("/health").json()["status"] == "unavailable"


def test_key_rule_follows_the_address_a_request_arrived_on(tmp_path, pipelines):
    """Configured for loopback but reached on another address (uvicorn --host 0.0.0.0): never served openly."""
    lake = _lake_with(tmp_path, pipelines[0])
    with _client(tmp_path, lake, base_url="http://192.0.2.10") as client:  # in-process; no traffic leaves
        refused = client.post("/score", json=CUSTOMER)
        assert refused.status_code == 403 and "CALLCAST_API__API_KEY" in refused.json()["detail"]
        assert client.get("/model").status_code == 403
    with _client(tmp_path, lake, base_url="http://192.0.2.10", api_key=SecretStr("s3cret")) as client:
        assert client.post("/score", json=CUSTOMER).status_code == 401
        assert client.post("/score", json=CUSTOMER, headers={"X-API-Key": "s3cret"}).status_code == 200


def test_hostile_bodies_get_422_not_500(tmp_path, pipelines):
    lake = _lake_with(tmp_path, pipelines[0])
    with _client(tmp_path, lake, max_body_bytes=2_000_000) as client:
        deep = client.post("/score", content=b"[" * 200_000 + b"]" * 200_000)
        assert deep.status_code == 422 and "nested too deeply" in deep.text
        for field in ("campaign", "age", "previous"):
            as_bool = client.post("/score", json={**CUSTOMER, field: True})
            assert as_bool.status_code == 422 and field in as_bool.text
        assert client.post("/score", json={**CUSTOMER, "age": "35"}).status_code == 422
        assert client.post("/score", json=CUSTOMER).status_code == 200
