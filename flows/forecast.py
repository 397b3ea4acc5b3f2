"""Forecast flow: sales history → per-series model choice by backtest → forecasts, report, plots, MLflow.

Composes ``tasks/forecasting.py``: prepare series (demo lake or a user's CSV) → map the backtest over
batch files on a Dask cluster → map the final fit/forecast → assemble → log to MLflow → commit
``forecasts/dt=YYYY-MM-DD/`` → Prefect artifacts. Parameterised so a schedule (monthly), a person
(CLI / UI) or a monitoring flow can start it.
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
from models.forecasting.config import ForecastConfig
from models.forecasting.data import SeriesFrameSpec
from models.forecasting.engine import FORECAST_COLUMNS
from tasks.forecasting import (
    assemble_outputs_task,
    backtest_batch_task,
    elapsed,
    forecast_batch_task,
    log_mlflow_task,
    prepare_series_task,
    publish_artifacts,
    publish_task,
)


@flow(name="forecast-series")
def forecast_series(batches: list[str], work_dir: str, cfg: ForecastConfig, freq: str) -> dict[str, Any]:
    """Backtest every batch, then fit and forecast the chosen models (mapped over batch files)."""
    t0 = time.perf_counter()
    bt = backtest_batch_task.map(batches, unmapped(f"{work_dir}/backtest"), unmapped(cfg), unmapped(freq))
    backtests = [f.result() for f in bt]
    t_backtest = elapsed(t0)
    t1 = time.perf_counter()
    fc = forecast_batch_task.map(
        batches, [c for _, c in backtests], unmapped(f"{work_dir}/forecast"), unmapped(cfg), unmapped(freq)
    )
    forecasts = [f.result() for f in fc]
    return {
        "backtests": backtests,
        "forecasts": forecasts,
        "backtest_s": t_backtest,
        "forecast_s": elapsed(t1),
    }


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
    optional numeric/boolean columns, ``holiday_col`` the holiday flag (weights WMAE, repeats yearly);
    ``freq`` "D" or "W". Outputs go to ``forecasts/dt=<partition_date>/`` (default: the last sales
    partition, or today for a CSV). Returns a summary: where outputs are, headline metrics, timings.
    """
    from callcast.runtime import code_version, get_logger
    from callcast.settings import get_settings

    started = datetime.now(UTC)
    t0 = time.perf_counter()
    log = get_logger()
    settings = get_settings(**({"lake_url": lake_url} if lake_url else {}))
    cfg = (config or ForecastConfig()).model_copy()
    if horizon is not None:
        cfg.horizon = horizon
    spec = None
    if csv_path is not None:
        regs = list(regressors or [])
        if holiday_col:
            cfg.holiday_column = holiday_col
            cfg.calendar_regressors = [*cfg.calendar_regressors, holiday_col]
            regs = [holiday_col, *[r for r in regs if r != holiday_col]]
        spec = SeriesFrameSpec(id_cols or [], date_col, value_col, regs, freq)
    elif freq not in ("D", "W"):
        raise ValueError(f"freq must be 'D' or 'W', got {freq!r}")
    base = Path(work_dir) if work_dir else settings.home / "work"
    run_dir = base / f"forecast-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True, exist_ok=True)

    prep = prepare_series_task(run_dir, cfg, freq, csv_path, spec, lake_url, as_of)
    log.info(
        "Prepared %d series (%s to %s) in %d batches",
        prep["n_series"],
        prep["first_date"],
        prep["last_date"],
        len(prep["batches"]),
    )
    t_prep = elapsed(t0)
    workers = settings.dask_workers if dask_workers is None else dask_workers
    address = dask_address or settings.dask_address
    runner = dask_task_runner(address, workers)
    par = forecast_series.with_options(task_runner=runner)(prep["batches"], str(run_dir), cfg, freq)
    log.info("Backtest %.1f s, final fit + forecast %.1f s", par["backtest_s"], par["forecast_s"])

    out = assemble_outputs_task(prep["history"], par["backtests"], par["forecasts"], run_dir / "out")
    part = partition_date or prep["data_date"] or started.date()
    params = {
        "partition_date": part.isoformat(), "source": prep["source"], "freq": freq,
        "horizon": cfg.horizon_for(freq), "folds": cfg.folds, "candidates": ",".join(cfg.candidates),
        "n_series": prep["n_series"], "history": f"{prep['first_date']}..{prep['last_date']}",
        "config": cfg.model_dump_json(),
    }  # fmt: skip
    tracking = mlflow_tracking_uri or settings.resolved_mlflow_uri()
    run_id = log_mlflow_task(tracking, "callcast-forecast", params, out["overall"], out["files"])
    manifest = {
        "table": "forecasts", "rows": out["rows"]["forecasts.csv"],
        "columns": [{"name": c, "type": t} for c, t in zip(
            FORECAST_COLUMNS, ["text", "date", "float", "float", "float", "float", "float", "text"], strict=True)],
        "source": prep["source"], "mode": "snapshot", "started_at": started.isoformat(timespec="seconds"),
        "code_version": code_version(), "freq": freq, "horizon": cfg.horizon_for(freq),
        "n_series": prep["n_series"], "models": out["overall"]["models"], "mlflow_run_id": run_id,
        "backtest": {k: v for k, v in out["overall"].items() if k not in ("models", "fallbacks")},
    }  # fmt: skip
    doc = publish_task(out["files"], out["rows"], part, lake_url, manifest)
    publish_artifacts(out["markdown"], out["files"], doc["location"])
    shutil.rmtree(run_dir, ignore_errors=True)
    ov = out["overall"]
    summary = {
        "partition_date": part.isoformat(),
        "location": doc["location"],
        "n_series": prep["n_series"],
        "freq": freq,
        "horizon": cfg.horizon_for(freq),
        "models": ov["models"],
        "wmae": ov["wmae"], "naive_wmae": ov["naive_wmae"], "wmae_improvement": ov["wmae_improvement"],
        "mase": ov["mase"], "naive_mase": ov["naive_mase"], "mase_improvement": ov["mase_improvement"],
        "mlflow_run_id": run_id,
        "task_runner": type(runner).__name__,
        "timings_s": {"prepare": t_prep, "backtest": par["backtest_s"], "forecast": par["forecast_s"],
                      "total": elapsed(t0)},
    }  # fmt: skip
    log.info(
        "Forecasts for %d series in %s; WMAE %.3f vs seasonal naive %.3f (%.1f%% better)",
        prep["n_series"], doc["location"], ov["wmae"], ov["naive_wmae"], 100 * ov["wmae_improvement"],
    )  # fmt: skip
    return summary
