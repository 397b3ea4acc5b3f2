"""Prefect tasks of propensity training: read validated partitions, train, register, gate, mirror to MLflow."""

from __future__ import annotations

import pickle
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task

from callcast import catalog
from callcast.lake import Lake, open_lake
from callcast.runtime import code_version, get_logger
from models.propensity.card import HEADLINE, data_uri, render_card
from models.propensity.config import Profile, PropensityConfig
from models.propensity.evaluation import (
    bootstrap_intervals,
    date_stats,
    evaluate,
    plot_calibration,
    plot_calibration_over_time,
    plot_gains,
    plot_per_date_capture,
    plot_roc,
)
from models.propensity.features import build_training_table
from models.propensity.gate import behaviour_tests, decide_promotion
from models.propensity.training import TrainingResult, holdout_scores_of_recipe, train_propensity_model
from tasks import registry

MODEL_NAME = "propensity"


def _lake(lake_url: str | None) -> Lake:
    from callcast.settings import get_settings

    return open_lake(get_settings(lake_url=lake_url) if lake_url else get_settings())


def _config() -> PropensityConfig:
    """The propensity section of the settings (``CALLCAST_PROPENSITY__...``) for the customer schema, read now."""
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
        lake.latest_partition(catalog.raw("customers"), as_of),
        logger=log,
    )
    contact_days = require_validated_history(lake, "campaign_contacts", as_of, logger=log)
    inputs = []
    customers = lake.read_csv(catalog.raw("customers"), customers_day, catalog.raw_file_name("customers"))
    inputs.append(_lineage(lake, catalog.raw("customers"), customers_day))
    slices = []
    for day in contact_days:
        slices.append(
            lake.read_csv(catalog.raw("campaign_contacts"), day, catalog.raw_file_name("campaign_contacts"))
        )
        inputs.append(_lineage(lake, catalog.raw("campaign_contacts"), day))
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


def run_fingerprint(
    inputs: list[dict[str, Any]], profile: str, as_of: date | None, config: PropensityConfig
) -> str:
    """Equal input manifests, profile, cut-off and settings give an equal fingerprint (no retraining)."""
    return registry.fingerprint(
        inputs, profile=profile, as_of=as_of, config=config.model_dump(mode="json"), model=MODEL_NAME
    )


@task(name="build-training-table", retries=1, retry_delay_seconds=5)
def build_training_table_task(
    workdir: str, as_of: date | None = None, lake_url: str | None = None, profile: Profile = "quick"
) -> dict[str, Any]:
    """Training table from the validated exports (pickle in ``workdir``); path, lineage and fingerprint."""
    config = _config()
    customers, contacts, inputs = read_validated_inputs(_lake(lake_url), as_of)
    table = build_training_table(
        customers,
        contacts,
        as_of,
        config.context_rate_prior,
        config.context_rate_prior_weight,
        customer_columns=config.customer_columns(),
    )
    path = Path(workdir) / "training_table.pkl"
    table.to_pickle(path)
    get_logger().info(
        "Training table: %d labelled contacts, %s to %s",
        len(table),
        table["contact_date"].min().date(),
        table["contact_date"].max().date(),
    )
    fingerprint = run_fingerprint(inputs, profile, as_of, config)
    return {"table_path": str(path), "inputs": inputs, "rows": len(table), "fingerprint": fingerprint}


@task(name="find-trained-version")
def find_trained_version_task(fingerprint: str, lake_url: str | None = None) -> dict[str, Any] | None:
    """The registered version already trained on exactly these inputs and settings, if any."""
    return registry.find_by_fingerprint(_lake(lake_url), MODEL_NAME, fingerprint)


@task(name="train-candidates")
def train_candidates_task(table_path: str, profile: Profile = "quick") -> str:
    """Search, fit and evaluate every candidate; the result is pickled next to the table."""
    log = get_logger()
    result = train_propensity_model(pd.read_pickle(table_path), _config(), profile, log=log.info)
    path = Path(table_path).with_name("training_result.pkl")
    path.write_bytes(pickle.dumps(result))
    return str(path)


def write_plots(result: TrainingResult, champion_p=None, out_dir: Path | None = None) -> dict[str, Path]:
    """Holdout plots with baselines drawn in: per-date capture, ROC, gains, calibration, calibration over time."""
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="callcast-plots-"))
    y = result.holdout_y
    curves = {
        f"recipe: {result.chosen.name}": (y, result.chosen.holdout_p),
        f"plain LR: {result.baseline.name}": (y, result.baseline.holdout_p),
    }
    if champion_p is not None:
        curves["champion recipe"] = (y, champion_p)
    over_time = result.holdout_frame.copy()
    if champion_p is not None:
        over_time["p_champion"] = champion_p
    return {
        "per_date_capture.png": plot_per_date_capture(
            curves, result.holdout_dates, out_dir / "per_date_capture.png"
        ),
        "roc.png": plot_roc(curves, out_dir / "roc.png"),
        "gains_lift.png": plot_gains(curves, out_dir / "gains_lift.png"),
        "calibration.png": plot_calibration(curves, out_dir / "calibration.png"),
        "calibration_over_time.png": plot_calibration_over_time(
            result.rolling, over_time, out_dir / "calibration_over_time.png"
        ),
    }


