"""Decision rules: when drift or decay becomes an alarm (thresholds, minimum sample, persistence).

- **Data drift**: a feature whose PSI reaches ``psi_act`` has drifted; a feature with ``p < p_value`` *and* PSI
  at least ``psi_warn`` counts towards ``feature_share`` (on large samples every tiny difference is
  "significant", so significance alone never raises an alarm). Drift when any feature has drifted, when the
  share of significant features reaches ``feature_share``, or when the score's PSI reaches ``psi_act``.
- **Decay**: realised within-date AUC whose upper 95% bound lies more than ``auc_tolerance`` below the AUC the
  model's probabilities promised on the same contacts (CBPE), or a list significantly worse than random
  calling; before labels, an estimated (CBPE) AUC more than ``auc_tolerance`` below the reference's.
- **Minimum sample**: fewer than ``min_sample`` scored rows → no data-drift alarm; fewer than ``min_labelled``
  labelled contacts → no realised-performance alarm. Both are reported, never silently dropped.
- **Persistence**: the alarm must hold on ``persistence_days`` consecutive monitoring runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from models.monitoring.config import MonitoringConfig
from models.monitoring.drift import FeatureDrift


@dataclass
class Alarm:
    """One family of checks: whether it fired, why, and the notes that did not fire (warnings, small samples)."""

    fired: bool = False
    reasons: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def data_drift_alarm(
    features: Sequence[FeatureDrift], score: FeatureDrift | None, rows: int, config: MonitoringConfig
) -> Alarm:
    """Data and prediction drift of today's scored population (``rows`` of it)."""
    alarm = Alarm()
    warned = [f.name for f in features if f.level == "warning"]
    if warned:
        alarm.notes.append(f"PSI between {config.psi_warn} and {config.psi_act} (watch): {', '.join(warned)}")
    if rows < config.min_sample:
        alarm.notes.append(
            f"only {rows:,} rows scored (minimum {config.min_sample:,}): data drift reported, no alarm"
        )
        return alarm
    for f in features:
        if f.psi >= config.psi_act:
            alarm.reasons.append(f"feature {f.name}: PSI {f.psi:.3f} >= {config.psi_act}")
    significant = [f for f in features if f.p_value < config.p_value and f.psi >= config.psi_warn]
    if features and len(significant) / len(features) >= config.feature_share:
        alarm.reasons.append(
            f"{len(significant)} of {len(features)} features with p < {config.p_value} and PSI >= "
            f"{config.psi_warn} (share {len(significant) / len(features):.0%} >= {config.feature_share:.0%})"
        )
    if score is not None and score.psi >= config.psi_act:
        alarm.reasons.append(f"prediction drift: score PSI {score.psi:.3f} >= {config.psi_act}")
    alarm.fired = bool(alarm.reasons)
    return alarm


def performance_alarm(
    realised: Mapping[str, Any] | None,
    estimated: Mapping[str, Any] | None,
    reference_estimated_auc: float | None,
    config: MonitoringConfig,
) -> Alarm:
    """Decay seen in the realised outcomes (once labelled) or in the CBPE estimate (before labels)."""
    alarm = Alarm()
    tol = config.auc_tolerance
    if realised:
        n = int(realised.get("labelled", 0))
        if n < config.min_labelled:
            alarm.notes.append(
                f"only {n:,} labelled called contacts (minimum {config.min_labelled:,}): realised performance "
                "reported, no alarm"
            )
        else:
            hi = realised.get("within_date_auc_ci95", [None, None])[1]
            expected = realised.get("expected_within_date_auc")
            known = hi is not None and expected is not None and hi == hi and expected == expected
            if known and hi < expected - tol:
                alarm.reasons.append(
                    f"realised within-date AUC {realised['within_date_auc']:.3f} (95% up to {hi:.3f}) "
                    f"below the {expected:.3f} its probabilities promised (tolerance {tol})"
                )
            gap = realised.get("listed_minus_control_ci95")
            if gap and gap[1] < 0:
                alarm.reasons.append(
                    f"listed calls convert less than random control calls (difference up to {gap[1]:+.3f})"
                )
    if estimated and reference_estimated_auc is not None:
        est = estimated.get("expected_auc")
        if est is not None and est == est and est < reference_estimated_auc - tol:
            if int(estimated.get("rows", 0)) < config.min_sample:
                alarm.notes.append("estimated AUC drop on fewer rows than the minimum sample: no alarm")
            else:
                alarm.reasons.append(
                    f"estimated AUC (CBPE) {est:.3f} below the reference's {reference_estimated_auc:.3f} "
                    f"(tolerance {tol})"
                )
    alarm.fired = bool(alarm.reasons)
    return alarm


@dataclass
class Verdict:
    """Today's decision after the persistence rule."""

    alarm_today: bool
    drift_detected: bool
    consecutive: int
    status: str  # "ok" | "warning" | "pending" (alarm, persistence not met) | "drift"
    reasons: list[str]
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(alarms: Sequence[Alarm], previous_alarms: Sequence[bool], config: MonitoringConfig) -> Verdict:
    """Combine today's alarms with the previous runs' (oldest first) under the persistence rule."""
    today = any(a.fired for a in alarms)
    consecutive = 0
    if today:
        consecutive = 1
        for earlier in reversed(list(previous_alarms)):
            if not earlier:
                break
            consecutive += 1
    detected = today and consecutive >= config.persistence_days
    reasons = [r for a in alarms for r in a.reasons]
    notes = [n for a in alarms for n in a.notes]
    if detected:
        status = "drift"
    elif today:
        status = "pending"
        notes.append(f"alarm on {consecutive} of the {config.persistence_days} consecutive runs required")
    else:
        status = "warning" if notes else "ok"
    return Verdict(today, detected, consecutive, status, reasons, notes)
