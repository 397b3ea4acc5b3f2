"""Reasons a caller can use: each customer's strongest factors against the average eligible customer.

For every listed customer and every factor (a column that describes the customer: age, job, balance, loans,
earlier campaigns ...), the model scores the customer once more with that one column set to the *average
customer's* value (the most common category, or the median, over everyone eligible for the call date). The
drop in probability is how much that factor lifts this customer above the average one. The strongest lifts
(above ``min_delta``) become plain-words reasons, e.g. ``"previous campaign succeeded; retired; no housing loan"``.

Rules that keep the reasons useful to a caller:
- a factor is shown only if it *raises* the customer's score against the average customer (a reason to call);
- the way they were contacted (``contact``) and the call-date context are no reasons: they say nothing about
  the person, so they are never perturbed;
- a phrase that (nearly) every listed customer would get -- more than ``max_share`` of the list, 80% by
  default -- is dropped from the whole list (it tells the caller nothing about this customer), and the
  next-strongest factor takes its place.

The reference customer is built from value counts collected chunk by chunk (:class:`PopulationProfile`), so it
describes the whole eligible population, not the list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

_JOBS = {
    "admin.": "works in administration",
    "blue-collar": "blue-collar job",
    "entrepreneur": "entrepreneur",
    "housemaid": "works as a housemaid",
    "management": "works in management",
    "retired": "retired",
    "self-employed": "self-employed",
    "services": "works in services",
    "student": "student",
    "technician": "technician",
    "unemployed": "unemployed",
}
_EDUCATION = {
    "primary": "primary education",
    "secondary": "secondary education",
    "tertiary": "university education",
}
_POUTCOME = {
    "success": "previous campaign succeeded",
    "failure": "took part in an earlier campaign",
    "other": "took part in an earlier campaign",
    "unknown": "new to our campaigns",
}


def _int(value: Any) -> int | None:
    try:
        return int(round(float(value)))
    except (TypeError, ValueError):
        return None


def _age(value: Any, reference: Any) -> str | None:
    age = _int(value)
    return None if age is None else f"aged {age}"


def _balance(value: Any, reference: Any) -> str | None:
    balance, ref = _int(value), _int(reference)
    if balance is None or ref is None:
        return None
    word = "higher" if balance > ref else "lower"
    return f"{word} balance than most (€{balance:,})"


def _campaign(value: Any, reference: Any) -> str | None:
    n = _int(value)
    if n is None:
        return None
    if n <= 1:
        return "not called yet this campaign"
    return (
        f"called {n} times this campaign" if n > (_int(reference) or 0) else f"only {n} calls this campaign"
    )


def _previous(value: Any, reference: Any) -> str | None:
    n = _int(value)
    if n is None:
        return None
    if n == 0:
        return "not contacted in earlier campaigns"
    return f"contacted {n} time{'s' if n != 1 else ''} in earlier campaigns"


def _category(words: Mapping[str, str]) -> Callable[[Any, Any], str | None]:
    return lambda value, reference: words.get(str(value).lower())


@dataclass(frozen=True)
class Factor:
    """A customer column a reason can be about, and how to say the customer's value in plain words."""

    column: str
    numeric: bool
    phrase: Callable[[Any, Any], str | None]


FACTORS: tuple[Factor, ...] = (
    Factor("poutcome", False, _category(_POUTCOME)),
    Factor("job", False, _category(_JOBS)),
    Factor("age", True, _age),
    Factor("balance", True, _balance),
    Factor("housing", False, _category({"no": "no housing loan", "yes": "has a housing loan"})),
    Factor("loan", False, _category({"no": "no personal loan", "yes": "has a personal loan"})),
    Factor("education", False, _category(_EDUCATION)),
    Factor("marital", False, _category({"single": "single", "married": "married", "divorced": "divorced"})),
    Factor("default", False, _category({"no": "no credit in default"})),
    Factor("previous", True, _previous),
    Factor("campaign", True, _campaign),
)
"""Columns that describe the customer. ``contact`` (the channel) and the call-date context are left out."""


