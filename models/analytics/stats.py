"""Interval statistics for conversion rates: Wilson score intervals, differences and ratios of rates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

RATE_COLUMNS = ["contacts", "sales", "rate", "lo95", "hi95"]


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(
    successes: np.ndarray | Sequence[float] | float,
    trials: np.ndarray | Sequence[float] | float,
    confidence: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (NaN where there are no trials)."""
    s = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = _z(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = s / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    hi = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return lo, hi


def rate_difference(
    s1: float, n1: float, s2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float, float]:
    """``p1 - p2`` with Newcombe's hybrid score interval (built from the two Wilson intervals)."""
    if n1 <= 0 or n2 <= 0:
        return float("nan"), float("nan"), float("nan")
    p1, p2 = s1 / n1, s2 / n2
    (l1,), (u1,) = (np.atleast_1d(x) for x in wilson_interval(s1, n1, confidence))
    (l2,), (u2,) = (np.atleast_1d(x) for x in wilson_interval(s2, n2, confidence))
    d = p1 - p2
    lo = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return float(d), float(lo), float(hi)


def rate_ratio(
    s1: float, n1: float, s2: float, n2: float, confidence: float = 0.95
) -> tuple[float, float, float]:
    """``p1 / p2`` (a lift) with the Katz log interval; 0.5 is added to every cell when a count is zero."""
    if n1 <= 0 or n2 <= 0:
        return float("nan"), float("nan"), float("nan")
    if s2 == 0 and s1 == 0:
        return float("nan"), float("nan"), float("nan")
    ratio = (s1 / n1) / (s2 / n2) if s2 > 0 else float("inf")
    if min(s1, s2) == 0:
        s1, n1, s2, n2 = s1 + 0.5, n1 + 1.0, s2 + 0.5, n2 + 1.0
    se = np.sqrt(1 / s1 - 1 / n1 + 1 / s2 - 1 / n2)
    centre = np.log((s1 / n1) / (s2 / n2))
    z = _z(confidence)
    return float(ratio), float(np.exp(centre - z * se)), float(np.exp(centre + z * se))


def rate_table(
    frame: pd.DataFrame, by: str, outcome: str = "sale", order: Sequence | None = None
) -> pd.DataFrame:
    """Conversion per value of ``by``: contacts, sales, rate and its 95% Wilson interval.

    ``outcome`` is a boolean column (True = sale). Rows come in ``order`` when given (values absent from the
    data are kept with zero contacts and NaN rates, so a table never hides a category), else sorted by value.
    """
    grouped = frame.groupby(by, observed=True, sort=True)[outcome]
    table = pd.DataFrame({"contacts": grouped.size(), "sales": grouped.sum()}).astype("int64")
    if order is not None:
        extra = [v for v in table.index if v not in set(order)]
        table = table.reindex([*order, *extra], fill_value=0)
    lo, hi = wilson_interval(table["sales"].to_numpy(), table["contacts"].to_numpy())
    with np.errstate(divide="ignore", invalid="ignore"):
        table["rate"] = np.where(table["contacts"] > 0, table["sales"] / table["contacts"], np.nan)
    table["lo95"], table["hi95"] = lo, hi
    table.index.name = by
    return table.reset_index()[[by, *RATE_COLUMNS]]
