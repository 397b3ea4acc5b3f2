"""Monitoring figures on the demo company's closed loop.

1. Stable period: the phone team works through each day's call list for ``--stable-days`` simulated days;
   the monitoring runs every day; false alarms = days with ``drift_detected`` (rate and days reported).
2. Shift: ``DemoShift`` from the next day (existing customers' balance and age move, the hidden truth
   changes); the day monitoring first declares drift is reported (and whether it is the first shifted day).
3. Estimated (CBPE, at call time) vs realised (once outcomes arrive) within-date AUC of the called contacts,
   per call date: mean absolute error and bias; the holdout figure beside them.
4. Time and peak memory of one monitoring run on a 1-million-customer partition (customers resampled from the
   demo database), against a 45k-customer run measured in the same process.

Each day mirrors production: the simulator advances a day (calls from the latest list), the day's exports are
committed as validated partitions (the export and the checks have their own benchmarks), monitoring runs on
them, and the next list is the top ``capacity`` eligible customers by the champion's probability — the same
population, model and ranking the scoring flow uses (monitoring scores it anyway, and logs the scores).

Run: nice -n 10 .venv/bin/python benchmarks/monitoring_benchmark.py [--stable-days 60] [--million]
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def commit_validated(lake, table: str, frame: pd.DataFrame, day: date) -> None:
    """Commit ``frame`` as ``raw/<table>/dt=<day>/`` in the export's CSV dialect, marked as passed."""
    from callcast import catalog
    from callcast.csvio import RowEncoder, normalize_type
    from callcast.schema import metadata
    from tasks.checks import result_key

    columns = list(metadata.tables[table].columns)
    types = [normalize_type(c.type) for c in columns]
    values = frame[[c.name for c in columns]].astype(object)
    values = values.where(pd.notna(values), None)
    encoder = RowEncoder(types)
    text = encoder.header([c.name for c in columns]) + encoder.encode(list(values.itertuples(index=False)))
    with lake.scratch_dir() as scratch:
        path = scratch / catalog.raw_file_name(table)
        path.write_bytes(gzip.compress(text.encode("utf-8"), 1))
        lake.commit_partition(
            catalog.raw(table),
            day,
            {path.name: path},
            {
                "table": table,
                "rows": len(frame),
                "columns": [{"name": c.name, "type": t} for c, t in zip(columns, types, strict=True)],
                "mode": "snapshot" if table == "customers" else "incremental",
                "source": "benchmark",
            },
            file_meta={path.name: {"rows": len(frame)}},
        )
    result = {
        "table": table,
        "partition_date": day.isoformat(),
        "status": "passed",
        "failed_expectations": [],
    }
    lake.write_json(result_key(table, day), {**result, "rows_checked": len(frame)})


def commit_call_list(lake, day: date, ids: np.ndarray, probabilities: np.ndarray, version: str) -> None:
    """A call list partition in the contract's columns (names and phones are not needed by monitoring)."""
    from callcast import catalog

    n = len(ids)
    frame = pd.DataFrame(
        {
            "rank": np.arange(1, n + 1),
            "customer_id": ids,
            "name": "",
            "phone": "",
            "probability": np.round(probabilities, 6),
            "decile": 1,
            "reasons": "",
            "model_version": version,
        }
    )
    with lake.scratch_dir() as scratch:
        path = scratch / "call_list.csv"
        frame.to_csv(path, index=False)
        lake.commit_partition(
            catalog.call_lists(), day, {"call_list.csv": path}, {"table": "call_lists", "rows": n}
        )


