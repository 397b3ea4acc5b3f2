"""The forecast flow end to end: BYO CSV on a real Dask cluster vs in-process, settings honoured, BYO output
isolated from the company's, the demo lake path."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from demo_company.sales import SalesSimConfig, iter_sales, make_products
from models.forecasting.config import ForecastConfig
from models.forecasting.synthetic import make_weekly_retail

pytestmark = pytest.mark.integration

HEADER = "series_id,date,forecast,lo80,hi80,lo95,hi95,model"
BYO_COLUMNS = dict(
    id_cols=["shop", "dept"], date_col="week", value_col="sales_eur", holiday_col="hol", freq="W"
)


def _lake(home: Path) -> Path:
    return home / "lake"


def _byo_csv(tmp_path: Path, n: int = 10, weeks: int = 120, name: str = "byo") -> Path:
    raw = make_weekly_retail(n, weeks, seed=2).rename(
        columns={
            "Store": "shop",
            "Dept": "dept",
            "Date": "week",
            "Weekly_Sales": "sales_eur",
            "IsHoliday": "hol",
        }
    )
    csv = tmp_path / f"{name}.csv"
    raw.to_csv(csv, index=False)
    return csv


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_byo_weekly_csv_on_dask_matches_local_run(
    prefect_harness, callcast_home: Path, tmp_path: Path
) -> None:
    from flows.forecast import forecast_sales

    csv = _byo_csv(tmp_path)
    last = pd.read_csv(csv)["week"].max()
    mlflow_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    common = dict(csv_path=str(csv), **BYO_COLUMNS, horizon=8, mlflow_tracking_uri=mlflow_uri,
                  config=ForecastConfig(batch_size=3, dask_min_series=0))  # fmt: skip
    on_dask = forecast_sales(**common, namespace="on-dask", dask_workers=2)
    local = forecast_sales(**common, namespace="local", dask_workers=0)

    from callcast.lake import open_lake

    lake = open_lake()
    day = date.fromisoformat(last)
    prefix = "forecasts/byo/on-dask"
    assert on_dask["partition_date"] == last and on_dask["location"].endswith(f"{prefix}/dt={last}")
    assert lake.partitions(prefix) == [day]  # named by the data's last date
    text = lake.read_bytes(prefix, day, "forecasts.csv").decode()
    assert text.splitlines()[0] == HEADER
    fc = lake.read_csv(prefix, day, "forecasts.csv")
    assert len(fc) == 10 * 8 and fc["series_id"].nunique() == 10
    assert {str(pd.Timestamp(d).date()) for d in fc["date"]} == {
        str((pd.Timestamp(last) + pd.Timedelta(weeks=k)).date()) for k in range(1, 9)
    }
    other = lake.read_csv("forecasts/byo/local", day, "forecasts.csv")
    pd.testing.assert_frame_equal(fc, other)  # Dask and in-process give the same forecasts
    assert lake.partitions("forecasts") == []  # never the company's

    manifest = lake.read_manifest(prefix, day)
    assert manifest["table"] == "forecasts" and manifest["rows"] == 80 and manifest["namespace"] == "on-dask"
    assert {f.get("logical_name", f["name"]) for f in manifest["files"]} >= {"forecasts.csv", "backtest.json", "backtest_series.csv",
                                                       "interval_calibration.json"}  # fmt: skip
    assert any(f["name"].endswith(".png") for f in manifest["files"])
    report = json.loads(lake.read_bytes(prefix, day, "backtest.json"))
    assert report["series"] == 10 and report["naive_wmae"] > 0
    assert {"wmae_ratio", "share_beating_naive", "median_mase", "coverage80", "coverage95"} <= set(report)
    series = pd.read_csv(io.BytesIO(lake.read_bytes(prefix, day, "backtest_series.csv")))
    assert {"wmae", "mase", "naive_wmae", "model", "reason"} <= set(series.columns)
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


def _demo_lake(sim: SalesSimConfig, commit) -> None:
    """Two validated sales slices and a products snapshot, written with the export's own encoder."""
    from callcast.lake import open_lake

    lake = open_lake()
    cut = sim.start + timedelta(days=150)
    first = pd.concat(iter_sales(sim, sim.start, cut), ignore_index=True)
    second = pd.concat(iter_sales(sim, cut, sim.end, first_sale_id=len(first) + 1), ignore_index=True)
    commit(lake, "sales", first, cut - timedelta(days=1))
    commit(lake, "sales", second, sim.end - timedelta(days=1))
    commit(lake, "products", make_products(sim), sim.end - timedelta(days=1))


