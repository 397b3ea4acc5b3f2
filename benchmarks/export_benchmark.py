"""Export speed and memory against the databases' own CSV tools, measured in the same run.

PostgreSQL: ``psql \\copy (...) TO file CSV HEADER`` and ``\\copy ... | gzip -1`` versus callcast's export
(uncompressed and gzip), at each size. SQLite: the ``sqlite3`` shell's CSV mode versus callcast's generic
streaming path. Every export runs in a child process so its peak RSS is its own.

    .venv/bin/python benchmarks/export_benchmark.py            # 1M and 5M rows
    .venv/bin/python benchmarks/export_benchmark.py --rows 200000,1000000
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PG_ADMIN = os.environ.get("CALLCAST_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/test")
SALES_DDL = """CREATE TABLE sales (sale_id BIGINT PRIMARY KEY, sale_date DATE NOT NULL, store_id INTEGER NOT NULL,
 product_id INTEGER NOT NULL, quantity INTEGER NOT NULL, unit_price NUMERIC(10,2) NOT NULL,
 revenue NUMERIC(12,2) NOT NULL, on_promotion BOOLEAN NOT NULL, is_holiday BOOLEAN NOT NULL)"""


def run_child(argv: list[str]) -> tuple[float, float]:
    """Run an export in a child process; returns (export seconds, peak RSS MiB of that process).

    The seconds are measured inside the child around the export call: interpreter start-up and imports
    (paid once per flow run, not per table) are left out.
    """
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"command failed: {' '.join(argv)}")
    return float(out.split("ELAPSED")[-1]), usage.ru_maxrss / 1024


def run_shell(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.perf_counter() - started


def child_export(url: str, out: str, level: str, client: str = "auto") -> None:
    """Child mode: export table ``sales`` into ``out`` with callcast's exporter; prints the seconds."""
    from callcast.database import make_engine
    from callcast.lake import Lake
    from callcast.storage import LocalStorage
    from tasks.export import write_table_csv

    engine = make_engine(url)
    scratch = Path(out).parent / "lake"
    started = time.perf_counter()
    write_table_csv(
        engine,
        Lake(LocalStorage(scratch)),
        "sales",
        date(2026, 1, 1),
        Path(out),
        gzip_level=None if level == "none" else int(level),
        postgres_client=client,
    )
    print(f"ELAPSED {time.perf_counter() - started:.4f}")
    engine.dispose()


def fill_postgres(url: str, rows: int) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS sales")
        conn.exec_driver_sql(SALES_DDL)
        conn.exec_driver_sql(
            "INSERT INTO sales SELECT i, date '2021-01-01' + (i / 5000)::int, 1 + i % 40, 1 + (i / 40) % 160, "
            "1 + (i * 7919) % 13, round((4.99 + (i % 997) * 0.37)::numeric, 2), "
            "round(((1 + (i * 7919) % 13) * (4.99 + (i % 997) * 0.37))::numeric, 2), i % 11 = 0, i % 50 = 0 "
            f"FROM generate_series(1::bigint, {rows}::bigint) AS i".replace("%", "%%")  # psycopg placeholders
        )
        conn.exec_driver_sql("ANALYZE sales")
    engine.dispose()


