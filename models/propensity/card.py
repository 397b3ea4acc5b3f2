"""The model card (markdown): data window, features, exclusions, metrics vs champion, plots, limits."""

from __future__ import annotations

from typing import Any

from models.propensity.config import PropensityConfig

HEADLINE = (
    "roc_auc",
    "pr_auc",
    "brier",
    "base_rate_brier",
    "lift_top_decile",
    "gains_at_10",
    "gains_at_20",
    "gains_at_50",
    "within_month_auc",
)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def render_card(
    info: dict[str, Any], config: PropensityConfig, champion: dict[str, Any] | None, plots: list[str]
) -> str:
    """Markdown card from a version's ``model.json``-style ``info`` and the champion's holdout metrics."""
    m = info["metrics"]
    lines = [
        f"# Propensity model {info['version']} ({info['candidate']})",
        "",
        f"Decision: **{'champion' if info.get('promoted') else 'challenger'}** — "
        + "; ".join(info.get("decision", {}).get("reasons", [])),
        "",
        "## Data",
        f"- Training contacts: {info['data_window']['train'][0]} to {info['data_window']['train'][1]}; "
        f"holdout (most recent {config.holdout_fraction:.0%}): {info['data_window']['holdout'][0]} to {info['data_window']['holdout'][1]}.",
        f"- Rows: {info['rows']}; inputs: "
        + ", ".join(f"`{x['table']}` {x['partition_date']}" for x in info.get("inputs", [])),
        "",
        "## Features",
        f"- Categorical: {', '.join(info['features']['categorical'])}",
        f"- Numeric: {', '.join(info['features']['numeric'])}",
        "- Excluded:",
        *[f"  - `{k}`: {v}" for k, v in config.excluded_features.items()],
        "",
        "## Holdout metrics (chronological, never a random split)",
        "| metric | this model | champion on the same holdout |",
        "|---|---|---|",
        *[f"| {k} | {_fmt(m.get(k))} | {_fmt(champion.get(k)) if champion else '—'} |" for k in HEADLINE],
        "",
        "## Candidates",
        "| candidate | cv AUC (train) | holdout AUC | gains@20 | Brier |",
        "|---|---|---|---|---|",
        *[
            f"| {c['name']} | {c['cv_auc']:.3f} | {c['roc_auc']:.3f} | {c['gains_at_20']:.3f} | {c['brier']:.3f} |"
            for c in info.get("candidates", [])
        ],
        "",
        "## Rolling origin",
        "| train end | test window | base rate | AUC (recal / plain) | Brier (recal / plain / base) |",
        "|---|---|---|---|---|",
        *[
            f"| {r['train_end']} | {r['test_start']}..{r['test_end']} | {r['base_rate']:.3f} | "
            f"{r['recalibrated_roc_auc']:.3f} / {r['plain_roc_auc']:.3f} | {r['recalibrated_brier']:.3f} / {r['plain_brier']:.3f} / {r['recalibrated_base_rate_brier']:.3f} |"
            for r in info.get("rolling", [])
        ],
        "",
        "## Plots",
        *[f"- ![{p}]({p})" for p in plots],
        "",
        "## Known limits",
        "- The conversion rate moved from ~4% (2008) to ~50% (2010); ranking within a month (within_month_auc) is "
        "weaker than the pooled AUC, which also rewards separating high- and low-rate periods.",
        "- Campaign-context features (7-day volume, 90-day known conversion rate) must be computed by the scorer "
        "for the call date with `models.propensity.features.add_context_features`.",
        "- The registered model is fitted on the training part only (the holdout is kept for the champion comparison).",
        "- Each customer has one contact in this data, so `previous`/`poutcome` describe the previous campaign only.",
    ]
    return "\n".join(lines) + "\n"
