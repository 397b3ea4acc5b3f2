"""Fault injection: does the lake ever lose, duplicate, rewind or leak? Real processes, real databases.

Prints four figures:

1. Incremental contract: N random sequences of inserts, late inserts (inside and beyond the look-back window),
   updates, daily runs, reruns and backfills (SQLite; the same runner is tested on PostgreSQL) → rows lost,
   (key, watermark) pairs duplicated, late rows picked up, late rows reported (export failed, then rerun
   with a wider window by the "operator").
2. Crash points: a real export (and a plain two-file commit, like a call list's) killed with SIGKILL at each
   named step of the commit → is every visible partition complete and verified, which version is visible,
   does a rerun repair, are files or leases left behind.
3. Concurrency: trials of two fresh processes committing the same partition at the same instant (a barrier
   releases both) → inconsistent outcomes (a manifest that does not verify, no partition, a writer crash,
   orphan files).
4. Secrets: a password in each URL form (``user:pw@``, ``?password=``) exporting from PostgreSQL through psql
   and through the driver → occurrences in the lake, the logs, ``ps`` output while psql runs, psql's argv,
   Prefect's database (a flow run with the URL in the environment) and MLflow's database.

    nice -n 10 .venv/bin/python benchmarks/fault_injection.py                 # N=200, 200 trials
    nice -n 10 .venv/bin/python benchmarks/fault_injection.py --sequences 50 --trials 50 --skip-prefect
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PG = os.environ.get("CALLCAST_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "Bench-S3cret-pw"


def property_figures(sequences: int, work: Path) -> dict:
    import sqlalchemy as sa

    from tests.unit.test_incremental_property import run_sequence

    logging.getLogger("callcast").setLevel(logging.ERROR)
    work.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{work / 'property.db'}")
    totals = {"sequences": 0, "failed": 0, "rows": 0, "lost": 0, "duplicated": 0, "wrong_version": 0}
    totals |= {"late_included": 0, "late_reported": 0, "exports": 0}
    started = time.perf_counter()
    for seed in range(sequences):
        updates = seed % 4 == 3  # a quarter of the sequences update rows (an updated_at-style watermark)
        outcome = run_sequence(engine, work / f"lake-{seed}", 10_000 + seed, steps=30, updates=updates)
        totals["sequences"] += 1
        totals["failed"] += not outcome.ok
        totals["rows"] += outcome.rows_in_table
        totals["lost"] += outcome.lost
        totals["duplicated"] += outcome.duplicated
        totals["wrong_version"] += outcome.stale_versions_wrong
        totals["late_included"] += outcome.late_included
        totals["late_reported"] += outcome.late_reported
        totals["exports"] += outcome.exports
        subprocess.run(["rm", "-rf", str(work / f"lake-{seed}")], check=False)
    totals["seconds"] = round(time.perf_counter() - started, 1)
    engine.dispose()
    return totals


_COMMIT_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import date
    from pathlib import Path
    from callcast.lake import Lake
    from callcast.storage import LocalStorage
    lake = Lake(LocalStorage(sys.argv[1]))
    files = {name: Path(path) for name, path in zip(sys.argv[2::2], sys.argv[3::2])}
    lake.commit_partition("call_lists", date(2026, 11, 24), files, {"table": "call_list"})
    """
)


