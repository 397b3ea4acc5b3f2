"""Prefect tasks of the forecast flow: thin wrappers over ``models.forecasting`` that pass file paths."""

from __future__ import annotations

import base64
import json
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from models.forecasting.config import ForecastConfig
from models.forecasting.data import (
    SeriesFrameSpec,
    prepare_demo_series,
    prepare_series,
    read_sales_csv,
    write_batches,
)
from models.forecasting.engine import (
    FALLBACK_RULES,
    backtest_batch,
    calibrate_files,
    forecast_batch,
    interval_coverage,
)
from models.forecasting.plots import plot_series, representative_series
from models.forecasting.report import headline_markdown, overall_report, per_series_report

NOISY_LOGGERS = ("distributed", "mlflow", "alembic", "urllib3", "numexpr", "matplotlib")


def quiet_libraries(dask: bool = False) -> None:
    """Library loggers (Dask's scheduler and nannies, MLflow's database set-up) to WARNING: the terminal shows
    the run's own progress and summary. ``dask=True`` imports ``distributed`` first: its import sets its
    loggers back to INFO."""
    import logging

    if dask:
        import distributed  # noqa: F401

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def load_demo_history(lake_url: str | None, as_of: date | None) -> tuple[pd.DataFrame, pd.DataFrame, date]:
    """Every validated sales slice up to ``as_of`` and the validated products snapshot of that date.

    Quarantined or unvalidated partitions are refused (or skipped with a warning, per
    ``CALLCAST_CHECKS__FALLBACK_TO_LAST_GOOD``), as for every reader of the exports.
    """
    from callcast import catalog
    from callcast.errors import PartitionNotFoundError
    from callcast.lake import open_lake
    from callcast.settings import get_settings
    from tasks.checks import require_validated, require_validated_history

    lake = open_lake(get_settings(lake_url=lake_url))
    sales_prefix, products_prefix = catalog.raw("sales"), catalog.raw("products")
    dates = require_validated_history(lake, "sales", as_of)
    if not dates:
        raise PartitionNotFoundError(
            f"No exported sales in {lake.describe(sales_prefix)}: run the export flow first, "
            "or pass a sales CSV (--csv) to forecast your own data."
        )
    sales = pd.concat(
        [lake.read_csv(sales_prefix, d, catalog.raw_file_name("sales")) for d in dates], ignore_index=True
    )
    products_date = lake.latest_partition(products_prefix, on_or_before=dates[-1])
    if products_date is None:
        raise PartitionNotFoundError(
            f"No exported products in {lake.describe(products_prefix)}: run the export first."
        )
    products_date = require_validated(lake, "products", products_date)
    products = lake.read_csv(products_prefix, products_date, catalog.raw_file_name("products"))
    return sales.drop_duplicates("sale_id", keep="last"), products, dates[-1]


