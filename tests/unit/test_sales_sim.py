"""The sales simulator: schema, determinism, demand structure, launches, shifts, size."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from callcast import schema
from demo_company.sales import (
    SalesShift,
    SalesSimConfig,
    expected_rows,
    holiday_calendar,
    is_holiday,
    iter_sales,
    make_products,
    make_stores,
    sales_for_day,
)

CFG = SalesSimConfig(
    n_stores=3, n_products=25, start=date(2024, 1, 1), n_days=400, seed=11, discontinue_share=0.3
)


@pytest.fixture(scope="module")
def sales() -> pd.DataFrame:
    return pd.concat(iter_sales(CFG), ignore_index=True)


def test_columns_match_the_database_schema(sales: pd.DataFrame) -> None:
    assert list(sales.columns) == [c.name for c in schema.sales.columns]
    assert list(make_stores(CFG).columns) == [c.name for c in schema.stores.columns]
    assert list(make_products(CFG).columns) == [c.name for c in schema.products.columns]


def test_rows_are_positive_ordered_and_priced(sales: pd.DataFrame) -> None:
    assert (sales["quantity"] > 0).all()  # zero days are omitted
    assert np.array_equal(sales["sale_id"], np.arange(1, len(sales) + 1))
    assert sales["sale_date"].is_monotonic_increasing
    assert np.allclose(sales["revenue"], (sales["quantity"] * sales["unit_price"]).round(2))
    prices = make_products(CFG).set_index("product_id")["unit_price"]
    listed = sales["product_id"].map(prices)
    promo = sales["on_promotion"]
    assert np.allclose(sales.loc[~promo, "unit_price"], listed[~promo])
    assert np.allclose(sales.loc[promo, "unit_price"], (listed[promo] * (1 - CFG.promo_discount)).round(2))


def test_a_day_is_identical_in_bulk_and_alone(sales: pd.DataFrame) -> None:
    for day in (date(2024, 3, 5), date(2024, 11, 29), date(2025, 1, 1)):
        bulk = sales[sales["sale_date"] == day].reset_index(drop=True)
        alone = sales_for_day(CFG, day, first_sale_id=int(bulk["sale_id"].iloc[0]))
        pd.testing.assert_frame_equal(alone, bulk)
    chunked = pd.concat(iter_sales(CFG, chunk_days=7), ignore_index=True)
    pd.testing.assert_frame_equal(chunked, sales)


def test_chunks_cover_at_most_chunk_days() -> None:
    chunks = list(iter_sales(CFG, CFG.start, CFG.start + timedelta(days=50), chunk_days=20))
    assert [c["sale_date"].nunique() for c in chunks] == [20, 20, 10]


def test_launches_and_discontinuations_bound_sales(sales: pd.DataFrame) -> None:
    products = make_products(CFG).set_index("product_id")
    first = sales.groupby("product_id")["sale_date"].min()
    last = sales.groupby("product_id")["sale_date"].max()
    launched_late = products[products["launched_on"] > CFG.start]
    discontinued = products[products["discontinued_on"].notna()]
    assert len(launched_late) and len(discontinued)
    for pid, row in launched_late.iterrows():
        if pid in first:
            assert first[pid] >= row["launched_on"]
    for pid, row in discontinued.iterrows():
        assert last[pid] < row["discontinued_on"]


def test_holidays_promotions_and_weekends_lift_demand(sales: pd.DataFrame) -> None:
    assert is_holiday(date(2024, 12, 25)) and is_holiday(date(2024, 11, 29))  # Christmas, Black Friday
    assert not is_holiday(date(2024, 7, 10))
    cal = holiday_calendar(CFG.start, CFG.end)
    flagged = set(sales.loc[sales["is_holiday"], "sale_date"])
    assert flagged == set(cal.loc[cal["is_holiday"], "date"]) & set(sales["sale_date"])
    daily = sales.groupby(["sale_date", "store_id", "product_id"])["quantity"].sum().reset_index()
    daily = daily.merge(sales[["sale_date", "product_id", "on_promotion", "is_holiday"]].drop_duplicates(
        ["sale_date", "product_id"]), on=["sale_date", "product_id"])  # fmt: skip
    assert (
        daily[daily["on_promotion"]]["quantity"].mean()
        > 1.3 * daily[~daily["on_promotion"]]["quantity"].mean()
    )
    assert (
        daily[daily["is_holiday"]]["quantity"].mean() > 1.2 * daily[~daily["is_holiday"]]["quantity"].mean()
    )
    weekday = pd.to_datetime(daily["sale_date"]).dt.day_of_week
    assert daily[weekday == 5]["quantity"].mean() > daily[weekday == 1]["quantity"].mean()


def test_some_series_are_intermittent(sales: pd.DataFrame) -> None:
    days = sales.groupby(["store_id", "product_id"])["sale_date"].nunique()
    assert (days < 0.5 * CFG.n_days).sum() >= 1
    assert (days > 0.9 * CFG.n_days).sum() >= 1


def test_shift_changes_demand_only_from_its_start() -> None:
    day0 = date(2024, 6, 1)
    shift = SalesShift(start=day0, demand_factor=3.0, promo_rate_factor=2.0)
    base = pd.concat(iter_sales(CFG, date(2024, 5, 1), date(2024, 7, 1)), ignore_index=True)
    shifted = pd.concat(iter_sales(CFG, date(2024, 5, 1), date(2024, 7, 1), shift=shift), ignore_index=True)
    before = base["sale_date"] < day0
    pd.testing.assert_frame_equal(shifted[shifted["sale_date"] < day0], base[before])
    after_base = base[~before]["quantity"].sum()
    after_shift = shifted[shifted["sale_date"] >= day0]["quantity"].sum()
    assert after_shift > 2.5 * after_base
    promo_share = shifted[shifted["sale_date"] >= day0]["on_promotion"].mean()
    assert promo_share > base[~before]["on_promotion"].mean()


def test_large_configuration_reaches_ten_million_rows() -> None:
    big = SalesSimConfig(n_stores=50, n_products=300, n_days=1100)
    assert expected_rows(big) >= 10_000_000
    week = pd.concat(iter_sales(big, big.start, big.start + timedelta(days=7)), ignore_index=True)
    assert len(week) / 7 * big.n_days >= 10_000_000


# ------------------------------------------------------------------------------ weekly retail panel
@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    from demo_company.sales import RetailPanelConfig, make_retail_panel

    return make_retail_panel(RetailPanelConfig(n_stores=6, n_depts=40, seed=3))


def test_retail_panel_shape_and_columns(panel: pd.DataFrame) -> None:
    from demo_company.sales import RetailPanelConfig, make_retail_panel

    assert list(panel.columns) == ["Store", "Dept", "Date", "Weekly_Sales", "IsHoliday"]
    pairs = panel.groupby(["Store", "Dept"]).ngroups
    assert 0.8 * 240 <= pairs <= 240  # most store × department pairs exist
    assert panel["Date"].nunique() == 143 and (panel["Date"].dt.dayofweek == 4).all()  # weeks end on Friday
    again = make_retail_panel(RetailPanelConfig(n_stores=6, n_depts=40, seed=3))
    pd.testing.assert_frame_equal(panel, again)  # seeded
    assert make_retail_panel().groupby(["Store", "Dept"]).ngroups > 2900  # the default: ~3,000 series


def test_retail_panel_has_returns_sparse_departments_launches_and_closures(panel: pd.DataFrame) -> None:
    per = panel.groupby(["Store", "Dept"])
    assert (per["Weekly_Sales"].min() < 0).sum() >= 3  # returns make some weeks negative
    weeks = per["Date"].nunique()
    first, last = per["Date"].min(), per["Date"].max()
    assert (first > panel["Date"].min()).sum() >= 1  # launched late
    assert ((last < panel["Date"].max()) & (weeks > 40)).sum() >= 1  # closed early
    assert (weeks < 0.6 * 143).sum() >= 5  # intermittent departments: many weeks without a row


def test_retail_panel_holidays_move_and_lift_sales(panel: pd.DataFrame) -> None:
    from demo_company.sales import retail_holiday_flags

    flagged = panel.loc[panel["IsHoliday"], "Date"].drop_duplicates().sort_values()
    # Super Bowl, Labor Day, Thanksgiving, Christmas weeks (ending Friday)
    assert [d.strftime("%m-%d") for d in flagged][:4] == ["02-12", "09-10", "11-26", "12-31"]
    assert retail_holiday_flags(pd.DatetimeIndex(["2022-11-25", "2023-11-24", "2023-11-17"])).tolist() == [
        True, True, False]  # Thanksgiving week moves with the 4th Thursday  # fmt: skip
    total = panel.groupby("Date")["Weekly_Sales"].sum()
    week_of = {pd.Timestamp("2022-04-22"), pd.Timestamp("2023-04-14")}  # weeks holding Easter Sunday
    easter = total[total.index.isin(week_of)].mean()
    around = total[total.index.isin({d + pd.Timedelta(weeks=k) for d in week_of for k in (-2, 2)})].mean()
    assert easter > around  # Easter lifts its own (moving) week
    xmas = total[total.index == pd.Timestamp("2022-12-23")].iloc[0]
    assert xmas > 1.15 * total.median()
    # shared department seasonality scaled per store: correlation across stores of one department
    top = panel[panel["Dept"] == panel.groupby("Dept")["Weekly_Sales"].sum().idxmax()]
    wide = top.pivot_table(index="Date", columns="Store", values="Weekly_Sales")
    corr = wide.corr().to_numpy()
    assert np.nanmedian(corr[np.triu_indices_from(corr, 1)]) > 0.5
