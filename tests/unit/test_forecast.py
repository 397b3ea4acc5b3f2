"""Forecasting model code: horizon, intervals, fallback rules, short/negative/intermittent series, pooling,
moving holidays, calibration, settings, BYO-CSV preparation."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from demo_company.sales import RetailPanelConfig, SalesSimConfig, iter_sales, make_products, make_retail_panel
from models.forecasting.candidates import BASELINES
from models.forecasting.config import INTERMITTENT_MODELS, ForecastConfig
from models.forecasting.data import (
    SeriesFrameSpec,
    calendar,
    iter_series,
    prepare_demo_series,
    prepare_series,
    read_sales_csv,
    write_batches,
)
from models.forecasting.engine import (
    FORECAST_COLUMNS,
    backtest_frame,
    calibrate,
    forecast_frame,
    plan_series,
)
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


def run(
    frame: pd.DataFrame, cfg: ForecastConfig = CFG, freq: str = "W"
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Backtest, calibrate and forecast: (forecasts, choices by series, metrics)."""
    metrics, choices, resid = backtest_frame(frame, cfg, freq)
    forecasts, _ = forecast_frame(frame, choices, cfg, freq, calibrate(resid, cfg.horizon_for(freq)))
    return forecasts, choices.set_index("series_id"), metrics


