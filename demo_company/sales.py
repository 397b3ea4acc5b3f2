"""Seeded simulator of the demo company's stores, products and daily sales.

Demand per store × product × day = base rate × trend × weekday profile × yearly season × holiday uplift ×
promotion uplift × launch ramp × (optional shift), drawn as a gamma-Poisson (negative binomial) count.
Some series are intermittent (a low base rate, mostly zero days). Products launched after the start have no
sales before ``launched_on``; discontinued products have none on or after ``discontinued_on``.

Rows with quantity 0 are **omitted**: a missing store × product × day between a product's launch and its
discontinuation means zero units sold (forecasting fills those days with 0).

Every day's rows come from an RNG derived from ``(seed, day)`` and from parameters derived from ``seed``
alone, so a day is identical whether generated in bulk or on its own; ``sale_id`` increases with date and
is numbered from the ``first_sale_id`` the caller passes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

SALES_COLUMNS: tuple[str, ...] = (
    "sale_id",
    "sale_date",
    "store_id",
    "product_id",
    "quantity",
    "unit_price",
    "revenue",
    "on_promotion",
    "is_holiday",
)
STORE_COLUMNS: tuple[str, ...] = ("store_id", "name", "region", "opened_on")
PRODUCT_COLUMNS: tuple[str, ...] = (
    "product_id",
    "name",
    "category",
    "unit_price",
    "launched_on",
    "discontinued_on",
)

_REGIONS = ("North", "South", "East", "West", "Central")
_CITIES = (
    "Avonford", "Brookfield", "Carrow", "Dunmore", "Elmstead", "Fairhaven", "Glenrock", "Harbury",
    "Ivybridge", "Kingsley", "Lakeside", "Millbrook", "Northam", "Oakridge", "Redcliff", "Stonebury",
)  # fmt: skip
# category -> (price low, price high, yearly amplitude, weekend lift)
_CATEGORIES: dict[str, tuple[float, float, float, float]] = {
    "smartphone": (199.0, 1199.0, 0.35, 0.45),
    "feature phone": (19.0, 89.0, 0.15, 0.25),
    "tablet": (149.0, 899.0, 0.30, 0.40),
    "wearable": (49.0, 399.0, 0.40, 0.35),
    "accessory": (5.0, 59.0, 0.20, 0.30),
    "sim plan": (10.0, 40.0, 0.10, 0.15),
}
_BRANDS = ("Nokta", "Veloce", "Orbis", "Kairo", "Lumen", "Astra", "Pixelon", "Tessel")
# Monday..Sunday base profile (multiplied by each category's weekend lift on Sat/Sun).
_WEEKDAY = np.array([0.85, 0.90, 0.95, 1.00, 1.15, 1.0, 0.8])


class SalesShift(BaseModel):
    """A distribution shift applied from ``start`` on (for drift tests)."""

    start: date
    demand_factor: float = Field(1.0, gt=0, description="multiplies every series' demand level")
    promo_rate_factor: float = Field(1.0, ge=0, description="multiplies the share of promoted product-weeks")


class SalesSimConfig(BaseModel):
    """Size and behaviour of the simulated sales history (defaults: a demo of ~0.9 M rows)."""

    n_stores: int = Field(20, ge=1)
    n_products: int = Field(60, ge=1)
    start: date = date(2024, 1, 1)
    n_days: int = Field(730, ge=1)
    seed: int = 7
    promo_rate: float = Field(0.08, ge=0, le=1, description="share of product-weeks on promotion")
    promo_uplift: float = Field(0.8, ge=0, description="relative demand uplift while on promotion")
    promo_discount: float = Field(0.15, ge=0, lt=1, description="price cut while on promotion")
    holiday_uplift: float = Field(0.6, ge=0, description="relative demand uplift on holidays")
    intermittent_share: float = Field(0.2, ge=0, le=1, description="share of products with sparse demand")
    launch_share: float = Field(0.15, ge=0, le=1, description="share of products launched after start")
    discontinue_share: float = Field(0.1, ge=0, le=1, description="share of products discontinued")
    trend_sd: float = Field(0.2, ge=0, description="sd of yearly log-trend per product")
    noise_shape: float = Field(6.0, gt=0, description="gamma shape of the demand noise (higher = less)")
    launch_ramp_days: int = Field(28, ge=1)

    @property
    def end(self) -> date:
        """First day after the simulated history."""
        return self.start + timedelta(days=self.n_days)


# ----------------------------------------------------------------------------------------------- calendar
def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (h + m - 7 * ((a + 11 * h + 22 * m) // 451) + 114) // 31
    p = (h + m - 7 * ((a + 11 * h + 22 * m) // 451) + 114) % 31
    return date(year, n, p + 1)


@lru_cache(maxsize=256)
def holidays_in_year(year: int) -> frozenset[date]:
    """The fixed demo holiday calendar: fixed-date days, Easter, Black Friday and Cyber Monday."""
    fixed = [(1, 1), (2, 14), (5, 1), (12, 24), (12, 25), (12, 26), (12, 31)]
    days = {date(year, m, d) for m, d in fixed}
    easter = _easter(year)
    days |= {easter - timedelta(days=2), easter + timedelta(days=1)}
    nov1 = date(year, 11, 1)
    fourth_thursday = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
    days |= {fourth_thursday + timedelta(days=1), fourth_thursday + timedelta(days=4)}
    return frozenset(days)


def is_holiday(day: date) -> bool:
    """Whether ``day`` is in the demo holiday calendar."""
    return day in holidays_in_year(day.year)


def holiday_calendar(start: date, end: date) -> pd.DataFrame:
    """Holiday flags for every day in ``[start, end)`` (columns ``date``, ``is_holiday``)."""
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    return pd.DataFrame({"date": days, "is_holiday": [is_holiday(d) for d in days]})


# ----------------------------------------------------------------------------------------- master data
def _param_rng(cfg: SalesSimConfig, stream: int) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, 0, stream])


def make_stores(cfg: SalesSimConfig) -> pd.DataFrame:
    """The ``stores`` table (all stores opened before the simulated history starts)."""
    rng = _param_rng(cfg, 1)
    ids = np.arange(1, cfg.n_stores + 1)
    cities = [_CITIES[i % len(_CITIES)] for i in range(cfg.n_stores)]
    opened = [cfg.start - timedelta(days=int(x)) for x in rng.integers(60, 3000, cfg.n_stores)]
    return pd.DataFrame(
        {
            "store_id": ids,
            "name": [f"Store {i:03d} {c}" for i, c in zip(ids, cities, strict=True)],
            "region": [_REGIONS[int(x)] for x in rng.integers(0, len(_REGIONS), cfg.n_stores)],
            "opened_on": opened,
        },
        columns=list(STORE_COLUMNS),
    )


def make_products(cfg: SalesSimConfig) -> pd.DataFrame:
    """The ``products`` table with list prices, launch and discontinuation dates."""
    rng = _param_rng(cfg, 2)
    n = cfg.n_products
    cats = list(_CATEGORIES)
    cat_idx = rng.integers(0, len(cats), n)
    prices = np.array(
        [round(float(rng.uniform(*_CATEGORIES[cats[c]][:2])), 0) - 0.01 for c in cat_idx], dtype=float
    )
    span = max(cfg.n_days, 2)
    launched = rng.random(n) < cfg.launch_share
    launch_offset = np.where(
        launched,
        rng.integers(1, max(2, int(span * 0.8)), n),
        -rng.integers(30, 1500, n),
    )
    discontinued = (rng.random(n) < cfg.discontinue_share) & ~launched
    disc_offset = rng.integers(max(1, span // 3), span + 1, n)
    launched_on = [cfg.start + timedelta(days=int(o)) for o in launch_offset]
    discontinued_on = [
        cfg.start + timedelta(days=int(o)) if d else None
        for o, d in zip(disc_offset, discontinued, strict=True)
    ]
    names = [
        f"{_BRANDS[int(b)]} {cats[c].title()} {int(v)}"
        for b, c, v in zip(rng.integers(0, len(_BRANDS), n), cat_idx, rng.integers(1, 99, n), strict=True)
    ]
    return pd.DataFrame(
        {
            "product_id": np.arange(1, n + 1),
            "name": [f"{nm} #{i + 1}" for i, nm in enumerate(names)],
            "category": [cats[c] for c in cat_idx],
            "unit_price": prices,
            "launched_on": launched_on,
            "discontinued_on": pd.Series(discontinued_on, dtype=object),
        },
        columns=list(PRODUCT_COLUMNS),
    )


class _Params:
    """Per-series demand parameters derived from the config's seed only."""

    def __init__(self, cfg: SalesSimConfig) -> None:
        rng = _param_rng(cfg, 3)
        products = make_products(cfg)
        self.products = products
        cats = list(_CATEGORIES)
        cat_idx = np.array([cats.index(c) for c in products["category"]])
        store_size = rng.lognormal(0.0, 0.35, cfg.n_stores)
        popularity = rng.lognormal(1.0, 0.7, cfg.n_products)
        intermittent = rng.random(cfg.n_products) < cfg.intermittent_share
        sparse_rate = rng.uniform(0.05, 0.4, cfg.n_products)
        base = np.outer(store_size, np.where(intermittent, 1.0, popularity))
        base = np.where(intermittent[None, :], np.outer(store_size, sparse_rate), base)
        self.base = base.ravel()  # store-major: index = s * n_products + p
        self.trend = np.tile(rng.normal(0.05, cfg.trend_sd, cfg.n_products), cfg.n_stores)
        self.year_amp = np.tile(np.array([_CATEGORIES[cats[c]][2] for c in cat_idx]), cfg.n_stores)
        self.weekend = np.tile(np.array([_CATEGORIES[cats[c]][3] for c in cat_idx]), cfg.n_stores)
        self.list_price = products["unit_price"].to_numpy(dtype=float)
        self.launch_ord = np.array([d.toordinal() for d in products["launched_on"]])
        self.disc_ord = np.array(
            [d.toordinal() if d is not None else 10**9 for d in products["discontinued_on"]]
        )
        self.store_ids = np.repeat(np.arange(1, cfg.n_stores + 1), cfg.n_products)
        self.product_ids = np.tile(np.arange(1, cfg.n_products + 1), cfg.n_stores)


