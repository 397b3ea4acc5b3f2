"""Forecast routes: the latest committed forecast partition over HTTP.

- ``GET /forecasts/{series_id}`` (``?namespace=<byo name>`` for a bring-your-own run): the series' forecast
  rows with 80%/95% intervals and the model used; 404 for a series the partition does not hold (or when no
  forecast was ever committed).
- ``POST /forecasts/batch`` ``{"series_ids": [...], "namespace": null}``: several series at once; unknown ids
  are listed under ``missing`` (404 only when none is known).

Served by :class:`tasks.forecasting.ForecastReader`: the partition's CSV is read once per committed run and
kept; each request checks the lake's latest partition, so a new run is served from the next request on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from callcast.lake import Lake

MAX_SERIES = 1000


class ForecastRow(BaseModel):
    date: str
    forecast: float
    lo80: float
    hi80: float
    lo95: float
    hi95: float


class SeriesForecast(BaseModel):
    series_id: str
    model: str = Field(description="The model chosen for this series by its backtest.")
    partition_date: str = Field(description="Last date of the data the forecast was made from.")
    namespace: str | None
    forecasts: list[ForecastRow]


class BatchForecastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series_ids: list[str] = Field(min_length=1, max_length=MAX_SERIES)
    namespace: str | None = None


class BatchForecastOut(BaseModel):
    partition_date: str
    namespace: str | None
    results: list[SeriesForecast]
    missing: list[str]


def _as_series(sid: str, rows: list[dict[str, Any]], got: dict[str, Any]) -> SeriesForecast:
    return SeriesForecast(
        series_id=sid,
        model=str(rows[0]["model"]) if rows else "",
        partition_date=got["partition_date"],
        namespace=got["namespace"],
        forecasts=[ForecastRow(**{k: r[k] for k in ForecastRow.model_fields}) for r in rows],
    )


def forecast_router(lake: Lake) -> APIRouter:
    """Routes reading ``lake``'s committed forecasts (sync handlers: FastAPI runs them in its threadpool)."""
    from callcast.errors import PartitionNotFoundError
    from tasks.forecasting import ForecastReader

    reader = ForecastReader(lake)
    router = APIRouter(prefix="/forecasts", tags=["forecasts"])

    def read(ids: list[str], namespace: str | None) -> dict[str, Any]:
        try:
            return reader.read(ids, namespace)
        except PartitionNotFoundError as exc:  # no server paths in the answer
            where = f" in namespace {namespace!r}" if namespace else ""
            raise HTTPException(
                status_code=404, detail=f"No committed forecasts{where}: run `callcast forecast` first."
            ) from exc

    @router.post("/batch", response_model=BatchForecastOut)
    def batch(body: BatchForecastIn) -> BatchForecastOut:
        """Several series of the latest committed forecasts; unknown ids are listed under ``missing``."""
        got = read(body.series_ids, body.namespace)
        if not got["series"]:
            raise HTTPException(
                status_code=404, detail=f"No forecast for any of {len(body.series_ids)} series."
            )
        return BatchForecastOut(
            partition_date=got["partition_date"],
            namespace=got["namespace"],
            results=[_as_series(s, rows, got) for s, rows in got["series"].items()],
            missing=got["missing"],
        )

    @router.get("/{series_id:path}", response_model=SeriesForecast)
    def one(series_id: str, namespace: str | None = None) -> SeriesForecast:
        """One series of the latest committed forecasts (404 if the partition does not hold it)."""
        got = read([series_id], namespace)
        if series_id not in got["series"]:
            raise HTTPException(
                status_code=404,
                detail=f"No forecast for series {series_id!r} in the forecasts of {got['partition_date']}.",
            )
        return _as_series(series_id, got["series"][series_id], got)

    return router