PLOT_TITLES = {
    "per_date_capture.png": "Per-date capture vs random calling and plain LR",
    "roc.png": "ROC (pooled holdout) with plain LR",
    "gains_lift.png": "Gains and lift with plain LR and random",
    "calibration.png": "Calibration with plain LR",
    "calibration_over_time.png": "Calibration over time",
}


def champion_on_holdout(
    lake: Lake, table: pd.DataFrame, holdout_inputs: pd.DataFrame, config: PropensityConfig
) -> tuple[Any, dict[str, Any], str] | None:
    """The champion's holdout scores, ``model.json`` and how they were obtained; None without a champion.

    Fair comparison: the champion's *recipe* (candidate + parameters) is refitted on this run's training part.
    A champion whose recipe is unknown to this configuration is scored as stored (it may have seen these rows:
    said so in the decision).
    """
    try:
        info = registry.read_model_info(lake, MODEL_NAME, "champion")
    except registry.UnknownAliasError:
        return None
    name, params = info.get("candidate"), info.get("params")
    known = {c.name for c in config.candidates}
    if name in known and params is not None:
        p = holdout_scores_of_recipe(name, params, table, config)
        return p, info, f"champion {info['version']} recipe {name} refitted on the same training part"
    try:
        model, info = registry.load_model(lake, MODEL_NAME, "champion")
    except registry.ModelIntegrityError as exc:
        get_logger().warning("champion %s cannot be compared: %s", info["version"], exc)
        return None, info, f"champion {info['version']} failed verification and was not compared ({exc})"
    p = model.predict_proba(holdout_inputs)[:, 1]
    return (
        p,
        info,
        f"champion {info['version']} scored as stored (recipe {name!r} unknown here; it may have seen the holdout)",
    )