def test_demo_lake_daily_sales_then_byo_leaves_company_forecasts_identical(
    prefect_harness,
    callcast_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    commit_validated_partition,
) -> None:
    from callcast.lake import open_lake
    from flows.forecast import forecast_sales
    from tasks.forecasting import read_forecasts

    sim = SalesSimConfig(n_stores=2, n_products=6, start=date(2024, 1, 1), n_days=200, seed=3)
    _demo_lake(sim, commit_validated_partition)
    mlflow_uri = f"sqlite:///{tmp_path / 'm.db'}"
    summary = forecast_sales(dask_workers=0, mlflow_tracking_uri=mlflow_uri)
    day = sim.end - timedelta(days=1)
    assert summary["partition_date"] == day.isoformat() and summary["task_runner"] == "ThreadPoolTaskRunner"
    lake = open_lake()
    fc = lake.read_csv("forecasts", day, "forecasts.csv")
    assert {"1/ALL", "2/ALL"} <= set(fc["series_id"])
    assert fc.groupby("series_id").size().eq(28).all()
    assert pd.to_datetime(fc["date"]).min() == pd.Timestamp(sim.end)
    assert not fc[["forecast", "lo95", "hi95"]].isna().any().any()
    totals = fc[fc["series_id"].str.endswith("/ALL")]
    assert not totals["model"].isin(["mean", "zero"]).any()

    company = _lake(callcast_home) / "forecasts" / f"dt={day}"
    before = _digests(company)
    csv = _byo_csv(tmp_path, n=4, weeks=110, name="my shop")
    byo = forecast_sales(csv_path=str(csv), **BYO_COLUMNS, mlflow_tracking_uri=mlflow_uri)
    again = forecast_sales(csv_path=str(csv), **BYO_COLUMNS, mlflow_tracking_uri=mlflow_uri)  # same data
    assert _digests(company) == before  # the company's forecasts are byte-identical
    assert byo["location"] == again["location"] and "forecasts/byo/my_shop/dt=" in byo["location"]
    assert lake.partitions("forecasts/byo/my_shop") == [date.fromisoformat(byo["partition_date"])]
    assert lake.partitions("forecasts") == [day]  # BYO partitions never count as the company's

    # The reader the API serves: latest committed partition, one series or several, unknown ones listed.
    got = read_forecasts(["1/ALL", "nope"])
    assert got["partition_date"] == day.isoformat() and got["missing"] == ["nope"]
    rows = got["series"]["1/ALL"]
    assert len(rows) == 28 and {"date", "forecast", "lo80", "hi95", "model"} <= set(rows[0])
    assert read_forecasts(["1/1"], namespace="my shop")["series"]["1/1"][0]["date"] > byo["partition_date"]


def test_horizon_setting_reaches_the_flow(
    prefect_harness, callcast_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.forecast import forecast_sales

    monkeypatch.setenv("CALLCAST_FORECAST__HORIZON", "5")
    monkeypatch.setenv("CALLCAST_FORECAST__CANDIDATES", '["seas_ses", "snaive_cal"]')
    csv = _byo_csv(tmp_path, n=3, weeks=110)
    summary = forecast_sales(
        csv_path=str(csv), **BYO_COLUMNS, mlflow_tracking_uri=f"sqlite:///{tmp_path / 'm.db'}"
    )
    from callcast.lake import open_lake

    fc = open_lake().read_csv(
        "forecasts/byo/byo", date.fromisoformat(summary["partition_date"]), "forecasts.csv"
    )
    assert summary["horizon"] == 5 and fc.groupby("series_id").size().eq(5).all()
    assert set(fc["model"]) <= {"seas_ses", "snaive_cal", "snaive", "mean", "zero"}
    assert forecast_sales(csv_path=str(csv), **BYO_COLUMNS, horizon=3, folds=1,
                          mlflow_tracking_uri=f"sqlite:///{tmp_path / 'm.db'}")["horizon"] == 3  # fmt: skip
