"""Flow: validated exports -> training table -> (unchanged? stop) -> candidates -> gate -> registry -> card."""

from __future__ import annotations

import tempfile
from datetime import date
from typing import Any

from prefect import flow

from flows.candidate_search import search_candidates
from models.propensity.config import Profile
from tasks.candidate_search import read_config_task, search_runner, train_from_search_task
from tasks.training import (
    build_training_table_task,
    find_trained_version_task,
    register_and_gate_task,
    unchanged_summary,
)

CHAMPION_CARD_KEY = "propensity-model-card"
"""Prefect artifact key of the champion's card (what people open in the UI)."""
CHALLENGER_CARD_KEY = "propensity-challenger-card"
"""Challengers' cards are kept apart, under their own key."""


@flow(name="train-propensity", log_prints=True)
def train_propensity(
    profile: Profile = "quick",
    as_of: date | None = None,
    lake_url: str | None = None,
    reason: str = "schedule",
    use_dask: bool | None = None,
) -> dict[str, Any]:
    """Train the propensity model on the latest validated exports; promote it if it beats the champion.

    ``reason`` records why the run started (``schedule``, ``drift`` from the monitoring trigger, ``manual``);
    every reason goes through the same promotion gate. ``use_dask`` (default: on when ``CALLCAST_DASK_ADDRESS``
    names a cluster, or for the ``large`` profile) runs the candidate search's trials on Dask; the result is the
    same as in-process for the same seed.
    """
    print(f"propensity training started (reason: {reason}, profile: {profile})")
    from prefect.artifacts import create_markdown_artifact
    from prefect.events import emit_event

    from callcast.settings import get_settings

    settings = get_settings(lake_url=lake_url) if lake_url else get_settings()
    with tempfile.TemporaryDirectory(prefix="callcast-propensity-") as workdir:
        built = build_training_table_task(workdir, as_of, lake_url, profile)
        existing = find_trained_version_task(built["fingerprint"], lake_url)
        if existing is not None:
            summary = unchanged_summary(existing, lake_url)
            print(f"propensity: {summary['reasons'][0]}")
            return {k: v for k, v in summary.items() if k != "card"}
        config = read_config_task()
        runner, label = search_runner(settings, profile, use_dask)
        search = search_candidates.with_options(task_runner=runner)(
            built["table_path"], workdir, profile, config, settings.resolved_mlflow_uri(), label
        )
        result_path = train_from_search_task(built["table_path"], search["path"], profile, config)
        summary = register_and_gate_task(
            built["table_path"],
            result_path,
            built["inputs"],
            lake_url,
            settings.resolved_mlflow_uri(),
            built["fingerprint"],
        )
    create_markdown_artifact(
        key=CHAMPION_CARD_KEY if summary["promoted"] else CHALLENGER_CARD_KEY,
        markdown=summary["card"],
        description=f"propensity {summary['version']} ({'champion' if summary['promoted'] else 'challenger'})",
    )
    if summary["promoted"]:
        emit_event(
            event="callcast.model.promoted",
            resource={
                "prefect.resource.id": "callcast.model.propensity",
                "prefect.resource.name": "propensity",
            },
            payload={
                "version": summary["version"],
                "metrics": summary["headline"],
                "reasons": summary["reasons"],
            },
        )
    h, b = summary["headline"], summary["baseline_headline"]
    print(
        f"propensity {summary['version']} ({summary['candidate']}): "
        f"{'PROMOTED to champion' if summary['promoted'] else 'kept as challenger'}; holdout within-date AUC "
        f"{h['within_date_auc']:.3f} (plain LR {b['within_date_auc']:.3f}); per-date capture at capacity "
        f"{h['capture_at_capacity']:.0%} of the buyers vs {h['capture_random']:.0%} at random; "
        f"served model fitted {summary['fit_window'][0]} to {summary['fit_window'][1]}; registry {summary['registry']}"
    )
    return {k: v for k, v in summary.items() if k != "card"}
