"""Seeded weekly store × department sales resembling a retail chain (for tests and benchmarks)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd


def retail_holiday_weeks(fridays: pd.DatetimeIndex) -> np.ndarray:
    """Holiday flags of weeks ending on the given Fridays: Super Bowl, Labor Day, Thanksgiving, Christmas."""
    flags = np.zeros(len(fridays), bool)
    for i, fri in enumerate(fridays):
        week = [(fri - pd.Timedelta(days=k)).date() for k in range(7)]  # Sat..Fri
        for d in week:
            feb_sundays = [x for x in _days(d.year, 2) if x.weekday() == 6]
            sep_mondays = [x for x in _days(d.year, 9) if x.weekday() == 0]
            nov_thursdays = [x for x in _days(d.year, 11) if x.weekday() == 3]
            if d in (
                feb_sundays[1],
                sep_mondays[0],
                nov_thursdays[3] + timedelta(days=1),
                date(d.year, 12, 25),
            ):
                flags[i] = True
    return flags


def _days(year: int, month: int) -> list[date]:
    d, out = date(year, month, 1), []
    while d.month == month:
        out.append(d)
        d += timedelta(days=1)
    return out


def make_weekly_retail(
    n_series: int = 3000, n_weeks: int = 140, seed: int = 0, start: date = date(2010, 2, 5)
) -> pd.DataFrame:
    """Long frame ``Store, Dept, Date, Weekly_Sales, IsHoliday`` (column names as in Walmart's data).

    Each series = level × trend × yearly pattern (department-specific, December peak) × holiday lift
    + noise. About 3% of the series are sparse (mostly zero) and 1% have returns (negative weeks).
    """
    rng = np.random.default_rng(seed)
    n_depts = 70
    dates = pd.date_range(pd.Timestamp(start), periods=n_weeks, freq="7D")
    holiday = retail_holiday_weeks(dates)
    t = np.arange(n_weeks)
    doy = dates.day_of_year.to_numpy()
    dept_amp = rng.gamma(2.0, 0.08, (n_depts, 3))
    dept_phase = rng.uniform(0, 2 * np.pi, (n_depts, 3))
    dept_xmas = rng.gamma(2.0, 0.15, n_depts)
    dept_hol = rng.gamma(2.0, 0.05, n_depts)
    thanksgiving = np.array([d.month == 11 and d.day >= 23 for d in dates])
    xmas = np.exp(-(((doy - 355 + 183) % 366 - 183) ** 2) / (2 * 8.0**2))
    frames = []
    for i in range(n_series):
        s, d = divmod(i, n_depts)
        level = rng.lognormal(9.0, 1.0)
        trend = rng.normal(0.0, 0.002)
        season = sum(
            dept_amp[d, k] * np.sin(2 * np.pi * (k + 1) * doy / 365.25 + dept_phase[d, k]) for k in range(3)
        )
        mult = (
            (1 + trend * t)
            * (1 + season + dept_xmas[d] * xmas)
            * (1 + dept_hol[d] * holiday + 0.3 * thanksgiving)
        )
        ar = np.zeros(n_weeks)
        eps = rng.normal(0, 0.06, n_weeks)
        for k in range(1, n_weeks):
            ar[k] = 0.5 * ar[k - 1] + eps[k]
        y = level * mult * (1 + ar)
        u = rng.random()
        if u < 0.03:
            y = np.where(rng.random(n_weeks) < 0.85, 0.0, rng.gamma(1.5, 20.0, n_weeks))
        elif u < 0.04:
            y = y - level * rng.uniform(0.0, 1.5) * (rng.random(n_weeks) < 0.2)
        frames.append(
            pd.DataFrame(
                {
                    "Store": s + 1,
                    "Dept": d + 1,
                    "Date": dates,
                    "Weekly_Sales": np.round(y, 2),
                    "IsHoliday": holiday,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
