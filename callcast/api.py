"""HTTP scoring endpoint: the propensity champion behind FastAPI.

- ``POST /score``: one customer (a JSON object) or a batch (``{"customers": [...]}``) -> probability, decile,
  model version. Invalid input -> 422 with field-level errors.
- ``GET /health``: serving state (model loaded, last reload error). ``GET /model``: the champion's model.json
  summary and the scoring context in use.

The champion is loaded fully and SHA-256 verified before it replaces the one in use (one reference swap), so
a request never sees a half-loaded model; a background thread looks at ``aliases.json`` every
``reload_seconds``, and a failed load keeps the old model serving (reported in ``/health``).

Rows get the call-date context and decile cut points the latest batch scoring stored for this model version
(``call_lists/serving/propensity-<version>.json``), so the endpoint and the call list agree for the same
customer. Without that document the decile is ``null`` and the context is the prior (run ``python -m
flows.score`` once).

Scoring: a logistic-regression champion is compiled to plain-Python weights
(:mod:`models.propensity.serving`, ~10 us a customer instead of ~9 ms a ``predict_proba`` call), but only
after it matched the pipeline on a few thousand varied rows at load; requests of up to ``INLINE_ROWS``
customers are then scored on the event loop. Any other champion (forest, boosting, a failed check) is scored
like the batch (:func:`tasks.scoring.scoring_rows` + ``predict_proba``) through :class:`MicroBatcher`'s
thread. ``GET /model`` says which (``scorer``). ``POST /score`` is answered by a plain ASGI layer in front of
the router; ``--workers N`` runs N processes, each with its own champion and reloader.

Security: binds to 127.0.0.1 by default; on any other address an API key is required (``X-API-Key``,
compared in constant time; 401 without it). Bodies above ``max_body_bytes`` get 413. The access log
records method, path (no query string), status and time: never bodies or customer data.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from callcast.errors import ConfigurationError
from callcast.schema import BANK_CATEGORIES
from models.propensity.serving import LinearScorer, scoring_row, serving_scorer, verification_rows

if TYPE_CHECKING:
    from callcast.lake import Lake
    from callcast.settings import Settings

access_log = logging.getLogger("callcast.api.access")
log = logging.getLogger("callcast.api")

MAX_BATCH = 1000
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
INLINE_ROWS = 64
"""Requests of at most this many customers are scored by the compiled scorer on the event loop (~5 us a
row); larger ones, and every request when the pipeline serves, go through the micro-batcher's thread."""

Job = Literal[BANK_CATEGORIES["job"]]  # type: ignore[valid-type]
Marital = Literal[BANK_CATEGORIES["marital"]]  # type: ignore[valid-type]
Education = Literal[BANK_CATEGORIES["education"]]  # type: ignore[valid-type]
YesNo = Literal["yes", "no"]
Contact = Literal[BANK_CATEGORIES["contact"]]  # type: ignore[valid-type]
Poutcome = Literal[BANK_CATEGORIES["poutcome"]]  # type: ignore[valid-type]


class CustomerIn(BaseModel):
    """One customer's attributes and latest known contact history (the columns the call list is scored on)."""

    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = Field(default=None, ge=1, description="Echoed back; not used for scoring.")
    age: int = Field(ge=18, le=120)
    job: Job
    marital: Marital
    education: Education
    default: YesNo
    balance: int = Field(ge=-1_000_000, le=100_000_000, description="Average yearly balance (euros).")
    housing: YesNo
    loan: YesNo
    contact: Contact = Field(default="unknown", description="Channel of the latest contact.")
    campaign: int = Field(default=1, ge=1, le=100, description="Contacts in the latest campaign.")
    previous: int = Field(default=0, ge=0, le=1000, description="Contacts before the latest campaign.")
    poutcome: Poutcome = Field(default="unknown", description="Outcome of the previous campaign.")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: list[CustomerIn] = Field(min_length=1, max_length=MAX_BATCH)