class PopulationProfile:
    """Value counts of every factor column over the eligible population, added chunk by chunk."""

    def __init__(self, factors: Sequence[Factor] = FACTORS) -> None:
        self.factors = tuple(factors)
        self.counts: dict[str, dict[str, float]] = {f.column: {} for f in self.factors}
        self.rows = 0

    def add(self, frame: pd.DataFrame) -> PopulationProfile:
        """Count the values of one chunk of scoring rows."""
        self.rows += len(frame)
        for factor in self.factors:
            if factor.column not in frame:
                continue
            values = frame[factor.column]
            if factor.numeric:
                values = pd.to_numeric(values, errors="coerce")
            counts = values.dropna().value_counts()
            target = self.counts[factor.column]
            for value, n in counts.items():
                key = repr(float(value)) if factor.numeric else str(value)
                target[key] = target.get(key, 0) + int(n)
        return self

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "counts": self.counts}

    @classmethod
    def from_json(cls, document: Mapping[str, Any], factors: Sequence[Factor] = FACTORS) -> PopulationProfile:
        profile = cls(factors)
        profile.rows = int(document.get("rows", 0))
        for column, counts in (document.get("counts") or {}).items():
            profile.counts[column] = {str(k): float(v) for k, v in counts.items()}
        return profile

    def reference(self) -> dict[str, Any]:
        """The average customer: the median of each numeric factor, the most common value of each category."""
        out: dict[str, Any] = {}
        for factor in self.factors:
            counts = self.counts.get(factor.column) or {}
            if not counts:
                continue
            if factor.numeric:
                values = np.array([float(k) for k in counts])
                weights = np.array(list(counts.values()), dtype=float)
                order = np.argsort(values)
                cumulative = np.cumsum(weights[order])
                median = values[order][np.searchsorted(cumulative, cumulative[-1] / 2)]
                out[factor.column] = int(median) if float(median).is_integer() else float(median)
            else:
                out[factor.column] = max(sorted(counts), key=lambda k: counts[k])  # ties: alphabetical
        return out


def reference_customer(frame: pd.DataFrame, factors: Sequence[Factor] = FACTORS) -> dict[str, Any]:
    """The average customer of ``frame`` (see :meth:`PopulationProfile.reference`)."""
    return PopulationProfile(factors).add(frame).reference()


def factor_lifts(
    model: Any, frame: pd.DataFrame, reference: Mapping[str, Any], factors: Sequence[Factor] = FACTORS
) -> tuple[np.ndarray, list[Factor]]:
    """Probability lift of each row's own value of each factor over the reference value (rows x factors)."""
    frame = frame.reset_index(drop=True)
    used = [f for f in factors if f.column in reference and f.column in frame]
    lifts = np.zeros((len(frame), len(used)))
    if frame.empty or not used:
        return lifts, used
    base = np.asarray(model.predict_proba(frame)[:, 1], dtype=float)
    for j, factor in enumerate(used):
        ref = reference[factor.column]
        own = frame[factor.column]
        differs = (
            (pd.to_numeric(own, errors="coerce") != float(ref)).to_numpy()
            if factor.numeric
            else (own.astype(str) != str(ref)).to_numpy()
        )
        if not differs.any():
            continue
        changed = frame.loc[differs].copy()
        changed[factor.column] = ref
        lifts[differs, j] = base[differs] - np.asarray(model.predict_proba(changed)[:, 1], dtype=float)
    return lifts, used


def explain(
    model: Any,
    frame: pd.DataFrame,
    reference: Mapping[str, Any] | None = None,
    top: int = 3,
    min_delta: float = 0.005,
    factors: Sequence[Factor] = FACTORS,
    max_share: float = 0.8,
) -> list[str]:
    """For each row, up to ``top`` reasons joined by ``"; "``, strongest first (empty if none lifts the score).

    A phrase more than ``max_share`` of the rows of ``frame`` would get (more than one row) is dropped for all
    of them, and the next-strongest factor of each row is used instead. ``reference`` defaults to the average
    customer of ``frame`` itself (the batch passes the eligible population's, see :class:`PopulationProfile`).
    """
    frame = frame.reset_index(drop=True)
    if reference is None:
        reference = reference_customer(frame, factors)
    lifts, used = factor_lifts(model, frame, reference, factors)
    candidates: list[list[tuple[float, str]]] = []
    for i in range(len(frame)):
        row: list[tuple[float, str]] = []
        for j in np.argsort(-lifts[i], kind="stable"):
            if lifts[i, j] <= min_delta:
                break
            factor = used[j]
            phrase = factor.phrase(frame.at[i, factor.column], reference[factor.column])
            if phrase:
                row.append((float(lifts[i, j]), phrase))
        candidates.append(row)
    universal: set[str] = set()
    if len(candidates) > 1:
        counts: dict[str, int] = {}
        for row in candidates:
            for phrase in {p for _, p in row}:
                counts[phrase] = counts.get(phrase, 0) + 1
        universal = {p for p, n in counts.items() if n > max_share * len(candidates) or n == len(candidates)}
    return ["; ".join([p for _, p in row if p not in universal][:top]) for row in candidates]
