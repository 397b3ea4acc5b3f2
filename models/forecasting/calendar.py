"""Holiday calendar: moving and fixed retail events, per period (day or week), for history and future.

A user's holiday column says *which* periods were holidays in the past, not which will be. This module
matches those flagged periods to known calendar events (Easter, Thanksgiving, Christmas ...); the future
flags are then the periods that contain a matched event, wherever the event falls that year
(``models.forecasting.data.calendar``). Flags that no known event explains repeat from one season earlier.

The seasonal models use the same events to line up years: the week of Easter this year is compared with
the week of Easter last year, not with the week 52 weeks earlier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd


def easter(year: int) -> date:
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


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th (1-based; -1 = last) ``weekday`` (Mon=0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


# Event name -> day of the event in a given year. Moving events first; fixed-date ones move across weeks.
EVENTS: dict[str, Callable[[int], date]] = {
    "easter": easter,
    "good_friday": lambda y: easter(y) - timedelta(days=2),
    "easter_monday": lambda y: easter(y) + timedelta(days=1),
    "super_bowl": lambda y: nth_weekday(y, 2, 6, 1),
    "super_bowl_late": lambda y: nth_weekday(y, 2, 6, 2),
    "mothers_day": lambda y: nth_weekday(y, 5, 6, 2),
    "memorial_day": lambda y: nth_weekday(y, 5, 0, -1),
    "labor_day": lambda y: nth_weekday(y, 9, 0, 1),
    "thanksgiving": lambda y: nth_weekday(y, 11, 3, 4),
    "black_friday": lambda y: nth_weekday(y, 11, 3, 4) + timedelta(days=1),
    "cyber_monday": lambda y: nth_weekday(y, 11, 3, 4) + timedelta(days=4),
    "new_year": lambda y: date(y, 1, 1),
    "valentines": lambda y: date(y, 2, 14),
    "may_day": lambda y: date(y, 5, 1),
    "july_4": lambda y: date(y, 7, 4),
    "halloween": lambda y: date(y, 10, 31),
    "pre_christmas": lambda y: date(y, 12, 18),
    "christmas_eve": lambda y: date(y, 12, 24),
    "christmas": lambda y: date(y, 12, 25),
    "boxing_day": lambda y: date(y, 12, 26),
    "new_years_eve": lambda y: date(y, 12, 31),
}
# Events the seasonal models always line up across years on weekly data (big retail weeks that move).
ALIGN_EVENTS: tuple[str, ...] = ("easter", "thanksgiving", "pre_christmas", "christmas")


@lru_cache(maxsize=4096)
def _event_day(name: str, year: int) -> date:
    return EVENTS[name](year)


def period_events(
    starts: Sequence[pd.Timestamp] | pd.DatetimeIndex, step_days: int, names: Iterable[str]
) -> np.ndarray:
    """Boolean matrix (periods × events): whether period ``[start, start + step_days)`` contains the event."""
    names = list(names)
    starts = pd.DatetimeIndex(starts)
    out = np.zeros((len(starts), len(names)), bool)
    if not len(starts) or not names:
        return out
    first, last = starts.min().date(), (starts.max() + pd.Timedelta(days=step_days)).date()
    day0 = starts.min().normalize()
    offsets = ((starts.normalize() - day0).days).to_numpy()
    for j, name in enumerate(names):
        for year in range(first.year - 1, last.year + 2):
            d = pd.Timestamp(_event_day(name, year))
            off = (d - day0).days
            hit = (offsets <= off) & (off < offsets + step_days)
            out[:, j] |= hit
    return out


def period_start(dates: pd.DatetimeIndex, freq: str, week_ends: bool) -> pd.DatetimeIndex:
    """First day of each period: weekly dates stamped on the week's last day (Walmart) start 6 days earlier."""
    if freq == "W" and week_ends:
        return dates - pd.Timedelta(days=6)
    return dates


def stamps_week_end(dates: pd.DatetimeIndex) -> bool:
    """Whether weekly dates most likely stamp the week's last day: Friday to Sunday stamps do (Walmart's
    weeks end on Friday, pandas' on Sunday), Monday to Thursday stamps are read as week starts."""
    return bool(len(dates)) and int(pd.Series(dates.dayofweek).mode().iloc[0]) >= 4


def match_events(
    dates: pd.DatetimeIndex, flags: np.ndarray, freq: str, min_share: float = 0.75
) -> tuple[list[str], bool, float]:
    """Known events explaining a history's holiday flags: (events, week-end stamped, share explained).

    An event matches when at least ``min_share`` of the periods containing it are flagged. Weekly dates may
    stamp the week's first or last day; the reading that explains more flags (with fewer extra periods)
    wins, ties going to :func:`stamps_week_end`'s guess.
    """
    flags = np.asarray(flags, bool)
    step = 1 if freq == "D" else 7
    guess = freq == "W" and stamps_week_end(dates)
    if not flags.any():
        return [], guess, 1.0
    scored = []
    for week_ends in (guess, not guess) if freq == "W" else (False,):
        starts = period_start(dates, freq, week_ends)
        ev = period_events(starts, step, EVENTS)
        names = [n for j, n in enumerate(EVENTS) if ev[:, j].any() and flags[ev[:, j]].mean() >= min_share]
        cover = (
            ev[:, [list(EVENTS).index(n) for n in names]].any(axis=1) if names else np.zeros(len(flags), bool)
        )
        explained = float((flags & cover).sum() / flags.sum())
        score = explained - float((cover & ~flags).sum()) / max(1, len(flags))
        scored.append((score, names, week_ends, explained))
    best = max(scored, key=lambda x: x[0])  # max keeps the first (the guess) on ties
    return best[1], best[2], best[3]