def commit_crash_trial(point: str, work: Path) -> dict:
    """A plain two-file commit (like a call list: csv + xlsx) killed at ``point``, then rerun."""
    from callcast.lake import Lake
    from callcast.storage import LocalStorage

    work.mkdir(parents=True, exist_ok=True)
    lake_dir = work / "lake"
    lake = Lake(LocalStorage(lake_dir))
    day = date(2026, 11, 24)

    def version(tag: str) -> list[str]:
        csv, xlsx = work / f"{tag}.csv", work / f"{tag}.xlsx"
        csv.write_text(f"rank,customer_id\n1,{tag}\n" * 100)
        xlsx.write_bytes(tag.encode() * 500)
        return ["call_list.csv", str(csv), "call_list.xlsx", str(xlsx)]

    def run(args: list[str], fault: str | None = None) -> int:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("CALLCAST_FAULT_POINT", None)
        if fault:
            env["CALLCAST_FAULT_POINT"] = fault
        return subprocess.run([sys.executable, "-c", _COMMIT_CHILD, str(lake_dir), *args], env=env).returncode

    assert run(version("old")) == 0
    old = lake.read_manifest("call_lists", day)["commit_id"]
    code = run(version("new"), fault=point)
    visible = lake.has_partition("call_lists", day)
    problems = lake.verify_partition("call_lists", day) if visible else ["not visible"]
    which = "old" if visible and lake.read_manifest("call_lists", day)["commit_id"] == old else "new"
    repaired = run(version("new")) == 0 and lake.verify_partition("call_lists", day) == []
    leftovers = [k for k in lake.storage.list("call_lists/") if "/_leases/" not in k]
    return {
        "point": point,
        "killed": code == -9,
        "consistent_after_crash": visible and not problems,
        "version_after_crash": which,
        "repaired": repaired,
        "leftover_files": len(leftovers) - 3,
        "lease_released": not [k for k in lake.storage.list("call_lists/_leases/") if k.endswith(".lease")],
    }


def crash_figures(work: Path) -> list[dict]:
    from tests.integration.test_lake_faults import CRASH_POINTS, crash_trial

    rows = []
    for point in CRASH_POINTS:
        rows.append({"kind": "export", **crash_trial(point, work / f"export-{point}")})
    for point in CRASH_POINTS[1:]:
        if point.startswith("storage.") or point.startswith("lake."):
            rows.append({"kind": "commit (2 files)", **commit_crash_trial(point, work / f"commit-{point}")})
    return rows


_RACER = textwrap.dedent(
    """
    import sys, os, time
    from datetime import date
    from pathlib import Path
    from callcast.lake import Lake
    from callcast.storage import LocalStorage
    lake = Lake(LocalStorage(sys.argv[1]), lock_wait_seconds=60)
    name, go = sys.argv[2], Path(sys.argv[3])
    path = Path(sys.argv[4])
    path.write_text(f"writer\\n{name}\\n" * 200)
    print("READY", flush=True)
    while not go.exists():
        time.sleep(0.0005)
    lake.commit_partition("raw/race", date(2026, 11, 24), {"race.csv": path}, {"table": "race", "writer": name})
    """
)


def concurrency_figures(trials: int, work: Path) -> dict:
    """``trials`` × two fresh processes released by a barrier onto the same partition."""
    from callcast.lake import Lake
    from callcast.storage import LocalStorage

    lake_dir = work / "race-lake"
    lake = Lake(LocalStorage(lake_dir))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CALLCAST_FAULT_POINT", None)
    outcome = {"trials": 0, "inconsistent": 0, "writer_failures": 0, "no_partition": 0, "orphans": 0}
    winners = {"A": 0, "B": 0}
    started = time.perf_counter()
    for trial in range(trials):
        go = work / f"go-{trial}"
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _RACER,
                    str(lake_dir),
                    name,
                    str(go),
                    str(work / f"{name}-{trial}.csv"),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in ("A", "B")
        ]
        for proc in procs:
            proc.stdout.readline()  # READY: imports done, data written
        go.touch()
        codes = [proc.wait(timeout=120) for proc in procs]
        for proc in procs:
            proc.stdout.close()
            proc.stderr.close()
        outcome["trials"] += 1
        failures = sum(code != 0 for code in codes)
        visible = lake.has_partition("raw/race", date(2026, 11, 24))
        problems = lake.verify_partition("raw/race", date(2026, 11, 24)) if visible else ["missing"]
        files = [k for k in lake.storage.list("raw/race/dt=2026-11-24/")]
        outcome["writer_failures"] += failures
        outcome["no_partition"] += not visible
        outcome["orphans"] += len(files) != 2
        outcome["inconsistent"] += bool(failures or problems or len(files) != 2)
        if visible:
            winners[lake.read_manifest("raw/race", date(2026, 11, 24))["writer"]] += 1
        go.unlink()
    outcome["last_writer_won"] = winners
    outcome["seconds"] = round(time.perf_counter() - started, 1)
    return outcome


