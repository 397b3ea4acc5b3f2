"""Prefect tasks of propensity training: read validated partitions, train, register, gate, mirror to MLflow."""

from __future__ import annotations

import pickle
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task

from callcast.lake import Lake, open_lake
from callcast.runtime import code_version, get_logger
from models.propensity.card import HEADLINE, render_card
from models.propensity.config import Profile, PropensityConfig
from models.propensity.evaluation import evaluate, plot_calibration, plot_gains, plot_rate_over_time, plot_roc
from models.propensity.features import build_training_table
from models.propensity.gate import behaviour_tests, decide_promotion
from models.propensity.training import TrainingResult, train_propensity_model
from tasks import registry

MODEL_NAME = "propensity"


def _lake(lake_url: str | None) -> Lake:
    from callcast.settings import get_settings

    return open_lake(get_settings(lake_url=lake_url) if lake_url else get_settings())


def _config() -> PropensityConfig:
    """The propensity section of the settings (``CALLCAST_PROPENSITY__...``), read now."""
    from callcast.settings import get_settings

    return get_settings().propensity


def read_validated_inputs(
    lake: Lake, as_of: date | None
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Latest validated customers snapshot and every validated contacts slice up to it; plus their manifests."""
    from tasks.checks import require_validated, require_validated_history

    log = get_logger()
    customers_day = require_validated(
        lake,
        "customers",
        lake.latest_partition("raw/customers", as_of),
        fallback_to_last_good=True,
        logger=log,
    )
    contact_days = require_validated_history(
        lake, "campaign_contacts", as_of, fallback_to_last_good=True, logger=log
    )
    inputs = []
    customers = lake.read_csv("raw/customers", customers_day, "customers.csv.gz")
    inputs.append(_lineage(lake, "raw/customers", customers_day))
    slices = []
    for day in contact_days:
        slices.append(lake.read_csv("raw/campaign_contacts", day, "campaign_contacts.csv.gz"))
        inputs.append(_lineage(lake, "raw/campaign_contacts", day))
    contacts = pd.concat(slices, ignore_index=True)
    log.info(
        "Training inputs: customers %s (%d rows), campaign_contacts %d slice(s) up to %s (%d rows)",
        customers_day, len(customers), len(contact_days), contact_days[-1], len(contacts),
    )  # fmt: skip
    return customers, contacts, inputs


def _lineage(lake: Lake, prefix: str, day: date) -> dict[str, Any]:
    manifest = lake.read_manifest(prefix, day)
    return {
        "table": manifest.get("table", prefix.split("/")[-1]),
        "partition_date": day.isoformat(),
        "rows": manifest.get("rows"),
        "sha256": manifest.get("sha256") or [f["sha256"] for f in manifest.get("files", [])],
        "finished_at": manifest.get("finished_at"),
    }


@task(name="build-training-table", retries=1, retry_delay_seconds=5)
def build_training_table_task(
    workdir: str, as_of: date | None = None, lake_url: str | None = None
) -> dict[str, Any]:
    """Training table from the validated exports, saved as a pickle in ``workdir``; returns path + lineage."""
    config = _config()
    customers, contacts, inputs = read_validated_inputs(_lake(lake_url), as_of)
    table = build_training_table(
        customers, contacts, as_of, config.context_rate_prior, config.context_rate_prior_weight
    )
    path = Path(workdir) / "training_table.pkl"
    table.to_pickle(path)
    get_logger().info(
        "Training table: %d labelled contacts, %s to %s",
        len(table),
        table["contact_date"].min().date(),
        table["contact_date"].max().date(),
    )
    return {"table_path": str(path), "inputs": inputs, "rows": len(table)}


@task(name="train-candidates")
def train_candidates_task(table_path: str, profile: Profile = "quick") -> str:
    """Search, fit and evaluate every candidate; the result is pickled next to the table."""
    log = get_logger()
    result = train_propensity_model(pd.read_pickle(table_path), _config(), profile, log=log.info)
    path = Path(table_path).with_name("training_result.pkl")
    path.write_bytes(pickle.dumps(result))
    return str(path)


def write_plots(result: TrainingResult, champion_p=None, out_dir: Path | None = None) -> dict[str, Path]:
    """ROC, gains/lift, calibration and rate-over-time PNGs of the chosen model (and the champion)."""
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="callcast-plots-"))
    y = result.holdout_y
    curves = {f"new: {result.chosen.name}": (y, result.chosen.holdout_p)}
    if champion_p is not None:
        curves["champion"] = (y, champion_p)
    over_time = result.holdout_frame.copy()
    if champion_p is not None:
        over_time["p_champion"] = champion_p
    return {
        "roc.png": plot_roc(curves, out_dir / "roc.png"),
        "gains_lift.png": plot_gains(curves, out_dir / "gains_lift.png"),
        "calibration.png": plot_calibration(curves, out_dir / "calibration.png"),
        "rate_over_time.png": plot_rate_over_time(over_time, out_dir / "rate_over_time.png"),
    }


def register_and_gate(
    lake: Lake,
    result: TrainingResult,
    holdout_inputs: pd.DataFrame,
    inputs: list[dict[str, Any]],
    config: PropensityConfig,
    tracking_uri: str | None,
    experiment: str = "callcast-propensity",
) -> dict[str, Any]:
    """Register the chosen model, compare it with the champion on the same holdout, set aliases, write the card."""
    log = get_logger()
    chosen = result.chosen
    champion_metrics = champion_p = champion_version = None
    try:
        champion, champion_info = registry.load_model(lake, MODEL_NAME, "champion")
        champion_p = champion.predict_proba(holdout_inputs)[:, 1]
        champion_metrics = evaluate(result.holdout_y, champion_p, result.holdout_dates)
        champion_version = champion_info["version"]
    except registry.UnknownAliasError:
        log.info("No champion yet: the new model is compared with nothing but the behaviour tests.")
    behaviour = behaviour_tests(chosen.pipeline, holdout_inputs.head(config.behaviour_sample_rows))
    decision = decide_promotion(
        chosen.holdout, champion_metrics, behaviour, config.promotion_metric, config.promotion_margin
    )
    if champion_version:
        decision.reasons.append(f"champion compared: {champion_version}")
    fs = config.feature_sets[chosen.feature_set]
    info: dict[str, Any] = {
        "candidate": chosen.name,
        "profile": result.profile,
        "params": chosen.params,
        "seed": config.seed,
        "metrics": chosen.holdout,
        "champion_metrics_same_holdout": champion_metrics,
        "features": {"categorical": fs.categorical, "numeric": fs.numeric},
        "excluded_features": config.excluded_features,
        "data_window": {"train": list(result.train_window), "holdout": list(result.holdout_window)},
        "rows": result.table_rows,
        "inputs": inputs,
        "candidates": [
            {
                "name": c.name,
                "cv_auc": c.cv_auc,
                "recent_fold_auc": c.recent_fold_auc,
                "behaviour_passed": c.behaviour_passed,
                **{k: c.holdout[k] for k in ("roc_auc", "pr_auc", "brier", "gains_at_20")},
            }
            for c in result.candidates
        ],
        "rolling": result.rolling,
        "rate_by_quarter": result.rate_by_quarter,
        "decision": decision.as_dict(),
        "promoted": decision.promote,
        "code_version": code_version(),
    }
    with tempfile.TemporaryDirectory(prefix="callcast-train-") as tmp:
        plots = write_plots(result, champion_p, Path(tmp))
        version = registry.next_version(lake, MODEL_NAME)
        info["version"] = version
        card = render_card(info, config, champion_metrics, list(plots))
        stored = registry.register_model(lake, MODEL_NAME, chosen.pipeline, info, card, plots, version)
        aliases = registry.set_alias(
            lake, MODEL_NAME, "champion" if decision.promote else "challenger", version
        )
        for reason in decision.reasons:
            log.info("gate %s: %s", version, reason)
        mlflow_info = None
        if tracking_uri:
            pkl = Path(tmp) / "model.pkl"
            pkl.write_bytes(lake.storage.get_bytes(f"registry/{MODEL_NAME}/{version}/model.pkl"))
            card_path = Path(tmp) / "card.md"
            card_path.write_text(card)
            artifact_location = None
            lake_root = getattr(lake.storage, "root", None)
            if lake_root is not None:
                artifact_location = (Path(lake_root) / "mlflow-artifacts").as_uri()
            mlflow_info = registry.mlflow_mirror(
                tracking_uri,
                experiment,
                MODEL_NAME,
                stored,
                {**plots, "card.md": card_path, "model.pkl": pkl},
                artifact_location,
            )
            registry.mlflow_sync_aliases(tracking_uri, MODEL_NAME, aliases)
    return {
        "version": version,
        "promoted": decision.promote,
        "reasons": decision.reasons,
        "aliases": aliases,
        "candidate": chosen.name,
        "headline": {k: chosen.holdout.get(k) for k in HEADLINE},
        "champion_before": champion_version,
        "card": card,
        "mlflow": mlflow_info,
        "registry": lake.describe(f"registry/{MODEL_NAME}/{version}"),
    }


@task(name="register-and-gate")
def register_and_gate_task(
    table_path: str,
    result_path: str,
    inputs: list[dict[str, Any]],
    lake_url: str | None = None,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """Register, gate against the champion, set aliases, mirror into MLflow."""
    result: TrainingResult = pickle.loads(Path(result_path).read_bytes())
    table = pd.read_pickle(table_path)
    holdout_inputs = table.tail(len(result.holdout_y)).reset_index(drop=True)
    return register_and_gate(_lake(lake_url), result, holdout_inputs, inputs, _config(), tracking_uri)
