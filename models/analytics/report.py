"""Charts (PNG), a self-contained HTML report (images as data URIs) and the Prefect markdown summary.

Matplotlib's object API (``Figure``) is used, not ``pyplot``: no global state, safe in worker threads.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

DPI = 90


def _figure(width: float = 8.0, height: float = 3.6):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=DPI)
    return path


def rate_chart(
    table: pd.DataFrame,
    label: str,
    path: Path,
    title: str,
    reference: float | None = None,
    ref_label: str = "",
) -> Path:
    """Conversion per category with 95% interval error bars (and an optional horizontal reference)."""
    t = table[table["contacts"] > 0]
    fig, ax = _figure(max(5.0, 0.45 * len(t) + 3), 3.4)
    x = np.arange(len(t))
    rate = t["rate"].to_numpy(dtype=float)
    err = np.clip(
        np.vstack([rate - t["lo95"].to_numpy(dtype=float), t["hi95"].to_numpy(dtype=float) - rate]), 0, None
    )
    ax.bar(x, rate, color="tab:blue", alpha=0.75)
    ax.errorbar(x, rate, yerr=err, fmt="none", ecolor="0.2", capsize=3, lw=1)
    ax.set_xticks(
        x,
        [str(v) for v in t[label]],
        rotation=45 if len(t) > 8 else 0,
        ha="right" if len(t) > 8 else "center",
    )
    if reference is not None:
        ax.axhline(reference, color="tab:red", ls="--", lw=1, label=ref_label)
        ax.legend(loc="upper right", fontsize=8)
    ax.set_ylabel("conversion")
    ax.yaxis.set_major_formatter(_percent())
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=1)


def hazard_chart(
    hazard: pd.DataFrame, fitted: np.ndarray, break_even_rate: float, last_worth: int | None, path: Path
) -> Path:
    """Conversion of the k-th call (95% interval), the fitted decay and the break-even rate."""
    fig, ax = _figure(8, 3.6)
    h = hazard[hazard["reached"] > 0]
    ax.fill_between(h["call"], h["lo95"], h["hi95"], color="tab:blue", alpha=0.2, label="95% interval")
    ax.plot(h["call"], h["rate"], "o-", color="tab:blue", lw=1, ms=4, label="observed")
    ax.plot(hazard["call"], fitted, color="black", lw=1.2, label="fitted decay")
    ax.axhline(break_even_rate, color="tab:red", ls="--", lw=1, label=f"break-even {break_even_rate:.1%}")
    if last_worth:
        ax.axvline(last_worth + 0.5, color="tab:red", lw=0.8, alpha=0.6)
        ax.text(
            last_worth + 0.6,
            ax.get_ylim()[1] * 0.9,
            f"stop after call {last_worth}",
            color="tab:red",
            fontsize=8,
        )
    ax.set_xlabel("call number in the campaign")
    ax.set_ylabel("conversion of that call")
    ax.yaxis.set_major_formatter(_percent())
    ax.legend(fontsize=8)
    ax.set_title("Diminishing returns of repeated calls", fontsize=10)
    return _save(fig, path)


def line_chart(
    frame: pd.DataFrame, x: str, ys: Sequence[str], path: Path, title: str, ylabel: str, stacked: bool = False
) -> Path:
    """One line per column of ``ys`` (or a stacked area)."""
    fig, ax = _figure(8, 3.6)
    xs = np.arange(len(frame))
    if stacked:
        ax.stackplot(xs, *[frame[y].to_numpy(dtype=float) for y in ys], labels=list(ys), alpha=0.8)
    else:
        for y in ys:
            ax.plot(xs, frame[y].to_numpy(dtype=float), lw=1.2, label=y)
    step = max(1, len(frame) // 12)
    ax.set_xticks(xs[::step], [str(v) for v in frame[x].iloc[::step]], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def bar_chart(
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    path: Path,
    title: str,
    ylabel: str,
    horizontal: bool = False,
) -> Path:
    """Grouped bars: one group per label, one bar per series."""
    n = max(len(labels), 1)
    fig, ax = _figure(8, max(3.0, 0.32 * n + 1.2) if horizontal else 3.6)
    pos = np.arange(len(labels))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        offset = pos + (i - (len(series) - 1) / 2) * width
        (ax.barh if horizontal else ax.bar)(offset, np.asarray(values, dtype=float), width, label=name)
    if horizontal:
        ax.set_yticks(pos, list(labels), fontsize=8)
        ax.set_xlabel(ylabel)
    else:
        ax.set_xticks(
            pos,
            list(labels),
            rotation=45 if len(labels) > 6 else 0,
            ha="right" if len(labels) > 6 else "center",
            fontsize=8,
        )
        ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def heatmap(matrix: pd.DataFrame, path: Path, title: str) -> Path:
    """Rows × columns of standardised values (blue below average, red above)."""
    fig, ax = _figure(8, max(2.6, 0.45 * len(matrix) + 1.4))
    values = matrix.to_numpy(dtype=float)
    limit = max(1.0, float(np.nanmax(np.abs(values))) if values.size else 1.0)
    im = ax.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(np.arange(matrix.shape[1]), list(matrix.columns), rotation=30, ha="right", fontsize=8)
    ax.set_yticks(np.arange(matrix.shape[0]), [str(i) for i in matrix.index], fontsize=8)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="standard deviations from the average")
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def curve_chart(curve: pd.DataFrame, x: str, y: str, chosen: int, path: Path, title: str) -> Path:
    """The model-selection curve with the chosen value marked."""
    fig, ax = _figure(6, 3.2)
    ax.plot(curve[x], curve[y], "o-", lw=1.2)
    pick = curve[curve[x] == chosen]
    ax.plot(pick[x], pick[y], "o", ms=10, mfc="none", mec="tab:red", mew=2, label=f"chosen {x} = {chosen}")
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


# -- documents ------------------------------------------------------------------------------------------


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


@dataclass
class Section:
    """One part of a report: prose, tables (caption, frame) and charts (caption, PNG path)."""

    heading: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.85rem}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}caption{text-align:left;font-weight:600;padding:.3rem 0}
img{max-width:100%;height:auto}figure{margin:1rem 0}figcaption{font-size:.85rem;color:#555}
.facts li{margin:.15rem 0}.meta{color:#666;font-size:.8rem}
"""