def secret_figures(work: Path, with_prefect: bool) -> list[dict]:
    import sqlalchemy as sa

    from callcast.database import make_engine
    from tests.integration.test_lake_faults import secret_url_forms

    engine = make_engine(PG)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS secretive")
        conn.exec_driver_sql("CREATE TABLE secretive (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO secretive SELECT g, 'v' || g FROM generate_series(1, 300000) g")
    engine.dispose()
    rows = []
    log_path = work / "secrets.log"
    handler = logging.FileHandler(log_path)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    for form, url in secret_url_forms(sa.make_url(PG), SECRET).items():
        for client in ("psql", "driver"):
            rows.append(_secret_run(form, url, client, work, log_path, handler))
    rows.append(_detector_control(work))
    if with_prefect:
        rows.append(prefect_secret_figure(work))
    return rows


def _detector_control(work: Path) -> dict:
    """The detectors on purpose-made leaks (a file holding the URL, a process with it in argv): they must fire."""
    from tests.integration.test_lake_faults import find_secret

    leak = work / "control" / "leak.txt"
    leak.parent.mkdir(parents=True, exist_ok=True)
    leak.write_text(f"postgresql://u:{SECRET}@h/db")
    sleeper = subprocess.Popen(["sh", "-c", "sleep 2", SECRET])  # argv visible to ps
    time.sleep(0.3)
    seen = SECRET in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    sleeper.kill()
    sleeper.wait()
    return {
        "form": "control (planted leaks)",
        "lake": find_secret(SECRET, [leak.parent], []),
        "ps": int(seen),
    }


def _secret_run(form: str, url: str, client: str, work: Path, log_path: Path, handler) -> dict:
    from tasks import export as export_module
    from tests.integration.test_lake_faults import find_secret

    real_popen = subprocess.Popen
    argvs: list[str] = []
    seen_in_ps: list[bool] = []
    stop = threading.Event()

    class Spy(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args, *rest, **kwargs):
            argvs.append(" ".join(map(str, args)))
            super().__init__(args, *rest, **kwargs)

    def watch_ps() -> None:
        while not stop.is_set():
            out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            seen_in_ps.append(SECRET in out)
            time.sleep(0.02)

    os.environ["CALLCAST_DATABASE_URL"] = url
    os.environ["CALLCAST_EXPORT__POSTGRES_CLIENT"] = client
    lake_dir = work / f"lake-{client}-{form.strip('?:@=')}"
    watcher = threading.Thread(target=watch_ps, daemon=True)
    export_module.subprocess.Popen = Spy
    watcher.start()
    try:
        manifest = export_module.export_table_task.fn("secretive", date.today(), lake_url=str(lake_dir))
    finally:
        stop.set()
        watcher.join()
        export_module.subprocess.Popen = real_popen
    handler.flush()
    return {
        "form": form,
        "client": client,
        "rows": manifest["rows"],
        "lake": find_secret(SECRET, [lake_dir], []),
        "logs": find_secret(SECRET, [log_path], []),
        "psql_argv": sum(SECRET in a for a in argvs),
        "ps": sum(seen_in_ps),
        "ps_samples": len(seen_in_ps),
    }