def seasonal_series(n: int, seed: int, level: float = 200.0, noise: float = 8.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 60 * np.sin(2 * np.pi * t / 52) + 25 * np.cos(4 * np.pi * t / 52) + rng.normal(0, noise, n)


@pytest.fixture(scope="module")
def retail() -> pd.DataFrame:
    return prepare_series(make_weekly_retail(30, 140, seed=4), WEEKLY, CFG)


@pytest.fixture(scope="module")
def retail_run(retail: pd.DataFrame):
    return run(retail)


def test_horizon_dates_and_columns(retail: pd.DataFrame, retail_run) -> None:
    fc, _, _ = retail_run
    assert list(fc.columns) == FORECAST_COLUMNS
    assert fc.groupby("series_id").size().eq(13).all()
    assert set(fc["series_id"]) == set(retail["series_id"])
    last = retail["date"].max()
    expected = [last + pd.Timedelta(weeks=k) for k in range(1, 14)]
    for _, g in fc.groupby("series_id"):
        assert list(g["date"]) == expected


def test_no_nan_and_intervals_ordered(retail_run) -> None:
    fc, _, _ = retail_run
    values = fc[["forecast", "lo80", "hi80", "lo95", "hi95"]]
    assert not values.isna().any().any()
    assert (fc["lo95"] <= fc["lo80"]).all() and (fc["lo80"] <= fc["forecast"]).all()
    assert (fc["forecast"] <= fc["hi80"]).all() and (fc["hi80"] <= fc["hi95"]).all()


def test_daily_horizon_and_dates() -> None:
    rng = np.random.default_rng(1)
    n = 200
    t = np.arange(n)
    y = 20 + 8 * (t % 7 == 5) + rng.poisson(3, n)
    frame = pd.DataFrame(
        {"series_id": "a", "date": pd.date_range("2024-01-01", periods=n), "y": y.astype(float)}
    )
    fc, choices, _ = run(frame, ForecastConfig(holiday_column=None), "D")
    assert len(fc) == 28 and not fc.isna().any().any()
    assert list(fc["date"]) == list(pd.date_range("2024-07-19", periods=28))
    assert choices.loc["a", "model"] not in ("mean", "zero")


@pytest.mark.parametrize("horizon", [13, 39, 60])
def test_two_year_weekly_series_gets_a_fitted_model(horizon: int) -> None:
    frame = weekly_frame({"s": seasonal_series(104, 3)})
    fc, choices, metrics = run(frame, ForecastConfig(holiday_column=None, horizon=horizon))
    assert choices.loc["s", "model"] not in BASELINES, choices.loc["s", "reason"]
    assert not choices.loc["s", "fallback"]
    assert len(fc) == horizon
    assert set(metrics["model"]) > {"snaive", "snaive_cal"}  # models proper backtested against seasonal naive
    assert metrics["points"].min() >= 13  # in folds of at least a third of the horizon


def test_one_negative_week_is_modelled_and_not_clipped() -> None:
    y = seasonal_series(130, 5)
    y[100] = -40.0  # a week of returns
    frame = weekly_frame({"neg": y})
    fc, choices, _ = run(frame, ForecastConfig(holiday_column=None))
    assert choices.loc["neg", "model"] not in BASELINES, choices.loc["neg", "reason"]
    assert not choices.loc["neg", "fallback"]
    assert np.isfinite(fc[["forecast", "lo95", "hi95"]].to_numpy()).all()


def intermittent_series(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(n) < 0.25, rng.gamma(2.0, 3.0, n), 0.0).round(1)


def test_intermittent_series_get_an_intermittent_method_never_worse_than_naive() -> None:
    frame = weekly_frame({f"i{k}": intermittent_series(120, k) for k in range(6)})
    _, choices, metrics = run(frame, ForecastConfig(holiday_column=None))
    by = metrics.set_index(["series_id", "model"])["wmae"]
    assert choices["model"].isin(INTERMITTENT_MODELS).sum() >= 4
    for sid, row in choices.iterrows():
        if row["model"] in INTERMITTENT_MODELS:
            assert row["reason"].startswith("intermittent")
        else:
            assert row["model"] == "snaive" and "beat" in row["reason"]  # the stated reason
        assert by[(sid, row["model"])] <= by[(sid, "snaive")]  # never worse than seasonal naive


def test_intermittent_series_where_naive_wins_keeps_naive_with_a_reason() -> None:
    # Sales only in the same week every year: seasonal naive is perfect, Croston is not.
    y = np.zeros(156)
    y[[10, 62, 114]] = 50.0
    y[[30, 82, 134]] = 20.0
    _, choices, metrics = run(
        weekly_frame({"x": y}), ForecastConfig(holiday_column=None, folds=2, horizon=26)
    )
    row = choices.loc["x"]
    by = metrics.set_index("model")["wmae"]
    assert by[row["model"]] <= by["snaive"]
    assert row["model"] == "snaive" and "beat" in row["reason"]


def test_intervals_never_zero_width_on_varying_series() -> None:
    rng = np.random.default_rng(8)
    regular = seasonal_series(120, 9)
    neg = regular - 150 * (rng.random(120) < 0.1)
    frame = weekly_frame({"regular": regular, "neg": neg, "sparse": intermittent_series(120, 3),
                          "short": regular[:30], "tiny": regular[:6], "flat": np.full(120, 7.0),
                          "zero": np.zeros(120)})  # fmt: skip
    fc, choices, _ = run(frame, ForecastConfig(holiday_column=None))
    assert choices.loc["zero", "model"] == "zero" and choices.loc["flat", "model"] == "mean"
    for sid, g in fc.groupby("series_id"):
        if sid in ("zero", "flat"):
            continue
        assert (g["hi95"] - g["lo95"] > 0).all(), sid
        assert (g["hi80"] - g["lo80"] > 0).all(), sid
    assert set(fc["model"]) == set(choices["model"])  # the output says which model each series got


def test_short_series_are_modelled_without_a_season() -> None:
    frame = weekly_frame({"short": seasonal_series(40, 2)})
    fc, choices, _ = run(frame, ForecastConfig(holiday_column=None))
    assert choices.loc["short", "model"] in ("ses", "mean")
    assert choices.loc["short", "reason"].startswith(("short history", "mean beat"))
    assert len(fc) == 13


def test_planted_seasonal_pattern_beats_naive() -> None:
    rng = np.random.default_rng(3)
    n, h = 156, 13
    y = seasonal_series(n + h, 3) + rng.normal(0, 1, n + h)
    fc, choices, _ = run(weekly_frame({"s": y[:n]}), ForecastConfig(holiday_column=None))
    actual = y[n:]
    model_mae = np.mean(np.abs(fc["forecast"].to_numpy() - actual))
    snaive_mae = np.mean(np.abs(y[n - 52 : n - 52 + h] - actual))
    assert choices.loc["s", "model"] != "snaive"
    assert model_mae < snaive_mae


def test_pooled_seasonality_helps_noisy_panel() -> None:
    """Twelve stores share a department's yearly shape; each series is noisy: the pooled model wins."""
    rng = np.random.default_rng(4)
    n, h = 104 + 26, 26
    t = np.arange(n)
    shape = 60 * np.sin(2 * np.pi * t / 52) + 30 * np.cos(6 * np.pi * t / 52)
    values = {f"{k}/d": 300 * (1 + 0.1 * k) + shape * (1 + 0.1 * k) + rng.normal(0, 25, n) for k in range(12)}
    full = weekly_frame(values).assign(group="d")
    train = full[full["date"] <= full["date"].max() - pd.Timedelta(weeks=h)]
    cfg = ForecastConfig(holiday_column=None, horizon=h)
    errors = {}
    for model in ("seas_ses", "seas_lowrank", "snaive"):
        fc, _ = forecast_frame(train, pd.DataFrame({"series_id": list(values), "model": model}), cfg, "W")
        j = fc.merge(full, on=["series_id", "date"])
        errors[model] = float((j["forecast"] - j["y"]).abs().mean())
    assert errors["seas_lowrank"] < errors["seas_ses"] < errors["snaive"]


def test_moving_holidays_follow_the_calendar() -> None:
    """Walmart-style flags (weeks ending Friday): Thanksgiving and Easter weeks are found, not 52 weeks back."""
    ends = pd.date_range("2021-02-05", periods=104, freq="7D")
    flags = np.array([any(d in {date(2021, 11, 25), date(2022, 11, 24), date(2021, 12, 25), date(2022, 12, 25)}
                          for d in pd.date_range(e - pd.Timedelta(days=6), e).date) for e in ends])  # fmt: skip
    fut = pd.date_range(ends[-1] + pd.Timedelta(days=7), periods=52, freq="7D")
    keys, fut_flags, explained = calendar(ends, flags, fut, "W")
    assert explained == 1.0
    flagged = fut[fut_flags]
    assert pd.Timestamp("2023-11-24") in flagged  # week holding Thanksgiving 2023-11-23
    assert pd.Timestamp("2023-12-29") in flagged  # week holding Christmas 2023 (53 weeks after 2022's)
    assert len(flagged) == 2
    # Easter moves from 2022-04-17 to 2023-04-09: both weeks share one seasonal key, unlike lag 52.
    all_dates = ends.append(fut)
    k_2022 = keys[all_dates.get_loc(pd.Timestamp("2022-04-22"))]
    k_2023 = keys[all_dates.get_loc(pd.Timestamp("2023-04-14"))]
    assert k_2022 == k_2023 >= 52
    assert keys[all_dates.get_loc(pd.Timestamp("2023-04-21"))] < 52  # 52 weeks after Easter 2022: regular


def test_easter_effect_is_forecast_in_the_right_week() -> None:
    """Easter lifts its own week; the calendar-aware models put next year's lift on next year's Easter week."""
    ends = pd.date_range("2021-01-08", periods=160, freq="7D")
    rng = np.random.default_rng(0)
    easter_weeks = {pd.Timestamp(x) for x in ("2021-04-09", "2022-04-22", "2023-04-14")}  # weeks ending Fri
    y = 100 + rng.normal(0, 2, len(ends)) + np.array([80.0 if e in easter_weeks else 0.0 for e in ends])
    frame = pd.DataFrame({"series_id": "e", "date": ends, "y": y})
    cut = pd.Timestamp("2023-01-06")
    train = frame[frame["date"] <= cut]
    cfg = ForecastConfig(holiday_column=None, horizon=26)
    fc, _ = forecast_frame(train, pd.DataFrame({"series_id": ["e"], "model": ["seas_ses"]}), cfg, "W")
    peak = fc.loc[fc["forecast"].idxmax(), "date"]
    # Week ending Fri 2023-04-14 starts Sat 04-08 and holds Easter Sunday 04-09 (stamped as week start here
    # the calendar reads the week [date, date + 7)); either way the lift lands on the 2023 Easter week.
    assert abs((peak - pd.Timestamp("2023-04-14")).days) <= 7
    assert peak != pd.Timestamp("2023-04-21")  # not 52 weeks after 2022's Easter week


def test_calibrated_intervals_on_a_holdout() -> None:
    raw = make_retail_panel(RetailPanelConfig(n_stores=3, n_depts=40, seed=5))
    frame = prepare_series(raw, WEEKLY, CFG)
    cut = frame["date"].max() - pd.Timedelta(weeks=26)
    train, test = frame[frame["date"] <= cut], frame[frame["date"] > cut]
    cfg = CFG.model_copy(update={"horizon": 26})
    fc, _, _ = run(train, cfg)
    j = fc.merge(test, on=["series_id", "date"])
    c80 = ((j["y"] >= j["lo80"]) & (j["y"] <= j["hi80"])).mean()
    c95 = ((j["y"] >= j["lo95"]) & (j["y"] <= j["hi95"])).mean()
    assert 0.72 <= c80 <= 0.9 and 0.88 <= c95 <= 0.99


def test_chosen_models_beat_seasonal_naive_in_backtest(retail_run) -> None:
    _, choices, metrics = retail_run
    overall = overall_report(per_series_report(metrics, choices.reset_index()))
    assert overall["series_backtested"] == 30
    assert overall["wmae_ratio"] < 1.0
    assert overall["median_mase"] < overall["naive_median_mase"]
    assert overall["share_beating_naive"] > 0.5 and not overall["baseline_warning"]


def test_report_warns_when_many_series_fall_back() -> None:
    frame = weekly_frame({f"z{k}": np.zeros(60) for k in range(3)} | {"s": seasonal_series(120, 1)})
    _, choices, metrics = run(frame, ForecastConfig(holiday_column=None))
    overall = overall_report(per_series_report(metrics, choices.reset_index()))
    assert overall["baseline_warning"] and overall["baseline_reasons"] == {"all-zero history": 3}
    assert overall["share_modelled"] == 0.25


def test_settings_horizon_reaches_the_forecast(monkeypatch: pytest.MonkeyPatch) -> None:
    from callcast.settings import get_settings
    from flows.forecast import run_config

    monkeypatch.setenv("CALLCAST_FORECAST__HORIZON", "5")
    monkeypatch.setenv("CALLCAST_FORECAST__FOLDS", "1")
    cfg = run_config(get_settings().forecast)
    assert cfg.horizon == 5 and cfg.folds == 1
    fc, _, metrics = run(weekly_frame({"s": seasonal_series(120, 1)}), cfg)
    assert fc.groupby("series_id").size().eq(5).all()
    assert metrics["points"].max() == 5  # one fold of 5 periods
    assert run_config(cfg, horizon=7, candidates=["seas_ses"]).candidates == ["seas_ses"]


def test_batches_keep_pools_together(retail: pd.DataFrame) -> None:
    paths = write_batches(retail, Path(__import__("tempfile").mkdtemp()), 7)
    groups = [set(pd.read_parquet(p)["group"]) for p in paths]
    seen: set[str] = set()
    for g in groups:
        assert not (g & seen) or len(g) == 1  # a pool is split only when larger than a batch
        seen |= g


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
    assert set(frame["group"]) == {"1", "2", "3", "4"}  # pools: the last id column
    first = frame[frame["series_id"] == "1/1"].reset_index(drop=True)
    assert first.loc[[5, 6], "y"].eq(0).all()
    assert frame["holiday_week"].sum() > 0
    fc, _, _ = run(frame, cfg)
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


def test_plan_rules() -> None:
    cfg = ForecastConfig(holiday_column=None)
    frame = weekly_frame({"zero": np.zeros(60), "sparse": intermittent_series(80, 1),
                          "short": seasonal_series(40, 1), "full": seasonal_series(104, 1)})  # fmt: skip
    plans = {s.series_id: plan_series(s, cfg, "W") for s in iter_series(frame)}
    assert plans["zero"].fallback and plans["zero"].models == ["zero"]
    assert plans["sparse"].kind == "intermittent" and set(plans["sparse"].models[1:]) <= set(
        INTERMITTENT_MODELS
    )
    assert plans["short"].kind == "short" and plans["short"].models == ["mean", "ses"]
    assert plans["full"].models[0] == "snaive" and "seas_ses" in plans["full"].models


def test_forecast_reader_serves_the_latest_committed_partition(tmp_path: Path) -> None:
    from callcast.errors import PartitionNotFoundError
    from callcast.lake import open_lake
    from callcast.settings import get_settings
    from tasks.forecasting import ForecastReader

    lake = open_lake(get_settings(lake_url=str(tmp_path / "lake")))
    reader = ForecastReader(lake)
    with pytest.raises(PartitionNotFoundError, match="callcast forecast"):
        reader.read(["1/ALL"])

    def commit(day: date, value: float, prefix: str = "forecasts") -> None:
        path = tmp_path / f"fc-{day}-{value}.csv"
        rows = pd.DataFrame({"series_id": ["1/ALL", "1/ALL", "007"], "date": ["2026-01-01", "2026-01-02"] * 1
                             + ["2026-01-01"], "forecast": value, "lo80": value - 1, "hi80": value + 1,
                             "lo95": value - 2, "hi95": value + 2, "model": "seas_ses"})  # fmt: skip
        rows.to_csv(path, index=False)
        cols = [
            {"name": c, "type": "text" if c in ("series_id", "model") else "float"} for c in FORECAST_COLUMNS
        ]
        lake.commit_partition(prefix, day, {"forecasts.csv": path}, {"table": "forecasts", "columns": cols,
                                                                     "horizon": 2})  # fmt: skip

    commit(date(2025, 12, 31), 5.0)
    got = reader.read(["1/ALL", "007", "nope"])
    assert got["partition_date"] == "2025-12-31" and got["missing"] == ["nope"] and got["horizon"] == 2
    assert [r["forecast"] for r in got["series"]["1/ALL"]] == [5.0, 5.0]
    assert got["series"]["007"][0]["date"] == "2026-01-01"  # ids keep their leading zeros
    commit(date(2026, 1, 31), 7.0)  # a newer run is served from the next call on
    assert reader.read(["1/ALL"])["series"]["1/ALL"][0]["forecast"] == 7.0
    commit(date(2026, 2, 28), 9.0, "forecasts/byo/shop")  # BYO namespaces are separate
    assert reader.read(["1/ALL"])["partition_date"] == "2026-01-31"
    assert reader.read(["1/ALL"], namespace="shop")["series"]["1/ALL"][0]["forecast"] == 9.0


# ---------------------------------------------------------------------- every setting changes behaviour
def _pool_frame(k: int = 6, n: int = 104, seed: int = 11) -> pd.DataFrame:
    """A pool of noisy series sharing one yearly shape (one department across stores)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    shape = 50 * np.sin(2 * np.pi * t / 52)
    values = {f"{i}/d": 200 + (1 + 0.2 * i) * shape + rng.normal(0, 30, n) for i in range(k)}
    values["0/d"][60] = -500.0  # a week of returns
    return weekly_frame(values).assign(group="d")


def _settings_cfg(monkeypatch: pytest.MonkeyPatch, **env: str) -> ForecastConfig:
    from callcast.settings import get_settings
    from flows.forecast import run_config

    for key, value in env.items():
        monkeypatch.setenv(f"CALLCAST_FORECAST__{key}", value)
    return run_config(get_settings().forecast.model_copy(update={"holiday_column": None}))


def _pooled(r: dict) -> bool:
    return bool(r["choices"]["reason"].str.contains("of pool").any())


def _forced(frame: pd.DataFrame, cfg: ForecastConfig, model: str, calib: dict | None = None) -> pd.DataFrame:
    ids = frame["series_id"].drop_duplicates()
    return forecast_frame(frame, pd.DataFrame({"series_id": ids, "model": model}), cfg, "W", calib)[0]


@pytest.mark.parametrize(
    "env, check",
    [
        ({"SELECTION": "series"}, lambda r: _pooled(r["base"]) and not _pooled(r)),
        ({"MIN_SERIES_POINTS": "1"}, lambda r: _pooled(r["base"]) and not _pooled(r)),
        ({"LOWRANK_RANK": "1"}, lambda r: not np.allclose(r["lowrank"], r["base"]["lowrank"])),
        ({"SEASON_SMOOTH": "0"}, lambda r: not np.allclose(r["seas"], r["base"]["seas"])),
        ({"STL_ROBUST": "false"}, lambda r: not np.allclose(r["stl"], r["base"]["stl"])),
        ({"INTERVAL_METHOD": "model"}, lambda r: not np.allclose(r["width"], r["base"]["width"])),
        ({"INTERVAL_SCALING": "level"}, lambda r: not np.allclose(r["width"], r["base"]["width"])),
        ({"MIN_FOLD_HORIZON": "30"}, lambda r: r["short_points"] != r["base"]["short_points"]),
        (
            {"NAIVE_GUARD": "true"},
            lambda r: (
                (r["choices"]["model"] == "snaive").sum() > (r["base"]["choices"]["model"] == "snaive").sum()
            ),
        ),  # fmt: skip
    ],
)
def test_forecast_settings_change_behaviour(monkeypatch: pytest.MonkeyPatch, env: dict, check) -> None:
    frame = _pool_frame()
    short = weekly_frame({"short": seasonal_series(90, 4)})

    def outcome(cfg: ForecastConfig) -> dict:
        cfg = cfg.model_copy(update={"horizon": 39})
        metrics, choices, resid = backtest_frame(frame, cfg, "W")
        calib = calibrate(resid, 39)
        fc = forecast_frame(frame, choices, cfg, "W", calib)[0]
        return {
            "choices": choices,
            "lowrank": _forced(frame, cfg, "seas_lowrank")["forecast"].to_numpy(),
            "seas": _forced(frame, cfg, "seas_ses")["forecast"].to_numpy(),
            "stl": _forced(frame, cfg, "stl_ets")["forecast"].to_numpy(),
            "width": (fc["hi80"] - fc["lo80"]).to_numpy(),
            "short_points": backtest_frame(short, cfg, "W")[0]["points"].max(),
        }

    base = outcome(_settings_cfg(monkeypatch))
    result = outcome(_settings_cfg(monkeypatch, **env)) | {"base": base}
    assert check(result), env


def test_pool_column_and_cluster_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.forecast import cluster_workers

    raw = make_weekly_retail(6, 60, seed=1)
    assert set(prepare_series(raw, WEEKLY, _settings_cfg(monkeypatch))["group"]) == {
        "1",
        "2",
        "3",
        "4",
        "5",
        "6",
    }
    by_store = prepare_series(raw, WEEKLY, _settings_cfg(monkeypatch, POOL_COLUMN="Store"))
    assert set(by_store["group"]) == {"1"}  # six departments of store 1 pooled together
    assert cluster_workers(300, 3, _settings_cfg(monkeypatch), None, 2) == 0  # small input: in-process
    assert cluster_workers(300, 3, _settings_cfg(monkeypatch, DASK_MIN_SERIES="100"), None, 2) == 2
    assert cluster_workers(5, 1, _settings_cfg(monkeypatch), "tcp://scheduler:8786", 2) == 2  # named cluster


def test_fallback_warn_share_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = weekly_frame({"z": np.zeros(60), "s": seasonal_series(120, 1)})
    for share, warned in (("0.25", True), ("0.6", False)):
        cfg = _settings_cfg(monkeypatch, FALLBACK_WARN_SHARE=share)
        _, choices, metrics = run(frame, cfg)
        report = overall_report(
            per_series_report(metrics, choices.reset_index()), None, cfg.fallback_warn_share
        )
        assert report["baseline_warning"] is warned
