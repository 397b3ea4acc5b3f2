"""Decision metrics (ranking within a call date), secondary metrics, bootstrap intervals, and plots.

The call list ranks the customers of **one call date**, so the headline metrics only compare contacts of the
same date:

- **within-date AUC**: the probability that a buyer is ranked above a non-buyer *of the same date* (ties count
  one half). Per date it is that date's AUC; across dates it is pooled over (buyer, non-buyer) pairs, i.e. each
  date weighs by its number of such pairs (``buyers x non-buyers``). Dates with a single class have no pair and
  no weight. A score that only separates periods (e.g. a date's buyer rate) gets exactly 0.5.
- **per-date capture at capacity**: of the buyers of every date, the share reached by that date's first
  ``k_d`` calls (``k_d = ceil(capacity_share x contacts of the date)``, or ``min(capacity, contacts)`` for a
  fixed daily capacity); ties at the cut are shared in proportion. Random calling reaches ``k_d / n_d`` of a
  date's buyers on average; both are summed over dates.

Intervals come from a **day-block bootstrap**: dates are resampled with replacement (a date's contacts stay
together), the statistics recomputed from per-date sums. Pooled ROC AUC, Brier and calibration stay as
secondary metrics: the pooled AUC also rewards telling high-rate periods from low-rate ones.
"""

from __future__ import annotations

from dataclasses import dataclass
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


# -- decision metrics: ranking within a call date ----------------------------------------------------------


@dataclass(frozen=True)
class DateStats:
    """Per-date sums behind the decision metrics (one entry per call date)."""

    dates: np.ndarray
    contacts: np.ndarray
    buyers: np.ndarray
    pairs: np.ndarray  # buyers x non-buyers
    concordant: np.ndarray  # pairs ranked right (ties 1/2)
    calls: np.ndarray  # k_d: calls made on the date at capacity
    reached: np.ndarray  # expected buyers among the first k_d calls
    random_reached: np.ndarray  # expected buyers among k_d random calls

    def subset(self, mask: np.ndarray) -> DateStats:
        return DateStats(*(getattr(self, f)[mask] for f in self.__dataclass_fields__))

    @staticmethod
    def concat(parts: list[DateStats]) -> DateStats:
        return DateStats(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in DateStats.__dataclass_fields__)
        )


def _calls(n: np.ndarray, capacity_share: float | None, capacity: int | None) -> np.ndarray:
    if capacity is not None:
        return np.minimum(n, int(capacity)).astype(float)
    share = 0.2 if capacity_share is None else float(capacity_share)
    return np.minimum(n, np.ceil(share * n - 1e-9)).astype(float)


def date_stats(
    y: np.ndarray,
    p: np.ndarray,
    dates,
    capacity_share: float | None = 0.2,
    capacity: int | None = None,
) -> DateStats:
    """Per-date pair counts and capture sums of scores ``p`` against outcomes ``y`` (vectorised)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    day = pd.to_datetime(pd.Series(dates)).to_numpy("datetime64[D]")
    frame = pd.DataFrame({"d": day, "y": y, "p": p})
    grouped = frame.groupby("d", sort=True)
    # midranks within the date -> Mann-Whitney U of the buyers
    frame["r"] = grouped["p"].rank(method="average")
    n = grouped["y"].size().to_numpy(dtype=float)
    pos = grouped["y"].sum().to_numpy(dtype=float)
    rank_sum = frame["r"].where(frame["y"] == 1, 0.0).groupby(frame["d"], sort=True).sum().to_numpy()
    u = rank_sum - pos * (pos + 1) / 2
    pairs = pos * (n - pos)
    k = _calls(n, capacity_share, capacity)
    # capture: buyers among the first k of the date ranked by p (ties at the cut shared in proportion)
    frame["n_d"] = frame["d"].map(dict(zip(grouped.size().index, n, strict=True)))
    frame["k_d"] = frame["d"].map(dict(zip(grouped.size().index, k, strict=True)))
    # rank from the top: higher p first; 'min' = contacts strictly above + 1, 'max' = up to the tie's end
    above = frame.groupby("d")["p"].rank(method="min", ascending=False) - 1
    through = frame.groupby("d")["p"].rank(method="max", ascending=False)
    tie_size = through - above
    taken = np.clip(frame["k_d"] - above, 0, tie_size) / tie_size
    reached = (taken * frame["y"]).groupby(frame["d"], sort=True).sum().to_numpy()
    return DateStats(
        dates=np.asarray(grouped.size().index.to_numpy(), dtype="datetime64[D]"),
        contacts=n,
        buyers=pos,
        pairs=pairs,
        concordant=u,
        calls=k,
        reached=reached,
        random_reached=pos * np.divide(k, n, out=np.zeros_like(k), where=n > 0),
    )


def decision_metrics(stats: DateStats) -> dict[str, float]:
    """Headline figures from per-date sums: within-date AUC, capture at capacity, random capture, lift."""
    pairs = stats.pairs.sum()
    buyers = stats.buyers.sum()
    capture = stats.reached.sum() / buyers if buyers else float("nan")
    random = stats.random_reached.sum() / buyers if buyers else float("nan")
    return {
        "within_date_auc": float(stats.concordant.sum() / pairs) if pairs else float("nan"),
        "capture_at_capacity": float(capture),
        "capture_random": float(random),
        "capture_lift": float(capture / random) if random else float("nan"),
        "dates": float(len(stats.dates)),
        "dates_with_pairs": float((stats.pairs > 0).sum()),
        "calls": float(stats.calls.sum()),
        "buyers_reached": float(stats.reached.sum()),
        "buyers_reached_random": float(stats.random_reached.sum()),
    }


def within_date_auc(y: np.ndarray, p: np.ndarray, dates) -> float:
    """AUC over (buyer, non-buyer) pairs of the same date, pooled over dates (each weighs by its pairs)."""
    return decision_metrics(date_stats(y, p, dates))["within_date_auc"]


def per_date_capture(
    y: np.ndarray, p: np.ndarray, dates, capacity_share: float | None = 0.2, capacity: int | None = None
) -> tuple[float, float]:
    """``(capture, random capture)``: share of each date's buyers reached by its first calls at capacity."""
    m = decision_metrics(date_stats(y, p, dates, capacity_share, capacity))
    return m["capture_at_capacity"], m["capture_random"]


