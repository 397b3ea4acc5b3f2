"""The champion in use: loaded and verified completely, then swapped in as one reference (hot reload)."""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from models.propensity.serving import LinearScorer, scoring_row, serving_scorer, verification_rows

if TYPE_CHECKING:
    from callcast.lake import Lake

log = logging.getLogger("callcast.api")


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
        from callcast import catalog
        from models.call_list import scoring_context
        from tasks.scoring import MODEL_NAME, load_champion

        def serving_key(version: str) -> str:
            return catalog.serving_context(MODEL_NAME, version)

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

                    from callcast.runtime import company_today
                    from callcast.settings import get_settings

                    settings = get_settings()  # the prior in force, as training uses it
                    context = scoring_context(pd.DataFrame(), company_today(settings), settings.propensity)
                    cuts, found = [], False
                scorer, note = compile_for_serving(model, context)
                self.current = Served(model, info, context, cuts, found, scorer, note)  # the one atomic swap
                self.last_error = None
                gc.freeze()  # the model's objects are long-lived: keep them out of full collections
                log.info("serving propensity %s with the %s scorer", info["version"], note)
                return True
            except Exception as exc:  # keep serving the old model; report why in /health
                # Clients see the kind of failure only; the message (paths, keys) stays in the server log.
                self.last_error = f"{type(exc).__name__}; details in the server log"
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
    from models.call_list import NEVER_CONTACTED

    try:
        extra = [
            scoring_row(r, context, NEVER_CONTACTED)
            for r in verification_rows(300, seed=7, never_contacted=NEVER_CONTACTED)
            if r["age"] is not None and r["balance"] is not None  # the endpoint validates both
        ]
        return serving_scorer(model, NEVER_CONTACTED, extra_rows=extra)
    except Exception as exc:  # never block a model swap on the optimisation
        return None, f"pipeline (compiling failed: {type(exc).__name__}: {exc})"
