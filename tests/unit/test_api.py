"""The scoring endpoint with FastAPI's TestClient: validation, auth, body limit, hot swap, tampered champions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from callcast.api import create_app
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
    from callcast.demo.bank import bank_tables, load_bank_full
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


def _client(tmp_path: Path, lake: Lake, **api) -> TestClient:
    return TestClient(create_app(_settings(tmp_path, **api), lake, start_reloader=False))


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
    with TestClient(app) as client:
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