BOOTSTRAPPED = ("within_date_auc", "capture_at_capacity", "capture_lift")


def bootstrap_intervals(
    stats: dict[str, DateStats],
    reference: str | None = None,
    n_boot: int = 1000,
    level: float = 0.9,
    seed: int = 0,
) -> dict[str, dict[str, list[float]]]:
    """Day-block bootstrap intervals of the decision metrics of several scores on the same dates.

    ``stats`` maps a model name to its :class:`DateStats` (all on the same dates, same order). Dates are drawn
    with replacement ``n_boot`` times; every model is recomputed on the same draw, so differences against
    ``reference`` get paired intervals (``"<metric>_diff"``). Returns ``{model: {metric: [lo, hi]}}``.
    """
    names = list(stats)
    if not names:
        return {}
    first = stats[names[0]]
    for name in names[1:]:
        if not np.array_equal(stats[name].dates, first.dates):
            raise ValueError(f"{name} was scored on other dates than {names[0]}: intervals must be paired")
    rng = np.random.default_rng(seed)
    n_dates = len(first.dates)
    if n_dates == 0:
        return {name: {} for name in names}
    counts = rng.multinomial(n_dates, np.full(n_dates, 1.0 / n_dates), size=n_boot).astype(float)

    def draws(s: DateStats) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = (counts @ s.concordant) / (counts @ s.pairs)
            capture = (counts @ s.reached) / (counts @ s.buyers)
            lift = capture / ((counts @ s.random_reached) / (counts @ s.buyers))
        return {"within_date_auc": auc, "capture_at_capacity": capture, "capture_lift": lift}

    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    drawn = {name: draws(s) for name, s in stats.items()}
    out: dict[str, dict[str, list[float]]] = {}
    for name, values in drawn.items():
        out[name] = {
            m: [float(np.nanpercentile(v, lo)), float(np.nanpercentile(v, hi))] for m, v in values.items()
        }
        if reference is not None and name != reference:
            for m, v in values.items():
                diff = v - drawn[reference][m]
                out[name][f"{m}_diff"] = [
                    float(np.nanpercentile(diff, lo)),
                    float(np.nanpercentile(diff, hi)),
                ]
                out[name][f"{m}_p_better"] = [float(np.nanmean(diff > 0))] * 2
    return out


def evaluate(
    y: np.ndarray,
    p: np.ndarray,
    dates: pd.Series | None = None,
    capacity_share: float | None = 0.2,
    capacity: int | None = None,
) -> dict[str, float]:
    """Decision metrics (with ``dates``) and secondary metrics of probabilities ``p`` against outcomes ``y``."""
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
        metrics.update(decision_metrics(date_stats(y, p, dates, capacity_share, capacity)))
    return metrics


LOWER_IS_BETTER = {"brier"}
SECONDARY = ("roc_auc", "pr_auc", "brier", "base_rate_brier", "within_month_auc", "gains_at_20")


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


def plot_per_date_capture(curves: dict[str, tuple[np.ndarray, np.ndarray]], dates, path: Path) -> Path:
    """Share of each date's buyers reached when calling the best share of that date's contacts (summed)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    shares = np.linspace(0.05, 1, 20)
    for name, (y, p) in curves.items():
        got = [decision_metrics(date_stats(y, p, dates, s))["capture_at_capacity"] for s in shares]
        ax.plot(shares, got, label=name)
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="random calling")
    ax.set(
        xlabel="share of each date's contacts called (best first)",
        ylabel="share of buyers reached",
        title="Per-date capture (holdout)",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_calibration_over_time(rolling: list[dict], holdout: pd.DataFrame, path: Path) -> Path:
    """Observed buyer rate against the mean predicted rate: per rolling window and per holdout month."""
    plt = _figure()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    if rolling:
        labels = [r["test_start"][:7] for r in rolling]
        x = np.arange(len(rolling))
        ax1.plot(x, [r["base_rate"] for r in rolling], "k-o", ms=3, label="observed")
        for who in ("chosen", "baseline"):
            ax1.plot(x, [r[who]["mean_predicted"] for r in rolling], "--o", ms=3, label=f"predicted ({who})")
        ax1.set_xticks(x, labels, rotation=30, fontsize=7)
    ax1.set(ylabel="buyer rate", title="Rolling windows: observed vs predicted")
    ax1.legend(fontsize=7)
    months = pd.to_datetime(holdout["contact_date"]).dt.to_period("M").dt.to_timestamp()
    grouped = holdout.assign(month=months).groupby("month")
    ax2.plot(grouped["y"].mean(), "k-o", ms=3, label="observed")
    for col in [c for c in holdout.columns if c.startswith("p_")]:
        ax2.plot(grouped[col].mean(), "--", label=f"predicted ({col[2:]})")
    ax2.set(ylabel="buyer rate", title="Holdout months: observed vs predicted")
    ax2.legend(fontsize=7)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
