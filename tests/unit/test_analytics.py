"""Business analytics on generated data with known structure: planted segments, channel differences, a
planted decay of repeated calls, call-list lift, exact money, and a report that opens standalone."""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from models.analytics import campaign as cp
from models.analytics import report as rp
from models.analytics import sales as sk
from models.analytics import segmentation as sg
from models.analytics.analyses import campaign_analysis, money_as_text, sales_analysis, segmentation_analysis
from models.analytics.config import AnalyticsSettings
from models.analytics.stats import rate_difference, rate_ratio, wilson_interval

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
AS_OF = date(2024, 6, 30)


# -- generators ---------------------------------------------------------------------------------------


def make_customers(n: int, seed: int = 0, **columns) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "name": [f"Customer {i}" for i in range(1, n + 1)],
            "phone": [f"+351 91 {i:07d}" for i in range(1, n + 1)],
            "age": rng.integers(20, 80, n),
            "job": "admin.",
            "marital": "married",
            "education": "secondary",
            "default": "no",
            "balance": rng.integers(-500, 5000, n),
            "housing": rng.choice(["yes", "no"], n),
            "loan": rng.choice(["yes", "no"], n),
            "opted_out": False,
            "created_at": [datetime(2020, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 1000, n)],
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def make_contacts(customer_ids, **columns) -> pd.DataFrame:
    ids = np.asarray(customer_ids)
    n = len(ids)
    day = date(2024, 5, 6)
    frame = pd.DataFrame(
        {
            "contact_id": np.arange(1, n + 1),
            "customer_id": ids,
            "contact_date": [day] * n,
            "contact": "cellular",
            "day": day.day,
            "month": "may",
            "duration": 100,
            "campaign": 1,
            "pdays": -1,
            "previous": 0,
            "poutcome": "unknown",
            "y": "no",
            "outcome_known_on": [day + timedelta(days=3)] * n,
            "updated_at": [datetime(2024, 5, 9, 17)] * n,
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def planted_segments(per: int = 300, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Three customer types far apart on age, balance, loans and contact history."""
    rng = np.random.default_rng(seed)
    truth = np.repeat([0, 1, 2], per)
    spec = {  # age mean, balance median, housing, loan, previous
        0: (26, 150, "no", "yes", 0),
        1: (45, 4000, "yes", "no", 0),
        2: (67, 40000, "no", "no", 4),
    }
    age = np.concatenate([rng.normal(spec[g][0], 2.5, per) for g in range(3)]).round().astype(int)
    balance = (
        np.concatenate([spec[g][1] * np.exp(rng.normal(0, 0.25, per)) for g in range(3)]).round().astype(int)
    )
    customers = make_customers(
        3 * per,
        seed,
        age=age,
        balance=balance,
        housing=[spec[g][2] for g in truth],
        loan=[spec[g][3] for g in truth],
    )
    previous = np.array([spec[g][4] for g in truth]) + (truth == 2) * rng.integers(0, 3, 3 * per)
    sale = rng.random(3 * per) < np.array([0.05, 0.10, 0.30])[truth]
    contacts = make_contacts(
        customers["customer_id"],
        previous=previous,
        poutcome=np.where(previous > 0, "failure", "unknown"),
        y=np.where(sale, "yes", "no"),
        duration=rng.integers(10, 1000, 3 * per),  # would dominate if it leaked in
        pdays=np.where(previous > 0, rng.integers(1, 400, 3 * per), -1),
    )
    return customers, contacts, truth


def planted_calls(n: int, first: float, decay: float, seed: int = 3, max_calls: int = 12) -> pd.DataFrame:
    """Customers called until they buy or their (random) call budget runs out; h(k) = first·exp(-decay(k-1))."""
    rng = np.random.default_rng(seed)
    budget = rng.integers(1, max_calls + 1, n)
    calls = np.zeros(n, dtype=int)
    sale = np.zeros(n, dtype=bool)
    for i in range(n):
        for k in range(1, budget[i] + 1):
            calls[i] = k
            if rng.random() < first * math.exp(-decay * (k - 1)):
                sale[i] = True
                break
    return make_contacts(np.arange(1, n + 1), campaign=calls, y=np.where(sale, "yes", "no"))


# -- statistics -------------------------------------------------------------------------------------


def test_wilson_interval_matches_statsmodels_and_the_hand_value():
    from statsmodels.stats.proportion import proportion_confint

    for s, n in [(0, 10), (3, 10), (10, 10), (57, 1234)]:
        lo, hi = wilson_interval(s, n)
        ref = proportion_confint(s, n, alpha=0.05, method="wilson")
        assert float(lo) == pytest.approx(ref[0], abs=1e-12) and float(hi) == pytest.approx(ref[1], abs=1e-12)
    # Hand value: 3/10 -> (0.1078, 0.6032) (Newcombe 1998, table I).
    lo, hi = wilson_interval(3, 10)
    assert (round(float(lo), 4), round(float(hi), 4)) == (0.1078, 0.6032)
    lo, hi = wilson_interval(0, 0)
    assert np.isnan(lo) and np.isnan(hi)


def test_newcombe_difference_matches_the_published_example():
    # Newcombe (1998) example (h): 56/70 vs 48/80 -> difference 0.2, 95% hybrid score interval 0.0524 to 0.3339.
    d, lo, hi = rate_difference(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def test_rate_ratio_interval_covers_and_orders():
    ratio, lo, hi = rate_ratio(60, 200, 20, 200)
    assert ratio == pytest.approx(3.0) and lo < 3.0 < hi and lo > 1.5
    ratio, lo, hi = rate_ratio(5, 100, 0, 100)  # a zero cell still gets a finite interval
    assert ratio == float("inf") and np.isfinite(lo) and np.isfinite(hi)


# -- segmentation ------------------------------------------------------------------------------------


def test_planted_segments_are_recovered_and_leaky_columns_never_used():
    customers, contacts, truth = planted_segments()
    features = sg.customer_features(customers, contacts)
    assert not {"duration", "pdays"} & set(features.columns)
    result = sg.segment_customers(features, 2, 8, seed=5, silhouette_sample=4000)
    assert result.k == 3
    assert set(result.curve["k"]) == set(range(2, 9))
    labels = result.labels.reindex(customers["customer_id"]).to_numpy()
    assert adjusted_rand_score(truth, labels) >= 0.9
    # Segment 1 is the largest; the oldest, richest segment is described in those words.
    profiles = sg.segment_profiles(
        features, result.labels, cp.labelled_contacts(contacts)[["customer_id", "sale"]]
    )
    assert profiles["customers"].is_monotonic_decreasing
    old = profiles.loc[profiles["age"].idxmax()]
    assert "older" in old["description"] and "higher balances" in old["description"]
    assert old["conversion"] > profiles["conversion"].min()  # planted 30% vs 5%
    assert old["conversion_lo95"] <= 0.30 <= old["conversion_hi95"]


def test_segmentation_is_reproducible_with_its_seed():
    customers, contacts, _ = planted_segments(per=120, seed=4)
    features = sg.customer_features(customers, contacts)
    a = sg.segment_customers(features, 2, 5, seed=9, silhouette_sample=200)
    b = sg.segment_customers(features, 2, 5, seed=9, silhouette_sample=200)
    assert a.labels.equals(b.labels) and a.curve.equals(b.curve)


def test_tiny_splinter_segments_are_not_chosen():
    """A k whose smallest segment is below the minimum share is not eligible, whatever its silhouette."""
    curve = pd.DataFrame(
        {"k": [2, 3, 4], "silhouette": [0.54, 0.31, 0.37], "smallest_share": [0.02, 0.12, 0.10]}
    )
    assert sg.pick_k(curve.copy(), 0.0) == 2
    assert sg.pick_k(curve, 0.03) == 4 and curve["eligible"].tolist() == [False, True, True]
    # Nothing qualifies: the best silhouette overall, still marked ineligible in the curve.
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 1, (980, 2)), rng.normal(30, 0.1, (20, 2))])
    k, found, _ = sg.choose_k(x, range(2, 5), seed=0, sample=5000, min_share=0.05)
    assert k == 2 and not found["eligible"].any()


def test_sizes_over_time_count_the_base_at_each_month_end():
    created = pd.Series(pd.to_datetime(["2024-01-05", "2024-01-20", "2024-03-02"]), index=[1, 2, 3])
    labels = pd.Series([1, 2, 1], index=[1, 2, 3])
    sizes = sg.sizes_over_time(created, labels)
    assert list(sizes.index) == ["2024-01", "2024-02", "2024-03"]
    assert sizes["segment_1"].tolist() == [1, 1, 2] and sizes["segment_2"].tolist() == [1, 1, 1]


# -- campaign effectiveness ---------------------------------------------------------------------------


def test_planted_channel_difference_is_found_with_the_right_sign_and_covered():
    rng = np.random.default_rng(11)
    n = 4000
    channel = np.repeat(["cellular", "telephone"], n)
    rate = np.where(channel == "cellular", 0.15, 0.08)
    contacts = make_contacts(
        np.arange(1, 2 * n + 1), contact=channel, y=np.where(rng.random(2 * n) < rate, "yes", "no")
    )
    tables = cp.conversion_tables(cp.labelled_contacts(contacts), 10)
    by = tables["by_channel"].set_index("channel")
    for name, planted in (("cellular", 0.15), ("telephone", 0.08)):
        assert by.loc[name, "lo95"] <= planted <= by.loc[name, "hi95"]
    assert by.loc["unknown", "contacts"] == 0  # a category without contacts is shown, not dropped
    diff = cp.channel_differences(tables["by_channel"]).set_index("channel").loc["telephone"]
    assert diff["reference"] in ("cellular", "telephone")
    planted = -0.07 if diff["reference"] == "cellular" else 0.07
    assert np.sign(diff["difference"]) == np.sign(planted)
    assert diff["lo95"] <= planted <= diff["hi95"]
    assert diff["hi95"] < 0  # the difference is also significant


def test_equal_channels_give_an_interval_covering_zero():
    rng = np.random.default_rng(12)
    channel = np.repeat(["cellular", "telephone"], 3000)
    contacts = make_contacts(
        np.arange(1, 6001), contact=channel, y=np.where(rng.random(6000) < 0.1, "yes", "no")
    )
    diff = cp.channel_differences(
        cp.conversion_tables(cp.labelled_contacts(contacts), 10)["by_channel"]
    ).iloc[0]
    assert diff["lo95"] <= 0 <= diff["hi95"]


def test_conversion_tables_ignore_pending_outcomes_and_keep_latest_versions():
    contacts = make_contacts([1, 2, 3], y=["yes", None, "no"])
    newer = make_contacts([3], y=["yes"]).assign(contact_id=3, updated_at=[datetime(2024, 6, 1)])
    labelled = cp.labelled_contacts(pd.concat([contacts, newer], ignore_index=True))
    assert len(labelled) == 2 and labelled["sale"].all()  # pending dropped; contact 3's later version wins


def test_diminishing_returns_recover_a_planted_decay_and_the_break_even_call():
    contacts = planted_calls(20_000, first=0.12, decay=0.25)
    labelled = cp.labelled_contacts(contacts)
    hazard = cp.call_hazard(labelled, 12)
    assert hazard.loc[0, "lo95"] <= 0.12 <= hazard.loc[0, "hi95"]
    assert hazard["rate"].iloc[0] > hazard["rate"].iloc[5] > hazard["rate"].iloc[10]
    fit = cp.fit_decay(labelled)
    assert fit.decay == pytest.approx(0.25, abs=0.03)
    assert fit.decay_lo95 <= 0.25 <= fit.decay_hi95
    assert fit.first_call_rate == pytest.approx(0.12, abs=0.01)
    # Break-even at 4%: h(k) >= 0.04 while k <= 1 + ln(0.12/0.04)/0.25 = 5.39 -> stop after call 5.
    be = cp.break_even(fit, hazard, 3.0 / 75.0)
    assert be["last_worth_call"] == 5
    assert be["first_losing_call_evidence"] is None or be["first_losing_call_evidence"] > 5
    assert cp.break_even(fit, hazard, 0.2)["last_worth_call"] == 0  # not even the first call pays


def test_a_flat_curve_has_no_decay_and_no_stopping_point():
    contacts = planted_calls(8000, first=0.1, decay=0.0, seed=5)
    labelled = cp.labelled_contacts(contacts)
    fit = cp.fit_decay(labelled)
    assert fit.decay_lo95 <= 0.0 <= fit.decay_hi95
    assert cp.break_even(fit, cp.call_hazard(labelled, 12), 0.02)["last_worth_call"] is None


def test_stop_calling_list_names_who_and_why():
    customers = make_customers(5, opted_out=[False, False, False, True, False])
    contacts = make_contacts([1, 2, 3, 4], campaign=[6, 2, 9, 1], y=["no", "no", "yes", "no"])
    fit = cp.DecayFit(0.1, 0.3, 0.2, 0.4, 10)
    stop, counts = cp.stop_calling_list(customers, contacts, 5, fit, 0.025)
    assert list(stop.columns) == ["customer_id", "name", "phone", "reason"]
    assert stop["customer_id"].tolist() == [1, 4]  # 2: below the limit; 3: bought; 5: never called
    reason = stop.set_index("customer_id")["reason"]
    assert reason[1].startswith("called 6 times") and "call 7" in reason[1] and "2.5%" in reason[1]
    assert reason[4] == "opted out: never call"
    assert counts == {"opted_out": 1, "beyond_break_even": 1, "listed": 2}


def test_call_list_lift_counts_window_contacts_once_and_recovers_a_planted_lift():
    rng = np.random.default_rng(21)
    listed = np.arange(1, 1001)
    others = np.arange(1001, 2001)
    call_day = date(2024, 6, 3)
    lists = pd.DataFrame(
        {
            "list_date": "2024-06-02",
            "call_date": call_day.isoformat(),
            "customer_id": listed,
            "estimated_base_rate": 0.1,
        }
    )
    ids = np.concatenate([listed, others])
    sale = rng.random(2000) < np.where(ids <= 1000, 0.30, 0.10)
    inside = make_contacts(
        ids,
        contact_date=[call_day + timedelta(days=int(d)) for d in rng.integers(0, 14, 2000)],
        y=np.where(sale, "yes", "no"),
    )
    before = make_contacts(listed[:200], contact_date=[call_day - timedelta(days=5)] * 200, y="yes")
    after = make_contacts(listed[:200], contact_date=[call_day + timedelta(days=30)] * 200, y="yes")
    pending = make_contacts(listed[:50], contact_date=[call_day] * 50, y=None)
    contacts = pd.concat([inside, before, after, pending], ignore_index=True)
    contacts["contact_id"] = np.arange(1, len(contacts) + 1)
    table = cp.call_list_lift(lists, contacts, window_days=14)
    row = table.iloc[0]
    assert row["listed_contacts"] == 1000 and row["listed_pending"] == 50 and row["other_contacts"] == 1000
    assert row["lift_lo95"] <= 3.0 <= row["lift_hi95"] and row["lift_lo95"] > 1.5
    assert row["lift_vs_estimated"] == pytest.approx(row["listed_rate"] / 0.1)
    # A second, later list takes over the contacts after its own call date (no contact counts twice).
    second = lists.assign(list_date="2024-06-09", call_date="2024-06-10")
    both = cp.call_list_lift(pd.concat([lists, second]), contacts, window_days=14)
    per_list = both[both["list_date"] != "all"]
    assert per_list["listed_contacts"].sum() + per_list["other_contacts"].sum() == 2000
    assert both.iloc[-1]["list_date"] == "all"


# -- sales KPIs -----------------------------------------------------------------------------------------


def planted_sales(days: int = 800, seed: int = 8) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    start = AS_OF - timedelta(days=days - 1)
    n = days * 6
    cents = rng.integers(1, 500_000, n)
    sales = pd.DataFrame(
        {
            "sale_id": np.arange(1, n + 1),
            "sale_date": [start + timedelta(days=i // 6) for i in range(n)],
            "store_id": rng.integers(1, 4, n),
            "product_id": rng.integers(1, 6, n),
            "quantity": rng.integers(1, 5, n),
            "unit_price": "1.00",
            "revenue": [f"{c // 100}.{c % 100:02d}" for c in cents],
            "on_promotion": False,
            "is_holiday": False,
        }
    )
    stores = pd.DataFrame({"store_id": [1, 2, 3], "name": ["North", "South", "East"]})
    products = pd.DataFrame(
        {"product_id": range(1, 6), "name": [f"P{i}" for i in range(1, 6)], "category": "phone"}
    )
    return sales, stores, products


def test_money_is_exact_cents_and_refuses_sub_cent_amounts():
    values = pd.Series(["0.10", "0.20", "1234567.89", "-5.05", "7"])
    assert sk.cents_from_text(values).tolist() == [10, 20, 123456789, -505, 700]
    assert sk.cents_to_text(np.array([10, -505, 700])) == ["0.10", "-5.05", "7.00"]
    with pytest.raises(sk.MoneyFormatError):
        sk.cents_from_text(pd.Series(["1.005"]))
    with pytest.raises(sk.MoneyFormatError):
        sk.cents_from_text(pd.Series(["abc"]))


def test_kpi_tables_reconcile_with_raw_sales_to_the_cent(tmp_path: Path):
    sales, stores, products = planted_sales()
    raw_total = sum(Decimal(v) for v in sales["revenue"])
    out = sales_analysis(sales, stores, products, None, None, AnalyticsSettings(), tmp_path, AS_OF)
    for name in ("sales_by_month.csv", "sales_by_store_month.csv", "sales_by_product_month.csv"):
        written = pd.read_csv(tmp_path / name, dtype={"revenue": str})
        assert sum(Decimal(v) for v in written["revenue"]) == raw_total, name
    assert out.summary["facts_kpi"]["total_revenue_cents"] == int(raw_total * 100)
    assert out.summary["facts_kpi"]["reconciled"] is True


def test_growth_against_the_same_weekdays_last_year_and_movers():
    sales, stores, products = planted_sales(days=800)
    prepared, _ = sk.prepare_sales(sales, AS_OF)
    # Double product 1's revenue in the current period: it must be the top mover up with +100% growth.
    cur = (prepared["sale_date"] > pd.Timestamp(AS_OF - timedelta(days=28))) & (prepared["product_id"] == 1)
    prepared.loc[cur, "cents"] *= 2
    kpis = sk.sales_kpis(prepared, stores, products, AS_OF, 28, 3)
    g = kpis.tables["growth_period_by_product"].set_index("product_id")
    period = prepared[prepared["sale_date"] > pd.Timestamp(AS_OF - timedelta(days=28))]
    last = prepared[
        (prepared["sale_date"] > pd.Timestamp(AS_OF - timedelta(days=28 + 364)))
        & (prepared["sale_date"] <= pd.Timestamp(AS_OF - timedelta(days=364)))
    ]
    for pid in range(1, 6):
        assert g.loc[pid, "revenue_cents"] == period.loc[period["product_id"] == pid, "cents"].sum()
        assert g.loc[pid, "revenue_cents_last_year"] == last.loc[last["product_id"] == pid, "cents"].sum()
    assert kpis.tables["top_movers_up"].iloc[0]["product_id"] == 1
    assert kpis.facts["period_last_year"].startswith(str(AS_OF - timedelta(days=28 + 364 - 1)))


def test_growth_is_not_invented_without_last_year():
    sales, stores, products = planted_sales(days=200)
    prepared, _ = sk.prepare_sales(sales, AS_OF)
    kpis = sk.sales_kpis(prepared, stores, products, AS_OF, 28, 3)
    assert not kpis.facts["last_year_covered"] and np.isnan(kpis.facts["period_growth"])


def test_forecast_against_actual_per_store_daily_and_weekly():
    days = pd.date_range("2024-06-03", periods=14, freq="D")
    sales = pd.DataFrame({"store_id": np.repeat([1, 2], 14), "sale_date": np.tile(days, 2), "quantity": 10})
    stores = pd.DataFrame({"store_id": [1, 2], "name": ["North", "South"]})
    fc = pd.DataFrame(
        {"series_id": np.repeat(["1/ALL", "2/ALL"], 14), "date": np.tile(days.strftime("%Y-%m-%d"), 2)}
    )
    fc["forecast"] = np.where(fc["series_id"] == "1/ALL", 11.0, 9.0)
    fc["lo80"], fc["hi80"], fc["lo95"], fc["hi95"] = fc["forecast"] - 2, fc["forecast"] + 2, 0.0, 99.0
    out = sk.forecast_vs_actual(fc, sales, stores, date(2024, 6, 12)).set_index("store_id")
    assert out.loc["1", "periods"] == 10  # only days that have closed
    assert out.loc["1", "bias"] == pytest.approx(0.1) and out.loc["2", "bias"] == pytest.approx(-0.1)
    assert out.loc["1", "wape"] == pytest.approx(0.1) and out.loc["1", "coverage80"] == 1.0
    weekly = pd.DataFrame(
        {
            "series_id": ["1/ALL", "1/ALL"],
            "date": ["2024-06-03", "2024-06-10"],
            "forecast": [77.0, 70.0],
            "lo80": 0.0,
            "hi80": 1e3,
            "lo95": 0.0,
            "hi95": 1e3,
        }
    )
    w = sk.forecast_vs_actual(weekly, sales, stores, date(2024, 6, 16)).iloc[0]
    assert w["periods"] == 2 and w["actual_units"] == 140 and w["error_units"] == pytest.approx(7.0)
    assert sk.forecast_vs_actual(weekly, sales, stores, date(2024, 6, 5)).empty  # no week closed yet


# -- reports ------------------------------------------------------------------------------------------


class _Sources(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("src", "href") or (key == "rel" and tag == "link"):
                self.refs.append((tag, key, value or ""))


def assert_standalone(html_text: str) -> int:
    """No external reference; every image an embedded PNG that decodes. Returns the image count."""
    parser = _Sources()
    parser.feed(html_text)
    assert parser.refs, "the report has no images"
    for tag, key, value in parser.refs:
        assert tag == "img" and key == "src", (tag, key, value)
        assert value.startswith("data:image/png;base64,"), value[:60]
        assert base64.b64decode(value.split(",", 1)[1], validate=True).startswith(PNG_SIGNATURE)
    assert "<script" not in html_text and "<link" not in html_text and "url(" not in html_text
    return len(parser.refs)


def test_campaign_report_opens_standalone_and_artifact_embeds_charts(tmp_path: Path):
    contacts = planted_calls(3000, first=0.12, decay=0.25)
    customers = make_customers(3000)
    out = campaign_analysis(customers, contacts, None, AnalyticsSettings(), tmp_path, AS_OF)
    html_text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert assert_standalone(html_text) == len(out.images) >= 5
    assert "No call list has been published yet" in html_text
    assert any("no call lists" in w for w in out.warnings)
    stop = pd.read_csv(tmp_path / "stop_calling.csv")
    assert list(stop.columns) == ["customer_id", "name", "phone", "reason"] and len(stop) > 0
    markdown = rp.render_markdown(out.title, out.facts, out.images, "lake/analytics/campaign")
    assert markdown.count("](data:image/png;base64,") == len(out.images)


def test_segmentation_report_says_no_champion(tmp_path: Path):
    customers, contacts, _ = planted_segments(per=100)
    out = segmentation_analysis(
        customers, contacts, None, None, AnalyticsSettings(segment_k_max=5), tmp_path, AS_OF
    )
    html_text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert_standalone(html_text)
    assert "no champion" in html_text and any("no champion" in w for w in out.warnings)
    assert out.summary["k"] == 3


def test_money_columns_are_written_as_exact_text():
    frame = pd.DataFrame({"revenue_cents": [123456789012, -1], "quantity": [1, 2]})
    assert money_as_text(frame).to_dict("list") == {"revenue": ["1234567890.12", "-0.01"], "quantity": [1, 2]}


def test_same_inputs_give_byte_identical_outputs(tmp_path: Path):
    """Seeded and free of timestamps: a rerun reproduces every file (the lake then stores nothing new)."""
    customers, contacts, _ = planted_segments(per=80, seed=6)
    cfg = AnalyticsSettings(segment_k_max=4)
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        out.mkdir()
        runs.append(segmentation_analysis(customers, contacts, None, None, cfg, out, AS_OF).files)
    assert set(runs[0]) == set(runs[1])
    for name in runs[0]:
        assert runs[0][name].read_bytes() == runs[1][name].read_bytes(), name


def test_sales_rows_repeated_across_slices_count_once_and_later_rows_wait(tmp_path: Path):
    sales, stores, products = planted_sales(days=400)
    again = sales.tail(30)  # a rerun slice repeating the last rows
    later = sales.tail(5).assign(sale_id=lambda d: d["sale_id"] + 10**6, sale_date=AS_OF + timedelta(days=2))
    out = sales_analysis(
        pd.concat([sales, again, later]), stores, products, None, None, AnalyticsSettings(), tmp_path, AS_OF
    )
    counts = out.summary["counts"]
    assert counts["duplicates_dropped"] == 30 and counts["after_as_of_dropped"] == 5
    assert out.summary["facts_kpi"]["total_revenue_cents"] == int(
        sum(Decimal(v) for v in sales["revenue"]) * 100
    )
    assert any("duplicate sale rows" in w for w in out.warnings)


def test_campaign_without_known_outcomes_is_refused_in_words(tmp_path: Path):
    contacts = make_contacts([1, 2], y=[None, None])
    with pytest.raises(ValueError, match="No contact with a known outcome"):
        campaign_analysis(make_customers(2), contacts, None, AnalyticsSettings(), tmp_path, AS_OF)


def test_call_list_lift_with_no_contacts_since_the_list_is_zero_not_a_crash():
    """The first morning of a list (the demo's state): no call made yet counts nothing, and says so."""
    call_day = date(2024, 6, 3)
    lists = pd.DataFrame(
        {"list_date": "2024-06-02", "call_date": call_day.isoformat(), "customer_id": [1, 2, 3]}
    )
    history = make_contacts(np.array([1, 2, 3]), contact_date=[call_day - timedelta(days=40)] * 3, y="no")
    history["contact_id"] = np.arange(1, 4)
    table = cp.call_list_lift(lists, history, window_days=14)
    (row,) = table.to_dict("records")
    assert row["list_date"] == "2024-06-02"
    numbers = [v for v in row.values() if isinstance(v, int | float) and not isinstance(v, bool)]
    assert any(v == 3 for v in numbers) and all(np.isnan(v) or v in (0, 3) for v in numbers)
