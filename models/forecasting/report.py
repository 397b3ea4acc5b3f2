"""Backtest report: per-series and overall accuracy of the chosen models against seasonal naive.

Headlines follow the decision: the WMAE ratio to seasonal naive on the same cells, the share of series
whose chosen model beats seasonal naive, the median (not mean) MASE, interval coverage, and how many series
got a baseline instead of a model, with the reasons counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.forecasting.candidates import BASELINES


def per_series_report(metrics: pd.DataFrame, choices: pd.DataFrame) -> pd.DataFrame:
    """One row per series: chosen model, reason, its backtest metrics and seasonal naive's."""
    chosen = choices.drop(columns=["folds"], errors="ignore").merge(
        metrics, on=["series_id", "model"], how="left"
    )
    naive = metrics[metrics["model"] == "snaive"].set_index("series_id")
    cols = ["series_id", "group", "model", "reason", "fallback", "n_obs", "folds", "points", "wmae", "mase"]
    out = chosen[[c for c in [*cols, "smape"] if c in chosen.columns]].copy()
    for col in ("wmae", "mase", "smape", "abs_err_w", "weight"):
        out[f"naive_{col}"] = out["series_id"].map(naive[col]) if len(naive) else np.nan
    out["abs_err_w"] = chosen["abs_err_w"]
    out["weight"] = chosen["weight"]
    out["baseline"] = out["model"].isin(BASELINES)
    return out


def _reason_key(reason: str) -> str:
    """A reason without its per-series numbers (for counting)."""
    import re

    return re.sub(r"\([^)]*\)", "(…)", str(reason)).split(" in this series")[0].strip()


def overall_report(
    series_report: pd.DataFrame, coverage: dict[str, float] | None = None, warn_share: float = 0.25
) -> dict:
    """Headline figures over the series that have backtests of both the chosen model and seasonal naive.

    WMAE pools all backtest cells (weighted, scale-dependent, as in Walmart's competition) of those series,
    for the chosen models and for seasonal naive on the same cells. MASE is a median over series (a mean is
    dominated by near-zero series). These are in-sample for the choice (the same folds chose the model);
    ``benchmarks/forecast_benchmark.py`` measures on a true holdout.
    """
    both = series_report.dropna(subset=["wmae", "naive_wmae"])
    mase_ok = both[np.isfinite(both["mase"]) & np.isfinite(both["naive_mase"])]
    chosen_wmae = float(both["abs_err_w"].sum() / both["weight"].sum()) if len(both) else float("nan")
    naive_wmae = (
        float(both["naive_abs_err_w"].sum() / both["naive_weight"].sum()) if len(both) else float("nan")
    )
    n = int(len(series_report))
    baseline = series_report[series_report["baseline"]]
    share_baseline = float(len(baseline) / n) if n else 0.0
    ratio = chosen_wmae / naive_wmae if np.isfinite(naive_wmae) and naive_wmae > 0 else float("nan")
    cov = coverage or {}
    return {
        "series": n,
        "series_backtested": int(len(both)),
        "wmae": chosen_wmae,
        "naive_wmae": naive_wmae,
        "wmae_ratio": ratio,
        "wmae_improvement": float(1 - ratio) if np.isfinite(ratio) else float("nan"),
        "share_beating_naive": float((both["wmae"] < both["naive_wmae"]).mean())
        if len(both)
        else float("nan"),
        "share_worse_than_naive": float((both["wmae"] > both["naive_wmae"]).mean())
        if len(both)
        else float("nan"),
        "median_mase": float(mase_ok["mase"].median()) if len(mase_ok) else float("nan"),
        "naive_median_mase": float(mase_ok["naive_mase"].median()) if len(mase_ok) else float("nan"),
        "coverage80": float(cov.get("coverage80", float("nan"))),
        "coverage95": float(cov.get("coverage95", float("nan"))),
        "share_modelled": 1.0 - share_baseline,
        "share_baseline": share_baseline,
        "baseline_warning": bool(share_baseline > warn_share),
        "models": {str(k): int(v) for k, v in series_report["model"].value_counts().items()},
        "baseline_reasons": {
            str(k): int(v) for k, v in baseline["reason"].map(_reason_key).value_counts().items()
        },
    }


def headline_markdown(overall: dict, title: str = "Forecast backtest") -> str:
    """A short markdown table of the headline figures (for the Prefect artifact)."""

    def f(x: float, fmt: str) -> str:
        return format(x, fmt) if isinstance(x, int | float) and np.isfinite(x) else "n/a"

    lines = [
        f"# {title}",
        "",
        "| metric | chosen models | seasonal naive |",
        "|---|---|---|",
        f"| WMAE (same cells) | {f(overall['wmae'], '.3f')} | {f(overall['naive_wmae'], '.3f')} |",
        f"| WMAE ratio to seasonal naive | {f(overall['wmae_ratio'], '.3f')} | 1.000 |",
        f"| median MASE | {f(overall['median_mase'], '.3f')} | {f(overall['naive_median_mase'], '.3f')} |",
        f"| share of series beating seasonal naive | {f(overall['share_beating_naive'], '.1%')} | |",
        f"| 80% / 95% interval coverage (backtest) | {f(overall['coverage80'], '.1%')} / "
        f"{f(overall['coverage95'], '.1%')} | |",
        "",
        f"Series: {overall['series']} ({overall['series_backtested']} backtested against seasonal naive); "
        f"modelled {overall['share_modelled']:.1%}, baseline {overall['share_baseline']:.1%}. Models: "
        + ", ".join(f"{k} {v}" for k, v in overall["models"].items()),
    ]
    if overall["baseline_reasons"]:
        lines.append("Baselines: " + "; ".join(f"{k}: {v}" for k, v in overall["baseline_reasons"].items()))
    if overall["baseline_warning"]:
        lines.insert(2, f"**WARNING: {overall['share_baseline']:.0%} of series fell back to a baseline.**\n")
    return "\n".join(lines)


def summary_line(overall: dict) -> str:
    """One console line: ratio, share beating naive, median MASE, coverage, baselines."""
    return (
        f"backtest WMAE {overall['wmae']:.3f} vs seasonal naive {overall['naive_wmae']:.3f} "
        f"(ratio {overall['wmae_ratio']:.3f}); {overall['share_beating_naive']:.0%} of series beat seasonal "
        f"naive; median MASE {overall['median_mase']:.3f} (naive {overall['naive_median_mase']:.3f}); "
        f"intervals cover {overall['coverage80']:.0%}/{overall['coverage95']:.0%} (80%/95%); "
        f"{overall['share_baseline']:.0%} of series on a baseline"
    )


def baseline_warning(overall: dict) -> str | None:
    """The loud warning when too many series fell back to a baseline, with the reasons counted."""
    if not overall["baseline_warning"]:
        return None
    reasons = "; ".join(f"{k}: {v}" for k, v in overall["baseline_reasons"].items())
    return (
        f"WARNING: {overall['share_baseline']:.0%} of {overall['series']} series fell back to a baseline "
        f"(seasonal naive, mean or zero) instead of a model. Reasons: {reasons}. Check history length, "
        "horizon and folds (CALLCAST_FORECAST__HORIZON / __FOLDS)."
    )