def _promoted(cfg: SalesSimConfig, day: date, shift: SalesShift | None) -> np.ndarray:
    """Products on promotion on ``day`` (promotions run for whole Monday-to-Sunday weeks)."""
    week = (day.toordinal() - 1) // 7  # ordinal 1 (0001-01-01) is a Monday
    draws = np.random.default_rng([cfg.seed, 1, week]).random(cfg.n_products)
    rate = cfg.promo_rate
    if shift is not None and day >= shift.start:
        rate = min(1.0, rate * shift.promo_rate_factor)
    return draws < rate


def _day_frame(cfg: SalesSimConfig, prm: _Params, day: date, shift: SalesShift | None) -> pd.DataFrame:
    """All non-zero sales rows of one day (without ``sale_id``)."""
    ordinal = day.toordinal()
    years = (ordinal - cfg.start.toordinal()) / 365.25
    holiday = is_holiday(day)
    promo_p = _promoted(cfg, day, shift)
    promo = np.tile(promo_p, cfg.n_stores)
    dow = day.weekday()
    weekday = _WEEKDAY[dow] * (1.0 + prm.weekend if dow >= 5 else np.ones_like(prm.weekend))
    doy = day.timetuple().tm_yday
    season = 1.0 + prm.year_amp * np.cos(2 * np.pi * (doy - 350) / 365.25)
    age = ordinal - np.tile(prm.launch_ord, cfg.n_stores)
    ramp = np.clip((age + 1) / cfg.launch_ramp_days, 0.0, 1.0)
    alive = (age >= 0) & (ordinal < np.tile(prm.disc_ord, cfg.n_stores))
    mu = prm.base * np.exp(prm.trend * years) * weekday * season * ramp
    mu = mu * (1.0 + cfg.promo_uplift * promo) * (1.0 + cfg.holiday_uplift * holiday)
    if shift is not None and day >= shift.start:
        mu = mu * shift.demand_factor
    rng = np.random.default_rng([cfg.seed, 2, ordinal])
    noise = rng.gamma(cfg.noise_shape, 1.0 / cfg.noise_shape, mu.size)
    qty = rng.poisson(mu * noise) * alive
    keep = np.flatnonzero(qty > 0)
    price = np.tile(prm.list_price, cfg.n_stores)[keep]
    price = np.round(np.where(promo[keep], price * (1.0 - cfg.promo_discount), price), 2)
    quantity = qty[keep].astype(np.int64)
    return pd.DataFrame(
        {
            "sale_date": np.full(keep.size, day, dtype=object),
            "store_id": prm.store_ids[keep],
            "product_id": prm.product_ids[keep],
            "quantity": quantity,
            "unit_price": price,
            "revenue": np.round(price * quantity, 2),
            "on_promotion": promo[keep],
            "is_holiday": np.full(keep.size, holiday),
        }
    )


