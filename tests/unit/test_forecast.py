"""Forecasting model code: horizon, intervals, fallback rules, accuracy, BYO-CSV preparation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demo_company.sales import SalesSimConfig, iter_sales, make_products
from models.forecasting.config import ForecastConfig
from models.forecasting.data import (
    SeriesFrameSpec,
    iter_series,
    prepare_demo_series,
    prepare_series,
    read_sales_csv,
)
from models.forecasting.engine import FORECAST_COLUMNS, backtest_frame, forecast_frame, plan_series
from models.forecasting.metrics import mase, smape, wmae
from models.forecasting.report import overall_report, per_series_report
from models.forecasting.synthetic import make_weekly_retail

WEEKLY = SeriesFrameSpec(["Store", "Dept"], "Date", "Weekly_Sales", ["IsHoliday"], "W")
CFG = ForecastConfig(holiday_column="IsHoliday")


def weekly_frame(values: dict[str, np.ndarray], start: str = "2021-01-01") -> pd.DataFrame:
    """A prepared weekly frame from raw arrays (one series per key)."""
    rows = []
    for sid, y in values.items():
        dates = pd.date_range(start, periods=len(y), freq="7D")
        rows.append(pd.DataFrame({"series_id": sid, "date": dates, "y": np.asarray(y, float)}))
    return pd.concat(rows, ignore_index=True)


def run(frame: pd.DataFrame, cfg: ForecastConfig = CFG, freq: str = "W") -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics, choices = backtest_frame(frame, cfg, freq)
    forecasts, _ = forecast_frame(frame, choices, cfg, freq)
    return forecasts, choices.set_index("series_id")


@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    return prepare_series(make_weekly_retail(30, 140, seed=4), WEEKLY, CFG)


@pytest.fixture(scope="module")
def retail_run(retail: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    metrics, choices = backtest_frame(retail, CFG, "W")
    forecasts, _ = forecast_frame(retail, choices, CFG, "W")
    return metrics, choices, forecasts


def test_horizon_dates_and_columns(retail: pd.DataFrame, retail_run) -> None:
    _, _, fc = retail_run
    assert list(fc.columns) == FORECAST_COLUMNS
    assert fc.groupby("series_id").size().eq(13).all()
    assert set(fc["series_id"]) == set(retail["series_id"])
    last = retail["date"].max()
    expected = [last + pd.Timedelta(weeks=k) for k in range(1, 14)]
    for _, g in fc.groupby("series_id"):
        assert list(g["date"]) == expected


def test_no_nan_and_intervals_ordered(retail_run) -> None:
    _, _, fc = retail_run
    values = fc[["forecast", "lo80", "hi80", "lo95", "hi95"]]
    assert not values.isna().any().any()
    assert (fc["lo95"] <= fc["lo80"]).all() and (fc["lo80"] <= fc["forecast"]).all()
    assert (fc["forecast"] <= fc["hi80"]).all() and (fc["hi80"] <= fc["hi95"]).all()
    assert (fc["lo95"] >= 0).all()  # sales are counts/amounts: clipped at zero
    assert (fc["hi95"] - fc["lo95"] > 0).mean() > 0.9  # real intervals, not points


def test_daily_horizon_and_dates() -> None:
    rng = np.random.default_rng(1)
    n = 200
    t = np.arange(n)
    y = 20 + 8 * (t % 7 == 5) + rng.poisson(3, n)
    frame = pd.DataFrame(
        {"series_id": "a", "date": pd.date_range("2024-01-01", periods=n), "y": y.astype(float)}
    )
    fc, choices = run(frame, ForecastConfig(holiday_column=None), "D")
    assert len(fc) == 28 and not fc.isna().any().any()
    assert list(fc["date"]) == list(pd.date_range("2024-07-19", periods=28))
    assert choices.loc["a", "model"] in {"ets", "stl_ets", "sarimax", "snaive"}


def test_fallback_rules() -> None:
    rng = np.random.default_rng(2)
    n = 140
    t = np.arange(n)
    regular = 100 + 30 * np.sin(2 * np.pi * t / 52) + rng.normal(0, 3, n)
    sparse = np.where(rng.random(n) < 0.8, 0.0, rng.poisson(4, n))
    negative = regular - 150 * (rng.random(n) < 0.1)
    negative[n - 50] = -40.0  # a week of returns inside the season the forecast repeats
    frame = weekly_frame({"zero": np.zeros(n), "short": regular[:60], "tiny": regular[:20], "sparse": sparse,
                          "negative": negative, "regular": regular, "short_sparse": sparse[:50]})  # fmt: skip
    fc, choices = run(frame)
    got = choices["model"].to_dict()
    assert got["zero"] == "zero" and choices.loc["zero", "reason"] == "all-zero history"
    assert got["short"] == "snaive" and choices.loc["short", "reason"].startswith("short history")
    assert got["tiny"] == "mean"  # shorter than one season
    assert got["sparse"] == "mean" and choices.loc["sparse", "reason"].startswith("intermittent")
    assert got["negative"] == "snaive" and choices.loc["negative", "reason"] == "negative values"
    assert got["short_sparse"] == "mean"  # intermittent wins over short
    assert (
        got["regular"] in {"ets", "stl_ets", "sarimax", "snaive"} and not choices.loc["regular", "fallback"]
    )
    by = fc.groupby("series_id")
    assert (by.get_group("zero")[["forecast", "hi95"]] == 0).all().all()
    assert np.allclose(by.get_group("tiny")["forecast"], regular[:20][-13:].mean())
    assert np.allclose(by.get_group("short")["forecast"], regular[:60][-52:-39])
    neg_hist = negative[-52:-39]
    assert neg_hist.min() < 0
    assert np.allclose(by.get_group("negative")["forecast"], neg_hist)  # returns are not clipped away
    assert set(fc["model"]) == set(got.values())  # the output says which model each series got


def test_planted_seasonal_pattern_beats_naive() -> None:
    rng = np.random.default_rng(3)
    n, h = 156, 13
    t = np.arange(n + h)
    pattern = 200 + 60 * np.sin(2 * np.pi * t / 52) + 25 * np.cos(4 * np.pi * t / 52)
    y = pattern + rng.normal(0, 8, n + h)
    frame = weekly_frame({"s": y[:n]})
    fc, choices = run(frame, ForecastConfig(holiday_column=None))
    actual = y[n:]
    model_mae = np.mean(np.abs(fc["forecast"].to_numpy() - actual))
    naive_mae = np.mean(np.abs(y[n - 1] - actual))  # last value carried forward
    snaive_mae = np.mean(np.abs(y[n - 52 : n - 52 + h] - actual))
    assert choices.loc["s", "model"] != "snaive"
    assert model_mae < 0.5 * naive_mae
    assert model_mae < snaive_mae


def test_chosen_models_beat_seasonal_naive_in_backtest(retail_run) -> None:
    metrics, choices, _ = retail_run
    overall = overall_report(per_series_report(metrics, choices))
    assert overall["series_backtested"] == 30
    assert overall["wmae"] < overall["naive_wmae"]
    assert overall["mase"] < overall["naive_mase"]


def test_byo_csv_with_renamed_columns_weekly(tmp_path: Path) -> None:
    raw = make_weekly_retail(4, 120, seed=9).rename(
        columns={
            "Store": "shop",
            "Dept": "department",
            "Date": "week_ending",
            "Weekly_Sales": "amount",
            "IsHoliday": "holiday_week",
        }  # fmt: skip
    )
    raw = raw.drop(index=[5, 6])  # missing weeks are zero sales
    raw["holiday_week"] = raw["holiday_week"].map({True: "TRUE", False: "FALSE"})
    path = tmp_path / "sales.csv"
    raw.to_csv(path, index=False)
    spec = SeriesFrameSpec(["shop", "department"], "week_ending", "amount", ["holiday_week"], "W")
    cfg = ForecastConfig(holiday_column="holiday_week", calendar_regressors=["holiday_week"])
    frame = prepare_series(read_sales_csv(path, spec), spec, cfg)
    assert sorted(frame["series_id"].unique()) == ["1/1", "1/2", "1/3", "1/4"]
    assert frame.groupby("series_id").size().eq(120).all()
    assert frame["date"].diff().dropna().isin([pd.Timedelta(days=7), -pd.Timedelta(days=7 * 119)]).all()
    first = frame[frame["series_id"] == "1/1"].reset_index(drop=True)
    assert first.loc[[5, 6], "y"].eq(0).all()
    assert first.loc[[5, 6], "holiday_week"].to_list() == raw.loc[raw["department"] == 2, "holiday_week"].iloc[
        [5, 6]].eq("TRUE").astype(float).to_list()  # fmt: skip
    assert frame["holiday_week"].sum() > 0
    fc, _ = run(frame, cfg)
    assert len(fc) == 4 * 13 and not fc.isna().any().any()


def test_csv_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    pd.DataFrame({"store": [1], "day": ["2024-01-01"], "units": [3]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"\['sales'\] not found"):
        read_sales_csv(path, SeriesFrameSpec(["store"], "day", "sales", [], "D"))


def test_daily_rows_asked_weekly_are_summed_into_whole_weeks() -> None:
    dates = pd.date_range("2024-01-01", "2024-03-13")  # Monday .. a Wednesday
    df = pd.DataFrame({"id": "x", "day": dates, "v": 1.0})
    frame = prepare_series(df, SeriesFrameSpec(["id"], "day", "v", [], "W"))
    assert frame["y"].eq(7.0).all()  # the unfinished last week is dropped
    assert frame["date"].dt.day_of_week.eq(0).all() and len(frame) == 10


def test_future_holidays_repeat_last_year() -> None:
    n = 120
    flags = np.zeros(n)
    flags[[40, 92]] = 1.0  # 52 weeks apart
    frame = weekly_frame({"s": np.arange(n, dtype=float)}).assign(IsHoliday=flags)
    s = next(iter_series(frame))
    inp = s.input(n, 13, "W", CFG)
    assert inp.X_future[:, 0].tolist() == [0.0] * 13  # weeks 120..132 map to 68..80: no holiday
    inp2 = s.input(100, 13, "W", CFG)  # weeks 100..112 map to 48..60; none flagged there either
    assert inp2.X_future.sum() == 0
    inp3 = s.input(90, 13, "W", CFG)  # week 92 maps to week 40 (flagged)
    assert inp3.X_future[2, 0] == 1.0 and inp3.X_future.sum() == 1.0


def test_metrics() -> None:
    a, f = np.array([0.0, 10.0, 20.0]), np.array([0.0, 12.0, 16.0])
    assert wmae(a, f) == pytest.approx(2.0)
    assert wmae(a, f, np.array([1.0, 1.0, 5.0])) == pytest.approx((2 + 20) / 7)
    assert smape(a, f) == pytest.approx(100 * (0 + 4 / 22 + 8 / 36) / 3)
    assert mase(a, f, 4.0) == pytest.approx(0.5)
    assert np.isnan(mase(a, f, 0.0))


def test_demo_sales_become_zero_filled_series_within_product_life() -> None:
    sim = SalesSimConfig(n_stores=2, n_products=12, start=date(2024, 1, 1), n_days=300, seed=5,
                         launch_share=0.3, discontinue_share=0.3)  # fmt: skip
    sales = pd.concat(iter_sales(sim), ignore_index=True)
    products = make_products(sim)
    frame = prepare_demo_series(sales, products, "D")
    last = pd.Timestamp(sim.end) - pd.Timedelta(days=1)
    assert frame.groupby("series_id")["date"].max().eq(last).all()
    assert {"1/ALL", "2/ALL"} <= set(frame["series_id"])
    totals = frame[frame["series_id"] == "1/ALL"].set_index("date")["y"]
    store1 = sales[sales["store_id"] == 1].groupby("sale_date")["quantity"].sum()
    assert totals.sum() == store1.sum()
    dead = products[products["discontinued_on"].notna() & (products["discontinued_on"] <= sim.end)]
    late = products[products["launched_on"] > sim.start]
    assert len(dead) and len(late)
    assert not frame["series_id"].isin([f"1/{p}" for p in dead["product_id"]]).any()
    starts = frame.groupby("series_id")["date"].min()
    for pid, launched in zip(late["product_id"], late["launched_on"], strict=True):
        if f"1/{pid}" in starts:
            assert starts[f"1/{pid}"] == pd.Timestamp(launched)
    full = frame.groupby("series_id").size()
    assert full[full.index.str.endswith("/ALL")].eq(sim.n_days).all()
    assert (frame["y"] == 0).any()  # omitted zero days are back as zeros
    item = frame[~frame["series_id"].str.endswith("/ALL")]
    assert item["on_promotion"].isin([0.0, 1.0]).all() and item["on_promotion"].mean() > 0


def test_plan_requires_history_for_the_backtest() -> None:
    s = next(iter_series(weekly_frame({"s": np.ones(CFG.min_history("W"))})))
    assert not plan_series(s, CFG, "W").fallback
    s2 = next(iter_series(weekly_frame({"s": np.ones(CFG.min_history("W") - 1)})))
    assert plan_series(s2, CFG, "W").models == ["snaive"]
