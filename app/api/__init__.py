"""HTTP scoring endpoint: the propensity champion behind FastAPI.

- ``POST /score``: one customer (a JSON object) or a batch (``{"customers": [...]}``) -> probability, decile,
  model version. Invalid input -> 422 with field-level errors.
- ``GET /forecasts/{series_id}`` (``?namespace=`` for a bring-your-own run) and ``POST /forecasts/batch``: the latest
  committed sales forecasts with 80%/95% intervals and the model used; 404 for an unknown series
  (:mod:`app.api.forecasts`).
- ``GET /health``: serving state (model loaded, last reload error). ``GET /model``: the champion's model.json
  summary and the scoring context in use.

The champion is loaded fully and SHA-256 verified before it replaces the one in use (one reference swap), so
a request never sees a half-loaded model; a background thread looks at ``aliases.json`` every
``reload_seconds``, and a failed load keeps the old model serving (reported in ``/health``).

Rows get the call-date context and decile cut points the latest batch scoring stored for this model version
(``call_lists/serving/propensity-<version>.json``), so the endpoint and the call list agree for the same
customer. Without that document the decile is ``null`` and the context is the prior (run ``callcast
score`` once).

Scoring: a logistic-regression champion is compiled to plain-Python weights
(:mod:`models.propensity.serving`, ~10 us a customer instead of ~9 ms a ``predict_proba`` call), but only
after it matched the pipeline on a few thousand varied rows at load; requests of up to ``INLINE_ROWS``
customers are then scored on the event loop. Any other champion (forest, boosting, a failed check) is scored
like the batch (:func:`models.call_list.scoring_rows` + ``predict_proba``) through :class:`MicroBatcher`'s
thread. ``GET /model`` says which (``scorer``). ``POST /score`` is answered by a plain ASGI layer in front of
the router; ``callcast serve-api --workers N`` runs N processes, each with its own champion and reloader.

Security: binds to 127.0.0.1 by default; on any other address an API key is required (``X-API-Key``,
compared in constant time; 401 without it). Bodies above ``max_body_bytes`` get 413. The access log
records method, path (no query string), status and time: never bodies or customer data.

Modules: :mod:`app.api.schemas` (request/response models), :mod:`app.api.holder` (the champion and its hot
reload), :mod:`app.api.scoring` (scoring, micro-batcher, ``POST /score``), :mod:`app.api.middleware`,
:mod:`app.api.factory` (``create_app``), :mod:`app.api.server` (uvicorn).
"""

from app.api.factory import app_from_environment, create_app

__all__ = ["app_from_environment", "create_app"]
