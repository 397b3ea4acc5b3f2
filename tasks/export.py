"""Export one database table into a dated lake partition: streaming, reconciled, atomic.

PostgreSQL streams ``COPY (SELECT ...) TO STDOUT``; other databases go through a server-side cursor and
the lake's CSV encoder. Compression and hashing run in a second thread (zlib and hashlib release the GIL),
so reading from the database and gzip overlap, like ``COPY | gzip`` does with two processes.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prefect import task
from prefect.tasks import exponential_backoff
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from callcast.csvio import RowEncoder, normalize_type
from callcast.database import explain_database_error, mask_secrets, masked_url, reflect_table
from callcast.errors import ConfigurationError, ReconciliationError, SourceDatabaseError, TransientError
from callcast.lake import Lake, utc_now_iso
from callcast.runtime import code_version, get_logger

ProgressCallback = Callable[[int, float], None]


class GzipHashWriter:
    """Writes bytes to a gzip file from a background thread, counting and hashing the compressed output."""

    def __init__(self, path: Path, level: int = 1, compress: bool = True) -> None:
        self.path = path
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=16)
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 31) if compress else None
        self._digest = hashlib.sha256()
        self.bytes_written = 0
        self._error: BaseException | None = None
        self._handle = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._thread = threading.Thread(target=self._run, name="gzip-writer", daemon=True)
        self._thread.start()

    def _emit(self, data: bytes) -> None:
        if data:
            self._handle.write(data)
            self._digest.update(data)
            self.bytes_written += len(data)

    def _run(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                self._emit(self._compressor.compress(chunk) if self._compressor else chunk)
            if self._compressor:
                self._emit(self._compressor.flush())
        except BaseException as exc:  # surfaced by write()/close()
            self._error = exc
            while self._queue.get() is not None:
                pass

    def write(self, data: bytes | memoryview) -> None:
        if self._error:
            raise self._error
        self._queue.put(bytes(data))

    def close(self) -> tuple[int, str]:
        """Finish the file; returns (bytes, sha256)."""
        self._queue.put(None)
        self._thread.join()
        self._handle.close()
        if self._error:
            raise self._error
        return self.bytes_written, self._digest.hexdigest()

    def abort(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._handle.close()
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class ExportSlice:
    """Which rows of a table one partition holds."""

    mode: str  # "snapshot" | "incremental"
    column: str | None = None
    low: Any = None  # exclusive
    high: Any = None  # inclusive

    def where(self, table: sa.Table) -> list[sa.ColumnElement[bool]]:
        if self.mode != "incremental":
            return []
        column = table.c[self.column]
        clauses = []
        if self.low is not None:
            clauses.append(column > self.low)
        if self.high is not None:
            clauses.append(column <= self.high)
        else:  # empty table so far: nothing to export
            clauses.append(sa.false())
        return clauses

    def manifest_watermark(self) -> dict[str, Any] | None:
        if self.mode != "incremental":
            return None
        return {"column": self.column, "low": _jsonable(self.low), "high": _jsonable(self.high)}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _parse_watermark(value: Any, column: sa.Column) -> Any:
    if value is None:
        return None
    kind = normalize_type(column.type)
    if kind in ("integer", "bigint"):
        return int(value)
    if kind == "timestamp":
        return datetime.fromisoformat(str(value))
    if kind == "date":
        return date.fromisoformat(str(value))
    return value


def plan_slice(
    conn: Connection, lake: Lake, table: sa.Table, partition_date: date, watermark_column: str | None
) -> ExportSlice:
    """Snapshot, or the incremental slice after the previous partition's watermark.

    A rerun of a date reuses the lower bound of its predecessor and stops at the next partition's lower
    bound, so reruns and backfills never duplicate rows across partitions.
    """
    if watermark_column is None:
        return ExportSlice("snapshot")
    if watermark_column not in table.c:
        raise ConfigurationError(
            f"Watermark column {watermark_column!r} is not a column of {table.name!r} "
            f"(columns: {', '.join(table.c.keys())}). Fix CALLCAST_EXPORT__INCREMENTAL."
        )
    column = table.c[watermark_column]
    prefix = f"raw/{table.name}"
    dates = lake.partitions(prefix)
    before = [d for d in dates if d < partition_date]
    after = [d for d in dates if d > partition_date]
    low = None
    if before:
        previous = lake.read_manifest(prefix, before[-1]).get("watermark") or {}
        low = _parse_watermark(previous.get("high", previous.get("low")), column)
    high = conn.execute(sa.select(sa.func.max(column))).scalar()
    if isinstance(high, str):
        high = _parse_watermark(high, column)
    if after:
        following = lake.read_manifest(prefix, after[0]).get("watermark") or {}
        cap = _parse_watermark(following.get("low"), column)
        if cap is not None and (high is None or cap < high):
            high = cap
    if low is not None and high is not None and high < low:
        high = low
    return ExportSlice("incremental", watermark_column, low, high)


def _light_select(table: sa.Table, where: list[sa.ColumnElement[bool]]) -> sa.Select:
    """SELECT of every column as raw driver values (no SQLAlchemy result processing)."""
    columns = [sa.type_coerce(table.c[name], sa.types.NullType()).label(name) for name in table.c.keys()]
    return sa.select(*columns).select_from(table).where(*where)


def _postgres_copy_select(conn: Connection, table: sa.Table, where) -> sa.Select:
    columns = []
    for column in table.c:
        # COPY writes booleans as t/f; the lake's dialect is true/false, which is boolean::text.
        expr = sa.cast(column, sa.Text) if normalize_type(column.type) == "boolean" else column
        columns.append(expr.label(column.name))
    return sa.select(*columns).select_from(table).where(*where)


def _copy_postgres(conn: Connection, table: sa.Table, where, writer: GzipHashWriter, progress) -> int:
    """COPY through the driver (psycopg): one Python iteration per row."""
    compiled = _postgres_copy_select(conn, table, where).compile(dialect=conn.dialect)
    sql = f"COPY ({compiled.string}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:
        with cursor.copy(sql, compiled.params or None) as copy:
            received = 0
            buffer = bytearray()
            for block in copy:
                buffer += block
                if len(buffer) >= 1 << 20:
                    writer.write(buffer)
                    received += len(buffer)
                    buffer = bytearray()
                    progress(received)
            if buffer:
                writer.write(buffer)
        return cursor.rowcount


def _conninfo(url: sa.URL) -> str:
    """A libpq connection string without the password (that one travels in PGPASSWORD)."""

    def quote(value: object) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    parts = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    parts.update({k: v for k, v in url.query.items() if isinstance(v, str)})
    return " ".join(f"{key}={quote(value)}" for key, value in parts.items() if value is not None)


def _copy_postgres_psql(
    conn: Connection, table: sa.Table, where, writer: GzipHashWriter, progress, psql: str
) -> tuple[int, int]:
    """COPY through ``psql`` in the same snapshot as our transaction (``SET TRANSACTION SNAPSHOT``).

    psql moves rows in C, like the baseline tools; the data arrives on a pipe in large blocks, pumped by a
    thread while our own connection counts the slice in the same snapshot. Returns (rows copied, rows counted).
    """
    snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
    select = _postgres_copy_select(conn, table, where).compile(
        dialect=conn.dialect, compile_kwargs={"literal_binds": True}
    )
    one_line = " ".join(str(select).split())
    read_fd, write_fd = os.pipe()
    script = (
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
        f"SET TRANSACTION SNAPSHOT '{snapshot}';\n"
        f"\\copy ({one_line}) TO '/dev/fd/{write_fd}' WITH (FORMAT csv, HEADER true)\n"
        "COMMIT;\n"
    )
    env = dict(os.environ)
    url = conn.engine.url
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    env.pop("PSQLRC", None)
    process = subprocess.Popen(
        [psql, "-X", "-v", "ON_ERROR_STOP=1", "-d", _conninfo(url), "-f", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=(write_fd,),
        env=env,
    )
    os.close(write_fd)
    pump_error: list[BaseException] = []

    def pump() -> None:
        received = 0
        try:
            while block := os.read(read_fd, 1 << 20):
                writer.write(block)
                received += len(block)
                progress(received)
        except BaseException as exc:  # re-raised below, after psql has finished
            pump_error.append(exc)
            while os.read(read_fd, 1 << 20):  # drain so psql can exit
                pass

    pumping = threading.Thread(target=pump, name="copy-pump", daemon=True)
    try:
        process.stdin.write(script.encode())
        process.stdin.close()
        pumping.start()
        expected = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
    finally:
        if pumping.ident is not None:  # started
            pumping.join()
        os.close(read_fd)
    out, err = process.stdout.read(), process.stderr.read()  # a few lines: COPY tags or an error
    if process.wait() != 0:
        detail = mask_secrets(err.decode(errors="replace").strip(), url).splitlines()
        raise SourceDatabaseError(
            f"psql COPY of {table.name!r} failed: {detail[-1] if detail else 'no message'}"
        )
    if pump_error:
        raise pump_error[0]
    match = re.search(rb"^COPY (\d+)$", out, re.MULTILINE)
    if not match:
        raise SourceDatabaseError(f"psql COPY of {table.name!r} reported no row count: {out[-200:]!r}")
    return int(match.group(1)), expected


def resolve_pg_client(choice: str) -> str | None:
    """Path of psql for ``auto``/``psql``, or None to use the driver."""
    if choice == "driver":
        return None
    found = shutil.which("psql")
    if choice == "psql" and found is None:
        raise ConfigurationError(
            "CALLCAST_EXPORT__POSTGRES_CLIENT=psql but psql is not on PATH; install "
            "postgresql-client or use 'auto'/'driver'."
        )
    return found


def _stream_generic(
    conn: Connection, table: sa.Table, where, writer: GzipHashWriter, fetch_rows: int, progress
) -> int:
    encoder = RowEncoder([normalize_type(c.type) for c in table.c])
    writer.write(encoder.header(table.c.keys()).encode())
    # A plain DBAPI cursor keeps per-row Row objects off the hot path; the statement's few values (the
    # watermark bounds) are rendered by the dialect's literal processors, identifiers quoted by it.
    sql = str(
        _light_select(table, where).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    )
    driver = conn.connection.driver_connection
    if conn.dialect.name in ("mysql", "mariadb"):
        import pymysql.cursors

        cursor = driver.cursor(pymysql.cursors.SSCursor)  # unbuffered: streams from the server
    else:
        cursor = driver.cursor()
    rows = 0
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(fetch_rows):
            writer.write(encoder.encode(batch).encode("utf-8"))
            rows += len(batch)
            progress(rows)
    finally:
        cursor.close()
    return rows


def write_table_csv(
    engine: Engine,
    lake: Lake,
    table_name: str,
    partition_date: date,
    out_path: Path,
    *,
    watermark_column: str | None = None,
    gzip_level: int | None = 1,
    fetch_rows: int = 50_000,
    postgres_client: str = "auto",
    on_progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Stream one table slice into ``out_path`` (gzip unless ``gzip_level`` is None) and reconcile counts.

    Returns the manifest fields describing the file (rows, bytes, sha256, columns, mode, watermark...).
    """
    table = reflect_table(engine, table_name)
    started = time.monotonic()
    started_at = utc_now_iso()
    isolation = {"postgresql": "REPEATABLE READ", "mysql": "REPEATABLE READ", "mariadb": "REPEATABLE READ"}
    options = {"isolation_level": isolation[engine.dialect.name]} if engine.dialect.name in isolation else {}
    writer: GzipHashWriter | None = None
    try:
        with engine.connect().execution_options(**options) as conn, conn.begin():
            export_slice = plan_slice(conn, lake, table, partition_date, watermark_column)
            where = export_slice.where(table)
            count = sa.select(sa.func.count()).select_from(table).where(*where)
            writer = GzipHashWriter(out_path, gzip_level or 1, compress=gzip_level is not None)
            last_report = [started]

            def progress(count: int) -> None:
                now = time.monotonic()
                if on_progress and now - last_report[0] >= 2.0:
                    last_report[0] = now
                    on_progress(count, now - started)

            psql = resolve_pg_client(postgres_client) if engine.dialect.name == "postgresql" else None
            if psql:
                rows, expected = _copy_postgres_psql(conn, table, where, writer, progress, psql)
            else:
                expected = conn.execute(count).scalar_one()
                if engine.dialect.name == "postgresql":
                    rows = _copy_postgres(conn, table, where, writer, progress)
                else:
                    rows = _stream_generic(conn, table, where, writer, fetch_rows, progress)
            size, sha256 = writer.close()
            writer = None
    except (OperationalError, DBAPIError) as exc:
        raise explain_database_error(exc, engine.url) from exc
    finally:
        if writer is not None:
            writer.abort()
    if rows != expected:
        out_path.unlink(missing_ok=True)
        raise ReconciliationError(
            f"Export of {table_name!r} for {partition_date} wrote {rows} rows but the source holds {expected} "
            "for that slice; nothing was published. Rerun the export; if it repeats, check the source for "
            "concurrent deletes."
        )
    return {
        "table": table_name,
        "rows": rows,
        "bytes": size,
        "sha256": sha256,
        "columns": [{"name": c.name, "type": normalize_type(c.type)} for c in table.c],
        "source": masked_url(engine.url),
        "mode": export_slice.mode,
        "watermark": export_slice.manifest_watermark(),
        "query": str(
            _light_select(table, where).compile(
                dialect=engine.dialect, compile_kwargs={"literal_binds": True}
            )
        )
        if export_slice.mode == "snapshot"
        else None,
        "started_at": started_at,
        "seconds": round(time.monotonic() - started, 3),
    }


