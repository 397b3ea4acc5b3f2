"""Drift statistics: population stability index (numeric and categorical), KS, chi-square, Jensen–Shannon.

Small numpy/scipy functions on plain arrays; no I/O. Numeric PSI bins a feature on the *reference's* quantiles
(open-ended first and last bins, so values outside the reference range still land somewhere); categorical PSI
uses the reference's categories plus one bucket for anything unseen. Empty bins get a floor share
(``DEFAULT_FLOOR``) so that the logarithm stays finite and one empty bin cannot dominate the index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_FLOOR = 1e-4
"""Share given to an empty bin before the PSI's logarithm (then shares are renormalised)."""
UNSEEN = "__unseen__"
"""Bucket of categories the reference never saw (and of missing values)."""


def quantile_edges(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Inner cut points of ``bins`` equal-count bins of ``values`` (duplicates removed; NaN ignored).

    A feature with few distinct values gets fewer cuts; the outer bins are open-ended (``-inf``/``+inf``).
    """
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0 or bins < 2:
        return np.empty(0)
    cuts = np.quantile(x, np.linspace(0, 1, bins + 1)[1:-1], method="linear")
    cuts = np.unique(cuts)
    # A cut equal to the minimum would leave the first bin empty by construction: drop it.
    return cuts[cuts > x.min()]


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin ``(-inf, e0), [e0, e1), …, [e_last, +inf)`` plus a last slot for NaN."""
    x = np.asarray(values, dtype=float)
    missing = np.isnan(x)
    idx = np.searchsorted(np.asarray(edges, dtype=float), x[~missing], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(np.int64)
    return np.append(counts, int(missing.sum()))


def category_counts(values: Sequence | np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Counts of each of ``categories`` (by string form) plus a last slot for unseen or missing values."""
    import pandas as pd

    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    index = pd.Index([str(c) for c in categories])
    position = np.append(index.get_indexer(np.asarray(uniques, dtype=object).astype(str)), -1)
    mapped = position[codes]
    mapped[mapped < 0] = len(categories)
    return np.bincount(mapped, minlength=len(categories) + 1).astype(np.int64)


def _shares(counts: np.ndarray, floor: float) -> np.ndarray:
    c = np.asarray(counts, dtype=float)
    total = c.sum()
    if total <= 0:
        raise ValueError("cannot compute shares of an empty sample")
    share = np.maximum(c / total, floor)
    return share / share.sum()


def psi(reference_counts: np.ndarray, current_counts: np.ndarray, floor: float = DEFAULT_FLOOR) -> float:
    """Population stability index ``Σ (a − e) · ln(a / e)`` over bins, with ``floor`` for empty bins.

    Bins empty in *both* samples are dropped (they carry no information, and the floor would add noise).
    """
    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    if ref.shape != cur.shape:
        raise ValueError(f"bin counts differ in length: {ref.shape} vs {cur.shape}")
    keep = (ref > 0) | (cur > 0)
    e, a = _shares(ref[keep], floor), _shares(cur[keep], floor)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_psi(
    reference: np.ndarray, current: np.ndarray, bins: int = 10, floor: float = DEFAULT_FLOOR
) -> float:
    """PSI of a numeric feature binned on the reference's quantiles."""
    edges = quantile_edges(reference, bins)
    return psi(bin_counts(reference, edges), bin_counts(current, edges), floor)


def categorical_psi(
    reference: Sequence | np.ndarray, current: Sequence | np.ndarray, floor: float = DEFAULT_FLOOR
) -> float:
    """PSI of a categorical feature over the reference's categories (+ one bucket for unseen values)."""
    import pandas as pd

    categories = sorted(pd.Series(reference, dtype=object).dropna().astype(str).unique())
    return psi(category_counts(reference, categories), category_counts(current, categories), floor)


@dataclass(frozen=True)
class TestResult:
    """A two-sample test: its statistic and p-value."""

    statistic: float
    p_value: float


def ks_test(reference: np.ndarray, current: np.ndarray) -> TestResult:
    """Two-sample Kolmogorov–Smirnov test (NaN dropped from both samples)."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref.size == 0 or cur.size == 0:
        return TestResult(float("nan"), float("nan"))
    result = stats.ks_2samp(ref, cur, method="asymp" if ref.size * cur.size > 10_000 else "auto")
    return TestResult(float(result.statistic), float(result.pvalue))


def chi_square_test(reference_counts: np.ndarray, current_counts: np.ndarray) -> TestResult:
    """Chi-square test of homogeneity on a 2 × k table (categories empty in both samples dropped)."""
    table = np.vstack([np.asarray(reference_counts), np.asarray(current_counts)]).astype(float)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return TestResult(0.0, 1.0)
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    return TestResult(float(statistic), float(p_value))


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two binned distributions."""
    from scipy.spatial.distance import jensenshannon

    ref = np.asarray(reference_counts, dtype=float)
    cur = np.asarray(current_counts, dtype=float)
    return float(jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2))
