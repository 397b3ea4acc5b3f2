"""Forecast flow: sales history → model choice by backtest → calibrated forecasts, report, plots, MLflow.

Composes ``tasks/forecasting.py``: prepare series (demo lake or a user's CSV) → map the backtest over
batch files (pools kept together) → calibrate intervals on every batch's residuals → map the final
fit/forecast → assemble → log to MLflow → commit ``forecasts/dt=<last data date>/`` (a bring-your-own CSV:
``forecasts/byo/<name>/dt=<last data date>/``) → Prefect artifacts. Settings come from
``get_settings().forecast`` (``CALLCAST_FORECAST__…``); the parameters ``horizon``, ``folds`` and
``candidates`` override them for one run. Small inputs run in-process; a Dask cluster is started only from
``forecast.dask_min_series`` series on (or when ``dask_address`` names one).
"""

from __future__ import annotations

import shutil
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, unmapped

from callcast.runtime import dask_task_runner
from models.forecasting.config import CandidateName, ForecastConfig
from models.forecasting.data import SeriesFrameSpec
from models.forecasting.engine import FORECAST_COLUMNS
from models.forecasting.report import baseline_warning, summary_line
from tasks.forecasting import (
    assemble_outputs_task,
    backtest_batch_task,
    calibrate_task,
    elapsed,
    forecast_batch_task,
    log_mlflow_task,
    prepare_series_task,
    publish_artifacts,
    publish_task,
    quiet_libraries,
)


def _progress(log, what: str, futures: list, sizes: list[int]) -> list:
    """Results of mapped futures in order, logging series done, rate and ETA every few seconds."""
    t0, last, done, total, out = time.perf_counter(), 0.0, 0, sum(sizes), []
    for fut, n in zip(futures, sizes, strict=True):
        out.append(fut.result())
        done += n
        now = time.perf_counter() - t0
        if now - last >= 5 or done == total:
            rate = done / now if now > 0 else float("inf")
            eta = (total - done) / rate if rate > 0 else 0.0
            log.info("%s: %d/%d series (%.0f series/s, ETA %.0f s)", what, done, total, rate, eta)
            last = now
    return out


@flow(name="forecast-series")
def forecast_series(
    batches: list[str], sizes: list[int], work_dir: str, cfg: ForecastConfig, freq: str
) -> dict[str, Any]:
    """Backtest every batch, calibrate intervals, then fit and forecast the chosen models."""
    from callcast.runtime import get_logger

    log = get_logger()
    t0 = time.perf_counter()
    bt = backtest_batch_task.map(batches, unmapped(f"{work_dir}/backtest"), unmapped(cfg), unmapped(freq))
    backtests = _progress(log, "backtest", list(bt), sizes)
    calibration = calibrate_task([r for _, _, r in backtests], f"{work_dir}/calibration.json",
                                 cfg.horizon_for(freq))  # fmt: skip
    t_backtest = elapsed(t0)
    t1 = time.perf_counter()
    fc = forecast_batch_task.map(
        batches, [c for _, c, _ in backtests], unmapped(f"{work_dir}/forecast"), unmapped(cfg),
        unmapped(freq), unmapped(calibration),
    )  # fmt: skip
    forecasts = _progress(log, "fit + forecast", list(fc), sizes)
    return {
        "backtests": backtests,
        "forecasts": forecasts,
        "calibration": calibration,
        "backtest_s": t_backtest,
        "forecast_s": elapsed(t1),
    }


def run_config(
    base: ForecastConfig,
    horizon: int | None = None,
    folds: int | None = None,
    candidates: list[CandidateName] | None = None,
    holiday_col: str | None = None,
) -> ForecastConfig:
    """The settings' forecast section with this run's overrides applied (validated)."""
    updates: dict[str, Any] = {}
    if horizon is not None:
        updates["horizon"] = horizon
    if folds is not None:
        updates["folds"] = folds
    if candidates is not None:
        updates["candidates"] = list(candidates)
    if holiday_col:
        updates["holiday_column"] = holiday_col
        updates["calendar_regressors"] = [*base.calendar_regressors, holiday_col]
    return ForecastConfig.model_validate({**base.model_dump(), **updates})


def cluster_workers(
    n_series: int, n_batches: int, cfg: ForecastConfig, address: str | None, workers: int
) -> int:
    """Local Dask workers for this run: none below ``cfg.dask_min_series`` series or for a single batch (a
    cluster costs more than it saves there); a named scheduler address is always used."""
    if not address and (n_series < cfg.dask_min_series or n_batches < 2):
        return 0
    return workers