def format_table(frame: pd.DataFrame, max_rows: int = 60) -> pd.DataFrame:
    """Display copy: rates as percentages, cents as money, floats rounded, long tables cut."""
    out = frame.head(max_rows).copy()
    for col in out.columns:
        name = str(col)
        values = out[col]
        if name.endswith("_cents"):
            out[col] = [f"{int(v) / 100:,.2f}" if pd.notna(v) else "" for v in values]
        elif pd.api.types.is_float_dtype(values) and (
            name in ("rate", "share", "growth", "wape", "bias", "conversion", "silhouette")
            or name.startswith(
                (
                    "lo95",
                    "hi95",
                    "listed_rate",
                    "other_rate",
                    "listed_lo",
                    "listed_hi",
                    "other_lo",
                    "other_hi",
                    "conversion_",
                    "coverage",
                    "champion_mean",
                    "estimated_base",
                    "difference",
                )
            )
        ):
            out[col] = [f"{v:.1%}" if pd.notna(v) else "–" for v in values]
        elif pd.api.types.is_float_dtype(values):
            out[col] = [
                f"{v:,.3g}" if pd.notna(v) and abs(v) < 1000 else (f"{v:,.0f}" if pd.notna(v) else "–")
                for v in values
            ]
    return out


def render_html(title: str, facts: Sequence[str], sections: Sequence[Section], meta: str = "") -> str:
    """A standalone HTML document: inline CSS, every chart embedded as a PNG data URI, no external reference.

    No generation time inside: the same inputs give the same bytes (the manifest records when it was made)."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{esc(meta)}</p>' if meta else "",
    ]
    if facts:
        parts.append('<ul class="facts">' + "".join(f"<li>{esc(f)}</li>" for f in facts) + "</ul>")
    for section in sections:
        parts.append(f"<h2>{esc(section.heading)}</h2>")
        parts += [f"<p>{esc(p)}</p>" for p in section.paragraphs]
        for caption, path in section.images:
            parts.append(
                f'<figure><img alt="{esc(caption)}" src="{png_data_uri(path)}"><figcaption>{esc(caption)}</figcaption></figure>'
            )
        for caption, frame in section.tables:
            shown = format_table(frame)
            note = (
                f" (first {len(shown)} of {len(frame)} rows; all in the CSV)"
                if len(shown) < len(frame)
                else ""
            )
            table_html = shown.to_html(index=False, escape=True, border=0, na_rep="–")
            cut = table_html.index(">") + 1
            parts.append(f"{table_html[:cut]}<caption>{esc(caption + note)}</caption>{table_html[cut:]}")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_markdown(
    title: str, facts: Sequence[str], images: Sequence[tuple[str, Path]], location: str
) -> str:
    """The Prefect artifact: key figures as bullets, then the charts embedded as data URIs."""
    lines = [f"# {title}", "", *[f"- {f}" for f in facts], "", f"Report and tables: `{location}`", ""]
    for caption, path in images:
        lines += [f"### {caption}", "", f"![{caption}]({png_data_uri(path)})", ""]
    return "\n".join(lines)
