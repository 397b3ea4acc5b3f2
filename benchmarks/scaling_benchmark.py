"""Scaling figures measured on this machine, each against its baseline in the same run.

``search``: the propensity candidate search (every candidate x setting of ``--profile`` on the bank-full training
part) three ways, with the same seed:

1. plain serial functions in this process (``search_candidate`` per candidate: what training did before) -- the
   baseline;
2. the Prefect subflow with the trials as tasks run in-process one at a time (Prefect's overhead);
3. the same subflow on prefect-dask's ``DaskTaskRunner``, a local cluster of ``--workers`` processes that the
   flow starts itself (cluster start-up and the workers' first imports included in the wall time);
4. the same subflow on a standing cluster (``dask scheduler`` + ``dask worker --nworkers <workers>`` on
   127.0.0.1, as ``CALLCAST_DASK_ADDRESS`` would name), timed on its second run (warm workers, the big
   company's set-up).

The three must choose the same setting per candidate with the same selection AUC (checked to 1e-12), hence the
same winner; the script fails otherwise.

``pipeline``: one end-to-end daily run, ``callcast pipeline --date <date>`` on the tiny demo company, with the
local Prefect server on SQLite (baseline) and on PostgreSQL (a fresh database on 127.0.0.1, asyncpg). Each backend
gets a fresh CALLCAST_HOME; the server is started first (its start-up timed apart), then the run is timed. With
``--repeat 2`` the runs go SQLite, PostgreSQL, PostgreSQL, SQLite (a drifting machine load cancels out). Then a
write probe: ``--probe-flows`` flows of ``--probe-tasks`` trivial tasks each, started at once in separate
processes, against each server: task runs per second and "database is locked" lines in the server's log.

    .venv/bin/python benchmarks/scaling_benchmark.py search [--profile full] [--every 1] [--workers 2]
    .venv/bin/python benchmarks/scaling_benchmark.py pipeline [--size tiny] [--date 2026-11-23]
    .venv/bin/python benchmarks/scaling_benchmark.py table

``table``: the per-contact cost of the training table (CPU seconds and bytes per labelled contact) at 1/4, 1/2 and
all of bank-full, for the extrapolation to a big company's contact history.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CALLCAST = Path(sys.executable).with_name("callcast")
PG_ADMIN_URL = os.environ.get("CALLCAST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TOL = 1e-12


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min), {os.cpu_count()} CPUs"


_BURN = "import time; t = time.process_time(); x = sum(i * i for i in range(6_000_000)); print(time.process_time() - t)"


def free_cores(n: int = 2) -> float:
    """How many cores ``n`` CPU-bound processes got at once: ``n`` x (one alone's wall / their mean wall).

    The machine is shared: a parallel speed-up cannot exceed the cores other jobs leave free.
    """

    def wall(k: int) -> float:
        t0 = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", _BURN], stdout=subprocess.DEVNULL) for _ in range(k)]
        for proc in procs:
            proc.wait()
        return time.perf_counter() - t0

    alone = min(wall(1) for _ in range(2))
    together = min(wall(n) for _ in range(2))
    return n * alone / together


def _winner(outcomes: dict[str, tuple[dict[str, Any], float]]) -> str:
    """The candidate with the best selection AUC (the training's tie rule: the shorter name)."""
    return max(outcomes, key=lambda n: (outcomes[n][1], -len(n)))


def _same(a: dict[str, tuple[dict[str, Any], float]], b: dict[str, tuple[dict[str, Any], float]]) -> bool:
    return a.keys() == b.keys() and all(a[n][0] == b[n][0] and abs(a[n][1] - b[n][1]) <= TOL for n in a)


MODES = ("serial", "inprocess", "local", "standing")


def bench_search(
    profile: str, every: int, workers: int, tmp: Path, modes: tuple[str, ...] = MODES
) -> dict[str, Any]:
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(tmp / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from prefect.task_runners import ThreadPoolTaskRunner
    from threadpoolctl import threadpool_limits

    from callcast.runtime import dask_task_runner, ensure_prefect_api
    from demo_company.bank import bank_tables, load_bank_full
    from flows.candidate_search import search_candidates
    from models.propensity.config import PropensityConfig
    from models.propensity.features import build_training_table
    from models.propensity.training import search_candidate, search_plan, training_part

    for name in ("distributed", "prefect.task_runner.dask", "prefect"):
        logging.getLogger(name).setLevel(logging.WARNING)  # the figures, not the cluster's chatter
    config = PropensityConfig()
    bank = load_bank_full().iloc[::every].reset_index(drop=True)
    table = build_training_table(*bank_tables(seed=3, bank=bank))
    path = tmp / "training_table.pkl"
    table.to_pickle(path)
    X, y, dates = training_part(table, config)
    plan = search_plan(config, profile)  # type: ignore[arg-type]
    specs = config.candidates_for(profile)  # type: ignore[arg-type]
    print(
        f"candidate search, profile {profile}: {len(specs)} candidates, {len(plan)} trials, "
        f"{len(X):,} training-part rows ({len(table):,} labelled contacts); {_load()}",
        flush=True,
    )
    cores = free_cores(workers)
    print(f"  free cores now: {workers} CPU-bound processes at once ran like {cores:.2f} cores", flush=True)
    rows: dict[str, dict[str, Any]] = {}

    t0 = time.perf_counter()
    with threadpool_limits(limits=config.threads):
        found = {
            c.name: search_candidate(c, X, y, dates, config, profile)  # type: ignore[arg-type]
            for c in specs
        }
    rows["serial functions (baseline)"] = {
        "wall": time.perf_counter() - t0,
        "outcomes": {n: (p, s) for n, (p, s, _, _) in found.items()},
    }
    print(f"  serial functions: {rows['serial functions (baseline)']['wall']:.1f} s", flush=True)

    if set(modes) - {"serial"}:
        t0 = time.perf_counter()
        ensure_prefect_api()
        print(
            f"  (local Prefect API for the subflows started in {time.perf_counter() - t0:.1f} s)", flush=True
        )

    def timed(label: str, runner: Any) -> None:
        t0 = time.perf_counter()
        summary = search_candidates.with_options(task_runner=runner)(
            str(path), str(tmp), profile, config, None, label
        )
        wall = time.perf_counter() - t0
        outcomes = pickle.loads(Path(summary["path"]).read_bytes())  # noqa: S301 - written just now
        rows[label] = {
            "wall": wall,
            "inside": summary["wall_seconds"],
            "span": summary["trials_span_seconds"],
            "processes": summary["processes"],
            "trial_seconds": summary["trial_seconds"],
            "outcomes": {n: (o.params, o.selection_auc) for n, o in outcomes.items()},
        }
        print(f"  {label}: {wall:.1f} s", flush=True)

    if "inprocess" in modes:
        timed("Prefect tasks, in-process", ThreadPoolTaskRunner(max_workers=1))
    if "local" in modes:
        timed(
            f"Prefect tasks, Dask local cluster started by the flow, {workers} workers",
            dask_task_runner(None, workers),
        )
    if "standing" in modes:
        with standing_cluster(workers, tmp) as address:
            timed("(warm-up run on the standing cluster)", dask_task_runner(address, workers))
            rows.pop("(warm-up run on the standing cluster)")
            timed(
                f"Prefect tasks, standing Dask cluster, {workers} workers (warm)",
                dask_task_runner(address, workers),
            )

    base_label = "serial functions (baseline)"
    base = rows[base_label]
    for label, row in rows.items():
        if not _same(base["outcomes"], row["outcomes"]):
            raise SystemExit(f"{label} chose differently from the serial search: {row['outcomes']}")
    winner = _winner(base["outcomes"])
    print(
        f"\nsame setting and selection AUC (to {TOL:g}) for all {len(specs)} candidates in every mode; "
        f"winner by selection AUC: {winner} ({base['outcomes'][winner][1]:.4f}, {base['outcomes'][winner][0]})"
    )
    print(
        "| mode | wall time | speed-up vs serial | inside the subflow | first trial start to last end "
        "| processes | sum of trial seconds |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, row in rows.items():
        inside = f"{row['inside']:.1f} s" if "inside" in row else "—"
        span = f"{row['span']:.1f} s" if "span" in row else "—"
        print(
            f"| {label} | {row['wall']:.1f} s | {base['wall'] / row['wall']:.2f}x | {inside} | {span} | "
            f"{row.get('processes', 1)} | {row.get('trial_seconds', base['wall']):.1f} s |"
        )
    after = free_cores(workers)
    print(
        f"free cores before / after: {cores:.2f} / {after:.2f} (the most a {workers}-worker speed-up can be); {_load()}"
    )
    return rows


@contextlib.contextmanager
def standing_cluster(workers: int, tmp: Path) -> Iterator[str]:
    """``dask scheduler`` and ``dask worker`` processes on 127.0.0.1 reporting to this process's Prefect API."""
    from callcast.runtime import prefect_worker_environment

    dask = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    env = {**os.environ, **prefect_worker_environment()}
    log = open(tmp / "dask.log", "wb")  # noqa: SIM115 - closed after the processes
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 120
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the dask scheduler did not start")
            time.sleep(0.3)
        worker = subprocess.Popen(
            [dask, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", str(workers), "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout=120) as client:
            client.wait_for_workers(workers, timeout=300)
        yield f"tcp://127.0.0.1:{port}"
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        log.close()


def bench_table() -> None:
    """CPU time and memory of the training table per labelled contact, at three sizes (linear or not)."""
    from demo_company.bank import bank_tables, load_bank_full
    from models.propensity.features import build_training_table

    bank = load_bank_full()
    print(f"training table from customers + contacts; {_load()}")
    print("| contacts | CPU seconds | wall seconds | µs CPU per contact | bytes per contact |")
    print("|---:|---:|---:|---:|---:|")
    for every in (4, 2, 1):
        customers, contacts = bank_tables(seed=3, bank=bank.iloc[::every].reset_index(drop=True))
        cpu, wall = time.process_time(), time.perf_counter()
        table = build_training_table(customers, contacts)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        size = table.memory_usage(deep=True).sum()
        print(
            f"| {len(table):,} | {cpu:.2f} | {wall:.2f} | {cpu / len(table) * 1e6:.1f} | {size / len(table):.0f} |"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(argv: list[str], env: dict[str, str], timeout: float = 3600) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


PROBE = """
import sys, time
from prefect import flow, task

@task
def noop(i: int) -> int:
    return i

@flow(name="write-probe")
def probe(n: int) -> int:
    return sum(noop(i) for i in range(n))

t0 = time.perf_counter()
probe(int(sys.argv[1]))
print(time.perf_counter() - t0)
"""


def _probe(env: dict[str, str], api_url: str, flows: int, tasks: int) -> tuple[float, int]:
    """``flows`` processes each running a flow of ``tasks`` trivial tasks at once: wall seconds, failures."""
    env = {**env, "PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "ERROR"}
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", PROBE, str(tasks)], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(flows)
    ]  # fmt: skip
    failed = sum(p.wait(timeout=1800) != 0 for p in procs)
    return time.perf_counter() - t0, failed


def _count_runs(api_url: str) -> tuple[int, int]:
    import httpx

    flows = httpx.post(f"{api_url}/flow_runs/count", json={}, timeout=30).json()
    tasks = httpx.post(f"{api_url}/task_runs/count", json={}, timeout=30).json()
    return int(flows), int(tasks)


def bench_pipeline(
    size: str, day: str, forecast: bool, repeat: int, probe_flows: int, probe_tasks: int, tmp: Path
) -> dict[str, dict[str, float]]:
    import sqlalchemy as sa

    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLCAST_", "PREFECT_"))}
    base_env.update(
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        GX_ANALYTICS_ENABLED="false",
        MPLBACKEND="Agg",
    )
    seeded = tmp / "seeded"
    seconds, _ = _run([str(CALLCAST), "seed", "--size", size], {**base_env, "CALLCAST_HOME": str(seeded)})
    print(
        f"daily run (callcast pipeline --date {day}) on the {size} demo company (seeded in {seconds:.0f} s)"
    )
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    order = ["SQLite", "PostgreSQL"]
    for i in range(1, repeat):
        order += order[-2:][::-1] if i % 2 else order[:2]
    results: dict[str, list[dict[str, float]]] = {"SQLite": [], "PostgreSQL": []}
    databases = []
    try:
        for n, backend in enumerate(order):
            home = tmp / f"{backend.lower()}-{n}"
            home.mkdir()
            shutil.copyfile(seeded / "callcast.db", home / "callcast.db")
            port = _free_port()
            env = {
                **base_env,
                "CALLCAST_HOME": str(home),
                "CALLCAST_SERVER__PORT": str(port),
                "CALLCAST_SERVER__AUTOSTART": "true",
            }
            if backend == "PostgreSQL":
                database = f"callcast_bench_{os.getpid()}_{n}"
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
                databases.append(database)
                url = sa.make_url(PG_ADMIN_URL).set(drivername="postgresql+asyncpg", database=database)
                env["PREFECT_API_DATABASE_CONNECTION_URL"] = url.render_as_string(hide_password=False)
            start = [
                sys.executable,
                "-c",
                "from callcast.settings import get_settings; from deployments.server import start_server; "
                "print(start_server(get_settings()))",
            ]
            api_url = f"http://127.0.0.1:{port}/api"
            try:
                started, _ = _run(start, env, timeout=600)
                argv = [str(CALLCAST), "pipeline", "--date", day]
                if not forecast:
                    argv.append("--no-forecast")
                print(f"  {backend}: server started in {started:.1f} s; running the pipeline ... ({_load()})",
                      flush=True)  # fmt: skip
                seconds, _ = _run(argv, env)
                flows, tasks = _count_runs(api_url)
                row = {"server": started, "pipeline": seconds, "flows": flows, "tasks": tasks}
                if probe_flows and n < 2:
                    wall, failed = _probe(env, api_url, probe_flows, probe_tasks)
                    log = home / "logs" / "prefect-server.log"
                    locked = (
                        log.read_text(errors="replace").count("database is locked") if log.exists() else 0
                    )
                    row.update(probe=wall, probe_failed=failed, locked=locked)
                results[backend].append(row)
                print(f"  {backend}: pipeline {seconds:.1f} s ({flows} flow runs, {tasks} task runs); {_load()}",
                      flush=True)  # fmt: skip
            finally:
                subprocess.run([str(CALLCAST), "stop"], env=env, cwd=ROOT, capture_output=True, timeout=120)
    finally:
        with admin.connect() as conn:
            for database in databases:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.dispose()
    mean = {b: sum(r["pipeline"] for r in rows) / len(rows) for b, rows in results.items()}
    print(f"run order: {', '.join(order)}")
    print("| Prefect database | server start | daily run (each) | mean | vs SQLite | flow runs | task runs |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend, rows in results.items():
        each = " / ".join(f"{r['pipeline']:.1f}" for r in rows)
        print(
            f"| {backend} | {rows[0]['server']:.1f} s | {each} s "
            f"| {mean[backend]:.1f} s | {mean[backend] / mean['SQLite']:.2f}x | {rows[0]['flows']:.0f} "
            f"| {rows[0]['tasks']:.0f} |"
        )
    if probe_flows:
        total = probe_flows * probe_tasks
        print(
            f"write probe: {probe_flows} flows x {probe_tasks} trivial tasks started at once ({total} task runs)"
        )
        print(
            "| Prefect database | wall | task runs/s | vs SQLite | failed flows | 'database is locked' in log |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        base = results["SQLite"][0]["probe"]
        for backend, rows in results.items():
            r = rows[0]
            print(
                f"| {backend} | {r['probe']:.1f} s | {total / r['probe']:.1f} | {base / r['probe']:.2f}x "
                f"| {r['probe_failed']:.0f} | {r['locked']:.0f} |"
            )
    print(_load())
    return {b: rows[0] for b, rows in results.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("part", choices=["search", "pipeline", "table", "all"], help="which figures to measure")
    p.add_argument("--profile", default="full", choices=["quick", "full", "large"], help="search profile")
    p.add_argument("--every", type=int, default=1, help="use every n-th bank-full row (1 = all 45,211)")
    p.add_argument("--workers", type=int, default=2, help="local Dask workers")
    p.add_argument(
        "--modes", default=",".join(MODES), help=f"search modes to time after the serial baseline: {MODES}"
    )
    p.add_argument("--size", default="tiny", choices=["tiny", "small", "demo"], help="demo company size")
    p.add_argument("--date", default="2026-11-23", help="the daily run's partition date")
    p.add_argument("--no-forecast", action="store_true", help="leave the forecasts out of the daily run")
    p.add_argument("--repeat", type=int, default=1, help="daily runs per backend (ABBA order)")
    p.add_argument("--probe-flows", type=int, default=4, help="write probe: flows at once (0 = no probe)")
    p.add_argument("--probe-tasks", type=int, default=50, help="write probe: trivial tasks per flow")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="callcast-scaling-") as tmp:
        if a.part in ("table", "all"):
            bench_table()
        if a.part in ("search", "all"):
            modes = tuple(m.strip() for m in a.modes.split(",") if m.strip())
            bench_search(a.profile, a.every, a.workers, Path(tmp) / "search", modes)
        if a.part in ("pipeline", "all"):
            (Path(tmp) / "pipeline").mkdir()
            bench_pipeline(
                a.size,
                a.date,
                not a.no_forecast,
                a.repeat,
                a.probe_flows,
                a.probe_tasks,
                Path(tmp) / "pipeline",
            )


if __name__ == "__main__":
    main()
