"""Monitoring report: charts (PNG bytes), a self-contained HTML page and Markdown with the charts embedded.

Prefect's markdown artifacts cannot show images by relative path, so charts are embedded as data URIs in both
the HTML report and the artifact.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

MAX_FEATURE_CHARTS = 8


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _plt()
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def feature_chart(feature: Mapping[str, Any]) -> bytes:
    """Reference vs current share per bin (numeric: reference quantile bins; categorical: categories)."""
    import numpy as np

    plt = _plt()
    bins = list(feature["bins"])
    ref, cur = np.asarray(feature["reference_shares"]), np.asarray(feature["current_shares"])
    keep = (ref > 0) | (cur > 0)
    labels = [b for b, k in zip(bins, keep, strict=True) if k]
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.bar(x - 0.2, ref[keep], 0.4, label="reference (training)", color="#9aa5b1")
    ax.bar(x + 0.2, cur[keep], 0.4, label="today", color="#d9534f" if feature.get("drifted") else "#f0ad4e")
    ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=7)
    name = "model score" if feature["name"] == "__score__" else feature["name"]
    ax.set(
        ylabel="share",
        title=f"{name}: PSI {feature['psi']:.3f}, {feature['test']} p={feature['p_value']:.2g}",
    )
    ax.legend(fontsize=7)
    return _png(fig)


def performance_chart(history: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Performance over time: estimated (CBPE) and realised within-date AUC, conversion of listed vs control."""
    import pandas as pd

    rows = []
    for doc in history:
        perf = doc.get("performance", {})
        est, real = perf.get("estimated") or {}, perf.get("realised") or {}
        rows.append(
            {
                "date": pd.Timestamp(doc["partition_date"]),
                "estimated_auc": est.get("expected_auc"),
                "expected_called": real.get("expected_within_date_auc"),
                "realised": real.get("within_date_auc"),
                "lo": (real.get("within_date_auc_ci95") or [None, None])[0],
                "hi": (real.get("within_date_auc_ci95") or [None, None])[1],
                "listed": (real.get("listed") or {}).get("rate"),
                "control": (real.get("control") or {}).get("rate"),
                "psi": doc.get("prediction_psi"),
            }
        )
    if not rows:
        return None
    frame = pd.DataFrame(rows).sort_values("date").astype({c: float for c in rows[0] if c != "date"})
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
    ax1.plot(frame["date"], frame["estimated_auc"], "b--", label="estimated AUC, all eligible (CBPE)")
    ax1.plot(frame["date"], frame["expected_called"], "g:", label="expected within-date AUC, called (CBPE)")
    ax1.plot(frame["date"], frame["realised"], "k-o", ms=3, label="realised within-date AUC, called")
    ax1.fill_between(frame["date"], frame["lo"], frame["hi"], color="grey", alpha=0.2, label="95% interval")
    ax1.set(title="Ranking quality over time", ylabel="AUC")
    ax1.legend(fontsize=6)
    ax2.plot(frame["date"], frame["listed"], "r-o", ms=3, label="listed calls")
    ax2.plot(frame["date"], frame["control"], "-o", color="grey", ms=3, label="random control calls")
    ax2.set(title="Conversion of called customers (realised window)", ylabel="conversion")
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
    return _png(fig)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def charts(document: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> dict[str, bytes]:
    """Charts of the drifting (or watched) features, the score when it moved, and performance over time."""
    out: dict[str, bytes] = {}
    moved = [f for f in document.get("feature_details", []) if f["level"] != "stable"]
    moved.sort(key=lambda f: -f["psi"])
    for f in moved[:MAX_FEATURE_CHARTS]:
        out[f"feature_{f['name']}.png"] = feature_chart(f)
    score = document.get("score_detail")
    if score:
        out["score.png"] = feature_chart(score)
    perf = performance_chart([*history, document])
    if perf:
        out["performance.png"] = perf
    return out


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if value != value else f"{value:.{digits}f}"
    return str(value)


def markdown(document: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """The Prefect artifact: verdict, reasons, feature table, performance, charts as data URIs."""
    verdict = "DRIFT DETECTED" if document["drift_detected"] else document.get("status", "ok").upper()
    lines = [
        f"# Monitoring {document['model']} {document.get('version', '')} — {document['partition_date']}: **{verdict}**",
        "",
    ]
    for reason in document.get("reasons", []):
        lines.append(f"- alarm: {reason}")
    for note in document.get("notes", []):
        lines.append(f"- note: {note}")
    perf = document.get("performance", {})
    est, real = perf.get("estimated") or {}, perf.get("realised") or {}
    lines += [
        "",
        f"Scored rows: {document.get('sample', {}).get('rows', 0):,}; prediction PSI {_fmt(document.get('prediction_psi'))}",
        f"Estimated AUC (CBPE, all eligible) {_fmt(est.get('expected_auc'))} vs reference "
        f"{_fmt(document.get('reference', {}).get('expected_auc'))}; holdout {_fmt(document.get('reference', {}).get('holdout_auc'))}",
    ]
    if real:
        ci = real.get("within_date_auc_ci95") or [None, None]
        lines.append(
            f"Realised within-date AUC {_fmt(real.get('within_date_auc'))} (95% {_fmt(ci[0])}–{_fmt(ci[1])}) vs "
            f"expected {_fmt(real.get('expected_within_date_auc'))}; listed conversion "
            f"{_fmt((real.get('listed') or {}).get('rate'))} vs random control {_fmt((real.get('control') or {}).get('rate'))} "
            f"({real.get('labelled', 0):,} labelled calls)"
        )
    lines += ["", "| feature | PSI | test | statistic | p-value | level |", "|---|---|---|---|---|---|"]
    for f in sorted(document.get("feature_details", []), key=lambda f: -f["psi"]):
        lines.append(
            f"| {f['name']} | {f['psi']:.3f} | {f['test']} | {f['statistic']:.3g} | {f['p_value']:.2g} | {f['level']} |"
        )
    lines.append("")
    for name, png in images.items():
        lines.append(f"![{name}]({data_uri(png)})")
    return "\n".join(lines)


def html_report(document: Mapping[str, Any], images: Mapping[str, bytes]) -> str:
    """A self-contained HTML page (charts inline) for people who open the lake."""
    e = html.escape
    verdict = "DRIFT DETECTED" if document["drift_detected"] else document.get("status", "ok").upper()
    rows = "".join(
        f"<tr class='{e(f['level'])}'><td>{e(f['name'])}</td><td>{f['psi']:.3f}</td><td>{e(f['test'])}</td>"
        f"<td>{f['statistic']:.3g}</td><td>{f['p_value']:.2g}</td><td>{e(f['level'])}</td></tr>"
        for f in sorted(document.get("feature_details", []), key=lambda f: -f["psi"])
    )
    reasons = "".join(f"<li><b>alarm</b>: {e(r)}</li>" for r in document.get("reasons", []))
    notes = "".join(f"<li>{e(n)}</li>" for n in document.get("notes", []))
    imgs = "".join(
        f"<figure><img src='{data_uri(png)}' alt='{e(n)}'><figcaption>{e(n)}</figcaption></figure>"
        for n, png in images.items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Monitoring {e(document["model"])} {e(document["partition_date"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}td,th{{padding:2px 8px}}
tr.drifted{{background:#f8d7da}}tr.warning{{background:#fff3cd}}img{{max-width:100%}}</style></head><body>
<h1>{e(document["model"])} {e(str(document.get("version", "")))} — {e(document["partition_date"])}: {e(verdict)}</h1>
<ul>{reasons}{notes}</ul>
<p>Scored rows {document.get("sample", {}).get("rows", 0):,}; prediction PSI {_fmt(document.get("prediction_psi"))}</p>
<table><tr><th>feature</th><th>PSI</th><th>test</th><th>statistic</th><th>p-value</th><th>level</th></tr>{rows}</table>
{imgs}
</body></html>
"""


def forecast_markdown(document: Mapping[str, Any]) -> str:
    """The forecast monitoring summary: verdict, reasons, one row per series group."""
    verdict = "DRIFT DETECTED" if document["drift_detected"] else document.get("status", "ok").upper()
    lines = [
        f"# Monitoring forecasts {document.get('forecast_partition', '')} — {document['partition_date']}: **{verdict}**",
        "",
        *[f"- alarm: {r}" for r in document.get("reasons", [])],
        *[f"- note: {n}" for n in document.get("notes", [])],
        "",
        "| series group | series | series-days | live / backtest error (median) | p-value | 80% coverage | drifted |",
        "|---|---|---|---|---|---|---|",
    ]
    for g in document.get("features", []):
        lines.append(
            f"| {g['name']} | {g['series']} | {g['cells']} | {_fmt(g['statistic'], 2)} | {_fmt(g['p_value'], 3)} "
            f"| {_fmt(g.get('coverage80'), 2)} | {'yes' if g['drifted'] else 'no'} |"
        )
    return "\n".join(lines)


def forecast_html(document: Mapping[str, Any]) -> str:
    """The forecast summary as a small HTML page."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(g['name'])}</td><td>{g['series']}</td><td>{g['cells']}</td><td>{_fmt(g['statistic'], 2)}</td>"
        f"<td>{_fmt(g['p_value'], 3)}</td><td>{_fmt(g.get('coverage80'), 2)}</td><td>{'yes' if g['drifted'] else 'no'}</td></tr>"
        for g in document.get("features", [])
    )
    items = "".join(f"<li>{e(x)}</li>" for x in [*document.get("reasons", []), *document.get("notes", [])])
    verdict = "DRIFT DETECTED" if document["drift_detected"] else document.get("status", "ok").upper()
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Forecast monitoring {e(document['partition_date'])}"
        f"</title></head><body><h1>Forecasts — {e(document['partition_date'])}: {e(verdict)}</h1><ul>{items}</ul>"
        "<table><tr><th>series group</th><th>series</th><th>series-days</th><th>live/backtest error</th>"
        f"<th>p-value</th><th>80% coverage</th><th>drifted</th></tr>{rows}</table></body></html>\n"
    )
