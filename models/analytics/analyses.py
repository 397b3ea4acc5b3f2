"""The three analyses end to end on in-memory frames: compute, write CSV/PNG/HTML into a local folder, and
return what to publish (files, row counts, key figures, charts). No lake, no Prefect: the tasks do the I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.analytics import campaign as cp
from models.analytics import report as rp
from models.analytics import sales as sk
from models.analytics import segmentation as sg
from models.analytics.config import AnalyticsSettings

ANALYSES = ("segmentation", "campaign", "sales")
TITLES = {
    "segmentation": "Customer segments",
    "campaign": "Campaign effectiveness",
    "sales": "Sales KPIs",
}


@dataclass
class AnalysisOutput:
    """Local files of one analysis run and the figures people see first."""

    name: str
    title: str
    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    facts: list[str] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add_csv(self, name: str, frame: pd.DataFrame, out_dir: Path) -> Path:
        path = out_dir / name
        money_as_text(frame).to_csv(path, index=False, float_format="%.6g", lineterminator="\n")
        self.files[name], self.rows[name] = path, len(frame)
        return path

    def add_png(self, caption: str, path: Path) -> Path:
        self.files[path.name] = path
        self.images.append((caption, path))
        return path


def money_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Integer-cent columns (``*_cents``) become exact decimal text columns without the suffix."""
    out = frame.copy()
    for col in [c for c in out.columns if str(c).endswith("_cents")]:
        out[col] = sk.cents_to_text(out[col].to_numpy())
        out = out.rename(columns={col: str(col).removesuffix("_cents")})
    return out


def _pct(x: float) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.1%}"


def _money(cents: int) -> str:
    return f"{cents / 100:,.2f}"


def _finish(
    out: AnalysisOutput, out_dir: Path, sections: list[rp.Section], as_of: date, meta: str
) -> AnalysisOutput:
    """Write the HTML report and summary.json (key figures, warnings, row counts) into ``out_dir``."""
    html_path = out_dir / "report.html"
    facts = [*out.facts, *[f"Warning: {w}" for w in out.warnings]]
    html_path.write_text(
        rp.render_html(f"{out.title} — {as_of.isoformat()}", facts, sections, meta), encoding="utf-8"
    )
    out.files["report.html"] = html_path
    out.summary.update(
        analysis=out.name,
        as_of=as_of.isoformat(),
        facts=out.facts,
        warnings=out.warnings,
        rows=dict(out.rows),
    )
    summary_path = out_dir / "summary.json"
    summary_path.write_text(json.dumps(out.summary, indent=2, default=_json_default) + "\n", encoding="utf-8")
    out.files["summary.json"] = summary_path
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# -- segmentation -----------------------------------------------------------------------------------


