"""Backtest report: per-series and overall WMAE, MASE and sMAPE of the chosen models against seasonal naive."""

from __future__ import annotations

import numpy as np
import pandas as pd


def per_series_report(metrics: pd.DataFrame, choices: pd.DataFrame) -> pd.DataFrame:
    """One row per series: chosen model, reason, its backtest metrics and seasonal naive's."""
    chosen = choices.merge(metrics, on=["series_id", "model"], how="left")
    naive = metrics[metrics["model"] == "snaive"].set_index("series_id")
    out = chosen[
        ["series_id", "model", "reason", "fallback", "n_obs", "folds", "wmae", "mase", "smape"]
    ].copy()
    for col in ("wmae", "mase", "smape", "abs_err_w", "weight"):
        out[f"naive_{col}"] = out["series_id"].map(naive[col])
    out["abs_err_w"] = chosen["abs_err_w"]
    out["weight"] = chosen["weight"]
    return out


def overall_report(series_report: pd.DataFrame) -> dict:
    """Headline figures over the series that have backtests of both the chosen model and seasonal naive.

    WMAE pools all backtest points (weighted, scale-dependent, as in Walmart's competition); MASE and
    sMAPE are means over series (series with a zero MASE scale are left out of MASE). Improvements are
    ``1 - chosen / naive``. These are in-sample for the choice (the same folds chose the model), so they
    flatter the chosen models a little; ``benchmarks/forecast_benchmark.py`` measures on a true holdout.
    """
    both = series_report.dropna(subset=["wmae", "naive_wmae"])
    mase_ok = both[np.isfinite(both["mase"]) & np.isfinite(both["naive_mase"])]
    chosen_wmae = float(both["abs_err_w"].sum() / both["weight"].sum()) if len(both) else float("nan")
    naive_wmae = (
        float(both["naive_abs_err_w"].sum() / both["naive_weight"].sum()) if len(both) else float("nan")
    )
    chosen_mase, naive_mase = float(mase_ok["mase"].mean()), float(mase_ok["naive_mase"].mean())

    def gain(a: float, b: float) -> float:
        return float(1 - a / b) if np.isfinite(a) and np.isfinite(b) and b > 0 else float("nan")

    return {
        "series": int(len(series_report)),
        "series_backtested": int(len(both)),
        "wmae": chosen_wmae,
        "naive_wmae": naive_wmae,
        "wmae_improvement": gain(chosen_wmae, naive_wmae),
        "mase": chosen_mase,
        "naive_mase": naive_mase,
        "mase_improvement": gain(chosen_mase, naive_mase),
        "smape": float(both["smape"].mean()),
        "naive_smape": float(both["naive_smape"].mean()),
        "models": {str(k): int(v) for k, v in series_report["model"].value_counts().items()},
        "fallbacks": {
            str(k): int(v)
            for k, v in series_report[series_report["fallback"]]["reason"]
            .str.split(" \\(")
            .str[0]
            .value_counts()
            .items()
        },
    }


def headline_markdown(overall: dict, title: str = "Forecast backtest") -> str:
    """A short markdown table of the headline figures (for the Prefect artifact)."""
    lines = [
        f"# {title}",
        "",
        "| metric | chosen models | seasonal naive | improvement |",
        "|---|---|---|---|",
        f"| WMAE | {overall['wmae']:.3f} | {overall['naive_wmae']:.3f} | {overall['wmae_improvement']:.1%} |",
        f"| MASE | {overall['mase']:.3f} | {overall['naive_mase']:.3f} | {overall['mase_improvement']:.1%} |",
        f"| sMAPE % | {overall['smape']:.1f} | {overall['naive_smape']:.1f} | |",
        "",
        f"Series: {overall['series']} ({overall['series_backtested']} backtested). Models: "
        + ", ".join(f"{k} {v}" for k, v in overall["models"].items()),
    ]
    if overall["fallbacks"]:
        lines.append("Fallbacks: " + ", ".join(f"{k} {v}" for k, v in overall["fallbacks"].items()))
    return "\n".join(lines)