@task(name="prepare-series", cache_policy=NO_CACHE)
def prepare_series_task(
    work_dir: Path,
    cfg: ForecastConfig,
    freq: str,
    csv_path: str | None = None,
    spec: SeriesFrameSpec | None = None,
    lake_url: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Read the history (a user's CSV or the demo lake), make regular series and write batch files."""
    if csv_path is not None:
        if spec is None:
            raise ValueError("A sales CSV needs its column names (id columns, date, value).")
        frame = prepare_series(read_sales_csv(csv_path, spec), spec, cfg)
        data_date, source = None, str(csv_path)
    else:
        sales, products, data_date = load_demo_history(lake_url, as_of)
        frame = prepare_demo_series(sales, products, freq, cfg)
        source = "the lake's validated sales exports"
    if frame.empty:
        raise ValueError("No series to forecast: the sales history is empty after preparation.")
    history = work_dir / "history.parquet"
    frame.to_parquet(history, index=False)
    batches = write_batches(frame, work_dir / "batches", cfg.batch_size)
    last = frame["date"].max().date()
    return {
        "history": str(history),
        "batches": [str(p) for p in batches],
        "batch_sizes": [
            int(pd.read_parquet(p, columns=["series_id"])["series_id"].nunique()) for p in batches
        ],
        "n_series": int(frame["series_id"].nunique()),
        "first_date": str(frame["date"].min().date()),
        "last_date": str(last),
        "data_date": data_date or last,
        "source": source,
    }


@task(name="backtest-batch", cache_policy=NO_CACHE, retries=1)
def backtest_batch_task(batch: str, out_dir: str, cfg: ForecastConfig, freq: str) -> tuple[str, str, str]:
    """Rolling-origin backtest of every candidate on one batch of series (metrics, choices, residuals)."""
    m, c, r = backtest_batch(Path(batch), Path(out_dir), cfg, freq)
    return str(m), str(c), str(r)


@task(name="calibrate-intervals", cache_policy=NO_CACHE)
def calibrate_task(resid_files: list[str], out: str, horizon: int) -> str:
    """Interval quantiles per model and horizon step from every batch's backtest residuals."""
    return str(calibrate_files([Path(p) for p in resid_files], Path(out), horizon))


@task(name="forecast-batch", cache_policy=NO_CACHE, retries=1)
def forecast_batch_task(
    batch: str, choices: str, out_dir: str, cfg: ForecastConfig, freq: str, calibration: str | None = None
) -> tuple[str, str]:
    """Final fit of the chosen models and the forecast of one batch (calibrated intervals)."""
    f, p = forecast_batch(
        Path(batch), Path(choices), Path(out_dir), cfg, freq, Path(calibration) if calibration else None
    )
    return str(f), str(p)


@task(name="assemble-outputs", cache_policy=NO_CACHE)
def assemble_outputs_task(
    history: str,
    backtests: list[tuple[str, str, str]],
    forecasts: list[tuple[str, str]],
    calibration: str,
    out_dir: Path,
    cfg: ForecastConfig,
    n_plots: int = 4,
) -> dict[str, Any]:
    """Gather batch outputs into forecasts.csv, backtest reports, fitted models and plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = pd.concat([pd.read_parquet(m) for m, _, _ in backtests], ignore_index=True)
    choices = pd.concat([pd.read_parquet(c) for _, c, _ in backtests], ignore_index=True)
    resid = pd.concat([pd.read_parquet(r) for _, _, r in backtests], ignore_index=True)
    fc = pd.concat([pd.read_parquet(f) for f, _ in forecasts], ignore_index=True)
    fc["date"] = pd.to_datetime(fc["date"]).dt.strftime("%Y-%m-%d")
    files = {"forecasts.csv": out_dir / "forecasts.csv"}
    fc.to_csv(files["forecasts.csv"], index=False, float_format="%.4f")
    calib = json.loads(Path(calibration).read_text())
    series = per_series_report(metrics, choices)
    overall = overall_report(series, interval_coverage(resid, calib), cfg.fallback_warn_share)
    overall["fallback_rules"] = FALLBACK_RULES
    files["backtest_series.csv"] = out_dir / "backtest_series.csv"
    series.to_csv(files["backtest_series.csv"], index=False, float_format="%.6g")
    files["backtest_candidates.csv"] = out_dir / "backtest_candidates.csv"
    metrics.to_csv(files["backtest_candidates.csv"], index=False, float_format="%.6g")
    files["backtest.json"] = out_dir / "backtest.json"
    files["backtest.json"].write_text(json.dumps(overall, indent=2))
    files["interval_calibration.json"] = Path(calibration)
    fitted = [item for _, p in forecasts for item in json.loads(Path(p).read_text())]
    files["fitted_models.json"] = out_dir / "fitted_models.json"
    files["fitted_models.json"].write_text(json.dumps(fitted))
    hist = pd.read_parquet(history, columns=["series_id", "date", "y"])
    fc_plot = fc.assign(date=pd.to_datetime(fc["date"]))
    for i, sid in enumerate(representative_series(series, n_plots)):
        files[f"plot_{i + 1}.png"] = plot_series(hist, fc_plot, sid, out_dir / f"plot_{i + 1}.png")
    return {
        "files": {k: str(v) for k, v in files.items()},
        "overall": overall,
        "rows": {
            "forecasts.csv": len(fc),
            "backtest_series.csv": len(series),
            "backtest_candidates.csv": len(metrics),
        },
        "markdown": headline_markdown(overall),
    }


@task(name="publish-forecasts", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def publish_task(
    files: dict[str, str],
    rows: dict[str, int],
    partition_date: date,
    lake_url: str | None,
    manifest: dict,
    namespace: str | None = None,
) -> dict[str, Any]:
    """Commit the outputs as ``forecasts/dt=<data date>/`` (BYO: ``forecasts/byo/<name>/dt=…``), manifest last.

    A rerun for the same data and namespace replaces that partition only.
    """
    from callcast import catalog
    from callcast.lake import open_lake
    from callcast.settings import get_settings

    lake = open_lake(get_settings(**({"lake_url": lake_url} if lake_url else {})))
    prefix = catalog.forecasts(namespace)
    if lake.has_partition(prefix, partition_date):
        from callcast.runtime import get_logger

        get_logger().info(
            "Replacing the forecasts of %s for data up to %s (a rerun on the same data); other partitions "
            "are untouched.", prefix, partition_date,
        )  # fmt: skip
    meta = {name: {"rows": n} for name, n in rows.items()}
    doc = lake.commit_partition(
        prefix, partition_date, {k: Path(v) for k, v in files.items()}, manifest, file_meta=meta
    )
    doc["location"] = lake.describe(catalog.partition(prefix, partition_date))
    return doc


class ForecastReader:
    """Serves the latest committed forecast partition of a namespace (the company's or a BYO one).

    The partition's ``forecasts.csv`` is read once per (namespace, partition date) and kept; every call looks
    at the lake's partitions first, so a newly committed run is served from the next request on (a reader
    never sees a half-written partition: the manifest is the commit point).
    """

    def __init__(self, lake: Any = None) -> None:
        from callcast.lake import open_lake

        self.lake = lake or open_lake()
        self._cache: dict[str | None, tuple[date, dict[str, pd.DataFrame], dict[str, Any]]] = {}

    def latest(self, namespace: str | None = None) -> tuple[date, dict[str, pd.DataFrame], dict[str, Any]]:
        """(partition date, rows by series, manifest) of the latest committed partition."""
        from callcast import catalog
        from callcast.errors import PartitionNotFoundError

        prefix = catalog.forecasts(namespace)
        day = self.lake.latest_partition(prefix)
        if day is None:
            raise PartitionNotFoundError(
                f"No committed forecasts in {self.lake.describe(prefix)}: run `callcast forecast` first."
            )
        hit = self._cache.get(namespace)
        if hit is None or hit[0] != day:
            fc = self.lake.read_csv(prefix, day, "forecasts.csv", dtype={"series_id": str, "model": str})
            fc["date"] = pd.to_datetime(fc["date"]).dt.strftime("%Y-%m-%d")
            by = {str(k): g.drop(columns="series_id") for k, g in fc.groupby("series_id", sort=True)}
            manifest = self.lake.read_manifest(prefix, day)
            meta = {
                k: manifest.get(k)
                for k in ("freq", "horizon", "code_version", "mlflow_run_id", "finished_at")
            }
            hit = (day, by, meta)
            self._cache[namespace] = hit
        return hit

    def read(self, series_ids: list[str] | None = None, namespace: str | None = None) -> dict[str, Any]:
        """Rows of some series (all if None) from the latest partition, and the ids it does not hold."""
        day, by, meta = self.latest(namespace)
        ids = list(by) if series_ids is None else series_ids
        series = {s: by[s].to_dict(orient="records") for s in ids if s in by}
        return {
            "partition_date": day.isoformat(),
            "namespace": namespace,
            **meta,
            "series": series,
            "missing": [s for s in ids if s not in by],
        }


def read_forecasts(
    series_ids: list[str] | None = None, namespace: str | None = None, lake: Any = None
) -> dict[str, Any]:
    """The latest committed forecast partition's rows for some series (all if ``series_ids`` is None).

    Returns ``{"partition_date", "namespace", "freq", "horizon", ..., "series": {id: [rows]}, "missing":
    [ids]}``; each row has ``date, forecast, lo80, hi80, lo95, hi95, model``. Raises
    ``PartitionNotFoundError`` when the namespace has no committed forecasts.
    """
    return ForecastReader(lake).read(series_ids, namespace)


@task(name="log-mlflow", cache_policy=NO_CACHE, retries=1)
def log_mlflow_task(
    tracking_uri: str, experiment: str, params: dict[str, Any], overall: dict[str, Any], files: dict[str, str]
) -> str:
    """One MLflow run per retraining: parameters, backtest metrics, reports, fitted models and plots."""
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    quiet_libraries()
    import mlflow

    quiet_libraries()  # mlflow sets its own logger's level on import
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"forecast-{params.get('partition_date')}") as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(
            {
                k: float(v)
                for k, v in overall.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and pd.notna(v)
            }
        )
        mlflow.log_metrics({f"models_{k}": v for k, v in overall["models"].items()})
        for name, path in files.items():
            if name != "forecasts.csv":
                mlflow.log_artifact(path, artifact_path="plots" if name.endswith(".png") else None)
        return run.info.run_id


def publish_artifacts(markdown: str, files: dict[str, str], location: str) -> None:
    """Prefect artifacts: the backtest headline table and the plots (embedded PNGs)."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        key="forecast-backtest",
        markdown=markdown + f"\n\nOutputs: `{location}`",
        description="Forecast backtest",
    )
    images = [
        f"![{name}](data:image/png;base64,{base64.b64encode(Path(p).read_bytes()).decode()})"
        for name, p in sorted(files.items())
        if name.endswith(".png")
    ]
    if images:
        create_markdown_artifact(
            key="forecast-plots",
            markdown="# Forecasts of representative series\n\n" + "\n\n".join(images),
            description="History, forecast and 80%/95% intervals",
        )


def elapsed(start: float) -> float:
    """Seconds since ``start`` (``time.perf_counter``), rounded."""
    return round(time.perf_counter() - start, 2)
