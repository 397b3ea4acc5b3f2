"""Holdout metrics (ranking, calibration, gains) and their plots (matplotlib Agg -> PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score, roc_curve

GAIN_SHARES = (0.1, 0.2, 0.5)


def gains_at(y: np.ndarray, p: np.ndarray, share: float) -> float:
    """Share of all buyers found by calling the top ``share`` of contacts ranked by ``p`` (ties: stable)."""
    y = np.asarray(y)
    k = max(1, int(round(len(y) * share)))
    order = np.argsort(-np.asarray(p), kind="stable")
    total = y.sum()
    return float(y[order[:k]].sum() / total) if total else float("nan")


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean predicted vs observed rate per equal-count bin of ``p``."""
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": np.asarray(p, dtype=float)})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), bins, labels=False)
    out = frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))
    return out.reset_index(drop=True)


def within_period_auc(y: np.ndarray, p: np.ndarray, periods: np.ndarray, min_rows: int = 50) -> float:
    """Mean ROC AUC inside each period (e.g. month): ranking quality net of the period's conversion level."""
    y, p, periods = np.asarray(y), np.asarray(p), np.asarray(periods)
    aucs = []
    for period in np.unique(periods):
        mask = periods == period
        if mask.sum() >= min_rows and 0 < y[mask].sum() < mask.sum():
            aucs.append(roc_auc_score(y[mask], p[mask]))
    return float(np.mean(aucs)) if aucs else float("nan")


def evaluate(y: np.ndarray, p: np.ndarray, dates: pd.Series | None = None) -> dict[str, float]:
    """Headline metrics of probabilities ``p`` against outcomes ``y`` (0/1)."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    base = float(y.mean())
    metrics = {
        "rows": float(len(y)),
        "base_rate": base,
        "mean_predicted": float(p.mean()),
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "base_rate_brier": base * (1 - base),
        "lift_top_decile": gains_at(y, p, 0.1) / 0.1,
    }
    for share in GAIN_SHARES:
        metrics[f"gains_at_{int(share * 100)}"] = gains_at(y, p, share)
    if dates is not None:
        months = pd.to_datetime(pd.Series(dates)).dt.strftime("%Y-%m").to_numpy()
        metrics["within_month_auc"] = within_period_auc(y, p, months)
    return metrics


LOWER_IS_BETTER = {"brier"}


def improvement(metric: str, new: float, old: float) -> float:
    """How much better ``new`` is than ``old`` on ``metric`` (positive = better)."""
    return (old - new) if metric in LOWER_IS_BETTER else (new - old)


# -- plots -----------------------------------------------------------------------------------------


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """ROC curves of several models (``name -> (y, p)``)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (y, p) in curves.items():
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, p):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, chronological holdout")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_gains(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Cumulative gains and lift by share of contacts called."""
    plt = _figure()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.5))
    shares = np.linspace(0.01, 1, 100)
    for name, (y, p) in curves.items():
        g = np.array([gains_at(y, p, s) for s in shares])
        ax1.plot(shares, g, label=name)
        ax2.plot(shares, g / shares, label=name)
    ax1.plot([0, 1], [0, 1], "k:", lw=1, label="random")
    ax2.axhline(1, color="k", ls=":", lw=1)
    ax1.set(
        xlabel="share of contacts called (best first)",
        ylabel="share of buyers reached",
        title="Cumulative gains",
    )
    ax2.set(xlabel="share of contacts called", ylabel="lift", title="Lift")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_calibration(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path) -> Path:
    """Reliability diagram: observed rate against mean predicted probability per decile."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, (y, p) in curves.items():
        table = calibration_table(y, p)
        ax.plot(table["predicted"], table["observed"], "o-", ms=3, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed conversion rate",
        title="Calibration (holdout deciles)",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_rate_over_time(frame: pd.DataFrame, path: Path) -> Path:
    """Observed conversion rate per month against mean predicted rates (``frame``: date, y, p_* columns)."""
    plt = _figure()
    months = pd.to_datetime(frame["contact_date"]).dt.to_period("M").dt.to_timestamp()
    grouped = frame.assign(month=months).groupby("month")
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(grouped["y"].mean(), "k-o", ms=3, label="observed rate")
    for col in [c for c in frame.columns if c.startswith("p_")]:
        ax.plot(grouped[col].mean(), "--", label=f"mean predicted ({col[2:]})")
    if "is_holdout" in frame:
        start = pd.to_datetime(frame.loc[frame["is_holdout"], "contact_date"]).min()
        ax.axvline(start, color="grey", lw=1)
        ax.text(start, ax.get_ylim()[1] * 0.95, " holdout", fontsize=8, color="grey")
    ax.set(ylabel="conversion rate", title="Conversion rate over time: observed vs predicted")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
