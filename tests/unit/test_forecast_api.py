"""Forecasts over HTTP: the latest committed partition per series and in batch, 404s that say what to do."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.forecasts import forecast_router
from callcast.lake import Lake
from callcast.storage import LocalStorage
from models.forecasting.engine import FORECAST_COLUMNS


def _commit(lake: Lake, tmp_path: Path, day: date, value: float, prefix: str = "forecasts") -> None:
    path = tmp_path / f"fc-{day}-{value}.csv"
    pd.DataFrame(
        {"series_id": ["1/ALL", "1/ALL", "007"], "date": ["2026-01-01", "2026-01-02", "2026-01-01"],
         "forecast": value, "lo80": value - 1, "hi80": value + 1, "lo95": value - 2, "hi95": value + 2,
         "model": ["seas_ses", "seas_ses", "tsb"]}
    ).to_csv(path, index=False)  # fmt: skip
    cols = [{"name": c, "type": "text" if c in ("series_id", "model") else "float"} for c in FORECAST_COLUMNS]
    lake.commit_partition(prefix, day, {"forecasts.csv": path}, {"table": "forecasts", "columns": cols})


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Lake, TestClient]:
    lake = Lake(LocalStorage(tmp_path / "lake"))
    app = FastAPI()
    app.include_router(forecast_router(lake))
    return lake, TestClient(app)


def test_series_forecast_and_404s(setup, tmp_path: Path) -> None:
    lake, client = setup
    r = client.get("/forecasts/1/ALL")
    assert r.status_code == 404 and "callcast forecast" in r.json()["detail"]
    assert str(tmp_path) not in r.json()["detail"]  # no server paths
    _commit(lake, tmp_path, date(2025, 12, 31), 5.0)
    r = client.get("/forecasts/1/ALL")  # series ids may hold slashes
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "seas_ses" and body["partition_date"] == "2025-12-31"
    assert [row["date"] for row in body["forecasts"]] == ["2026-01-01", "2026-01-02"]
    assert body["forecasts"][0] == {"date": "2026-01-01", "forecast": 5.0, "lo80": 4.0, "hi80": 6.0,
                                    "lo95": 3.0, "hi95": 7.0}  # fmt: skip
    assert client.get("/forecasts/007").json()["model"] == "tsb"  # leading zeros kept
    r = client.get("/forecasts/unknown")
    assert r.status_code == 404 and "unknown" in r.json()["detail"]
    _commit(lake, tmp_path, date(2026, 1, 31), 7.0)  # a newer committed run is served at once
    assert client.get("/forecasts/1/ALL").json()["forecasts"][0]["forecast"] == 7.0


def test_batch_and_namespaces(setup, tmp_path: Path) -> None:
    lake, client = setup
    _commit(lake, tmp_path, date(2025, 12, 31), 5.0)
    _commit(lake, tmp_path, date(2026, 3, 1), 9.0, "forecasts/byo/shop")
    r = client.post("/forecasts/batch", json={"series_ids": ["1/ALL", "007", "nope"]})
    assert r.status_code == 200
    body = r.json()
    assert [x["series_id"] for x in body["results"]] == ["1/ALL", "007"] and body["missing"] == ["nope"]
    assert client.post("/forecasts/batch", json={"series_ids": ["nope"]}).status_code == 404
    assert client.post("/forecasts/batch", json={"series_ids": []}).status_code == 422
    byo = client.get("/forecasts/1/ALL", params={"namespace": "shop"}).json()
    assert byo["partition_date"] == "2026-03-01" and byo["namespace"] == "shop"
    assert client.get("/forecasts/1/ALL").json()["partition_date"] == "2025-12-31"  # company's untouched
    assert client.get("/forecasts/1/ALL", params={"namespace": "other"}).status_code == 404


def test_the_served_app_mounts_the_forecast_routes(tmp_path: Path) -> None:
    from app.api import create_app
    from callcast.settings import get_settings

    lake = Lake(LocalStorage(tmp_path / "lake"))
    _commit(lake, tmp_path, date(2025, 12, 31), 5.0)
    settings = get_settings(home=tmp_path / "home", lake_url=str(tmp_path / "lake"))
    with TestClient(create_app(settings, lake, start_reloader=False), base_url="http://127.0.0.1") as client:
        r = client.get("/forecasts/007")
        assert r.status_code == 200 and r.json()["model"] == "tsb"
        assert client.get("/forecasts/nope").status_code == 404
        assert client.post("/score", json={}).status_code in (422, 503)  # scoring still answers as before
