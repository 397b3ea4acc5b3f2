"""Forecast benchmark: accuracy against seasonal naive, and wall time on a local Dask cluster.

Prints
1. Demo-data accuracy: the simulator's daily store × product and store-total series; the last
   ``horizon`` days are held out from everything (backtest, choice, fit), then the chosen models'
   forecasts and seasonal naive's are scored on them (WMAE with holiday weight 5, MASE, sMAPE).
2. The same holdout comparison on the weekly store × department data (Walmart-like, holiday weeks).
3. Wall time on a distributed.LocalCluster (1 thread per worker process) mapping the same batch
   functions the Prefect tasks wrap: backtest of all candidates and final fit + forecast for 3,000
   weekly series of 140 weeks on 2 workers; speed-up from 1 to 2 workers; cost for 500 / 1,000 / 3,000
   series. Baselines are measured in the same run. ``--quick`` shrinks every size.

Usage: ``.venv/bin/python benchmarks/forecast_benchmark.py [--quick]``
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from demo_company.sales import SalesSimConfig, iter_sales, make_products
from models.forecasting.config import ForecastConfig
from models.forecasting.data import SeriesFrameSpec, prepare_demo_series, prepare_series, write_batches
from models.forecasting.engine import backtest_batch, backtest_frame, forecast_batch, forecast_frame
from models.forecasting.metrics import mase, seasonal_scale, smape
from models.forecasting.synthetic import make_weekly_retail

WEEKLY_SPEC = SeriesFrameSpec(["Store", "Dept"], "Date", "Weekly_Sales", ["IsHoliday"], "W")


def holdout_accuracy(frame: pd.DataFrame, cfg: ForecastConfig, freq: str, holiday: str) -> dict[str, float]:
    """Hide the last horizon periods, run choice + forecast on the rest, score against seasonal naive."""
    h, m = cfg.horizon_for(freq), cfg.season(freq)
    cut = frame["date"].max() - pd.Timedelta(days=h * (1 if freq == "D" else 7))
    train, test = frame[frame["date"] <= cut], frame[frame["date"] > cut]
    t0 = time.perf_counter()
    _, choices = backtest_frame(train, cfg, freq)
    chosen, _ = forecast_frame(train, choices, cfg, freq)
    elapsed = time.perf_counter() - t0
    naive, _ = forecast_frame(train, choices.assign(model="snaive"), cfg, freq)
    naive_ok = train.groupby("series_id").size() >= m
    out: dict[str, float] = {"series": float(choices.shape[0]), "seconds": elapsed}
    for name, fc in (("chosen", chosen), ("naive", naive)):
        j = fc.merge(test, on=["series_id", "date"])
        j = j[j["series_id"].map(naive_ok)]
        w = np.where(j[holiday] > 0, cfg.holiday_weight, 1.0)
        err = (j["forecast"] - j["y"]).abs()
        out[f"{name}_wmae"] = float((w * err).sum() / w.sum())
        scales = train.groupby("series_id")["y"].apply(lambda y: seasonal_scale(y.to_numpy(), m))
        per = [mase(g["y"], g["forecast"], scales[s]) for s, g in j.groupby("series_id")]
        out[f"{name}_mase"] = float(np.nanmean(per))
        out[f"{name}_smape"] = float(
            np.mean([smape(g["y"], g["forecast"]) for _, g in j.groupby("series_id")])
        )
    out["wmae_gain"] = 1 - out["chosen_wmae"] / out["naive_wmae"]
    out["mase_gain"] = 1 - out["chosen_mase"] / out["naive_mase"]
    out["models"] = choices["model"].value_counts().to_dict()  # type: ignore[assignment]
    return out


def print_accuracy(title: str, r: dict) -> None:
    print(
        f"\n## {title}: {int(r['series'])} series, holdout = last horizon (choice+fit {r['seconds']:.1f} s)"
    )
    print(f"  {'':8}{'WMAE':>12}{'MASE':>9}{'sMAPE%':>9}")
    print(f"  {'chosen':8}{r['chosen_wmae']:12.3f}{r['chosen_mase']:9.3f}{r['chosen_smape']:9.1f}")
    print(f"  {'snaive':8}{r['naive_wmae']:12.3f}{r['naive_mase']:9.3f}{r['naive_smape']:9.1f}")
    print(f"  improvement over seasonal naive: WMAE {r['wmae_gain']:.1%}, MASE {r['mase_gain']:.1%}")
    print(f"  models chosen: {r['models']}")


def timed_cluster_run(
    batches: list[Path], work: Path, cfg: ForecastConfig, workers: int
) -> tuple[float, float]:
    """(backtest seconds, final fit + forecast seconds) mapping batch files on a LocalCluster."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                     silence_logs=logging.ERROR) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        client.run(lambda: warnings.simplefilter("ignore"))
        client.submit(lambda: __import__("statsmodels.tsa.statespace.sarimax")).result()  # warm imports
        client.run(lambda: __import__("statsmodels.tsa.exponential_smoothing.ets"))
        t0 = time.perf_counter()
        futs = client.map(backtest_batch, batches, out_dir=work / "bt", cfg=cfg, freq="W", pure=False)
        bt = client.gather(futs)
        t_bt = time.perf_counter() - t0
        t1 = time.perf_counter()
        futs = client.map(forecast_batch, batches, [c for _, c in bt], out_dir=work / "fc", cfg=cfg, freq="W",
                          pure=False)  # fmt: skip
        client.gather(futs)
        t_fc = time.perf_counter() - t1
    return t_bt, t_fc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    p.add_argument("--series", type=int, default=None, help="largest weekly series count (default 3000)")
    a = p.parse_args()
    warnings.simplefilter("ignore")
    sizes = [100, 200, 400] if a.quick else [500, 1000, 3000]
    if a.series:
        sizes = [s for s in sizes if s < a.series] + [a.series]
    cfg = ForecastConfig(holiday_column="IsHoliday", batch_size=50)
    print(f"# Forecast benchmark ({'quick' if a.quick else 'full'}); machine: {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip

    sim = SalesSimConfig(n_stores=3 if a.quick else 6, n_products=12 if a.quick else 25, n_days=730, seed=7,
                         start=date(2024, 1, 1))  # fmt: skip
    sales = pd.concat(iter_sales(sim), ignore_index=True)
    demo = prepare_demo_series(sales, make_products(sim), "D")
    print_accuracy(f"Demo data, daily ({len(sales):,} sales rows)",
                   holdout_accuracy(demo, ForecastConfig(), "D", "is_holiday"))  # fmt: skip

    weekly_n = 60 if a.quick else 300
    weekly = prepare_series(make_weekly_retail(weekly_n, 153, seed=21), WEEKLY_SPEC, cfg)
    print_accuracy(
        "Weekly store x dept (153 weeks, last 13 held out)", holdout_accuracy(weekly, cfg, "W", "IsHoliday")
    )

    print(
        f"\n## Wall time, weekly series of 140 weeks, all candidates, {cfg.folds} folds x {cfg.horizon_for('W')} weeks"
    )
    full = prepare_series(make_weekly_retail(max(sizes), 140, seed=0), WEEKLY_SPEC, cfg)
    ids = full["series_id"].drop_duplicates().to_numpy()
    root = Path(tempfile.mkdtemp(prefix="fc-bench-"))
    results: dict[tuple[int, int], tuple[float, float]] = {}
    try:
        runs = [(sizes[0], 1)] + [(n, 2) for n in sizes]
        for n, workers in runs:
            work = root / f"{n}-{workers}"
            batches = write_batches(full[full["series_id"].isin(ids[:n])], work / "batches", cfg.batch_size)
            results[(n, workers)] = timed_cluster_run(batches, work, cfg, workers)
            bt, fc = results[(n, workers)]
            print(f"  {n:>5} series, {workers} worker(s): backtest {bt:7.1f} s ({1000 * bt / n:5.1f} ms/series), "
                  f"final fit + forecast {fc:6.1f} s", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    n0 = sizes[0]
    print(f"\n  speed-up 1 -> 2 workers ({n0} series): backtest x{results[(n0, 1)][0] / results[(n0, 2)][0]:.2f}, "
          f"fit+forecast x{results[(n0, 1)][1] / results[(n0, 2)][1]:.2f}")  # fmt: skip
    per = [results[(n, 2)][0] / n * 1000 for n in sizes]
    print("  cost growth (2 workers): " + ", ".join(f"{n} -> {results[(n, 2)][0]:.1f} s" for n in sizes)
          + f"; ms/series {', '.join(f'{x:.1f}' for x in per)} (linear = constant ms/series)")  # fmt: skip
    big = results[(sizes[-1], 2)]
    print(f"  {sizes[-1]} series on 2 workers: backtest {big[0]:.1f} s (goal <= 300 s), "
          f"final fit + forecast {big[1]:.1f} s (goal <= 60 s)")  # fmt: skip


if __name__ == "__main__":
    main()
