"""The forecast flow end to end: BYO CSV on a real Dask cluster vs in-process, and the demo lake path."""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from demo_company.sales import SalesSimConfig, iter_sales, make_products
from models.forecasting.config import ForecastConfig
from models.forecasting.synthetic import make_weekly_retail

pytestmark = pytest.mark.integration

HEADER = "series_id,date,forecast,lo80,hi80,lo95,hi95,model"


def _lake(home: Path) -> Path:
    return home / "lake"


def _committed(part, logical: str):
    """A committed file of a partition folder, resolved through its manifest (stored names are versioned)."""
    manifest = json.loads((part / "_manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f.get("logical_name", f["name"]) == logical)
    return part / entry["name"]


def test_byo_weekly_csv_on_dask_matches_local_run(
    prefect_harness, callcast_home: Path, tmp_path: Path
) -> None:
    from flows.forecast import forecast_sales

    raw = make_weekly_retail(10, 120, seed=2).rename(
        columns={
            "Store": "shop",
            "Dept": "dept",
            "Date": "week",
            "Weekly_Sales": "sales_eur",
            "IsHoliday": "hol",
        }
    )
    csv = tmp_path / "byo.csv"
    raw.to_csv(csv, index=False)
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = dict(
        csv_path=str(csv), id_cols=["shop", "dept"], date_col="week", value_col="sales_eur", holiday_col="hol",
        freq="W", horizon=8, mlflow_tracking_uri=mlflow_uri, config=ForecastConfig(batch_size=3),
    )  # fmt: skip
    on_dask = forecast_sales(**common, partition_date=date(2026, 1, 1), dask_workers=2)
    local = forecast_sales(**common, partition_date=date(2026, 1, 2), dask_workers=0)

    part = _lake(callcast_home) / "forecasts" / "dt=2026-01-01"
    text = _committed(part, "forecasts.csv").read_text()
    assert text.splitlines()[0] == HEADER
    fc = pd.read_csv(_committed(part, "forecasts.csv"))
    assert len(fc) == 10 * 8 and fc["series_id"].nunique() == 10
    assert set(fc["date"]) == {str((pd.Timestamp(raw["week"].max()) + pd.Timedelta(weeks=k)).date())
                               for k in range(1, 9)}  # fmt: skip
    other = pd.read_csv(_committed(_lake(callcast_home) / "forecasts" / "dt=2026-01-02", "forecasts.csv"))
    pd.testing.assert_frame_equal(fc, other)  # Dask and in-process give the same forecasts

    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["table"] == "forecasts" and manifest["rows"] == 80
    logical = {f.get("logical_name", f["name"]) for f in manifest["files"]}
    assert logical >= {"forecasts.csv", "backtest.json", "backtest_series.csv"}
    assert any(f["name"].endswith(".png") for f in manifest["files"])
    report = json.loads(_committed(part, "backtest.json").read_text())
    assert report["series"] == 10 and report["naive_wmae"] > 0
    series = pd.read_csv(_committed(part, "backtest_series.csv"))
    assert {"wmae", "mase", "smape", "naive_wmae", "model", "reason"} <= set(series.columns)
    assert set(fc["model"]) == set(series["model"])

    assert on_dask["n_series"] == 10 and on_dask["horizon"] == 8
    assert on_dask["task_runner"] == "DaskTaskRunner" and local["task_runner"] == "ThreadPoolTaskRunner"
    assert on_dask["wmae"] == pytest.approx(local["wmae"])
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri)
    run = mlflow.get_run(on_dask["mlflow_run_id"])
    assert run.data.metrics["naive_wmae"] == pytest.approx(report["naive_wmae"])
    assert run.data.params["freq"] == "W"
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        arts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["forecast-backtest"]))
        )
    assert arts and "seasonal naive" in arts[0].data


def _commit_raw(lake, table: str, day: date, frame: pd.DataFrame, types: dict[str, str]) -> None:
    path = Path(tempfile.mkdtemp()) / f"{table}.csv.gz"
    out = frame.copy()
    for col, kind in types.items():
        if kind == "boolean":
            out[col] = out[col].map({True: "true", False: "false"})
    with gzip.open(path, "wt", newline="") as handle:
        out.to_csv(handle, index=False)
    lake.commit_partition(
        f"raw/{table}", day, {f"{table}.csv.gz": path},
        {"table": table, "rows": len(frame), "columns": [{"name": c, "type": types[c]} for c in frame.columns],
         "mode": "incremental" if table == "sales" else "snapshot"},
    )  # fmt: skip
    path.unlink()


def test_demo_lake_daily_sales(prefect_harness, callcast_home: Path, tmp_path: Path) -> None:
    from callcast.lake import open_lake
    from flows.forecast import forecast_sales

    sim = SalesSimConfig(n_stores=2, n_products=6, start=date(2024, 1, 1), n_days=200, seed=3)
    lake = open_lake()
    cut = sim.start + timedelta(days=150)
    sales_types = {"sale_id": "integer", "sale_date": "date", "store_id": "integer", "product_id": "integer",
                   "quantity": "integer", "unit_price": "decimal(10,2)", "revenue": "decimal(12,2)",
                   "on_promotion": "boolean", "is_holiday": "boolean"}  # fmt: skip
    first = pd.concat(iter_sales(sim, sim.start, cut), ignore_index=True)
    second = pd.concat(iter_sales(sim, cut, sim.end, first_sale_id=len(first) + 1), ignore_index=True)
    _commit_raw(lake, "sales", cut - timedelta(days=1), first, sales_types)
    _commit_raw(lake, "sales", sim.end - timedelta(days=1), second, sales_types)
    prod_types = {"product_id": "integer", "name": "text", "category": "text", "unit_price": "decimal(10,2)",
                  "launched_on": "date", "discontinued_on": "date"}  # fmt: skip
    _commit_raw(lake, "products", sim.end - timedelta(days=1), make_products(sim), prod_types)

    summary = forecast_sales(dask_workers=0, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")
    assert summary["partition_date"] == (sim.end - timedelta(days=1)).isoformat()
    fc = lake.read_csv("forecasts", sim.end - timedelta(days=1), "forecasts.csv")
    assert {"1/ALL", "2/ALL"} <= set(fc["series_id"])
    assert fc.groupby("series_id").size().eq(28).all()
    assert pd.to_datetime(fc["date"]).min() == pd.Timestamp(sim.end)
    assert not fc[["forecast", "lo95", "hi95"]].isna().any().any()
    totals = fc[fc["series_id"].str.endswith("/ALL")]
    assert totals["model"].isin(["ets", "stl_ets", "sarimax", "snaive"]).all()
