"""The FastAPI app: routes, middleware order and the champion's lifecycle."""

from __future__ import annotations

import gc
import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool

from app.api.forecasts import forecast_router
from app.api.holder import ModelHolder, Served
from app.api.middleware import AccessLogMiddleware, ApiKeyMiddleware, BodyLimitMiddleware, is_loopback
from app.api.schemas import BatchOut, ScoreOut
from app.api.scoring import MicroBatcher, ScoreEndpoint, ScoreMiddleware
from callcast.errors import ConfigurationError
from callcast.schema import CustomerSchema

if TYPE_CHECKING:
    from callcast.lake import Lake
    from callcast.settings import Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def create_app(
    settings: Settings | None = None, lake: Lake | None = None, start_reloader: bool = True
) -> FastAPI:
    """The FastAPI app serving the lake's champion (settings read now unless given)."""
    from contextlib import asynccontextmanager

    from callcast.lake import open_lake
    from callcast.settings import get_settings

    settings = settings or get_settings()
    api = settings.api
    key = api.api_key.get_secret_value() if api.api_key is not None else None
    need_key = not is_loopback(api.host)
    if need_key and not key:
        raise ConfigurationError(
            f"The scoring API is configured to listen on {api.host}, beyond loopback, without an API key: "
            "set CALLCAST_API__API_KEY (clients send it as X-API-Key) or bind to 127.0.0.1."
        )
    lake = lake or open_lake(settings)
    holder = ModelHolder(lake, api.reload_seconds)
    schema = settings.customers
    custom = schema != CustomerSchema()
    batcher = MicroBatcher(customer_columns=schema.customer_columns() if custom else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if start_reloader:
            await run_in_threadpool(holder.start)
        else:
            await run_in_threadpool(holder.refresh)
        # Startup leaves ~10^6 long-lived objects (sklearn, pandas, prefect modules, the model); a full
        # collection walking them stalled every request for 120-200 ms. Collect once now, then freeze them.
        gc.collect()
        gc.freeze()
        yield
        await batcher.close()
        holder.stop()

    app = FastAPI(
        title="callcast scoring API",
        description="Propensity champion: probability of a sale if the customer is called now.",
        lifespan=lifespan,
    )
    app.state.holder = holder

    def served_or_503() -> Served:
        served = holder.current
        if served is None:
            raise HTTPException(
                status_code=503,
                detail=f"No champion loaded ({holder.last_error or 'not loaded yet'}). "
                "Train and promote one: callcast train",
            )
        return served

    endpoint = ScoreEndpoint(holder, batcher, schema)

    @app.post("/score", response_model=ScoreOut | BatchOut)
    async def score(request: Request) -> Response:
        """Score one customer (a JSON object) or a batch (``{"customers": [...]}``).

        Served by :class:`ScoreEndpoint` in front of the router; this route documents it in the OpenAPI
        schema and answers the same way if reached.
        """
        status, payload = await endpoint.respond(await request.body())
        return Response(json.dumps(payload).encode(), status_code=status, media_type="application/json")

    @app.get("/health")
    def health() -> dict[str, Any]:
        served = holder.current
        return {
            "status": "ok"
            if served is not None and holder.last_error is None
            else "degraded"
            if served is not None
            else "unavailable",
            "model_version": served.version if served else None,
            "decile_cuts": bool(served and served.decile_cuts),
            "last_reload_error": holder.last_error,
            "last_check": holder.last_check,
        }

    @app.get("/model")
    def model_info() -> dict[str, Any]:
        served = served_or_503()
        info = served.info
        return {
            "model": info.get("model", "propensity"),
            "version": served.version,
            "candidate": info.get("candidate"),
            "registered_at": info.get("registered_at"),
            "pickle_sha256": info.get("pickle_sha256"),
            "metrics": info.get("metrics"),
            "features": info.get("features"),
            "scoring_context": served.context,
            "decile_cuts": served.decile_cuts,
            "scoring_context_from_batch": served.serving_found,
            "scorer": served.scorer_note,
        }

    app.include_router(forecast_router(lake))  # GET /forecasts/{series_id}, POST /forecasts/batch

    app.add_middleware(ScoreMiddleware, endpoint=endpoint)
    app.add_middleware(BodyLimitMiddleware, max_bytes=api.max_body_bytes)
    app.add_middleware(ApiKeyMiddleware, key=key)  # judges each connection's real local address
    app.add_middleware(AccessLogMiddleware)  # added last = outermost: sees every status, 413 included
    return app


def app_from_environment() -> FastAPI:
    """App factory for ``uvicorn --factory`` (one per worker process): settings from the environment."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # a spawned worker starts unconfigured
    return create_app()