def segmentation_analysis(
    customers: pd.DataFrame,
    contacts: pd.DataFrame,
    scores: pd.Series | None,
    champion: str | None,
    cfg: AnalyticsSettings,
    out_dir: Path,
    as_of: date,
    meta: str = "",
) -> AnalysisOutput:
    """Segments of the customer base: k search, profiles in words and figures, conversion, champion score."""
    out = AnalysisOutput("segmentation", TITLES["segmentation"])
    features = sg.customer_features(customers, contacts)
    result = sg.segment_customers(
        features, cfg.segment_k_min, cfg.segment_k_max, cfg.seed, cfg.silhouette_sample, cfg.segment_min_share
    )
    labelled = (
        cp.labelled_contacts(contacts) if len(contacts) else pd.DataFrame(columns=["customer_id", "sale"])
    )
    profiles = sg.segment_profiles(features, result.labels, labelled[["customer_id", "sale"]], scores)
    created = customers.set_index(customers["customer_id"].astype("int64"))["created_at"]
    sizes = sg.sizes_over_time(created, result.labels)
    best = result.curve.loc[result.curve["k"] == result.k, "silhouette"].iloc[0]
    out.facts.append(
        f"{result.k} segments of {len(features):,} customers, chosen by the highest silhouette "
        f"({best:.3f}) over k = {cfg.segment_k_min}…{cfg.segment_k_max} whose smallest segment holds at least "
        f"{cfg.segment_min_share:.0%} of customers (k-means on standardised pre-call features)."
    )
    if result.k == cfg.segment_k_max and cfg.segment_k_max > cfg.segment_k_min:
        out.warnings.append(
            f"the best k is the largest one searched ({result.k}): raise CALLCAST_ANALYTICS__SEGMENT_K_MAX to look further."
        )
    if champion is None:
        out.warnings.append(
            "no champion: the champion's mean score per segment is not shown (train and promote a model)."
        )
    for r in profiles.itertuples(index=False):
        score = f"; champion mean score {_pct(r.champion_mean_score)}" if champion else ""
        out.facts.append(
            f"Segment {r.segment} ({r.share:.0%}, {r.customers:,}): {r.description} — conversion "
            f"{_pct(r.conversion)} (95% {_pct(r.conversion_lo95)}–{_pct(r.conversion_hi95)}, {r.contacts:,} contacts){score}."
        )
    assignments = result.labels.reset_index().rename(columns={"index": "customer_id"})
    out.add_csv("segment_profiles.csv", profiles, out_dir)
    out.add_csv("segment_k_search.csv", result.curve, out_dir)
    out.add_csv("segment_sizes_over_time.csv", sizes.reset_index(), out_dir)
    out.add_csv("customer_segments.csv", assignments, out_dir)
    means, sd = features.mean(), features.std(ddof=0).replace(0, np.nan)
    z = ((profiles.set_index("segment")[list(features.columns)] - means) / sd).fillna(0.0)
    z.columns = [c.replace("_", " ") for c in z.columns]
    out.add_png(
        "Silhouette by number of segments",
        rp.curve_chart(
            result.curve,
            "k",
            "silhouette",
            result.k,
            out_dir / "k_search.png",
            "Choosing k: silhouette (higher is better)",
        ),
    )
    out.add_png(
        "Segment profiles (standardised means)",
        rp.heatmap(
            z,
            out_dir / "segment_profiles.png",
            "Segment profiles: how each segment differs from the average customer",
        ),
    )
    conv = profiles.rename(
        columns={"conversion": "rate", "conversion_lo95": "lo95", "conversion_hi95": "hi95"}
    )
    out.add_png(
        "Conversion per segment",
        rp.rate_chart(
            conv,
            "segment",
            out_dir / "segment_conversion.png",
            "Conversion per segment (95% Wilson interval)",
        ),
    )
    if not sizes.empty:
        out.add_png(
            "Segment sizes over time",
            rp.line_chart(
                sizes.reset_index(),
                "month",
                list(sizes.columns),
                out_dir / "segment_sizes.png",
                "Customers in the base at month end, by current segment",
                "customers",
                stacked=True,
            ),
        )
    out.summary.update(
        k=result.k,
        silhouette=float(best),
        champion=champion,
        segments=profiles.drop(columns=list(features.columns)).to_dict("records"),
    )
    sections = [
        rp.Section(
            "How the segments were found",
            [
                "Clustered on (standardised): "
                + "; ".join(sg.SEGMENT_FEATURES[c] for c in sg.CLUSTER_FEATURES)
                + ". Profiled as well: "
                + "; ".join(v for c, v in sg.SEGMENT_FEATURES.items() if c not in sg.CLUSTER_FEATURES)
                + " (rare flags that would split off tiny segments). duration and pdays are never used.",
                f"k-means ({sg.N_INIT} starts, seed {cfg.seed}) for each k; the k with the highest silhouette on a seeded sample of "
                f"up to {cfg.silhouette_sample:,} customers is chosen among the k whose smallest segment holds at least "
                f"{cfg.segment_min_share:.0%} of customers. Segment 1 is the largest.",
            ],
            [("k search", result.curve)],
            out.images[:1],
        ),
        rp.Section(
            "Segment profiles",
            [f for f in out.facts[1:]],
            [("Profiles (feature means, conversion, champion score)", profiles)],
            out.images[1:3],
        ),
        rp.Section(
            "Sizes over time",
            ["Customers in the base at each month end (by created date), by their current segment."],
            [],
            out.images[3:],
        ),
    ]
    return _finish(out, out_dir, sections, as_of, meta)


