"""Forecast benchmark: holdout accuracy against seasonal naive, interval coverage, wall time and peak memory.

Prints
1. The two-year weekly retail panel (``demo_company.sales.make_retail_panel``: ~3,000 store × department
   series, 143 weeks; the last 39 weeks are held out from everything). Backtest, interval calibration and
   the final fit run as the flow runs them (batch files mapped on a ``distributed.LocalCluster`` of 2
   single-threaded worker processes); the forecasts and seasonal naive's (the baseline, same cells) are
   scored on the holdout: WMAE (holiday weeks × 5) and its ratio, share of series beating seasonal naive,
   median MASE, coverage of the 80%/95% intervals, share of series modelled (not on a baseline) with the
   baseline reasons. Wall time of backtest and of fit + forecast; peak memory of the whole process tree
   (this process + workers, RSS sampled every 0.1 s).
2. Each model forced on every series of a 600-series sample (same holdout): what pooling, the calendar and
   the combination bring, and what the backtest choice keeps; then a panel from the older generator
   (``models.forecasting.synthetic``), designed before these models.
3. Demo daily data (the simulator's daily store × product and store totals; last 28 days held out).

Usage: ``nice -n 10 .venv/bin/python benchmarks/forecast_benchmark.py [--series 300] [--skip-demo]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from demo_company.sales import RetailPanelConfig, SalesSimConfig, iter_sales, make_products, make_retail_panel
from models.forecasting.config import ForecastConfig
from models.forecasting.data import SeriesFrameSpec, prepare_demo_series, prepare_series, write_batches
from models.forecasting.engine import (
    backtest_batch,
    backtest_frame,
    calibrate,
    calibrate_files,
    forecast_batch,
    forecast_frame,
)
from models.forecasting.metrics import mase, seasonal_scale

WEEKLY_SPEC = SeriesFrameSpec(["Store", "Dept"], "Date", "Weekly_Sales", ["IsHoliday"], "W")
BASELINES = ("snaive", "mean", "zero")


class PeakMemory:
    """Peak summed RSS of this process and all its children, sampled in a thread."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # noqa: BLE001 - a child may exit between listing and reading
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(0.1)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def holdout_scores(
    fc: pd.DataFrame,
    naive: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    season: int,
    hol: str | None,
) -> dict:
    """Holdout figures of ``fc`` against seasonal naive on the same cells (series with a full season)."""
    ok = train.groupby("series_id").size() >= season
    cols = ["series_id", "date", "y"] + ([hol] if hol else [])
    j = fc.merge(test[cols], on=["series_id", "date"])
    j = j[j["series_id"].map(ok).fillna(False).astype(bool)]
    jn = naive.merge(test[cols], on=["series_id", "date"]).set_index(["series_id", "date"])
    jn = jn.loc[pd.MultiIndex.from_frame(j[["series_id", "date"]])]
    w = np.where(j[hol] > 0, 5.0, 1.0) if hol else np.ones(len(j))
    err, nerr = (j["forecast"] - j["y"]).abs().to_numpy(), (jn["forecast"] - jn["y"]).abs().to_numpy()
    out = {"wmae": float((w * err).sum() / w.sum()), "naive_wmae": float((w * nerr).sum() / w.sum())}
    out["ratio"] = out["wmae"] / out["naive_wmae"]
    per = pd.DataFrame({"sid": j["series_id"].to_numpy(), "e": err, "n": nerr}).groupby("sid").mean()
    out["share_beating_naive"] = float((per["e"] < per["n"]).mean())
    out["share_worse_than_naive"] = float((per["e"] > per["n"]).mean())
    scales = train.groupby("series_id")["y"].apply(lambda y: seasonal_scale(y.to_numpy(), season))
    m1 = [mase(g["y"], g["forecast"], scales[s]) for s, g in j.groupby("series_id")]
    m0 = [mase(g["y"], g["forecast"], scales[s]) for s, g in jn.reset_index().groupby("series_id")]
    out["median_mase"], out["naive_median_mase"] = float(np.nanmedian(m1)), float(np.nanmedian(m0))
    out["coverage80"] = float(((j["y"] >= j["lo80"]) & (j["y"] <= j["hi80"])).mean())
    out["coverage95"] = float(((j["y"] >= j["lo95"]) & (j["y"] <= j["hi95"])).mean())
    varying = j.groupby("series_id")["y"].transform("std") > 0
    out["zero_width_on_varying"] = int(((j["hi95"] - j["lo95"] <= 0) & varying).sum())
    out["series"] = int(j["series_id"].nunique())
    return out