_PREFECT_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import date
    from flows.export import daily_export
    manifests = daily_export(partition_date=date.fromisoformat(sys.argv[1]), tables=["secretive"], lake_url=sys.argv[2])
    print("ROWS", manifests[0]["rows"])
    """
)


def prefect_secret_figure(work: Path) -> dict:
    """The export flow run in a fresh PREFECT_HOME (its own server and database), password in the env URL."""
    import sqlalchemy as sa

    from callcast.runtime import company_today
    from tests.integration.test_lake_faults import find_secret, secret_url_forms

    home = work / "prefect-home"
    home.mkdir(exist_ok=True)
    url = secret_url_forms(sa.make_url(PG), SECRET)["?password="]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(home), "CALLCAST_DATABASE_URL": url}
    env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "CALLCAST_HOME": str(work / "callcast-home")}
    env |= {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600", "CALLCAST_SERVER__AUTOSTART": "false"}
    env.pop("PREFECT_API_URL", None)
    env.pop("CALLCAST_EXPORT__POSTGRES_CLIENT", None)
    mlflow_dir = ROOT / ".callcast"
    done = subprocess.run(
        [sys.executable, "-c", _PREFECT_CHILD, company_today().isoformat(), str(work / "lake-flow")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    mlflow_files = [p for p in [mlflow_dir / "mlflow.db", work / "callcast-home" / "mlflow.db"] if p.exists()]
    return {
        "form": "?password= (flow run)",
        "client": "auto",
        "rows": done.stdout.split("ROWS")[-1].strip()
        if "ROWS" in done.stdout
        else f"failed: {done.stderr[-300:]}",
        "lake": find_secret(SECRET, [work / "lake-flow"], []),
        "logs": find_secret(SECRET, [], [done.stdout, done.stderr]),
        "prefect_db": find_secret(SECRET, [home], []),
        "prefect_db_holds_the_run": find_secret("daily-export", [home], []) > 0,  # the grep saw a real db
        "mlflow_db": find_secret(SECRET, mlflow_files, []),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=200)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--skip-prefect", action="store_true", help="skip the Prefect flow-run secret check")
    parser.add_argument("--only", choices=["property", "crash", "concurrency", "secrets"], nargs="*")
    args = parser.parse_args()
    only = set(args.only or ["property", "crash", "concurrency", "secrets"])
    with tempfile.TemporaryDirectory(prefix="callcast-faults-") as tmp:
        work = Path(tmp)
        if "property" in only:
            p = property_figures(args.sequences, work / "property")
            print(f"\n## Incremental contract: {p['sequences']} random sequences, {p['exports']} exports, "
                  f"{p['rows']} source rows ({p['seconds']} s)")  # fmt: skip
            print(f"rows lost {p['lost']} · (key, watermark) duplicated {p['duplicated']} · wrong newest version "
                  f"{p['wrong_version']} · failed sequences {p['failed']}")  # fmt: skip
            print(f"late rows picked up by the look-back window {p['late_included']} · exports that reported "
                  f"rows beyond the window (non-zero exit, then widened) {p['late_reported']}")  # fmt: skip
        if "crash" in only:
            print("\n## Crash points (SIGKILL)")
            print("| kind | point | killed | visible+verified after crash | version seen | rerun repairs | "
                  "leftover files | lease freed |")  # fmt: skip
            print("|---|---|---|---|---|---|---|---|")
            for r in crash_figures(work / "crash"):
                print(f"| {r['kind']} | `{r['point']}` | {r['killed']} | {r['consistent_after_crash']} | "
                      f"{r['version_after_crash']} | {r['repaired']} | {r['leftover_files']} | "
                      f"{r['lease_released']} |")  # fmt: skip
        if "concurrency" in only:
            (work / "race").mkdir(parents=True, exist_ok=True)
            c = concurrency_figures(args.trials, work / "race")
            print(f"\n## Concurrency: {c['trials']} trials of two processes committing one partition "
                  f"({c['seconds']} s)")  # fmt: skip
            print(f"inconsistent outcomes {c['inconsistent']} (writer failures {c['writer_failures']}, no "
                  f"partition {c['no_partition']}, orphan files {c['orphans']}); last writer: "
                  f"{c['last_writer_won']}")  # fmt: skip
        if "secrets" in only:
            (work / "secrets").mkdir(parents=True, exist_ok=True)
            print("\n## Secrets: occurrences of the password")
            for r in secret_figures(work / "secrets", not args.skip_prefect):
                print("  " + ", ".join(f"{k}={v}" for k, v in r.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
