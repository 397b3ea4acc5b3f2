"""Promotion gate: behaviour tests and the champion comparison, returning a decision with reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.propensity.evaluation import improvement

MARGIN_TOLERANCE = 1e-9
"""A gain equal to the margin up to floating-point error meets it ("at least the margin")."""


@dataclass
class BehaviourResult:
    name: str
    passed: bool
    detail: str


@dataclass
class PromotionDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    behaviour: list[BehaviourResult] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "promote": self.promote,
            "reasons": self.reasons,
            "behaviour": [b.__dict__ for b in self.behaviour],
        }


def _scores(model, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(frame)[:, 1], dtype=float)


def behaviour_tests(model, sample: pd.DataFrame) -> list[BehaviourResult]:
    """Invariants every champion must hold on ``sample`` (valid input rows of the model's input frame)."""
    results = []
    base = sample.reset_index(drop=True).copy()
    base["previous"] = np.maximum(pd.to_numeric(base["previous"]), 1)
    success = _scores(model, base.assign(poutcome="success"))
    worst = np.inf
    for other in ("failure", "other", "unknown"):
        worst = min(worst, float(np.min(success - _scores(model, base.assign(poutcome=other)))))
    results.append(
        BehaviourResult(
            "previous_success_not_lower",
            worst >= -1e-9,
            f"min score(success) - score(other outcome) = {worst:.4f} over {len(base)} rows",
        )
    )
    p = _scores(model, sample)
    results.append(
        BehaviourResult(
            "scores_in_unit_interval",
            bool(np.all((p >= 0) & (p <= 1))),
            f"range [{p.min():.4f}, {p.max():.4f}]",
        )
    )
    edge = sample.head(50).reset_index(drop=True).copy()
    edge.loc[0::3, "balance"] = -8019
    edge.loc[1::3, "balance"] = 102127
    edge.loc[0::2, "age"] = 18
    edge.loc[1::2, "age"] = 95
    edge.loc[0::4, "campaign"] = 63
    edge.loc[0::5, "previous"] = 275
    p_edge = _scores(model, edge)
    results.append(
        BehaviourResult(
            "no_nan_on_valid_edges", bool(np.isfinite(p_edge).all()), "extreme ages, balances and counts"
        )
    )
    unseen = sample.head(20).copy()
    for col in ("job", "marital", "education", "contact", "poutcome", "month"):
        if col in unseen:
            unseen[col] = "never-seen-before"
    try:
        p_unseen = _scores(model, unseen)
        ok, detail = (
            bool(np.isfinite(p_unseen).all() and ((p_unseen >= 0) & (p_unseen <= 1)).all()),
            "finite scores",
        )
    except Exception as exc:  # noqa: BLE001 - any failure fails the test, with its reason
        ok, detail = False, f"raised {type(exc).__name__}: {exc}"
    results.append(BehaviourResult("unseen_categories_handled", ok, detail))
    return results


def decide_promotion(
    new_metrics: dict[str, float],
    champion_metrics: dict[str, float] | None,
    behaviour: list[BehaviourResult],
    metric: str,
    margin: float,
) -> PromotionDecision:
    """Promote only if every behaviour test passes and ``metric`` beats the champion's by ``margin``."""
    reasons = []
    failed = [b for b in behaviour if not b.passed]
    for b in failed:
        reasons.append(f"behaviour test {b.name} failed: {b.detail}")
    if champion_metrics is None:
        beats = True
        reasons.append(f"no current champion; {metric} = {new_metrics[metric]:.4f}")
    else:
        gain = improvement(metric, new_metrics[metric], champion_metrics[metric])
        beats = gain >= margin - MARGIN_TOLERANCE  # 0.57 - 0.56 is 0.00999… in floating point
        reasons.append(
            f"{metric} {new_metrics[metric]:.4f} vs champion {champion_metrics[metric]:.4f} on the same holdout: "
            f"{'+' if gain >= 0 else ''}{gain:.4f} ({'meets' if beats else 'below'} the margin {margin})"
        )
    promote = beats and not failed
    reasons.insert(0, "promoted to champion" if promote else "kept as challenger")
    return PromotionDecision(promote, reasons, behaviour)