def register_and_gate(
    lake: Lake,
    result: TrainingResult,
    table: pd.DataFrame,
    inputs: list[dict[str, Any]],
    config: PropensityConfig,
    tracking_uri: str | None,
    fingerprint: str | None = None,
    experiment: str = "callcast-propensity",
    today: date | None = None,
) -> dict[str, Any]:
    """Gate the chosen recipe against the champion's on the same holdout; register the fresh refit; card."""
    log = get_logger()
    chosen = result.chosen
    holdout_inputs = table.tail(len(result.holdout_y)).reset_index(drop=True)
    champion_metrics = champion_p = champion_version = None
    compared = champion_on_holdout(lake, table, holdout_inputs, config)
    notes = []
    if compared is None:
        log.info("No champion yet: the new model is compared with nothing but the behaviour tests.")
    else:
        champion_p, champion_info, how = compared
        champion_version = champion_info["version"]
    if compared is not None and champion_p is None:
        notes.append(how)
    elif compared is not None:
        champion_metrics = evaluate(result.holdout_y, champion_p, result.holdout_dates, config.capacity_share)
        paired = bootstrap_intervals(
            {
                "new": date_stats(
                    result.holdout_y, chosen.holdout_p, result.holdout_dates, config.capacity_share
                ),
                "champion": date_stats(
                    result.holdout_y, champion_p, result.holdout_dates, config.capacity_share
                ),
            },
            "champion",
            config.bootstrap_samples,
            config.bootstrap_level,
            config.seed,
        )
        diff = paired["new"].get(f"{config.promotion_metric}_diff")
        notes.append(how)
        if diff:
            notes.append(
                f"{config.promotion_metric} difference new - champion, {config.bootstrap_level:.0%} day-block "
                f"interval: {diff[0]:+.4f} to {diff[1]:+.4f}"
            )
    behaviour = behaviour_tests(result.final_pipeline, holdout_inputs.head(config.behaviour_sample_rows))
    decision = decide_promotion(
        chosen.holdout, champion_metrics, behaviour, config.promotion_metric, config.promotion_margin
    )
    decision.reasons.extend(notes)
    fs = config.feature_sets[chosen.feature_set]
    spec = config.candidate(chosen.name)
    info: dict[str, Any] = {
        "candidate": chosen.name,
        "profile": result.profile,
        "params": chosen.params,
        "seed": config.seed,
        "metrics": chosen.holdout,
        "metrics_note": "holdout figures of the selection fit (training part only); the registered model is "
        "refitted on every labelled contact (fit window)",
        "baseline": {
            "candidate": result.baseline.name,
            "params": result.baseline.params,
            "metrics": result.baseline.holdout,
        },
        "holdout_intervals": result.holdout_intervals,
        "champion_metrics_same_holdout": champion_metrics,
        "features": {"categorical": fs.categorical, "numeric": fs.numeric},
        "monotonic": spec.monotonic,
        "pre_call_columns": config.pre_call_columns(),
        "excluded_features": config.excluded_features,
        "data_window": {
            "train": list(result.train_window),
            "holdout": list(result.holdout_window),
            "fit": list(result.fit_window),
        },
        "rows": result.table_rows,
        "inputs": inputs,
        "fingerprint": fingerprint,
        "candidates": [
            {
                "name": c.name,
                "selection_auc": c.selection_auc,
                "selection_windows": c.selection_windows,
                "behaviour_passed": c.behaviour_passed,
                **{k: c.holdout[k] for k in ("within_date_auc", "capture_at_capacity", "roc_auc", "brier")},
            }
            for c in result.candidates
        ],
        "rolling": result.rolling,
        "rate_by_quarter": result.rate_by_quarter,
        "warnings": result.warnings,
        "decision": decision.as_dict(),
        "promoted": decision.promote,
        "code_version": code_version(),
    }
    with tempfile.TemporaryDirectory(prefix="callcast-train-") as tmp:
        plots = write_plots(result, champion_p, Path(tmp))
        version = registry.next_version(lake, MODEL_NAME)
        info["version"] = version
        card = render_card(info, config, champion_metrics, {PLOT_TITLES[n]: n for n in plots}, today)
        ui_card = render_card(
            info, config, champion_metrics, {PLOT_TITLES[n]: data_uri(p) for n, p in plots.items()}, today
        )
        stored = registry.register_model(lake, MODEL_NAME, result.final_pipeline, info, card, plots, version)
        aliases = registry.set_alias(
            lake, MODEL_NAME, "champion" if decision.promote else "challenger", version
        )
        for reason in decision.reasons:
            log.info("gate %s: %s", version, reason)
        mlflow_info = None
        if tracking_uri:
            card_path = Path(tmp) / "card.md"
            card_path.write_text(card)
            artifact_location = None
            lake_root = getattr(lake.storage, "root", None)
            if lake_root is not None:
                artifact_location = (Path(lake_root).parent / "mlflow-artifacts").as_uri()
            example = holdout_inputs.drop(columns=["y", "contact_id"], errors="ignore").head(5)
            mlflow_info = registry.mlflow_mirror(
                tracking_uri,
                experiment,
                MODEL_NAME,
                stored,
                {**plots, "card.md": card_path},
                artifact_location,
                estimator=result.final_pipeline,
                input_example=example,
            )
            registry.mlflow_sync_aliases(tracking_uri, MODEL_NAME, aliases)
    return {
        "version": version,
        "promoted": decision.promote,
        "unchanged": False,
        "reasons": decision.reasons,
        "aliases": aliases,
        "candidate": chosen.name,
        "headline": {k: chosen.holdout.get(k) for k in HEADLINE},
        "baseline_headline": {k: result.baseline.holdout.get(k) for k in HEADLINE},
        "fit_window": list(result.fit_window),
        "champion_before": champion_version,
        "card": ui_card,
        "mlflow": mlflow_info,
        "registry": lake.describe(catalog.registry_version(MODEL_NAME, version)),
    }


@task(name="register-and-gate")
def register_and_gate_task(
    table_path: str,
    result_path: str,
    inputs: list[dict[str, Any]],
    lake_url: str | None = None,
    tracking_uri: str | None = None,
    fingerprint: str | None = None,
) -> dict[str, Any]:
    """Gate against the champion's recipe, register the fresh refit, set aliases, mirror into MLflow."""
    from callcast.runtime import company_today
    from callcast.settings import get_settings

    result: TrainingResult = pickle.loads(Path(result_path).read_bytes())  # noqa: S301 - written by this run
    table = pd.read_pickle(table_path)
    return register_and_gate(
        _lake(lake_url),
        result,
        table,
        inputs,
        _config(),
        tracking_uri,
        fingerprint,
        today=company_today(get_settings()),
    )


def unchanged_summary(info: dict[str, Any], lake_url: str | None = None) -> dict[str, Any]:
    """What a run on unchanged inputs reports: the version already trained on them, nothing registered."""
    aliases = registry.read_aliases(_lake(lake_url), MODEL_NAME)
    role = next((a for a, v in aliases.items() if v == info["version"]), "no alias")
    metrics = info.get("metrics", {})
    return {
        "version": info["version"],
        "promoted": False,
        "unchanged": True,
        "reasons": [
            f"inputs and settings unchanged since {info['version']} ({role}): no new version registered"
        ],
        "aliases": aliases,
        "candidate": info.get("candidate"),
        "headline": {k: metrics.get(k) for k in HEADLINE},
        "fit_window": info.get("data_window", {}).get("fit"),
        "card": None,
        "mlflow": None,
        "registry": None,
    }