class ClosedLoop:
    """The demo company, its lake and a champion, advanced one day at a time."""

    def __init__(self, home: Path, capacity: int, seed: int = 20260101) -> None:
        os.environ["CALLCAST_HOME"] = str(home)
        from callcast.database import make_engine
        from callcast.lake import open_lake
        from callcast.settings import get_settings
        from demo_company.database import build_demo_database

        self.settings = get_settings()
        self.capacity = capacity
        self.engine = make_engine(self.settings.resolved_database_url())
        build_demo_database(self.engine, size="tiny", seed=seed)
        self.lake = open_lake(self.settings)
        self.watermark: pd.Timestamp | None = None
        self.list_ids: list[int] | None = None
        self.day: date | None = None

    def tables(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        from callcast.schema import campaign_contacts, customers

        with self.engine.connect() as conn:
            cust = pd.read_sql(customers.select(), conn)
            query = campaign_contacts.select()
            if self.watermark is not None:
                query = query.where(campaign_contacts.c.updated_at > self.watermark.to_pydatetime())
            cont = pd.read_sql(query, conn)
        return cust, cont

    def export(self, day: date) -> None:
        customers, contacts = self.tables()
        commit_validated(self.lake, "customers", customers, day)
        commit_validated(self.lake, "campaign_contacts", contacts, day)
        if len(contacts):
            self.watermark = pd.to_datetime(contacts["updated_at"]).max()
        self.day = day

    def train_champion(self, candidate_name: str = "logreg/context_engineered") -> dict[str, Any]:
        """Fit one candidate on the labelled contacts so far and register it as the champion."""
        from models.propensity.config import PropensityConfig
        from models.propensity.estimators import build_pipeline
        from models.propensity.evaluation import evaluate
        from models.propensity.features import build_training_table
        from models.propensity.split import chronological_holdout
        from tasks import registry

        config = PropensityConfig()
        candidate = next(c for c in config.candidates if c.name == candidate_name)
        self.watermark = None
        customers, contacts = self.tables()
        table = build_training_table(customers, contacts, pd.Timestamp(self.day))
        window = chronological_holdout(table["contact_date"], 0.2)
        train, hold = table.iloc[window.train], table.iloc[window.test]
        check = build_pipeline(candidate, config).fit(train, train["y"].to_numpy())
        metrics = evaluate(hold["y"].to_numpy(), check.predict_proba(hold)[:, 1], hold["contact_date"])
        model = build_pipeline(candidate, config).fit(table, table["y"].to_numpy())
        fs = config.feature_sets[candidate.feature_set]
        info = {
            "candidate": candidate.name,
            "metrics": metrics,
            "features": {"categorical": fs.categorical, "numeric": fs.numeric},
            "inputs": [{"table": "customers", "partition_date": self.day.isoformat()}],
        }
        stored = registry.register_model(self.lake, "propensity", model, info)
        registry.set_alias(self.lake, "propensity", "champion", stored["version"])
        customers, contacts = self.tables()
        if len(contacts):
            self.watermark = pd.to_datetime(contacts["updated_at"]).max()
        return stored

    def monitor(self) -> dict[str, Any]:
        from tasks.monitoring import logged_scores, monitor_propensity

        with tempfile.TemporaryDirectory(prefix="bench-monitor-") as workdir:
            result = monitor_propensity(self.lake, self.day, self.settings, Path(workdir), with_charts=False)
        scores = logged_scores(self.lake, self.day).reset_index()
        top = scores.sort_values(["probability", "customer_id"], ascending=[False, True]).head(
            self.capacity * 3
        )
        commit_call_list(
            self.lake,
            self.day,
            top["customer_id"].to_numpy(),
            top["probability"].to_numpy(),
            result["document"]["version"],
        )
        self.list_ids = top["customer_id"].astype(int).tolist()
        return result["document"]

    def step(self, shift=None) -> tuple[dict[str, Any], dict[str, Any]]:
        from demo_company.database import advance_one_day

        added = advance_one_day(self.engine, shift, called_customer_ids=self.list_ids, capacity=self.capacity)
        self.export(added["day"])
        return added, self.monitor()


def closed_loop(stable_days: int, shifted_days: int, capacity: int, kind: str = "population") -> None:
    from demo_company.database import DemoShift

    with tempfile.TemporaryDirectory(prefix="bench-loop-") as home:
        started = time.perf_counter()
        loop = ClosedLoop(Path(home), capacity)
        loop.export(date(2010, 11, 30))
        champion = loop.train_champion()
        first = loop.monitor()
        print(
            f"champion {champion['version']} ({champion['candidate']}): holdout ROC AUC "
            f"{champion['metrics']['roc_auc']:.3f}; reference estimated AUC {first['reference']['expected_auc']:.3f}"
            f"; setup {time.perf_counter() - started:.0f} s"
        )
        docs = []
        for _ in range(stable_days):
            added, doc = loop.step()
            docs.append(doc)
            real = (doc["performance"]["realised"] or {}).get("within_date_auc")
            print(
                f"  stable {added['day']} calls {added['contacts']:>3} outcomes {added['outcomes']:>3} "
                f"status {doc['status']:<8} pred PSI {doc['prediction_psi']:.3f} max feature PSI "
                f"{max(f['psi'] for f in doc['features']):.3f} realised AUC {real if real is None else round(real, 3)}",
                flush=True,
            )
        false_alarms = [d["partition_date"] for d in docs if d["drift_detected"]]
        shift_day = loop.day + timedelta(days=1)
        if kind == "truth":  # concept drift only: the customers stay, the world's answers change
            shift = DemoShift(start=shift_day, truth_change=1.0)
        else:
            shift = DemoShift(
                start=shift_day, existing_share=0.6, balance_factor=0.25, age_offset=12, truth_change=1.0
            )
        print(f"shift ({kind}) from {shift_day}: {shift.model_dump(exclude_defaults=True)}")
        shifted = []
        for i in range(shifted_days):
            added, doc = loop.step(shift if i == 0 else None)
            shifted.append(doc)
            real = doc["performance"]["realised"] or {}
            print(
                f"  shifted {added['day']} status {doc['status']:<8} realised AUC "
                f"{real.get('within_date_auc') or float('nan'):.3f} (95% up to "
                f"{(real.get('within_date_auc_ci95') or [None, float('nan')])[1] or float('nan'):.3f}) vs expected "
                f"{real.get('expected_within_date_auc') or float('nan'):.3f}; reasons: {'; '.join(doc['reasons'])[:160]}",
                flush=True,
            )
        detected = [d["partition_date"] for d in shifted if d["drift_detected"]]
        per_date = {}
        for d in [*docs, *shifted]:
            for row in d.get("per_date", []):
                per_date[row["contact_date"]] = row  # the latest view of each call date
        frame = pd.DataFrame(per_date.values())
        stable_end = docs[-1]["partition_date"]
        print("\n== figures ==")
        print(
            f"false alarms over {len(docs)} stable simulated days ({docs[0]['partition_date']} .. {stable_end}): "
            f"{len(false_alarms)} (rate {len(false_alarms) / len(docs):.3f}) {false_alarms}"
        )
        max_psi = max(max(f["psi"] for f in d["features"]) for d in docs)
        max_pred = max(d["prediction_psi"] for d in docs)
        print(f"  stable period: largest feature PSI {max_psi:.3f}, largest prediction PSI {max_pred:.3f}")
        print(
            f"shift injected from {shift_day}: first detection {detected[0] if detected else 'none'} "
            f"({'the first shifted day' if detected and detected[0] == shift_day.isoformat() else 'see above'})"
        )
        for group, rows in (
            ("stable", frame[frame["contact_date"] <= stable_end]),
            ("shifted", frame[frame["contact_date"] > stable_end]),
        ):
            rows = rows.dropna(subset=["expected_auc", "realised_auc"])
            if len(rows):
                err = rows["expected_auc"] - rows["realised_auc"]
                w = rows["calls"]
                print(
                    f"estimated vs realised within-date AUC, {group} call dates ({len(rows)} dates, "
                    f"{int(w.sum())} calls): mean abs error {err.abs().mean():.3f}, bias {err.mean():+.3f}, "
                    f"call-weighted realised {np.average(rows['realised_auc'], weights=w):.3f} vs estimated "
                    f"{np.average(rows['expected_auc'], weights=w):.3f}"
                )
        print(f"loop wall time {time.perf_counter() - started:.0f} s")


def million(n: int) -> None:
    """Time and peak memory of one monitoring run on an ``n``-customer partition (and on the demo's 45k)."""
    from tasks.monitoring import monitor_propensity

    with tempfile.TemporaryDirectory(prefix="bench-million-") as home:
        loop = ClosedLoop(Path(home), capacity=500)
        day0 = date(2010, 11, 30)
        loop.export(day0)
        loop.train_champion()
        loop.monitor()  # builds the reference (45k) once
        customers, contacts = loop.tables()
        loop.watermark = None
        _, all_contacts = loop.tables()
        base = customers
        rng = np.random.default_rng(1)
        extra = base.iloc[rng.integers(0, len(base), n - len(base))].copy()
        extra["customer_id"] = np.arange(len(base) + 1, n + 1)
        big = pd.concat([base, extra], ignore_index=True)
        day1 = day0 + timedelta(days=1)
        commit_validated(loop.lake, "customers", big, day1)
        commit_validated(loop.lake, "campaign_contacts", all_contacts.head(0), day1)
        for label, day, rows in (("45k", day0, len(base)), (f"{n / 1e6:.0f}M", day1, n)):
            tracemalloc.start()
            wall, cpu = time.perf_counter(), time.process_time()
            with tempfile.TemporaryDirectory() as workdir:
                doc = monitor_propensity(loop.lake, day, loop.settings, Path(workdir))["document"]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(
                f"monitoring on {rows:,} customers ({label}): {wall:.1f} s wall, {cpu:.1f} s CPU, peak Python "
                f"allocations {peak / 2**20:,.0f} MiB; {doc['sample']['rows']:,} eligible scored; status {doc['status']}"
            )
        print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stable-days", type=int, default=60)
    parser.add_argument("--shifted-days", type=int, default=3)
    parser.add_argument("--capacity", type=int, default=150, help="calls per business day")
    parser.add_argument("--million", action="store_true", help="also time a 1M-customer partition")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument(
        "--shift-kind",
        choices=["population", "truth"],
        default="population",
        help="population: customers and truth move; truth: only the hidden truth (concept drift)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if not args.skip_loop:
        closed_loop(args.stable_days, args.shifted_days, args.capacity, args.shift_kind)
    if args.million:
        million(args.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