def export_table(
    engine: Engine,
    lake: Lake,
    table_name: str,
    partition_date: date,
    *,
    watermark_column: str | None = None,
    gzip_level: int = 1,
    fetch_rows: int = 50_000,
    postgres_client: str = "auto",
) -> dict[str, Any]:
    """Export ``table_name`` to ``raw/<table>/dt=<date>/<table>.csv.gz`` + ``_manifest.json``; returns the manifest."""
    logger = get_logger()
    file_name = f"{table_name}.csv.gz"

    def report(rows: int, seconds: float) -> None:
        logger.info(
            "%s: %s rows so far (%s rows/s)", table_name, f"{rows:,}", f"{rows / max(seconds, 1e-9):,.0f}"
        )

    with lake.scratch_dir() as scratch:
        described = write_table_csv(
            engine,
            lake,
            table_name,
            partition_date,
            scratch / file_name,
            watermark_column=watermark_column,
            gzip_level=gzip_level,
            fetch_rows=fetch_rows,
            postgres_client=postgres_client,
            on_progress=report,
        )
        # files and finished_at are stamped by the commit itself
        manifest = {"table": table_name, "partition_date": partition_date.isoformat()}
        manifest |= {
            key: described[key]
            for key in (
                "rows",
                "bytes",
                "sha256",
                "columns",
                "source",
                "mode",
                "watermark",
                "query",
                "started_at",
            )
            if described[key] is not None or key == "watermark"
        }
        manifest["code_version"] = code_version()
        committed = lake.commit_partition(
            f"raw/{table_name}",
            partition_date,
            {file_name: scratch / file_name},
            manifest,
            file_meta={
                file_name: {
                    "rows": described["rows"],
                    "bytes": described["bytes"],
                    "sha256": described["sha256"],
                }
            },
        )
    logger.info(
        "%s: exported %s rows (%s) to %s in %.1fs",
        table_name,
        f"{committed['rows']:,}",
        committed["mode"],
        lake.describe(f"raw/{table_name}"),
        described["seconds"],
    )
    committed["seconds"] = described["seconds"]
    return committed


def _retry_transient(task, task_run, state) -> bool:
    """Retry only failures that can go away by themselves (network, locks, throttling)."""
    try:
        state.result()
    except TransientError:
        return True
    except (OSError, ConnectionError):
        return True
    except Exception:
        return False
    return False


@task(
    name="export-table",
    task_run_name="export-{table_name}",
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=2),
    retry_jitter_factor=0.2,
    retry_condition_fn=_retry_transient,
)
def export_table_task(table_name: str, partition_date: date, lake_url: str | None = None) -> dict[str, Any]:
    """Export one table. The database URL (a secret) comes from the settings, never from task parameters."""
    from callcast.database import make_engine
    from callcast.lake import open_lake
    from callcast.settings import get_settings

    settings = get_settings(**({"lake_url": lake_url} if lake_url else {}))
    engine = make_engine(settings.resolved_database_url())
    try:
        return export_table(
            engine,
            open_lake(settings),
            table_name,
            partition_date,
            watermark_column=settings.export.incremental.get(table_name),
            gzip_level=settings.export.gzip_level,
            fetch_rows=settings.export.fetch_rows,
            postgres_client=settings.export.postgres_client,
        )
    finally:
        engine.dispose()