def split(frame: pd.DataFrame, periods: int, freq: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    cut = frame["date"].max() - pd.Timedelta(days=periods * (1 if freq == "D" else 7))
    return frame[frame["date"] <= cut], frame[frame["date"] > cut]


def panel_on_cluster(n_series: int | None, workers: int) -> None:
    cfg = ForecastConfig(holiday_column="IsHoliday", horizon=39)
    pcfg = RetailPanelConfig()
    if n_series:
        pcfg = RetailPanelConfig(n_stores=max(1, round(45 * n_series / 3000)))
    raw = make_retail_panel(pcfg)
    frame = prepare_series(raw, WEEKLY_SPEC, cfg)
    train, test = split(frame, 39, "W")
    n = train["series_id"].nunique()
    neg = int((raw.groupby(["Store", "Dept"])["Weekly_Sales"].min() < 0).sum())
    print(f"\n## Weekly retail panel: {n:,} series x {frame['date'].nunique()} weeks "
          f"({train['date'].nunique()} of history, 39 held out); {neg} series with negative weeks")  # fmt: skip
    from distributed import Client, LocalCluster

    root = Path(tempfile.mkdtemp(prefix="fc-bench-"))
    try:
        batches = write_batches(train, root / "batches", cfg.batch_size)
        with PeakMemory() as mem:
            with (
                LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                             silence_logs=logging.ERROR) as cluster,
                Client(cluster) as client,
            ):  # fmt: skip
                client.run(lambda: warnings.simplefilter("ignore"))
                client.run(lambda: __import__("statsmodels.tsa.seasonal"))
                t0 = time.perf_counter()
                futs = client.map(backtest_batch, batches, out_dir=root / "bt", cfg=cfg, freq="W", pure=False)
                bt = client.gather(futs)
                calib = calibrate_files([r for _, _, r in bt], root / "calibration.json", 39)
                t_bt = time.perf_counter() - t0
                t1 = time.perf_counter()
                futs = client.map(forecast_batch, batches, [c for _, c, _ in bt], out_dir=root / "fc", cfg=cfg,
                                  freq="W", calibration=calib, pure=False)  # fmt: skip
                fcs = client.gather(futs)
                t_fc = time.perf_counter() - t1
        fc = pd.concat([pd.read_parquet(f) for f, _ in fcs], ignore_index=True)
        choices = pd.concat([pd.read_parquet(c) for _, c, _ in bt], ignore_index=True)
        snaive_choice = choices.assign(model="snaive")
        naive, _ = forecast_frame(train, snaive_choice, cfg, "W", json.loads(calib.read_text()))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    s = holdout_scores(fc, naive, train, test, 52, "IsHoliday")
    baseline = choices[choices["model"].isin(BASELINES)]
    reasons = baseline["reason"].str.replace(r"\([^)]*\)", "(…)", regex=True).str.split(" in this").str[0]
    print(f"  {'':30}{'chosen':>12}{'seasonal naive':>16}")
    print(f"  {'WMAE (holiday weeks x5)':30}{s['wmae']:12.1f}{s['naive_wmae']:16.1f}")
    print(f"  {'WMAE ratio to seasonal naive':30}{s['ratio']:12.3f}{1:16.3f}   (goal <= 0.85, stretch 0.80)")
    print(f"  {'median MASE':30}{s['median_mase']:12.3f}{s['naive_median_mase']:16.3f}")
    print(f"  series beating seasonal naive on the holdout: {s['share_beating_naive']:.1%} "
          f"(worse: {s['share_worse_than_naive']:.1%})")  # fmt: skip
    print(f"  interval coverage on the holdout: 80% -> {s['coverage80']:.1%} (goal 78-84%), "
          f"95% -> {s['coverage95']:.1%} (goal 92-97%); zero-width on varying series: "
          f"{s['zero_width_on_varying']}")  # fmt: skip
    print(f"  modelled (not on a baseline): {1 - len(baseline) / len(choices):.1%} of {len(choices)} "
          f"(goal >= 90%); baselines: {reasons.value_counts().to_dict()}")  # fmt: skip
    print(f"  models chosen: {choices['model'].value_counts().to_dict()}")
    print(f"  wall time on {workers} worker processes: backtest + calibration {t_bt:.1f} s (goal <= 300 s), "
          f"fit + forecast {t_fc:.1f} s (goal <= 60 s); peak memory, whole process tree: "
          f"{mem.peak / 2**20:.0f} MiB")  # fmt: skip