class ScoreOut(BaseModel):
    customer_id: int | None
    probability: float
    decile: int | None = Field(description="1 = top 10% of the latest scored eligible customers.")
    model_version: str


class BatchOut(BaseModel):
    model_version: str
    results: list[ScoreOut]


# -- the model in use -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """Everything one request needs, swapped as one reference."""

    model: Any
    info: dict[str, Any]
    context: dict[str, Any]
    decile_cuts: list[float]
    serving_found: bool
    scorer: LinearScorer | None = None  # compiled and verified; None = score with the pipeline
    scorer_note: str = ""
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> str:
        return str(self.info["version"])


class ModelHolder:
    """Holds the champion; :meth:`refresh` swaps in a newly promoted one after loading it completely."""

    def __init__(self, lake: Lake, reload_seconds: float = 5.0) -> None:
        self.lake = lake
        self.reload_seconds = reload_seconds
        self.current: Served | None = None
        self.last_error: str | None = None
        self.last_check: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _target(self) -> tuple[str, str]:
        from tasks import registry

        info = registry.read_model_info(self.lake, "propensity", "champion")
        return info["version"], info["pickle_sha256"]

    def refresh(self) -> bool:
        """Load the champion if it changed (or its serving context appeared); True if a swap happened."""
        from tasks.scoring import load_champion, scoring_context, serving_key

        with self._lock:
            self.last_check = time.time()
            try:
                version, sha = self._target()
                current = self.current
                unchanged = current is not None and (current.version, current.info["pickle_sha256"]) == (
                    version,
                    sha,
                )
                if unchanged and (
                    current.serving_found or not self.lake.storage.exists(serving_key(version))
                ):
                    self.last_error = None
                    return False
                model, info = load_champion(self.lake, version)  # verifies the SHA-256
                key = serving_key(info["version"])
                if self.lake.storage.exists(key):
                    doc = self.lake.read_json(key)
                    context = {
                        k: doc[k] for k in ("call_date", "day", "month", "ctx_volume_7d", "ctx_rate_90d")
                    }
                    cuts, found = [float(c) for c in doc.get("decile_cuts", [])], True
                else:
                    import pandas as pd

                    context = scoring_context(pd.DataFrame(), date.today())
                    cuts, found = [], False
                scorer, note = compile_for_serving(model, context)
                self.current = Served(model, info, context, cuts, found, scorer, note)  # the one atomic swap
                self.last_error = None
                gc.freeze()  # the model's objects are long-lived: keep them out of full collections
                log.info("serving propensity %s with the %s scorer", info["version"], note)
                return True
            except Exception as exc:  # keep serving the old model; report why in /health
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("champion reload failed, still serving %s: %s", self.version_or_none(), exc)
                return False

    def version_or_none(self) -> str | None:
        return self.current.version if self.current else None

    def start(self) -> None:
        """Refresh now and then every ``reload_seconds`` in a daemon thread."""
        self.refresh()
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="champion-reloader", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.reload_seconds):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def compile_for_serving(model: Any, context: dict[str, Any]) -> tuple[LinearScorer | None, str]:
    """The verified compiled scorer for ``model`` (or None and why), checked on rows of this context too."""
    from tasks.scoring import NEVER_CONTACTED

    try:
        extra = [
            scoring_row(r, context, NEVER_CONTACTED)
            for r in verification_rows(300, seed=7, never_contacted=NEVER_CONTACTED)
            if r["age"] is not None and r["balance"] is not None  # the endpoint validates both
        ]
        return serving_scorer(model, NEVER_CONTACTED, extra_rows=extra)
    except Exception as exc:  # never block a model swap on the optimisation
        return None, f"pipeline (compiling failed: {type(exc).__name__}: {exc})"


def probabilities(served: Served, customers: list[CustomerIn]) -> list[float]:
    """Probability of a sale per customer: compiled scorer when verified, else the batch path (pandas)."""
    from tasks.scoring import NEVER_CONTACTED, predict, scoring_rows

    if served.scorer is not None:
        probability, context = served.scorer.probability, served.context
        return [
            probability(scoring_row({**c.__dict__, "customer_id": None}, context, NEVER_CONTACTED))
            for c in customers
        ]
    import pandas as pd

    records = pd.DataFrame([c.model_dump() for c in customers])
    records["customer_id"] = 0
    return predict(served.model, scoring_rows(records, served.context)).tolist()


