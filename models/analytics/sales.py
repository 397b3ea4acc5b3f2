"""Sales KPIs in exact money: revenue by store, product and month; growth against the same period a year
earlier; top movers; forecast against actual per store.

Money is held as integer cents, parsed from the exported decimal text (never through floats), so every
table reconciles with the raw sales to the cent. The comparison period a year earlier is shifted by 364 days
(52 weeks), so both periods hold the same weekdays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

import numpy as np
import pandas as pd

YEAR_SHIFT = timedelta(days=364)
TOTAL_SERIES_SUFFIX = "/ALL"


class MoneyFormatError(ValueError):
    """A revenue value is not a decimal amount with at most two decimal places."""


def cents_from_text(values: pd.Series) -> np.ndarray:
    """Exact integer cents of decimal texts such as ``"1234.50"`` (refuses more than two decimals)."""
    text = values.astype("string")
    if text.isna().any():
        raise MoneyFormatError(f"{int(text.isna().sum())} revenue value(s) are missing.")
    uniques = pd.unique(text.to_numpy(dtype=object))
    table: dict[str, int] = {}
    bad: list[str] = []
    for raw in uniques:
        try:
            cents = Decimal(str(raw).strip()) * 100
        except InvalidOperation:
            bad.append(str(raw))
            continue
        if cents != cents.to_integral_value():
            bad.append(str(raw))
            continue
        table[raw] = int(cents)
    if bad:
        raise MoneyFormatError(
            f"{len(bad)} revenue value(s) are not amounts in cents (e.g. {bad[:3]}); fix the export's types."
        )
    return text.map(table).to_numpy(dtype="int64")


def cents_to_text(cents: pd.Series | np.ndarray) -> list[str]:
    """Integer cents as decimal text with two places (``-5`` → ``"-0.05"``)."""
    out = []
    for c in np.asarray(cents, dtype="int64"):
        sign = "-" if c < 0 else ""
        whole, frac = divmod(abs(int(c)), 100)
        out.append(f"{sign}{whole}.{frac:02d}")
    return out


def prepare_sales(sales: pd.DataFrame, as_of: date | None = None) -> tuple[pd.DataFrame, dict[str, int]]:
    """Deduplicate by ``sale_id`` (latest slice wins), keep sales on or before ``as_of``, add ``cents``."""
    counts = {"rows_read": len(sales)}
    frame = sales.drop_duplicates("sale_id", keep="last").copy()
    counts["duplicates_dropped"] = counts["rows_read"] - len(frame)
    frame["sale_date"] = pd.to_datetime(frame["sale_date"]).dt.normalize()
    if as_of is not None:
        later = frame["sale_date"] > pd.Timestamp(as_of)
        counts["after_as_of_dropped"] = int(later.sum())
        frame = frame.loc[~later]
    frame["cents"] = cents_from_text(frame["revenue"])
    frame["quantity"] = pd.to_numeric(frame["quantity"]).astype("int64")
    frame["store_id"] = pd.to_numeric(frame["store_id"]).astype("int64")
    frame["product_id"] = pd.to_numeric(frame["product_id"]).astype("int64")
    frame["month"] = frame["sale_date"].dt.strftime("%Y-%m")
    counts["rows_used"] = len(frame)
    return frame.reset_index(drop=True), counts


def _sum(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    g = frame.groupby(keys, sort=True)
    return pd.DataFrame(
        {"revenue_cents": g["cents"].sum(), "quantity": g["quantity"].sum(), "rows": g.size()}
    ).reset_index()


def _names(stores: pd.DataFrame, products: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    s = stores.assign(store_id=pd.to_numeric(stores["store_id"]).astype("int64")).set_index("store_id")[
        "name"
    ]
    p = products.assign(product_id=pd.to_numeric(products["product_id"]).astype("int64")).set_index(
        "product_id"
    )
    return s.astype(str), p[["name", "category"]].astype(str)


@dataclass
class SalesKpis:
    """Every table of the KPI report (money in integer cents) and the facts of its header."""

    tables: dict[str, pd.DataFrame]
    facts: dict[str, object] = field(default_factory=dict)


def _growth(cur: pd.DataFrame, prev: pd.DataFrame, key: str | None) -> pd.DataFrame:
    if key is None:
        c = pd.DataFrame(
            {"revenue_cents": [int(cur["cents"].sum())], "quantity": [int(cur["quantity"].sum())]}
        )
        p = pd.DataFrame(
            {
                "revenue_cents_last_year": [int(prev["cents"].sum())],
                "quantity_last_year": [int(prev["quantity"].sum())],
            }
        )
        out = pd.concat([c, p], axis=1)
    else:
        c = cur.groupby(key).agg(revenue_cents=("cents", "sum"), quantity=("quantity", "sum"))
        p = prev.groupby(key).agg(
            revenue_cents_last_year=("cents", "sum"), quantity_last_year=("quantity", "sum")
        )
        out = c.join(p, how="outer").fillna(0).astype("int64").reset_index()
    out["change_cents"] = out["revenue_cents"] - out["revenue_cents_last_year"]
    last = out["revenue_cents_last_year"].astype(float)
    out["growth"] = np.where(last > 0, out["change_cents"] / last.where(last > 0), np.nan)
    return out


def sales_kpis(
    sales: pd.DataFrame,
    stores: pd.DataFrame,
    products: pd.DataFrame,
    as_of: date,
    period_days: int,
    top_n: int,
) -> SalesKpis:
    """Revenue/units by month, store × month and product × month; period and year-to-date growth; movers.

    ``sales`` comes from :func:`prepare_sales` (``cents``). Raises if the monthly totals do not add up to the
    raw cents (they must, exactly).
    """
    store_names, product_info = _names(stores, products)
    facts: dict[str, object] = {"as_of": as_of.isoformat()}
    by_month = _sum(sales, ["month"])
    by_store_month = _sum(sales, ["store_id", "month"])
    by_store_month.insert(1, "store", by_store_month["store_id"].map(store_names))
    by_product_month = _sum(sales, ["product_id", "month"])
    by_product_month.insert(1, "product", by_product_month["product_id"].map(product_info["name"]))
    by_product_month.insert(2, "category", by_product_month["product_id"].map(product_info["category"]))
    raw_total = int(sales["cents"].sum())
    for name, table in (
        ("by_month", by_month),
        ("by_store_month", by_store_month),
        ("by_product_month", by_product_month),
    ):
        if int(table["revenue_cents"].sum()) != raw_total:
            raise AssertionError(
                f"{name} does not reconcile with the raw sales ({table['revenue_cents'].sum()} != {raw_total} cents)."
            )
    facts["total_revenue_cents"] = raw_total
    facts["total_quantity"] = int(sales["quantity"].sum())
    facts["reconciled"] = True

    end = pd.Timestamp(as_of)
    start = end - pd.Timedelta(days=period_days - 1)
    prev_start, prev_end = start - pd.Timedelta(YEAR_SHIFT), end - pd.Timedelta(YEAR_SHIFT)
    first = sales["sale_date"].min() if len(sales) else end
    cur = sales[(sales["sale_date"] >= start) & (sales["sale_date"] <= end)]
    prev = sales[(sales["sale_date"] >= prev_start) & (sales["sale_date"] <= prev_end)]
    covered = bool(len(sales)) and first <= prev_start
    facts.update(
        period=f"{start.date()} to {end.date()}",
        period_last_year=f"{prev_start.date()} to {prev_end.date()}",
        last_year_covered=covered,
    )
    growth_total = _growth(cur, prev, None)
    growth_store = _growth(cur, prev, "store_id")
    growth_store.insert(1, "store", growth_store["store_id"].map(store_names))
    growth_product = _growth(cur, prev, "product_id")
    growth_product.insert(1, "product", growth_product["product_id"].map(product_info["name"]))
    if not covered:  # a missing year is not a 100% growth
        for t in (growth_total, growth_store, growth_product):
            t["growth"] = np.nan
    movers = growth_product.sort_values(
        ["change_cents", "product_id"], ascending=[False, True], kind="stable"
    )
    up = movers[movers["change_cents"] > 0].head(top_n)
    down = (
        movers[movers["change_cents"] < 0]
        .sort_values(["change_cents", "product_id"], kind="stable")
        .head(top_n)
    )

    ytd_start = pd.Timestamp(date(as_of.year, 1, 1))
    ly_end = pd.Timestamp(_same_day_last_year(as_of))
    ytd = sales[(sales["sale_date"] >= ytd_start) & (sales["sale_date"] <= end)]
    ytd_prev = sales[
        (sales["sale_date"] >= pd.Timestamp(date(as_of.year - 1, 1, 1))) & (sales["sale_date"] <= ly_end)
    ]
    ytd_covered = bool(len(sales)) and first <= pd.Timestamp(date(as_of.year - 1, 1, 1))
    ytd_total = _growth(ytd, ytd_prev, None)
    ytd_store = _growth(ytd, ytd_prev, "store_id")
    ytd_store.insert(1, "store", ytd_store["store_id"].map(store_names))
    if not ytd_covered:
        ytd_total["growth"] = np.nan
        ytd_store["growth"] = np.nan
    facts["ytd_covered"] = ytd_covered
    facts["period_revenue_cents"] = int(growth_total["revenue_cents"].iloc[0])
    facts["period_growth"] = float(growth_total["growth"].iloc[0])
    facts["ytd_revenue_cents"] = int(ytd_total["revenue_cents"].iloc[0])
    facts["ytd_growth"] = float(ytd_total["growth"].iloc[0])
    tables = {
        "sales_by_month": by_month,
        "sales_by_store_month": by_store_month,
        "sales_by_product_month": by_product_month,
        "growth_period_total": growth_total,
        "growth_period_by_store": growth_store,
        "growth_period_by_product": growth_product,
        "growth_ytd_total": ytd_total,
        "growth_ytd_by_store": ytd_store,
        "top_movers_up": up.reset_index(drop=True),
        "top_movers_down": down.reset_index(drop=True),
    }
    return SalesKpis(tables=tables, facts=facts)


def _same_day_last_year(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def forecast_vs_actual(
    forecasts: pd.DataFrame, sales: pd.DataFrame, stores: pd.DataFrame, last_actual: date
) -> pd.DataFrame:
    """Per store: forecast and actual units on the periods the store-total forecast covers and the sales
    have closed; error (forecast − actual), WAPE, bias and 80%/95% interval coverage. Empty when none overlap.

    Weekly forecasts (dates 7 days apart) are compared with Monday-starting weeks of daily sales; a week counts
    only once its last day is on or before ``last_actual``.
    """
    cols = [
        "store_id",
        "store",
        "periods",
        "forecast_units",
        "actual_units",
        "error_units",
        "wape",
        "bias",
        "coverage80",
        "coverage95",
    ]
    totals = forecasts[forecasts["series_id"].astype(str).str.endswith(TOTAL_SERIES_SUFFIX)].copy()
    if totals.empty:
        return pd.DataFrame(columns=cols)
    totals["date"] = pd.to_datetime(totals["date"])
    totals["store_id"] = totals["series_id"].astype(str).str.removesuffix(TOTAL_SERIES_SUFFIX)
    steps = totals.sort_values("date").groupby("series_id")["date"].diff().dropna()
    weekly = bool(len(steps)) and steps.dt.days.median() == 7
    span = 7 if weekly else 1
    totals = totals[totals["date"] + pd.Timedelta(days=span - 1) <= pd.Timestamp(last_actual)]
    if totals.empty:
        return pd.DataFrame(columns=cols)
    s = sales[["store_id", "sale_date", "quantity"]].copy()
    s["date"] = pd.to_datetime(s["sale_date"]).dt.normalize()
    if weekly:
        s["date"] = s["date"] - pd.to_timedelta(s["date"].dt.day_of_week, unit="D")
    s["store_id"] = s["store_id"].astype("int64").astype(str)
    actual = s.groupby(["store_id", "date"])["quantity"].sum()
    key = pd.MultiIndex.from_frame(totals[["store_id", "date"]])
    totals["actual"] = actual.reindex(key).fillna(0).to_numpy(dtype=float)
    f, a = totals["forecast"].astype(float), totals["actual"]
    totals["abs_err"] = (f - a).abs()
    totals["err"] = f - a
    totals["in80"] = (a >= totals["lo80"]) & (a <= totals["hi80"])
    totals["in95"] = (a >= totals["lo95"]) & (a <= totals["hi95"])
    g = totals.groupby("store_id")
    out = pd.DataFrame(
        {
            "periods": g.size(),
            "forecast_units": g["forecast"].sum(),
            "actual_units": g["actual"].sum(),
            "error_units": g["err"].sum(),
            "abs_error": g["abs_err"].sum(),
            "coverage80": g["in80"].mean(),
            "coverage95": g["in95"].mean(),
        }
    )
    denom = out["actual_units"].where(out["actual_units"] > 0)
    out["wape"] = out["abs_error"] / denom
    out["bias"] = out["error_units"] / denom
    out = out.reset_index()
    names = stores.assign(store_id=stores["store_id"].astype("int64").astype(str)).set_index("store_id")[
        "name"
    ]
    out["store"] = out["store_id"].map(names)
    out = out.sort_values("store_id", key=lambda c: pd.to_numeric(c, errors="coerce"), kind="stable")
    return out[cols].reset_index(drop=True)