# -- campaign effectiveness ---------------------------------------------------------------------------


def campaign_analysis(
    customers: pd.DataFrame,
    contacts: pd.DataFrame,
    lists: pd.DataFrame | None,
    cfg: AnalyticsSettings,
    out_dir: Path,
    as_of: date,
    meta: str = "",
) -> AnalysisOutput:
    """Conversion by channel/month/calls/previous outcome, diminishing returns, stop list, call-list lift."""
    out = AnalysisOutput("campaign", TITLES["campaign"])
    labelled = cp.labelled_contacts(contacts)
    if labelled.empty:
        raise ValueError("No contact with a known outcome in the validated exports: nothing to measure yet.")
    tables = cp.conversion_tables(labelled, cfg.max_call_number)
    diffs = cp.channel_differences(tables["by_channel"])
    hazard = cp.call_hazard(labelled, cfg.max_call_number)
    fit = cp.fit_decay(labelled)
    hazard["fitted"] = fit.rate(hazard["call"].to_numpy())
    be = cp.break_even(fit, hazard, cfg.break_even_rate)
    stop, stop_counts = cp.stop_calling_list(
        customers, contacts, be["last_worth_call"], fit, cfg.break_even_rate
    )
    pending = int(len(cp.latest_contacts(contacts)) - len(labelled)) if "updated_at" in contacts else 0

    overall = labelled["sale"].mean()
    out.facts.append(
        f"{len(labelled):,} contacts with a known outcome ({pending:,} still pending): conversion {_pct(overall)}."
    )
    for r in diffs.itertuples(index=False):
        out.facts.append(
            f"{r.channel} converts {100 * r.difference:+.1f} percentage points against {r.reference} "
            f"(95% {100 * r.lo95:+.1f} to {100 * r.hi95:+.1f})."
        )
    out.facts.append(
        f"Each further call converts {fit.per_call_factor:.0%} of the previous one (decay {fit.decay:.3f}, 95% "
        f"{fit.decay_lo95:.3f}–{fit.decay_hi95:.3f}); the first call converts {_pct(fit.first_call_rate)}."
    )
    rate = cfg.break_even_rate
    money = f"cost per call {cfg.cost_per_call:g} / value per sale {cfg.value_per_sale:g} = break-even conversion {rate:.2%}"
    last = be["last_worth_call"]
    if last is None:
        out.facts.append(f"Every call up to {cfg.max_call_number} still pays ({money}).")
    elif last == 0:
        out.facts.append(f"Not even a first call pays ({money}).")
    else:
        out.facts.append(
            f"Stop after call {last}: call {last + 1} is expected to convert {float(fit.rate(last + 1)):.2%} ({money})."
        )
    if be["first_losing_call_evidence"]:
        out.facts.append(
            f"From call {be['first_losing_call_evidence']} the 95% interval lies wholly below break-even."
        )
    out.facts.append(
        f"Stop-calling list: {stop_counts['listed']:,} customers ({stop_counts['beyond_break_even']:,} past the break-even call, "
        f"{stop_counts['opted_out']:,} opted out)."
    )
    lift = (
        cp.call_list_lift(lists, contacts, cfg.lift_window_days)
        if lists is not None and len(lists)
        else pd.DataFrame(columns=cp.LIFT_COLUMNS)
    )
    measured = lift[lift["listed_contacts"] > 0] if len(lift) else lift
    if lists is None or not len(lists):
        lift_text = "No call list has been published yet: the lift of callcast's lists against random calling cannot be measured."
        out.warnings.append("no call lists: lift not measured")
    elif measured.empty:
        lift_text = (
            f"{lift['list_date'].ne('all').sum()} call list(s) found, but no listed customer has a contact with a known outcome "
            f"within {cfg.lift_window_days} days of the list's call date yet: lift not measurable."
        )
        out.warnings.append("no outcomes of listed customers yet: lift not measured")
    else:
        pooled = lift.iloc[-1]
        vs_other = (
            f"against {_pct(pooled['other_rate'])} for other contacts in the same windows: lift {pooled['lift']:.2f}x "
            f"(95% {pooled['lift_lo95']:.2f}–{pooled['lift_hi95']:.2f})"
            if pooled["other_contacts"] > 0
            else "no other contacts in the same windows to compare with"
        )
        est = (
            f"; {pooled['lift_vs_estimated']:.2f}x the model's estimated base rate"
            if np.isfinite(pooled["lift_vs_estimated"])
            else ""
        )
        lift_text = (
            f"Listed customers converted {_pct(pooled['listed_rate'])} on {int(pooled['listed_contacts']):,} contacts "
            f"({int(pooled['listed_pending']):,} pending) {vs_other}{est}."
        )
    out.facts.append(lift_text)

    for name, table in tables.items():
        out.add_csv(f"conversion_{name}.csv", table, out_dir)
    out.add_csv("channel_differences.csv", diffs, out_dir)
    out.add_csv("call_conversion.csv", hazard, out_dir)
    out.add_csv("stop_calling.csv", stop, out_dir)
    xlsx = out_dir / "stop_calling.xlsx"
    stop.to_excel(xlsx, sheet_name="stop_calling", index=False)
    out.files[xlsx.name], out.rows[xlsx.name] = xlsx, len(stop)
    if len(lift):
        out.add_csv("call_list_lift.csv", lift, out_dir)

    imgs = {
        "channel": rp.rate_chart(
            tables["by_channel"],
            "channel",
            out_dir / "conversion_by_channel.png",
            "Conversion by channel (95% Wilson)",
            overall,
            "all contacts",
        ),
        "month": rp.rate_chart(
            tables["by_month"],
            "month",
            out_dir / "conversion_by_month.png",
            "Conversion by month (95% Wilson)",
            overall,
            "all contacts",
        ),
        "calls": rp.rate_chart(
            tables["by_calls"],
            "calls",
            out_dir / "conversion_by_calls.png",
            "Conversion by calls in the campaign (95% Wilson)",
            overall,
            "all contacts",
        ),
        "poutcome": rp.rate_chart(
            tables["by_previous_outcome"],
            "previous_outcome",
            out_dir / "conversion_by_previous_outcome.png",
            "Conversion by previous campaign outcome (95% Wilson)",
            overall,
            "all contacts",
        ),
        "hazard": rp.hazard_chart(
            hazard, hazard["fitted"].to_numpy(), rate, last, out_dir / "diminishing_returns.png"
        ),
    }
    for caption, key in (("Conversion by channel", "channel"), ("Diminishing returns of repeated calls", "hazard"), ("Conversion by month", "month"),
                         ("Conversion by calls in the campaign", "calls"), ("Conversion by previous outcome", "poutcome")):  # fmt: skip
        out.add_png(caption, imgs[key])
    if len(measured):
        shown = lift[lift["listed_contacts"] > 0]
        out.add_png("Call-list conversion against other contacts", rp.bar_chart(
            shown["list_date"].tolist(), {"listed": shown["listed_rate"].tolist(), "other contacts": shown["other_rate"].fillna(0).tolist()},
            out_dir / "call_list_lift.png", "Conversion of listed customers vs other contacts", "conversion"))  # fmt: skip

    out.summary.update(
        conversion=float(overall), contacts=len(labelled), pending=pending, decay=fit.as_dict(), break_even=be,
        stop_calling=stop_counts, cost_per_call=cfg.cost_per_call, value_per_sale=cfg.value_per_sale,
        lift=None if measured.empty else lift.iloc[-1].to_dict(), lift_note=lift_text,
    )  # fmt: skip
    sections = [
        rp.Section("Conversion by channel, month, calls and previous outcome",
                   ["Rates are sales per contact with a known outcome; intervals are 95% Wilson score intervals. "
                    "Channel differences use Newcombe's interval for a difference of two rates."],
                   [("By channel", tables["by_channel"]), ("Channel differences", diffs), ("By previous outcome", tables["by_previous_outcome"]),
                    ("By calls in the campaign", tables["by_calls"]), ("By month", tables["by_month"])],
                   [out.images[0], *out.images[2:5]]),
        rp.Section("Diminishing returns and the break-even call",
                   ["The k-th call's conversion is the share of customers still being called at call k who buy on it "
                    "(the sale happens on the campaign's last call). A geometric decay is fitted by binomial maximum likelihood.",
                    out.facts[len(diffs) + 1], *[f for f in out.facts if f.startswith(("Stop after", "Every call", "Not even", "From call"))], money + "."],
                   [("Conversion of the k-th call", hazard)], [out.images[1]]),
        rp.Section("Stop-calling list", [out.facts[-2], "The full list (customer_id, name, phone, reason) is in stop_calling.csv and stop_calling.xlsx."],
                   [("First rows", stop.head(20))], []),
        rp.Section("Lift of callcast's call lists", [lift_text, f"A contact counts for a list when it falls within {cfg.lift_window_days} days of the list's call date."],
                   [("Per list", lift)] if len(lift) else [], out.images[5:]),
    ]  # fmt: skip
    return _finish(out, out_dir, sections, as_of, meta)


