"""The model card (markdown) a business reader can trust: the decision figures first, with intervals.

``render_card`` takes the version's ``model.json``-style ``info`` and image sources: plain file names for the
card stored beside the plots in the registry, or ``data:`` URIs for the Prefect artifact (which cannot show
images by relative path).
"""

from __future__ import annotations

import base64
from datetime import date
from pathlib import Path
from typing import Any

from models.propensity.config import PropensityConfig

HEADLINE = (
    "within_date_auc",
    "capture_at_capacity",
    "capture_random",
    "capture_lift",
    "roc_auc",
    "pr_auc",
    "brier",
    "base_rate_brier",
    "within_month_auc",
    "gains_at_20",
)
"""Figures shown for a version: the decision metrics first, then the secondary ones."""

_SECONDARY = ("roc_auc", "pr_auc", "brier", "base_rate_brier", "within_month_auc", "gains_at_20")


def data_uri(path: Path) -> str:
    """A PNG as a ``data:`` URI (renders in Prefect's markdown artifacts and any browser)."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def _f(value: Any, pct: bool = False) -> str:
    if not isinstance(value, int | float) or value != value:
        return "—"
    return f"{value:.1%}" if pct else f"{value:.3f}"


def _ci(interval: list[float] | None, pct: bool = False) -> str:
    if not interval:
        return ""
    return f" ({_f(interval[0], pct)} to {_f(interval[1], pct)})"


def _age_days(fit_end: str, today: date | None) -> str:
    if not fit_end or today is None:
        return ""
    return f", {(today - date.fromisoformat(fit_end)).days} days before {today.isoformat()}"


def render_card(
    info: dict[str, Any],
    config: PropensityConfig,
    champion: dict[str, Any] | None,
    images: dict[str, str],
    today: date | None = None,
) -> str:
    """Markdown card; ``images`` maps a plot's title to its source (file name or data URI)."""
    m = info["metrics"]
    base = info.get("baseline", {}).get("metrics", {})
    ci = info.get("holdout_intervals", {})
    level = f"{config.bootstrap_level:.0%}"
    capacity = f"{config.capacity_share:.0%}"
    calls = m.get("calls", float("nan"))
    buyers = m.get("buyers_reached", float("nan"))
    random_buyers = m.get("buyers_reached_random", float("nan"))
    windows = info.get("rolling", [])
    wins = sum(r["chosen"]["within_date_auc"] >= r["baseline"]["within_date_auc"] for r in windows)
    fit = info.get("data_window", {})
    lines = [
        f"# Propensity model {info['version']} ({info['candidate']})",
        "",
        f"Decision: **{'champion' if info.get('promoted') else 'challenger'}** — "
        + "; ".join(info.get("decision", {}).get("reasons", [])),
        "",
        "## What it does for the call list",
        f"On the chronological holdout ({fit.get('holdout', ['', ''])[0]} to {fit.get('holdout', ['', ''])[1]}), "
        f"calling the best {capacity} of each day's contacts first: **of {calls:,.0f} calls, expect "
        f"{buyers:,.0f} buyers, against {random_buyers:,.0f} at random** "
        f"(per-date capture {_f(m.get('capture_at_capacity'), True)}{_ci(ci.get('chosen', {}).get('capture_at_capacity'), True)} "
        f"of the buyers vs {_f(m.get('capture_random'), True)} at random).",
        "",
        "## Headline: ranking within a call date",
        f"Intervals: {level} day-block bootstrap (call dates resampled). Within-date AUC = the chance a buyer is "
        "ranked above a non-buyer of the same date, pooled over dates by their (buyer, non-buyer) pairs.",
        "",
        "| metric (holdout) | this recipe | plain logistic regression (raw columns) | difference | champion recipe, same holdout |",
        "|---|---|---|---|---|",
        f"| within-date AUC | {_f(m.get('within_date_auc'))}{_ci(ci.get('chosen', {}).get('within_date_auc'))} "
        f"| {_f(base.get('within_date_auc'))}{_ci(ci.get('baseline', {}).get('within_date_auc'))} "
        f"| {_ci(ci.get('chosen', {}).get('within_date_auc_diff')).strip() or '—'} "
        f"| {_f((champion or {}).get('within_date_auc'))} |",
        f"| per-date capture at {capacity} | {_f(m.get('capture_at_capacity'), True)}{_ci(ci.get('chosen', {}).get('capture_at_capacity'), True)} "
        f"| {_f(base.get('capture_at_capacity'), True)}{_ci(ci.get('baseline', {}).get('capture_at_capacity'), True)} "
        f"| {_ci(ci.get('chosen', {}).get('capture_at_capacity_diff'), True).strip() or '—'} "
        f"| {_f((champion or {}).get('capture_at_capacity'), True)} |",
        f"| capture lift vs random | {_f(m.get('capture_lift'))} | {_f(base.get('capture_lift'))} | | {_f((champion or {}).get('capture_lift'))} |",
        "",
        f"## Rolling origins ({len(windows)} windows; recipe ≥ plain LR on {wins} of them)",
        "| train end | test window | base rate | within-date AUC: recipe / plain LR | difference | capture: recipe / plain LR / random | mean predicted / observed |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r['train_end']} | {r['test_start']}..{r['test_end']} | {r['base_rate']:.3f} | "
            f"{_f(r['chosen']['within_date_auc'])} / {_f(r['baseline']['within_date_auc'])} | "
            f"{_ci(r.get('intervals', {}).get('chosen', {}).get('within_date_auc_diff')).strip()} | "
            f"{_f(r['chosen']['capture_at_capacity'], True)} / {_f(r['baseline']['capture_at_capacity'], True)} / {_f(r['chosen']['capture_random'], True)} | "
            f"{_f(r['chosen']['mean_predicted'])} / {_f(r['base_rate'])} |"
            for r in windows
        ],
        "",
        "## Secondary figures (pooled over the holdout; the pooled AUC also rewards telling periods apart)",
        "| metric | this recipe | plain LR | champion recipe |",
        "|---|---|---|---|",
        *[
            f"| {k} | {_f(m.get(k))} | {_f(base.get(k))} | {_f((champion or {}).get(k))} |"
            for k in _SECONDARY
        ],
        "",
        "## Data and fit",
        f"- Served model fitted on **every labelled contact, {fit.get('fit', ['', ''])[0]} to {fit.get('fit', ['', ''])[1]}**"
        f"{_age_days(fit.get('fit', ['', ''])[1], today)}; {info['rows']} contacts.",
        f"- Figures above come from the selection fit: trained {fit.get('train', ['', ''])[0]} to "
        f"{fit.get('train', ['', ''])[1]}, scored on the most recent {config.holdout_fraction:.0%} "
        f"({fit.get('holdout', ['', ''])[0]} to {fit.get('holdout', ['', ''])[1]}), never used for choosing.",
        "- Inputs: " + ", ".join(f"`{x['table']}` {x['partition_date']}" for x in info.get("inputs", [])),
        "",
        "## Features (each row built as of the call date by one point-in-time builder)",
        f"- Categorical: {', '.join(info['features']['categorical'])}",
        f"- Numeric: {', '.join(info['features']['numeric'])}",
        *(
            [f"- Monotonic constraints: {', '.join(f'{k} ({v:+d})' for k, v in info['monotonic'].items())}"]
            if info.get("monotonic")
            else []
        ),
        "- Excluded:",
        *[f"  - `{k}`: {v}" for k, v in config.excluded_features.items()],
        "",
        "## Candidates (chosen by the mean within-date AUC over rolling windows inside the training part)",
        "| candidate | selection within-date AUC | holdout within-date AUC | holdout capture | holdout Brier "
        "(calibration, secondary) | behaviour |",
        "|---|---|---|---|---|---|",
        *[
            f"| {c['name']} | {_f(c['selection_auc'])} | {_f(c['within_date_auc'])} | "
            f"{_f(c['capture_at_capacity'], True)} | {_f(c.get('brier'))} | "
            f"{'ok' if c['behaviour_passed'] else 'FAILED'} |"
            for c in info.get("candidates", [])
        ],
        "",
        "Candidates with campaign context (`*_context`) are kept only if they win on the within-date headline; "
        "their context features can only move the level of the probabilities (expected sales per list), which "
        "the Brier column shows.",
        "",
        "## Plots",
        *[f"### {title}\n\n![{title}]({src})\n" for title, src in images.items()],
        "## Known limits",
        "- The buyer rate moved from ~4% (2008) to ~50% (2010). The probabilities follow the level of the latest "
        "weeks only as far as the recalibration window allows; the ranking within a date is what the list uses.",
        "- Each customer has one contact in the demo data, so `previous`/`poutcome` describe the previous campaign "
        "only; for a new call the builder rolls them forward from the customer's last contact.",
        *[f"- Warning: {w}" for w in info.get("warnings", [])],
    ]
    return "\n".join(lines) + "\n"
