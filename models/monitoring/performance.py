"""Performance of the call list: estimated before outcomes arrive (CBPE), realised once they do.

- **Estimated** (confidence-based performance estimation, as NannyML's CBPE): if the probabilities are
  calibrated, a customer with probability ``p`` is a buyer with probability ``p``. The expected ROC curve then
  has ``TPR(t) = Σ_{p_i ≥ t} p_i / Σ p_i`` and ``FPR(t) = Σ_{p_i ≥ t} (1 − p_i) / Σ (1 − p_i)``; its area is the
  estimated AUC, available the day the list is scored. Within-date: per call date, weighted by the expected
  number of buyer/non-buyer pairs. Expected conversion is the mean probability.
- **Realised**: within-date AUC (pairs of contacts of the same call date, weighted by each date's pairs),
  conversion of the listed calls and of the random control calls, with 95% intervals (day-block bootstrap
  for AUC, Wilson for rates).

CBPE cannot see a change of the ground truth that leaves the inputs alone (concept drift); the realised
figures can, a few days later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def _pairs_auc(y: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """(concordant pairs + ½ ties, positive × negative pairs) of one group; ranks-based, O(n log n)."""
    y = np.asarray(y, dtype=bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.0, 0.0
    ranks = stats.rankdata(s)  # average ranks handle ties as ½
    concordant = float(ranks[y].sum() - n_pos * (n_pos + 1) / 2)
    return concordant, float(n_pos) * float(n_neg)


def within_date_auc(y: np.ndarray, scores: np.ndarray, dates: np.ndarray) -> float:
    """AUC over pairs of contacts on the same date (dates with one class only contribute no pairs)."""
    conc, pairs = _per_date(y, scores, dates, _pairs_auc)
    return float(conc.sum() / pairs.sum()) if pairs.sum() > 0 else float("nan")


def _per_date(
    y: np.ndarray,
    scores: np.ndarray,
    dates: np.ndarray,
    fn: Callable[[np.ndarray, np.ndarray], tuple[float, float]],
) -> tuple[np.ndarray, np.ndarray]:
    y, scores, dates = np.asarray(y), np.asarray(scores, dtype=float), np.asarray(dates)
    order = np.argsort(dates, kind="stable")
    uniq, starts = np.unique(dates[order], return_index=True)
    bounds = [*starts[1:], len(order)]
    num = np.empty(len(uniq))
    den = np.empty(len(uniq))
    for k, (a, b) in enumerate(zip(starts, bounds, strict=True)):
        idx = order[a:b]
        num[k], den[k] = fn(y[idx], scores[idx])
    return num, den


def _expected_pairs(p: np.ndarray, s: np.ndarray) -> tuple[float, float]:
    """CBPE numerator/denominator of one group: Σ_i p_i Σ_{s_j < s_i}(1 − p_j) (+ ½ ties) and Σp Σ(1 − p)."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    s = np.asarray(s, dtype=float)
    if p.size == 0:
        return 0.0, 0.0
    uniq, inverse = np.unique(s, return_inverse=True)
    pos = np.bincount(inverse, weights=p, minlength=len(uniq))  # expected buyers per distinct score
    neg = np.bincount(inverse, weights=1 - p, minlength=len(uniq))
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # expected non-buyers strictly below
    numerator = float(np.sum(pos * (below + 0.5 * neg)))
    return numerator, float(pos.sum() * neg.sum())


def expected_auc(probabilities: np.ndarray, scores: np.ndarray | None = None) -> float:
    """CBPE estimate of the ROC AUC of ``scores`` (default: the probabilities) from calibrated probabilities."""
    p = np.asarray(probabilities, dtype=float)
    num, den = _expected_pairs(p, p if scores is None else scores)
    return num / den if den > 0 else float("nan")


