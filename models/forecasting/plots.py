"""Plots of history, forecast and intervals for a few representative series (matplotlib Agg → PNG)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def representative_series(series_report: pd.DataFrame, k: int = 4) -> list[str]:
    """A few series worth a look: the largest, the median-sized, the best and worst gain over naive."""
    r = series_report.dropna(subset=["wmae", "naive_wmae"])
    if r.empty:
        return list(series_report["series_id"].head(k))
    picks: list[str] = []
    by_size = r.sort_values("naive_wmae", ascending=False)["series_id"].tolist()
    gain = (r["naive_wmae"] - r["wmae"]) / r["naive_wmae"].where(r["naive_wmae"] > 0)
    by_gain = r.assign(g=gain).sort_values("g", ascending=False)["series_id"].tolist()
    for sid in (by_size[0], by_size[len(by_size) // 2], by_gain[0], by_gain[-1], *by_size):
        if sid not in picks:
            picks.append(sid)
        if len(picks) == k:
            break
    return picks


def plot_series(
    history: pd.DataFrame, forecast: pd.DataFrame, series_id: str, path: Path, last_periods: int = 156
) -> Path:
    """History (last periods), point forecast and 80%/95% bands of one series → PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = history[history["series_id"] == series_id].tail(last_periods)
    f = forecast[forecast["series_id"] == series_id]
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(h["date"], h["y"], color="0.3", lw=1, label="actual")
    ax.fill_between(f["date"], f["lo95"], f["hi95"], color="tab:blue", alpha=0.15, label="95%")
    ax.fill_between(f["date"], f["lo80"], f["hi80"], color="tab:blue", alpha=0.3, label="80%")
    ax.plot(f["date"], f["forecast"], color="tab:blue", lw=1.5, label="forecast")
    model = f["model"].iloc[0] if len(f) else "?"
    ax.set_title(f"{series_id} — {model}")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
