"""Scoring requests: compiled scorer inline for small requests, a micro-batcher for the rest, POST /score as ASGI."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from app.api.holder import ModelHolder, Served
from app.api.middleware import send_json
from app.api.schemas import CustomerIn, request_models
from callcast.schema import CustomerSchema
from models.propensity.serving import scoring_row

INLINE_ROWS = 64
"""Requests of at most this many customers are scored by the compiled scorer on the event loop (~5 us a
row); larger ones, and every request when the pipeline serves, go through the micro-batcher's thread."""


def probabilities(
    served: Served, customers: list[CustomerIn], customer_columns: list[str] | None = None
) -> list[float]:
    """Probability of a sale per customer: compiled scorer when verified, else the batch path (pandas).

    ``customer_columns`` names a company schema's attributes (default: the UCI ones).
    """
    from models.call_list import NEVER_CONTACTED, predict, scoring_rows

    if served.scorer is not None and customer_columns is None:
        probability, context = served.scorer.probability, served.context
        return [
            probability(scoring_row({**c.__dict__, "customer_id": None}, context, NEVER_CONTACTED))
            for c in customers
        ]
    import pandas as pd

    records = pd.DataFrame([c.model_dump() for c in customers])
    records["customer_id"] = 0
    return predict(served.model, scoring_rows(records, served.context, customer_columns)).tolist()


def score_records(
    served: Served, customers: list[CustomerIn], customer_columns: list[str] | None = None
) -> list[dict[str, Any]]:
    """``ScoreOut`` dicts (probability, decile, version) for validated customers, from one :class:`Served`."""
    from models.call_list import PROBABILITY_DIGITS, decile_of

    p = probabilities(served, customers, customer_columns)
    cuts = served.decile_cuts
    version = served.version
    return [
        {
            "customer_id": c.customer_id,
            "probability": round(pi, PROBABILITY_DIGITS),
            "decile": decile_of(pi, cuts),  # the batch's rule (models.call_list)
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

    def __init__(self, max_rows: int = 2048, customer_columns: list[str] | None = None) -> None:
        self.max_rows = max_rows
        self.customer_columns = customer_columns
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
                    results = await run_in_threadpool(
                        score_records, group[0][0], merged, self.customer_columns
                    )
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

    def __init__(
        self, holder: ModelHolder, batcher: MicroBatcher, schema: CustomerSchema | None = None
    ) -> None:
        self.holder = holder
        self.batcher = batcher
        self.customer_model, self.batch_model = request_models(schema)
        custom = schema is not None and schema != CustomerSchema()
        self.customer_columns = schema.customer_columns() if custom else None

    async def respond(self, raw: bytes) -> tuple[int, Any]:
        """HTTP status and JSON payload for one request body."""
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            error = {"type": "json_invalid", "loc": ["body"], "msg": f"Invalid JSON: {exc}", "input": None}
            return 422, {"detail": [error]}
        except RecursionError:
            error = {"type": "json_invalid", "loc": ["body"], "msg": "JSON nested too deeply.", "input": None}
            return 422, {"detail": [error]}
        is_batch = isinstance(body, dict) and "customers" in body
        try:
            model = self.batch_model if is_batch else self.customer_model
            parsed = model.model_validate(body)
        except ValidationError as exc:
            from fastapi.encoders import jsonable_encoder

            errors = exc.errors(include_url=False, include_input=False)
            return 422, {"detail": jsonable_encoder([{**e, "loc": ("body", *e["loc"])} for e in errors])}
        served = self.holder.current  # one reference for the whole request
        if served is None:
            return 503, {
                "detail": f"No champion loaded ({self.holder.last_error or 'not loaded yet'}). "
                "Train and promote one: callcast train"
            }
        customers = parsed.customers if is_batch else [parsed]
        if served.scorer is not None and self.customer_columns is None and len(customers) <= INLINE_ROWS:
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
        await send_json(send, status, payload)