# -- sales KPIs -------------------------------------------------------------------------------------


def sales_analysis(
    sales: pd.DataFrame,
    stores: pd.DataFrame,
    products: pd.DataFrame,
    forecasts: pd.DataFrame | None,
    forecast_date: date | None,
    cfg: AnalyticsSettings,
    out_dir: Path,
    as_of: date,
    meta: str = "",
) -> AnalysisOutput:
    """Sales by store, product and month; growth vs last year; top movers; forecast vs actual per store."""
    out = AnalysisOutput("sales", TITLES["sales"])
    prepared, counts = sk.prepare_sales(sales, as_of)
    if prepared.empty:
        raise ValueError(f"No sales on or before {as_of}: nothing to report.")
    last_day = prepared["sale_date"].max().date()
    kpis = sk.sales_kpis(prepared, stores, products, last_day, cfg.kpi_period_days, cfg.top_movers)
    f = kpis.facts
    if counts["duplicates_dropped"]:
        out.warnings.append(
            f"{counts['duplicates_dropped']:,} duplicate sale rows (same sale_id in several slices) counted once."
        )
    out.facts.append(
        f"Revenue {_money(f['total_revenue_cents'])} from {f['total_quantity']:,} units over {prepared['sale_date'].min().date()} to {last_day} "
        f"({counts['rows_used']:,} sale rows; every table reconciles with the raw sales to the cent)."
    )
    if f["last_year_covered"]:
        out.facts.append(
            f"Last {cfg.kpi_period_days} days ({f['period']}): {_money(f['period_revenue_cents'])}, {f['period_growth']:+.1%} against {f['period_last_year']}."
        )
    else:
        out.facts.append(
            f"Last {cfg.kpi_period_days} days ({f['period']}): {_money(f['period_revenue_cents'])}; no sales history a year earlier to compare with."
        )
        out.warnings.append("growth against last year not available (history shorter than a year)")
    if f["ytd_covered"]:
        out.facts.append(
            f"Year to date: {_money(f['ytd_revenue_cents'])}, {f['ytd_growth']:+.1%} against the same dates last year."
        )
    t = kpis.tables
    for label, frame in (("up", t["top_movers_up"]), ("down", t["top_movers_down"])):
        if len(frame):
            names = ", ".join(
                f"{r.product} ({r.change_cents / 100:+,.2f})" for r in frame.head(3).itertuples()
            )
            out.facts.append(f"Top movers {label}: {names}.")
    fva = pd.DataFrame()
    if forecasts is None:
        out.facts.append(
            "No committed forecast has a period the sales have closed: forecast against actual is not shown."
        )
        out.warnings.append("no forecasts with closed periods: forecast vs actual not measured")
    else:
        fva = sk.forecast_vs_actual(forecasts, prepared, stores, last_day)
        if fva.empty:
            out.facts.append(
                f"The forecasts of {forecast_date} cover no closed period up to {last_day} yet: forecast against actual is not shown."
            )
            out.warnings.append("forecast periods not closed yet: forecast vs actual not measured")
        else:
            total_abs = float((fva["wape"] * fva["actual_units"]).sum())
            wape = total_abs / float(fva["actual_units"].sum()) if fva["actual_units"].sum() else float("nan")
            bias = (
                float(fva["error_units"].sum() / fva["actual_units"].sum())
                if fva["actual_units"].sum()
                else float("nan")
            )
            worst = fva.sort_values("wape", ascending=False).iloc[0]
            out.facts.append(
                f"Forecasts of {forecast_date} against actual store totals: WAPE {_pct(wape)}, bias {bias:+.1%}; "
                f"80% interval coverage {fva['coverage80'].mean():.0%}; worst store {worst['store']} (WAPE {_pct(worst['wape'])})."
            )
    for name, frame in t.items():
        out.add_csv(f"{name}.csv", frame, out_dir)
    if len(fva):
        out.add_csv("forecast_vs_actual.csv", fva, out_dir)

    by_month = t["sales_by_month"].copy()
    by_month["revenue"] = by_month["revenue_cents"] / 100
    by_month["same month last year"] = by_month["revenue"].shift(12)
    months = pd.period_range(by_month["month"].min(), by_month["month"].max(), freq="M").astype(str)
    by_month = by_month.set_index("month").reindex(months).rename_axis("month").reset_index()
    by_month["same month last year"] = by_month["revenue"].shift(12)
    out.add_png(
        "Revenue by month",
        rp.line_chart(
            by_month,
            "month",
            ["revenue", "same month last year"],
            out_dir / "revenue_by_month.png",
            "Revenue by month",
            "revenue",
        ),
    )
    gs = t["growth_period_by_store"]
    out.add_png("Revenue by store: period vs last year", rp.bar_chart(
        gs["store"].astype(str).tolist(), {f"last {cfg.kpi_period_days} days": (gs["revenue_cents"] / 100).tolist(), "same days last year": (gs["revenue_cents_last_year"] / 100).tolist()},
        out_dir / "revenue_by_store.png", f"Revenue by store: {f['period']} vs {f['period_last_year']}", "revenue"))  # fmt: skip
    movers = pd.concat([t["top_movers_up"], t["top_movers_down"].iloc[::-1]])
    if len(movers):
        out.add_png("Top movers", rp.bar_chart(movers["product"].astype(str).tolist(), {"change": (movers["change_cents"] / 100).tolist()},
                                              out_dir / "top_movers.png", "Top movers: revenue change vs same days last year", "change in revenue", horizontal=True))  # fmt: skip
    if len(fva):
        out.add_png("Forecast against actual per store", rp.bar_chart(
            fva["store"].astype(str).tolist(), {"forecast": fva["forecast_units"].tolist(), "actual": fva["actual_units"].tolist()},
            out_dir / "forecast_vs_actual.png", f"Forecast (of {forecast_date}) against actual units per store", "units"))  # fmt: skip
    out.summary.update(
        facts_kpi={k: v for k, v in f.items()},
        counts=counts,
        forecast_partition=forecast_date,
        forecast_vs_actual=None if fva.empty else fva.to_dict("records"),
    )
    sections = [
        rp.Section("Revenue by month", [out.facts[0]], [("By month", t["sales_by_month"])], out.images[:1]),
        rp.Section("Growth against the same period last year",
                   [f for f in out.facts if f.startswith(("Last ", "Year to date"))] + ["The period a year earlier is shifted by 364 days, so both hold the same weekdays."],
                   [("Total", t["growth_period_total"]), ("By store", t["growth_period_by_store"]), ("Year to date by store", t["growth_ytd_by_store"])],
                   out.images[1:2]),
        rp.Section("Top movers", [f for f in out.facts if f.startswith("Top movers")], [("Up", t["top_movers_up"]), ("Down", t["top_movers_down"])],
                   [i for i in out.images if i[0] == "Top movers"]),
        rp.Section("Forecast against actual", [f for f in out.facts if "orecast" in f], [("Per store", fva)] if len(fva) else [],
                   [i for i in out.images if i[0].startswith("Forecast")]),
        rp.Section("Sales by store and product", ["Monthly revenue and units per store and per product are in the CSV tables."],
                   [("By store and month (first rows)", t["sales_by_store_month"]), ("By product and month (first rows)", t["sales_by_product_month"])], []),
    ]  # fmt: skip
    return _finish(out, out_dir, sections, as_of, meta)