def iter_sales(
    cfg: SalesSimConfig,
    start: date | None = None,
    end: date | None = None,
    first_sale_id: int = 1,
    shift: SalesShift | None = None,
    chunk_days: int = 30,
) -> Iterator[pd.DataFrame]:
    """Yield the sales rows of ``[start, end)`` (default: the config's history) in chunks of days.

    Rows are ordered by (sale_date, store_id, product_id); ``sale_id`` runs from ``first_sale_id`` without
    gaps. Columns and order match ``callcast.schema.sales``; ``sale_date`` holds ``datetime.date`` values,
    prices and revenue are floats rounded to cents.
    """
    start = cfg.start if start is None else start
    end = cfg.end if end is None else end
    if chunk_days < 1:
        raise ValueError("chunk_days must be at least 1")
    prm = _Params(cfg)
    next_id = first_sale_id
    day = start
    while day < end:
        stop = min(end, day + timedelta(days=chunk_days))
        frames = [_day_frame(cfg, prm, day + timedelta(days=i), shift) for i in range((stop - day).days)]
        chunk = pd.concat(frames, ignore_index=True)
        chunk.insert(0, "sale_id", np.arange(next_id, next_id + len(chunk), dtype=np.int64))
        next_id += len(chunk)
        yield chunk[list(SALES_COLUMNS)]
        day = stop