def score_records(served: Served, customers: list[CustomerIn]) -> list[dict[str, Any]]:
    """``ScoreOut`` dicts (probability, decile, version) for validated customers, from one :class:`Served`."""
    from tasks.scoring import PROBABILITY_DIGITS

    p = probabilities(served, customers)
    cuts = served.decile_cuts
    version = served.version
    return [
        {
            "customer_id": c.customer_id,
            "probability": round(pi, PROBABILITY_DIGITS),
            "decile": 1 + sum(pi < cut for cut in cuts) if cuts else None,  # = tasks.scoring.assign_deciles
            "model_version": version,
        }
        for c, pi in zip(customers, p, strict=True)
    ]


class MicroBatcher:
    """Coalesce concurrent requests into one ``predict`` call (the pipeline's cost is mostly per call).

    One worker takes every request waiting in the queue (up to ``max_rows`` customers), scores them in a
    thread, and answers each; requests arriving meanwhile form the next batch. No artificial wait: a lone
    request is scored at once. Each request keeps the :class:`Served` it started with.
    """

    def __init__(self, max_rows: int = 2048) -> None:
        self.max_rows = max_rows
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def score(self, served: Served, customers: list[CustomerIn]) -> list[dict[str, Any]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((served, customers, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            items = [await self._queue.get()]
            rows = len(items[0][1])
            while rows < self.max_rows and not self._queue.empty():
                items.append(self._queue.get_nowait())
                rows += len(items[-1][1])
            groups: dict[int, list] = {}
            for item in items:
                groups.setdefault(id(item[0]), []).append(item)
            for group in groups.values():
                merged = [c for _, customers, _ in group for c in customers]
                try:
                    results = await run_in_threadpool(score_records, group[0][0], merged)
                except Exception as exc:  # answer every waiting request, keep the worker alive
                    for _, _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for _, customers, future in group:
                    if not future.done():
                        future.set_result(results[start : start + len(customers)])
                    start += len(customers)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker


# -- POST /score --------------------------------------------------------------------------------------------


class ScoreEndpoint:
    """``POST /score`` as a plain function of the body: validation (422), no model (503), scoring (200)."""

    def __init__(self, holder: ModelHolder, batcher: MicroBatcher) -> None:
        self.holder = holder
        self.batcher = batcher

    async def respond(self, raw: bytes) -> tuple[int, Any]:
        """HTTP status and JSON payload for one request body."""
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            error = {"type": "json_invalid", "loc": ["body"], "msg": f"Invalid JSON: {exc}", "input": None}
            return 422, {"detail": [error]}
        is_batch = isinstance(body, dict) and "customers" in body
        try:
            parsed = BatchIn.model_validate(body) if is_batch else CustomerIn.model_validate(body)
        except ValidationError as exc:
            from fastapi.encoders import jsonable_encoder

            errors = exc.errors(include_url=False, include_input=False)
            return 422, {"detail": jsonable_encoder([{**e, "loc": ("body", *e["loc"])} for e in errors])}
        served = self.holder.current  # one reference for the whole request
        if served is None:
            return 503, {
                "detail": f"No champion loaded ({self.holder.last_error or 'not loaded yet'}). "
                "Train and promote one: python -m flows.train_propensity"
            }
        customers = parsed.customers if isinstance(parsed, BatchIn) else [parsed]
        if served.scorer is not None and len(customers) <= INLINE_ROWS:
            results = score_records(served, customers)  # microseconds: cheaper than a thread hop
        else:
            results = await self.batcher.score(served, customers)
        return 200, {"model_version": served.version, "results": results} if is_batch else results[0]


class ScoreMiddleware:
    """Answer ``POST /score`` straight from ASGI (no routing, request object or dependency solving).

    That layer cost ~100 us of the ~300 us a request took; the other paths go on to the FastAPI router.
    """

    def __init__(self, app, endpoint: ScoreEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/score" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        status, payload = await self.endpoint.respond(b"".join(chunks))
        await _send_json(send, status, payload)


# -- app ---------------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes`` (declared length or streamed), before the app reads them."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _send_json(send, 413, {"detail": f"Request body over {self.max_bytes} bytes."})
            return
        seen = 0

        class TooLarge(Exception):
            pass

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise TooLarge
            return message

        started = False

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLarge:
            if not started:
                await _send_json(send, 413, {"detail": f"Request body over {self.max_bytes} bytes."})


class ApiKeyMiddleware:
    """401 unless the ``X-API-Key`` header equals ``key`` (constant-time comparison), on every HTTP route."""

    def __init__(self, app, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            given = next((v for k, v in scope.get("headers") or [] if k == b"x-api-key"), b"")
            if not hmac.compare_digest(given, self.key):
                await _send_json(send, 401, {"detail": "Missing or wrong X-API-Key header."})
                return
        await self.app(scope, receive, send)


class AccessLogMiddleware:
    """One line per request: method, path without query string, status, milliseconds. No bodies."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def capture(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            access_log.info(
                '%s "%s %s" %d %.1fms',
                (scope.get("client") or ("-",))[0], scope["method"], scope["path"], status,
                (time.perf_counter() - t0) * 1000,
            )  # fmt: skip


async def _send_json(send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


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
    holder = ModelHolder(lake or open_lake(settings), api.reload_seconds)
    batcher = MicroBatcher()

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
                "Train and promote one: python -m flows.train_propensity",
            )
        return served

    endpoint = ScoreEndpoint(holder, batcher)

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

    app.add_middleware(ScoreMiddleware, endpoint=endpoint)
    app.add_middleware(BodyLimitMiddleware, max_bytes=api.max_body_bytes)
    if need_key:
        app.add_middleware(ApiKeyMiddleware, key=key)
    app.add_middleware(AccessLogMiddleware)  # added last = outermost: sees every status, 413 included
    return app


def app_from_environment() -> FastAPI:
    """App factory for ``uvicorn --factory`` (one per worker process): settings from the environment."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)  # a spawned worker starts unconfigured
    return create_app()


def main(argv: list[str] | None = None) -> int:
    """``python -m callcast.api``: serve the champion with uvicorn on the configured host and port."""
    import argparse
    import os

    import uvicorn

    from callcast.settings import get_settings

    parser = argparse.ArgumentParser(
        prog="python -m callcast.api", description="Serve the propensity champion."
    )
    parser.add_argument("--host", help="bind address (default: settings, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default: settings, 8765)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port, each with its own champion and reloader (default 1)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    overrides = {k: v for k, v in {"host": args.host, "port": args.port}.items() if v is not None}
    if overrides:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update=overrides)})
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        app = create_app(settings)  # fails fast on a bad configuration, before any worker starts
    except ConfigurationError as exc:
        print(f"error: {exc}")
        return 2
    host, port = settings.api.host, settings.api.port
    if args.workers > 1:  # workers import the factory and read the settings from the environment
        import socket

        from uvicorn.supervisors import Multiprocess

        os.environ["CALLCAST_API__HOST"], os.environ["CALLCAST_API__PORT"] = host, str(port)
        config = uvicorn.Config(
            "callcast.api:app_from_environment",
            factory=True,
            workers=args.workers,
            host=host,
            port=port,
            access_log=False,
            log_level="info",
            timeout_worker_healthcheck=60,  # a worker loading and verifying the champion is busy for seconds
        )
        sock = config.bind_socket()
        # uvicorn binds this shared socket with proto 0, so asyncio skips TCP_NODELAY on accepted connections
        # and every response (headers, then body) waited ~40 ms for a delayed ACK. Accepted sockets inherit
        # the option from the listening one on Linux.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Multiprocess(config, sockets=[sock]).run()
        return 0
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