def expected_within_date_auc(
    probabilities: np.ndarray, dates: np.ndarray, scores: np.ndarray | None = None
) -> float:
    """CBPE estimate of the within-date AUC (dates weighted by their expected buyer/non-buyer pairs)."""
    p = np.asarray(probabilities, dtype=float)
    num, den = _per_date(p, p if scores is None else scores, dates, _expected_pairs)
    return float(num.sum() / den.sum()) if den.sum() > 0 else float("nan")


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (``(nan, nan)`` without trials)."""
    if trials <= 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + confidence / 2)
    phat = successes / trials
    denom = 1 + z * z / trials
    centre = (phat + z * z / (2 * trials)) / denom
    half = z * np.sqrt(phat * (1 - phat) / trials + z * z / (4 * trials * trials)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def within_date_auc_interval(
    y: np.ndarray, scores: np.ndarray, dates: np.ndarray, resamples: int = 400, seed: int = 0
) -> tuple[float, float]:
    """95% day-block bootstrap interval of the within-date AUC: whole call dates are resampled (a day's
    outcomes are correlated), each date carrying its concordant and total pairs."""
    conc, pairs = _per_date(y, scores, dates, _pairs_auc)
    keep = pairs > 0
    conc, pairs = conc[keep], pairs[keep]
    if len(pairs) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pairs), (resamples, len(pairs)))
    values = conc[pick].sum(axis=1) / pairs[pick].sum(axis=1)
    lo, hi = np.quantile(values, [0.025, 0.975])
    return float(lo), float(hi)


def _rate(frame: pd.DataFrame) -> dict[str, Any]:
    n = int(len(frame))
    k = int(frame["y"].sum()) if n else 0
    lo, hi = wilson_interval(k, n)
    return {"n": n, "buyers": k, "rate": (k / n) if n else float("nan"), "ci95": [lo, hi]}


def realised_performance(contacts: pd.DataFrame, resamples: int = 400, seed: int = 0) -> dict[str, Any]:
    """Realised figures of labelled called contacts (columns ``contact_date``, ``y``, ``probability``, ``group``).

    ``group`` is ``listed`` (called from the list) or ``control`` (called at random among the eligible, the
    random-calling baseline). Returns within-date AUC with its interval and, on the same contacts, the CBPE
    expectation (so the two can be compared), conversion per group and the list's lift over the control.
    """
    frame = contacts.dropna(subset=["probability"]).reset_index(drop=True)
    frame["y"] = frame["y"].astype(int)
    dates = frame["contact_date"].to_numpy()

    y, p = frame["y"].to_numpy(), frame["probability"].to_numpy(dtype=float)
    auc = within_date_auc(y, p, dates) if len(frame) else float("nan")
    expected = expected_within_date_auc(p, dates) if len(frame) else float("nan")
    lo, hi = within_date_auc_interval(y, p, dates, resamples, seed) if len(frame) else (np.nan, np.nan)
    listed = frame[frame["group"] == "listed"]
    control = frame[frame["group"] == "control"]
    out: dict[str, Any] = {
        "labelled": int(len(frame)),
        "dates": int(frame["contact_date"].nunique()),
        "within_date_auc": auc,
        "within_date_auc_ci95": [lo, hi],
        "expected_within_date_auc": expected,
        "listed": {
            **_rate(listed),
            "expected_rate": float(listed["probability"].mean()) if len(listed) else float("nan"),
        },
        "control": {
            **_rate(control),
            "expected_rate": float(control["probability"].mean()) if len(control) else float("nan"),
        },
    }
    lift = float("nan")
    if len(control) and control["y"].sum() > 0 and len(listed):
        lift = float(listed["y"].mean() / control["y"].mean())
    out["lift_over_control"] = lift
    if len(listed) and len(control):
        diff = listed["y"].mean() - control["y"].mean()
        se = np.sqrt(
            listed["y"].mean() * (1 - listed["y"].mean()) / len(listed)
            + control["y"].mean() * (1 - control["y"].mean()) / len(control)
        )
        out["listed_minus_control"] = float(diff)
        out["listed_minus_control_ci95"] = [float(diff - 1.96 * se), float(diff + 1.96 * se)]
    return out


def estimated_performance(probabilities: np.ndarray, capacity: int | None) -> dict[str, Any]:
    """CBPE figures of today's scored population: expected AUC, conversion, and the list's expected share."""
    p = np.asarray(probabilities, dtype=float)
    if p.size == 0:
        return {"rows": 0, "expected_auc": float("nan"), "expected_rate": float("nan")}
    k = len(p) if capacity is None else min(int(capacity), len(p))
    top = np.sort(p)[::-1][:k]
    return {
        "rows": int(p.size),
        "expected_auc": expected_auc(p),
        "expected_rate": float(p.mean()),
        "list_size": int(k),
        "list_expected_rate": float(top.mean()) if k else float("nan"),
        "list_expected_lift": float(top.mean() / p.mean()) if k and p.mean() > 0 else float("nan"),
    }