def sales_for_day(
    cfg: SalesSimConfig, day: date, first_sale_id: int, shift: SalesShift | None = None
) -> pd.DataFrame:
    """The sales rows of one day, identical to that day's rows from :func:`iter_sales`."""
    return next(iter_sales(cfg, day, day + timedelta(days=1), first_sale_id, shift, chunk_days=1))


def expected_rows(cfg: SalesSimConfig) -> int:
    """Upper bound of the row count: store × product × days alive (zero days are omitted)."""
    products = make_products(cfg)
    end = cfg.end
    total = 0
    for launched, disc in zip(products["launched_on"], products["discontinued_on"], strict=True):
        lo = max(cfg.start, launched)
        hi = min(end, disc) if disc is not None else end
        total += max(0, (hi - lo).days)
    return total * cfg.n_stores


# ------------------------------------------------------------------------------ weekly retail panel
class RetailPanelConfig(BaseModel):
    """A store × department weekly panel like a retail chain's (Walmart-style columns).

    Stores differ in size; departments share a yearly pattern (each store scales it a little differently);
    moving holidays lift their own weeks (Super Bowl, Easter, Thanksgiving week, the two weeks before
    Christmas); some departments are intermittent, some series have returns (negative weeks), some
    departments open late or close. Weeks are stamped on their last day (a Friday).
    """

    n_stores: int = Field(45, ge=1)
    n_depts: int = Field(75, ge=1)
    n_weeks: int = Field(143, ge=1)
    first_week_end: date = date(2021, 2, 5)
    seed: int = 11
    presence: float = Field(0.9, ge=0, le=1, description="share of store × department pairs that exist")
    intermittent_depts: float = Field(0.06, ge=0, le=1, description="share of sparse departments")
    returns_share: float = Field(0.06, ge=0, le=1, description="share of series with occasional returns")
    launch_share: float = Field(0.04, ge=0, le=1, description="share of series opened after the start")
    closure_share: float = Field(0.02, ge=0, le=1, description="share of series closed before the end")
    noise_sd: float = Field(0.10, ge=0, description="typical sd of the multiplicative weekly noise")


def retail_holiday_flags(week_ends: pd.DatetimeIndex) -> np.ndarray:
    """IsHoliday per week (ending Friday): weeks holding Super Bowl, Labor Day, Thanksgiving or Christmas."""
    flags = np.zeros(len(week_ends), bool)
    for i, end in enumerate(week_ends):
        days = {(end - pd.Timedelta(days=k)).date() for k in range(7)}
        y = end.year
        events = set()
        for year in (y - 1, y):
            feb1 = date(year, 2, 1)
            events.add(feb1 + timedelta(days=(6 - feb1.weekday()) % 7))  # first Sunday of February
            sep1 = date(year, 9, 1)
            events.add(sep1 + timedelta(days=(0 - sep1.weekday()) % 7))  # Labor Day
            nov1 = date(year, 11, 1)
            events.add(nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21))  # Thanksgiving
            events.add(date(year, 12, 25))
        flags[i] = bool(days & events)
    return flags