@flow(name="forecast-sales", log_prints=True)
def forecast_sales(
    csv_path: str | None = None,
    id_cols: list[str] | None = None,
    date_col: str = "date",
    value_col: str = "sales",
    regressors: list[str] | None = None,
    holiday_col: str | None = None,
    freq: str = "D",
    horizon: int | None = None,
    folds: int | None = None,
    candidates: list[CandidateName] | None = None,
    namespace: str | None = None,
    partition_date: date | None = None,
    as_of: date | None = None,
    lake_url: str | None = None,
    mlflow_tracking_uri: str | None = None,
    dask_address: str | None = None,
    dask_workers: int | None = None,
    config: ForecastConfig | None = None,
    work_dir: str | None = None,
) -> dict[str, Any]:
    """Forecast every series of the demo lake's sales (default) or of a sales CSV (``csv_path``).

    CSV: ``id_cols`` name the series, ``date_col``/``value_col`` the date and amount, ``regressors``
    optional numeric/boolean columns, ``holiday_col`` the holiday flag (weights WMAE; future flags from the
    calendar events it follows); ``freq`` "D" or "W"; ``namespace`` names its output (default: the file's
    name), which never touches the company's forecasts. ``horizon``/``folds``/``candidates`` override
    ``CALLCAST_FORECAST__…`` for this run; ``config`` replaces the whole section. Outputs are named by the
    data's last date (``partition_date`` overrides); a rerun for the same data replaces only its own
    partition. Returns a summary: where outputs are, headline metrics, timings.
    """
    from callcast.runtime import code_version, get_logger
    from callcast.settings import get_settings

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    log = get_logger()
    quiet_libraries()
    settings = get_settings(**({"lake_url": lake_url} if lake_url else {}))
    cfg = run_config(
        config or settings.forecast, horizon, folds, candidates, holiday_col if csv_path else None
    )
    spec = None
    if freq not in ("D", "W"):
        raise ValueError(f"freq must be 'D' or 'W', got {freq!r}")
    if csv_path is not None:
        regs = list(regressors or [])
        if holiday_col:
            regs = [holiday_col, *[r for r in regs if r != holiday_col]]
        spec = SeriesFrameSpec(id_cols or [], date_col, value_col, regs, freq)
        namespace = namespace or Path(csv_path).stem
    elif namespace is not None:
        raise ValueError("namespace names a bring-your-own CSV's forecasts; the company's have none.")
    base = Path(work_dir) if work_dir else settings.home / "work"
    run_dir = base / f"forecast-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True, exist_ok=True)

    prep = prepare_series_task(run_dir, cfg, freq, csv_path, spec, lake_url, as_of)
    log.info(
        "Prepared %d series (%s to %s) in %d batches; horizon %d, up to %d folds",
        prep["n_series"], prep["first_date"], prep["last_date"], len(prep["batches"]),
        cfg.horizon_for(freq), cfg.folds,
    )  # fmt: skip
    t_prep = elapsed(t0)
    address = dask_address or settings.dask_address
    workers = cluster_workers(
        prep["n_series"], len(prep["batches"]), cfg, address,
        settings.dask_workers if dask_workers is None else dask_workers,
    )  # fmt: skip
    runner = dask_task_runner(address, workers)
    quiet_libraries(dask=type(runner).__name__ == "DaskTaskRunner")
    par = forecast_series.with_options(task_runner=runner)(
        prep["batches"], prep["batch_sizes"], str(run_dir), cfg, freq
    )

    out = assemble_outputs_task(
        prep["history"], par["backtests"], par["forecasts"], par["calibration"], run_dir / "out", cfg
    )
    ov = out["overall"]
    part = partition_date or prep["data_date"]
    if isinstance(part, str):
        part = date.fromisoformat(part)
    params = {
        "partition_date": part.isoformat(), "source": prep["source"], "namespace": namespace or "",
        "freq": freq, "horizon": cfg.horizon_for(freq), "folds": cfg.folds,
        "candidates": ",".join(cfg.candidates), "n_series": prep["n_series"],
        "history": f"{prep['first_date']}..{prep['last_date']}", "config": cfg.model_dump_json(),
    }  # fmt: skip
    tracking = mlflow_tracking_uri or settings.resolved_mlflow_uri()
    run_id = log_mlflow_task(tracking, "callcast-forecast", params, ov, out["files"])
    manifest = {
        "table": "forecasts", "rows": out["rows"]["forecasts.csv"],
        "columns": [{"name": c, "type": t} for c, t in zip(
            FORECAST_COLUMNS, ["text", "date", "float", "float", "float", "float", "float", "text"], strict=True)],
        "source": prep["source"], "namespace": namespace, "mode": "snapshot",
        "started_at": started.isoformat(timespec="seconds"), "code_version": code_version(), "freq": freq,
        "horizon": cfg.horizon_for(freq), "n_series": prep["n_series"], "models": ov["models"],
        "mlflow_run_id": run_id,
        "backtest": {k: v for k, v in ov.items() if k not in ("models", "baseline_reasons", "fallback_rules")},
    }  # fmt: skip
    doc = publish_task(out["files"], out["rows"], part, lake_url, manifest, namespace)
    publish_artifacts(out["markdown"], out["files"], doc["location"])
    shutil.rmtree(run_dir, ignore_errors=True)
    summary = {
        "partition_date": part.isoformat(),
        "location": doc["location"],
        "namespace": namespace,
        "n_series": prep["n_series"],
        "freq": freq,
        "horizon": cfg.horizon_for(freq),
        "folds": cfg.folds,
        "models": ov["models"],
        "wmae": ov["wmae"], "naive_wmae": ov["naive_wmae"], "wmae_ratio": ov["wmae_ratio"],
        "wmae_improvement": ov["wmae_improvement"], "share_beating_naive": ov["share_beating_naive"],
        "median_mase": ov["median_mase"], "naive_median_mase": ov["naive_median_mase"],
        "coverage80": ov["coverage80"], "coverage95": ov["coverage95"],
        "share_modelled": ov["share_modelled"], "baseline_reasons": ov["baseline_reasons"],
        "baseline_warning": baseline_warning(ov),
        "mlflow_run_id": run_id,
        "task_runner": type(runner).__name__,
        "timings_s": {"prepare": t_prep, "backtest": par["backtest_s"], "forecast": par["forecast_s"],
                      "total": elapsed(t0)},
    }  # fmt: skip
    log.info("Forecasts for %d series in %s; %s", prep["n_series"], doc["location"], summary_line(ov))
    if summary["baseline_warning"]:
        log.warning(summary["baseline_warning"])
    return summary