def fill_sqlite(path: Path, rows: int) -> None:
    path.unlink(missing_ok=True)
    script = (
        SALES_DDL.replace("BIGINT PRIMARY KEY", "INTEGER PRIMARY KEY") + ";\n"
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < " + str(rows) + ")\n"
        "INSERT INTO sales SELECT i, date('2021-01-01', '+' || (i / 5000) || ' days'), 1 + i % 40, "
        "1 + (i / 40) % 160, 1 + (i * 7919) % 13, round(4.99 + (i % 997) * 0.37, 2), "
        "round((1 + (i * 7919) % 13) * (4.99 + (i % 997) * 0.37), 2), i % 11 = 0, i % 50 = 0 FROM s;\n"
    )
    subprocess.run(["sqlite3", str(path)], input=script, text=True, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", default="1000000,5000000", help="comma-separated table sizes")
    parser.add_argument("--child", nargs=4, metavar=("URL", "OUT", "LEVEL", "CLIENT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_export(*args.child)
        return
    sizes = [int(x) for x in args.rows.split(",")]
    work = Path(tempfile.mkdtemp(prefix="callcast-bench-"))
    me = [sys.executable, str(Path(__file__).resolve()), "--child"]
    import sqlalchemy as sa

    admin = sa.create_engine(
        PG_ADMIN.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS callcast_bench WITH (FORCE)")
        conn.exec_driver_sql("CREATE DATABASE callcast_bench")
    pg_url = sa.make_url(PG_ADMIN).set(database="callcast_bench").render_as_string(hide_password=False)
    psql = f"psql -X -q -d '{pg_url}'"
    results = []
    try:
        for rows in sizes:
            fill_postgres(pg_url, rows)
            plain, gz = work / "psql.csv", work / "psql.csv.gz"
            base_plain = run_shell(f"{psql} -c \"\\copy (SELECT * FROM sales) TO '{plain}' CSV HEADER\"")
            base_gzip = run_shell(
                f'{psql} -c "\\copy (SELECT * FROM sales) TO STDOUT CSV HEADER" | gzip -1 > {gz}'
            )
            ours_plain, rss_plain = run_child([*me, pg_url, str(work / "ours.csv"), "none", "auto"])
            ours_gzip, rss_gzip = run_child([*me, pg_url, str(work / "ours.csv.gz"), "1", "auto"])
            results.append(
                ("postgresql", rows, base_plain, ours_plain, rss_plain, base_gzip, ours_gzip, rss_gzip, None)
            )
            drv_plain, drv_rss_plain = run_child([*me, pg_url, str(work / "ours.csv"), "none", "driver"])
            drv_gzip, drv_rss_gzip = run_child([*me, pg_url, str(work / "ours.csv.gz"), "1", "driver"])
            results.append(
                (
                    "pg/driver",
                    rows,
                    base_plain,
                    drv_plain,
                    drv_rss_plain,
                    base_gzip,
                    drv_gzip,
                    drv_rss_gzip,
                    None,
                )
            )
            for f in work.glob("*.csv*"):
                f.unlink()
        db = work / "bench.db"
        rows = sizes[-1]
        fill_sqlite(db, rows)
        base_plain = run_shell(f"sqlite3 -csv -header {db} 'SELECT * FROM sales' > {work / 'sqlite.csv'}")
        base_gzip = run_shell(
            f"sqlite3 -csv -header {db} 'SELECT * FROM sales' | gzip -1 > {work / 'sqlite.csv.gz'}"
        )
        ours_plain, rss_plain = run_child([*me, f"sqlite:///{db}", str(work / "ours.csv"), "none", "auto"])
        ours_gzip, rss_gzip = run_child([*me, f"sqlite:///{db}", str(work / "ours.csv.gz"), "1", "auto"])
        results.append(
            ("sqlite", rows, base_plain, ours_plain, rss_plain, base_gzip, ours_gzip, rss_gzip, None)
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP DATABASE IF EXISTS callcast_bench WITH (FORCE)")

    print()
    print("Export of a sales table (9 columns), wall seconds; baselines measured in the same run")
    print(
        f"{'database':<11}{'rows':>10}  {'baseline':>9}{'callcast':>9}{'ratio':>7}{'RSS MiB':>9}   "
        f"{'base+gz':>8}{'cc gz':>8}{'ratio':>7}{'RSS MiB':>9}"
    )
    for db_name, rows, bp, op, rp, bg, og, rg, _ in results:
        print(
            f"{db_name:<11}{rows:>10,}  {bp:>9.2f}{op:>9.2f}{op / bp:>6.2f}x{rp:>9.0f}   "
            f"{bg:>8.2f}{og:>8.2f}{og / bg:>6.2f}x{rg:>9.0f}"
        )
    print(
        "baseline: psql \\copy ... CSV HEADER (PostgreSQL) / sqlite3 -csv (SQLite); base+gz: the same piped "
        "into gzip -1.\npostgresql = COPY through psql in the export's snapshot (default when psql is on PATH); "
        "pg/driver = COPY through psycopg.\ncallcast seconds exclude interpreter start-up; they include the "
        "count(*) reconciliation query and the SHA-256 of the file."
    )
    pg = [r for r in results if r[0] == "postgresql"]
    if len(pg) > 1:
        print(
            f"peak RSS from {pg[0][1]:,} to {pg[-1][1]:,} rows: {pg[0][7]:.0f} -> {pg[-1][7]:.0f} MiB (gzip path)"
        )


if __name__ == "__main__":
    main()