def make_retail_panel(cfg: RetailPanelConfig | None = None) -> pd.DataFrame:
    """Long frame ``Store, Dept, Date, Weekly_Sales, IsHoliday``, one row per existing series and week."""
    cfg = cfg or RetailPanelConfig()
    rng = np.random.default_rng([cfg.seed, 7])
    S, D, T = cfg.n_stores, cfg.n_depts, cfg.n_weeks
    ends = pd.date_range(pd.Timestamp(cfg.first_week_end), periods=T, freq="7D")
    mid = ends - pd.Timedelta(days=3)
    doy = mid.day_of_year.to_numpy(float)

    def week_of(event_days: list[date]) -> np.ndarray:
        hit = np.zeros(T, bool)
        for d in event_days:
            k = np.searchsorted(ends.values, np.datetime64(d))
            if 0 <= k < T and (ends[k].date() - d).days < 7:
                hit[k] = True
        return hit

    years = range(ends[0].year - 1, ends[-1].year + 2)
    nov_thu = [date(y, 11, 1) + timedelta(days=(3 - date(y, 11, 1).weekday()) % 7 + 21) for y in years]
    events = {
        "super_bowl": week_of(
            [date(y, 2, 1) + timedelta(days=(6 - date(y, 2, 1).weekday()) % 7) for y in years]
        ),
        "easter": week_of([_easter(y) for y in years]),
        "thanksgiving": week_of(nov_thu),
        "pre_christmas": week_of([date(y, 12, 18) for y in years]),
        "christmas": week_of([date(y, 12, 24) for y in years]),
        "after_christmas": week_of([date(y, 12, 31) for y in years]),
    }
    # Department patterns: yearly Fourier shape, holiday sensitivity, noise level, sparse departments.
    k = np.arange(1, 5)[:, None]
    amp = rng.gamma(1.5, 0.06, (D, 4)) / k.T
    phase = rng.uniform(0, 2 * np.pi, (D, 4))
    shape = np.einsum(
        "dk,dkt->dt", amp, np.sin(2 * np.pi * k[None] * doy[None, None] / 365.25 + phase[..., None])
    )
    lift = {name: rng.gamma(1.2, g, D) for name, g in (("super_bowl", 0.05), ("easter", 0.12),
            ("thanksgiving", 0.25), ("pre_christmas", 0.25), ("christmas", 0.35), ("after_christmas", 0.1))}  # fmt: skip
    lift["after_christmas"] = -np.minimum(rng.gamma(1.2, 0.08, D), 0.5)
    dept_level = rng.lognormal(8.5, 1.2, D)
    dept_noise = cfg.noise_sd * rng.lognormal(0, 0.4, D)
    sparse = rng.random(D) < cfg.intermittent_depts
    store_size = rng.lognormal(0, 0.5, S)
    store_trend = rng.normal(0.02, 0.06, S)  # yearly log growth
    rows = []
    t_years = (np.arange(T) - T / 2) / 52.0
    hol_flags = retail_holiday_flags(ends)
    for s in range(S):
        exists = rng.random(D) < cfg.presence
        for d in np.flatnonzero(exists):
            level = dept_level[d] * store_size[s] * rng.lognormal(0, 0.4)
            season = 1 + shape[d] * rng.lognormal(0, 0.25)
            holiday = 1 + sum(lift[e][d] * rng.lognormal(0, 0.2) * events[e] for e in events)
            walk = np.cumsum(rng.normal(0, 0.01, T))
            ar = np.zeros(T)
            eps = rng.normal(0, dept_noise[d], T)
            for t in range(1, T):
                ar[t] = 0.4 * ar[t - 1] + eps[t]
            y = (
                level
                * np.exp(store_trend[s] * t_years + walk + ar)
                * np.clip(season, 0.05, None)
                * np.clip(holiday, 0.05, None)
            )
            if sparse[d]:
                p = rng.uniform(0.1, 0.45)
                y = np.where(rng.random(T) < p, rng.gamma(2.0, 0.5, T) * level * 0.05, 0.0)
            if rng.random() < cfg.returns_share:
                hits = rng.random(T) < rng.uniform(0.02, 0.08)
                y = y - hits * level * rng.uniform(0.3, 1.5, T) * (0.3 if sparse[d] else 1.0)
            start, stop = 0, T
            u = rng.random()
            if u < cfg.launch_share:
                start = int(rng.integers(10, T - 20))
            elif u < cfg.launch_share + cfg.closure_share:
                stop = int(rng.integers(T // 2, T - 5))
            idx = np.arange(start, stop)
            if sparse[d]:
                idx = idx[y[idx] != 0]  # weeks without sales have no row
            rows.append(pd.DataFrame({"Store": s + 1, "Dept": d + 1, "Date": ends[idx],
                                      "Weekly_Sales": np.round(y[idx], 2), "IsHoliday": hol_flags[idx]}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)
