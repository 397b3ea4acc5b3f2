"""Propensity figures on the real bank-full data (UCI Bank Marketing), measured on the decision.

The call list ranks the customers of one call date, so the headline figures are the **within-date AUC**
(buyer vs non-buyer pairs of the same date, pooled over dates by their pairs) and the **per-date capture at
capacity** (share of each date's buyers reached by its first ``capacity_share`` of calls, against random
calling). Both come with day-block bootstrap intervals (call dates resampled) and, against plain logistic
regression on the raw pre-call columns, paired intervals of the difference. Baselines are measured in the same
run: the chosen recipe and plain LR on the chronological holdout and on the rolling origins.

``--ceiling`` adds a same-period upper reference: in every rolling test window, models are cross-fitted *on that
window itself* (5 folds of whole dates) -- they know the period's own relationships, which no model trained on
the past can. Its within-date AUC bounds what these pre-call columns support.

Run:  nice -n 10 .venv/bin/python benchmarks/propensity_benchmark.py [--profile quick|full] [--ceiling]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from demo_company.bank import bank_tables
from models.propensity.config import PropensityConfig
from models.propensity.estimators import build_pipeline, set_model_params
from models.propensity.evaluation import date_stats, decision_metrics
from models.propensity.features import build_training_table
from models.propensity.split import rolling_origin
from models.propensity.training import TrainingResult, train_propensity_model


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def _ci(pair: list[float] | None, pct: bool = False) -> str:
    if not pair:
        return ""
    f = (lambda v: f"{v:.1%}") if pct else (lambda v: f"{v:+.3f}" if pair[0] < 0 else f"{v:.3f}")
    return f"[{f(pair[0])}, {f(pair[1])}]"


def report(result: TrainingResult, config: PropensityConfig) -> None:
    ch, bl = result.chosen, result.baseline
    ci = result.holdout_intervals
    level = f"{config.bootstrap_level:.0%}"
    print(
        f"\ncandidates (selection = mean within-date AUC over {len(ch.selection_windows)} windows inside the training part)"
    )
    print(f"  {'candidate':28s} {'selection':>9s}  per window")
    for c in result.candidates:
        mark = "*" if c is ch else " "
        windows = " ".join(f"{w:.3f}" for w in c.selection_windows)
        print(f" {mark}{c.name:28s} {c.selection_auc:9.3f}  {windows}")
    print(
        f"\nHOLDOUT {result.holdout_window[0]}..{result.holdout_window[1]} ({len(result.holdout_y):,} contacts, "
        f"{int(ch.holdout['dates'])} call dates; {level} day-block bootstrap intervals)"
    )
    print(
        f"  {'':30s} {'within-date AUC':>26s} {'per-date capture@' + format(config.capacity_share, '.0%'):>28s} {'random':>8s}"
    )
    for label, r, key in ((f"recipe {ch.name}", ch, "chosen"), (f"plain LR {bl.name}", bl, "baseline")):
        print(
            f"  {label:30s} {r.holdout['within_date_auc']:8.3f} {_ci(ci[key]['within_date_auc']):>17s} "
            f"{r.holdout['capture_at_capacity']:9.1%} {_ci(ci[key]['capture_at_capacity'], True):>18s} "
            f"{r.holdout['capture_random']:8.1%}"
        )
    print(
        f"  {'difference recipe - plain LR':30s} {ch.holdout['within_date_auc'] - bl.holdout['within_date_auc']:+8.3f} "
        f"{_ci(ci['chosen']['within_date_auc_diff']):>17s} "
        f"{ch.holdout['capture_at_capacity'] - bl.holdout['capture_at_capacity']:+9.1%} "
        f"{_ci(ci['chosen']['capture_at_capacity_diff'], True):>18s}"
    )
    calls, buyers, rnd = (
        ch.holdout["calls"],
        ch.holdout["buyers_reached"],
        ch.holdout["buyers_reached_random"],
    )
    print(
        f"  of {calls:,.0f} calls (best {config.capacity_share:.0%} of each date), expect {buyers:,.0f} buyers vs {rnd:,.0f} at random"
    )
    print(
        f"\nROLLING ORIGINS ({len(result.rolling)} windows, the whole table; recipe refitted at each origin)"
    )
    print(
        f"  {'test window':23s} {'rows':>6s} {'rate':>6s} {'AUC recipe':>10s} {'plain LR':>9s} {'diff CI':>18s} {'cap recipe':>10s} {'plain LR':>8s} {'random':>7s}"
    )
    wins = 0
    for r in result.rolling:
        c, b = r["chosen"], r["baseline"]
        wins += c["within_date_auc"] >= b["within_date_auc"]
        print(
            f"  {r['test_start']}..{r['test_end']} {r['test_rows']:6d} {r['base_rate']:6.3f} {c['within_date_auc']:10.3f} "
            f"{b['within_date_auc']:9.3f} {_ci(r['intervals']['chosen']['within_date_auc_diff']):>18s} "
            f"{c['capture_at_capacity']:10.1%} {b['capture_at_capacity']:8.1%} {c['capture_random']:7.1%}"
        )
    mean_c = np.mean([r["chosen"]["within_date_auc"] for r in result.rolling])
    mean_b = np.mean([r["baseline"]["within_date_auc"] for r in result.rolling])
    print(
        f"  recipe >= plain LR on {wins}/{len(result.rolling)} windows; mean within-date AUC {mean_c:.3f} vs {mean_b:.3f}"
    )
    print("\nSECONDARY (holdout, pooled over dates: the pooled AUC also rewards telling periods apart)")
    print(
        f"  {'':30s} {'pooled AUC':>10s} {'Brier':>7s} {'base Brier':>10s} {'mean pred':>9s} {'observed':>8s}"
    )
    for label, r in ((f"recipe {ch.name}", ch), (f"plain LR {bl.name}", bl)):
        m = r.holdout
        print(
            f"  {label:30s} {m['roc_auc']:10.3f} {m['brier']:7.3f} {m['base_rate_brier']:10.3f} {m['mean_predicted']:9.3f} {m['base_rate']:8.3f}"
        )
    print("  calibration per rolling window (mean predicted / observed):")
    for r in result.rolling:
        print(
            f"    {r['test_start']}: recipe {r['chosen']['mean_predicted']:.3f}, plain LR {r['baseline']['mean_predicted']:.3f}, observed {r['base_rate']:.3f}"
        )


def ceiling(table: pd.DataFrame, config: PropensityConfig, seconds_budget: float = 600) -> None:
    """Within-date AUC of models cross-fitted inside each rolling test window (same-period reference)."""
    dates = pd.to_datetime(table["contact_date"]).reset_index(drop=True)
    y = table["y"].to_numpy(dtype=int)
    names = ["logreg/raw", "logreg/interactions", "hist_gb/monotone"]
    print(
        f"\nSAME-PERIOD REFERENCE: models cross-fitted inside each test window (5 folds of whole dates) ({_load()})"
    )
    print(f"  {'test window':23s} " + " ".join(f"{n:>20s}" for n in names))
    started = time.perf_counter()
    per_model: dict[str, list[float]] = {n: [] for n in names}
    # most recent windows first: they are the ones the served model resembles
    for window in reversed(rolling_origin(dates, config.rolling_origins, config.rolling_horizon)):
        part = table.iloc[window.test].reset_index(drop=True)
        yy, dd = y[window.test], dates.iloc[window.test].reset_index(drop=True)
        groups = dd.dt.strftime("%Y-%m-%d").to_numpy()
        cells = []
        for name in names:
            spec = config.candidate(name)
            p = np.zeros(len(part))
            for tr, te in GroupKFold(n_splits=5).split(part, yy, groups):
                params = {"model__C": 0.1} if spec.estimator == "logreg" else {}
                pipe = set_model_params(build_pipeline(spec, config, calibrated=False), params)
                pipe.fit(part.iloc[tr], yy[tr])
                p[te] = pipe.predict_proba(part.iloc[te])[:, 1]
            auc = decision_metrics(date_stats(yy, p, dd))["within_date_auc"]
            per_model[name].append(auc)
            cells.append(f"{auc:20.3f}")
        print(f"  {str(dd.min().date())}..{str(dd.max().date())} " + " ".join(cells))
        if time.perf_counter() - started > seconds_budget:
            print("  (time budget reached)")
            break
    print("  mean                    " + " ".join(f"{np.mean(v):20.3f}" for v in per_model.values()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--profile", choices=["quick", "full"], default="quick", help="search profile (default quick)"
    )
    parser.add_argument(
        "--ceiling", action="store_true", help="also measure the same-period reference (slower)"
    )
    parser.add_argument("--bootstrap", type=int, default=None, help="bootstrap draws (default: the config's)")
    parser.add_argument(
        "--capacity-share", type=float, default=None, help="share of each date's contacts called"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the demo names/phones (not the model)")
    args = parser.parse_args()
    config = PropensityConfig()
    if args.bootstrap:
        config = config.model_copy(update={"bootstrap_samples": args.bootstrap})
    if args.capacity_share:
        config = config.model_copy(update={"capacity_share": args.capacity_share})
    customers, contacts = bank_tables(seed=args.seed)
    t0 = time.perf_counter()
    table = build_training_table(customers, contacts)
    print(f"training table: {len(table):,} labelled contacts in {time.perf_counter() - t0:.2f}s ({_load()})")
    t0 = time.perf_counter()
    result = train_propensity_model(table, config, args.profile, log=lambda m: print("  " + m, flush=True))
    wall = time.perf_counter() - t0
    report(result, config)
    print(
        f"\ntraining time, profile {args.profile}: {wall:.1f}s wall for the whole search, measurement and final refit ({_load()})"
    )
    if args.ceiling:
        ceiling(table, config)


if __name__ == "__main__":
    main()