def forced_models(n_stores: int) -> None:
    """Every model forced on every series of a sample, same holdout: what each ingredient brings."""
    cfg = ForecastConfig(holiday_column="IsHoliday", horizon=39)
    frame = prepare_series(make_retail_panel(RetailPanelConfig(n_stores=n_stores, seed=5)), WEEKLY_SPEC, cfg)
    train, test = split(frame, 39, "W")
    _, choices, resid = backtest_frame(train, cfg, "W")
    calib = calibrate(resid, 39)
    fit = choices[~choices["model"].isin(BASELINES)][["series_id"]]
    print(f"\n## Forced models on {len(fit)} modelled series of a {choices.shape[0]}-series sample "
          "(same 39-week holdout; ratio = WMAE / seasonal naive's)")  # fmt: skip
    naive, _ = forecast_frame(train, fit.assign(model="snaive"), cfg, "W", calib)
    rows = []
    for model in ("snaive_cal", "seas_ses", "seas_lowrank", "combo", "stl_ets"):
        fc, fitted = forecast_frame(train, fit.assign(model=model), cfg, "W", calib)
        failed = sum(1 for f in fitted if f["note"])
        r = holdout_scores(fc, naive, train, test, 52, "IsHoliday")
        rows.append((model, r["ratio"], r["share_beating_naive"], failed))
    chosen, _ = forecast_frame(train, choices[choices["series_id"].isin(fit["series_id"])], cfg, "W", calib)
    r = holdout_scores(chosen, naive, train, test, 52, "IsHoliday")
    rows.append(("backtest choice", r["ratio"], r["share_beating_naive"], 0))
    print(f"  {'model':18}{'WMAE ratio':>12}{'beat naive':>12}{'failed':>8}")
    for model, ratio, share, failed in rows:
        print(f"  {model:18}{ratio:12.3f}{share:12.1%}{failed:8d}")


def other_generator() -> None:
    """A weekly panel from a generator designed before these models (``models.forecasting.synthetic``)."""
    from models.forecasting.synthetic import make_weekly_retail

    cfg = ForecastConfig(holiday_column="IsHoliday", horizon=39)
    frame = prepare_series(make_weekly_retail(420, 143, seed=21), WEEKLY_SPEC, cfg)
    train, test = split(frame, 39, "W")
    _, choices, resid = backtest_frame(train, cfg, "W")
    calib = calibrate(resid, 39)
    fc, _ = forecast_frame(train, choices, cfg, "W", calib)
    naive, _ = forecast_frame(train, choices.assign(model="snaive"), cfg, "W", calib)
    s = holdout_scores(fc, naive, train, test, 52, "IsHoliday")
    print(
        f"\n## Older generator (make_weekly_retail: 420 series x 143 weeks, 39 held out): WMAE ratio "
        f"{s['ratio']:.3f}, beating naive {s['share_beating_naive']:.1%}, median MASE {s['median_mase']:.3f} "
        f"vs {s['naive_median_mase']:.3f}, coverage 80% {s['coverage80']:.1%}, 95% {s['coverage95']:.1%}"
    )


def demo_daily(quick: bool) -> None:
    sim = SalesSimConfig(n_stores=3 if quick else 6, n_products=12 if quick else 25, n_days=730, seed=7,
                         start=date(2024, 1, 1))  # fmt: skip
    sales = pd.concat(iter_sales(sim), ignore_index=True)
    frame = prepare_demo_series(sales, make_products(sim), "D")
    cfg = ForecastConfig()
    train, test = split(frame, 28, "D")
    t0 = time.perf_counter()
    _, choices, resid = backtest_frame(train, cfg, "D")
    calib = calibrate(resid, 28)
    fc, _ = forecast_frame(train, choices, cfg, "D", calib)
    elapsed = time.perf_counter() - t0
    naive, _ = forecast_frame(train, choices.assign(model="snaive"), cfg, "D", calib)
    s = holdout_scores(fc, naive, train, test, 7, "is_holiday")
    print(f"\n## Demo data, daily ({len(sales):,} sales rows, {choices.shape[0]} series, last 28 days held out; "
          f"{elapsed:.1f} s in one process)")  # fmt: skip
    print(f"  WMAE {s['wmae']:.3f} vs seasonal naive {s['naive_wmae']:.3f}: ratio {s['ratio']:.3f} "
          f"({1 - s['ratio']:.1%} better; before this change 22.8% better)")  # fmt: skip
    print(
        f"  median MASE {s['median_mase']:.3f} vs {s['naive_median_mase']:.3f}; beating naive "
        f"{s['share_beating_naive']:.1%}; coverage 80% {s['coverage80']:.1%}, 95% {s['coverage95']:.1%}"
    )
    print(f"  models chosen: {choices['model'].value_counts().to_dict()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--series", type=int, default=None, help="panel size (default ~3,000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--skip-forced", action="store_true")
    a = p.parse_args()
    warnings.simplefilter("ignore")
    print(f"# Forecast benchmark; machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    panel_on_cluster(a.series, a.workers)
    if not a.skip_forced:
        forced_models(9)
        other_generator()
    if not a.skip_demo:
        demo_daily(quick=bool(a.series and a.series < 1000))


if __name__ == "__main__":
    main()
