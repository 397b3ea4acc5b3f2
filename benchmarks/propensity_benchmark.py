"""Propensity figures on the real bank-full data: chronological holdout, stratified CV, rolling origin, speed.

Run: .venv/bin/python benchmarks/propensity_benchmark.py [quick|full]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from callcast.demo.bank import bank_tables
from models.propensity.config import PropensityConfig
from models.propensity.estimators import set_model_params
from models.propensity.evaluation import evaluate
from models.propensity.training import train_propensity_model


def main(profile: str = "full") -> None:
    config = PropensityConfig()
    customers, contacts = bank_tables(seed=config.seed)
    from models.propensity.features import build_training_table

    t0 = time.perf_counter()
    table = build_training_table(customers, contacts)
    print(f"training table: {len(table)} rows in {time.perf_counter() - t0:.1f}s")
    t0 = time.perf_counter()
    result = train_propensity_model(table, config, profile, log=lambda m: print("  " + m, flush=True))
    wall = time.perf_counter() - t0
    print(f"\n{profile} profile: all candidates + searches + rolling origin in {wall:.0f}s wall time")

    print("\nChronological holdout (last 20%:", result.holdout_window, ")")
    keys = [
        "roc_auc",
        "pr_auc",
        "brier",
        "base_rate_brier",
        "lift_top_decile",
        "gains_at_10",
        "gains_at_20",
        "gains_at_50",
        "within_month_auc",
    ]
    print(
        f"{'candidate':30s} {'cvAUC':>6s} {'recent':>6s} "
        + " ".join(f"{k[:12]:>12s}" for k in keys)
        + "  behaviour"
    )
    for c in result.candidates:
        mark = "*" if c is result.chosen else " "
        print(
            f"{mark}{c.name:29s} {c.cv_auc:6.3f} {c.recent_fold_auc:6.3f} "
            + " ".join(f"{c.holdout[k]:12.3f}" for k in keys)
            + f"  {'ok' if c.behaviour_passed else 'FAIL'}"
        )

    print(
        "\nStratified 5-fold CV (random, comparison only: mixes periods, so it overstates what the holdout shows)"
    )
    y = table["y"].to_numpy()
    for c in result.candidates:
        scores = []
        for tr, te in StratifiedKFold(5, shuffle=True, random_state=config.seed).split(table, y):
            pipe = set_model_params(result_pipeline_like(c, config), c.params)
            pipe.fit(table.iloc[tr], y[tr])
            scores.append(evaluate(y[te], pipe.predict_proba(table.iloc[te])[:, 1]))
        m = {
            k: float(np.mean([s[k] for s in scores]))
            for k in ("roc_auc", "gains_at_20", "brier", "base_rate_brier")
        }
        print(
            f" {c.name:29s} AUC {m['roc_auc']:.3f}  gains@20 {m['gains_at_20']:.3f}  Brier {m['brier']:.3f} (base {m['base_rate_brier']:.3f})"
        )

    print(
        f"\nRolling origin ({result.chosen.name}, refit at each origin; recalibrated on the latest window vs plain)"
    )
    print(pd.DataFrame(result.rolling).round(3).to_string(index=False))
    print("\nBase rate per quarter")
    print(pd.DataFrame(result.rate_by_quarter).round(3).to_string(index=False))

    print("\nScoring speed of the chosen pipeline (predict_proba, 1 thread of work, 200k rows)")
    big = pd.concat([table] * 5, ignore_index=True).head(200_000)
    chosen = result.chosen.pipeline
    for name, pipe in (
        ("chosen " + result.chosen.name, chosen),
        *[(c.name, c.pipeline) for c in result.candidates if c is not result.chosen],
    ):
        if "random_forest" in name:
            pipe.named_steps["model"].estimator_.set_params(n_jobs=1) if hasattr(
                pipe.named_steps["model"], "estimator_"
            ) else None
        pipe.predict_proba(big.head(1000))
        t = time.perf_counter()
        pipe.predict_proba(big)
        print(f"  {name:30s} {len(big) / (time.perf_counter() - t):>10,.0f} rows/s")


def result_pipeline_like(candidate_result, config):
    from models.propensity.estimators import build_pipeline

    spec = next(c for c in config.candidates if c.name == candidate_result.name)
    return build_pipeline(spec, config)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "full")
