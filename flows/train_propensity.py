"""Flow: validated exports -> training table -> candidates -> registry -> promotion gate -> card."""

from __future__ import annotations

import tempfile
from datetime import date
from typing import Any

from prefect import flow

from models.propensity.config import Profile
from tasks.training import build_training_table_task, register_and_gate_task, train_candidates_task


@flow(name="train-propensity", log_prints=True)
def train_propensity(
    profile: Profile = "quick", as_of: date | None = None, lake_url: str | None = None
) -> dict[str, Any]:
    """Train the propensity model on the latest validated exports; promote it if it beats the champion."""
    from prefect.artifacts import create_markdown_artifact
    from prefect.events import emit_event

    from callcast.settings import get_settings

    settings = get_settings(lake_url=lake_url) if lake_url else get_settings()
    with tempfile.TemporaryDirectory(prefix="callcast-propensity-") as workdir:
        built = build_training_table_task(workdir, as_of, lake_url)
        result_path = train_candidates_task(built["table_path"], profile)
        summary = register_and_gate_task(
            built["table_path"], result_path, built["inputs"], lake_url, settings.resolved_mlflow_uri()
        )
    create_markdown_artifact(
        key="propensity-model-card", markdown=summary["card"], description=f"propensity {summary['version']}"
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
    h = summary["headline"]
    print(
        f"propensity {summary['version']} ({summary['candidate']}): "
        f"{'PROMOTED to champion' if summary['promoted'] else 'kept as challenger'}; holdout ROC AUC "
        f"{h['roc_auc']:.3f}, top-20% reaches {h['gains_at_20']:.0%} of buyers, Brier {h['brier']:.3f} "
        f"(base rate {h['base_rate_brier']:.3f}); registry {summary['registry']}"
    )
    return {k: v for k, v in summary.items() if k != "card"}
