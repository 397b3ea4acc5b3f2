"""Export one database table into a dated lake partition: streaming, reconciled, atomic.

PostgreSQL streams ``COPY (SELECT ...) TO STDOUT``; other databases go through a server-side cursor and
the lake's CSV encoder. Compression and hashing run in a second thread (zlib and hashlib release the GIL),
so reading from the database and gzip overlap, like ``COPY | gzip`` does with two processes.
"""

from __future__ import annotations

import contextlib
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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from prefect import task
from prefect.events import emit_event
from prefect.tasks import exponential_backoff
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from callcast import catalog
from callcast.csvio import NulCharacterError, RowEncoder, normalize_type
from callcast.database import (
    connect_check,
    explain_database_error,
    mask_secrets,
    masked_url,
    reflect_table,
    resolve_tables,
    source_engine,
)
from callcast.errors import (
    CallcastError,
    ConfigurationError,
    ReconciliationError,
    SourceDatabaseError,
    TransientError,
)
from callcast.lake import Lake, open_lake, utc_now_iso
from callcast.runtime import code_version, get_logger
from callcast.settings import get_settings
from callcast.storage import explain_oserror, fault_point, is_permanent_oserror

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


class LateRowsError(SourceDatabaseError):
    """Rows arrived with a watermark at or below an exported slice and cannot be placed: nothing published."""


class FuturePartitionError(ConfigurationError):
    """A partition date after today (company time) was requested, or exists and would cap every slice."""


def refuse_future_date(partition_date: date, today: date, what: str = "export") -> None:
    """Refuse a partition date after ``today`` (the company's date): it would cap every later slice."""
    if partition_date > today:
        raise FuturePartitionError(
            f"Refusing to {what} partition date {partition_date.isoformat()}: it is after today "
            f"({today.isoformat()} in the company's time zone, CALLCAST_TIMEZONE). Check --date."
        )


@dataclass(frozen=True)
class ExportSlice:
    """Which rows of a table one partition holds.

    Incremental contract (recorded in the manifest's ``watermark`` and re-read exactly by a rerun):

    * the slice is the rows with ``low < watermark <= high`` (``low`` None: no lower bound; ``high`` None:
      empty slice), minus rows another partition already holds (same key and watermark);
    * plus late rows: rows with ``lookback_low < watermark <= low`` that no partition holds (the look-back
      window, ``CALLCAST_EXPORT__LOOKBACK``), listed by key in ``late_keys``;
    * a new partition after the newest one starts at the newest one's ``high``; a backfill (a date before or
      between existing partitions) gets only the gap between its neighbours' bounds — empty when they touch;
    * a rerun of an existing date re-reads that date's recorded bounds (never more);
    * rows whose watermark is NULL cannot be placed in any slice: the export is refused, naming the count.
    """

    mode: str  # "snapshot" | "incremental"
    column: str | None = None
    low: Any = None  # exclusive; None = unbounded below
    high: Any = None  # inclusive; None = empty slice
    lookback_low: Any = None  # exclusive lower end of the late-row window (== low without look-back)
    key: tuple[str, ...] = ()
    late_keys: tuple[tuple[Any, ...], ...] = ()
    held_keys: tuple[tuple[Any, ...], ...] = ()
    late_oldest: Any = None
    source_rows_through_low: int | None = None

    def _key_in(self, table: sa.Table, keys) -> sa.ColumnElement[bool]:
        columns = [table.c[k] for k in self.key]
        if len(columns) == 1:
            return columns[0].in_([k[0] for k in keys])
        return sa.tuple_(*columns).in_([tuple(k) for k in keys])

    def where(self, table: sa.Table) -> list[sa.ColumnElement[bool]]:
        if self.mode != "incremental":
            return []
        column = table.c[self.column]
        if self.high is None:
            main: sa.ColumnElement[bool] = sa.false()
        else:
            bounds = [column <= self.high] + ([column > self.low] if self.low is not None else [])
            main = sa.and_(*bounds)
            if self.held_keys:
                main = sa.and_(main, sa.not_(self._key_in(table, self.held_keys)))
        if self.late_keys:
            window = [column <= self.low] + (
                [column > self.lookback_low] if self.lookback_low is not None else []
            )
            main = sa.or_(main, sa.and_(*window, self._key_in(table, self.late_keys)))
        return [main]

    def manifest_watermark(self) -> dict[str, Any] | None:
        if self.mode != "incremental":
            return None
        return {
            "column": self.column,
            "low": _jsonable(self.low),
            "high": _jsonable(self.high),
            "lookback_low": _jsonable(self.lookback_low),
            "key": list(self.key),
            "late_rows": len(self.late_keys),
            "late_oldest": _jsonable(self.late_oldest),
            "excluded_rows": len(self.held_keys),
            "null_rule": "refused",
        }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def _canonical(value: Any, kind: str) -> Any:
    """One spelling of a value whatever produced it (driver object, SQLite text, lake CSV text)."""
    if value is None or value == "":
        return value
    if kind in ("integer", "bigint"):
        return int(value)
    if kind == "timestamp":
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return parsed.replace(tzinfo=None) if parsed.tzinfo is None else parsed
    if kind == "date":
        return (
            value
            if isinstance(value, date) and not isinstance(value, datetime)
            else date.fromisoformat(str(value)[:10])
        )
    if kind.startswith("decimal") or kind == "float":
        from decimal import Decimal

        return Decimal(str(value))
    return str(value)


def _parse_watermark(value: Any, column: sa.Column) -> Any:
    if value is None:
        return None
    return _canonical(value, normalize_type(column.type))


def _shift(value: Any, column: sa.Column, width: float) -> Any:
    """``value - width`` in the watermark's unit (ids for integers, days for dates and timestamps)."""
    kind = normalize_type(column.type)
    if kind in ("integer", "bigint"):
        return value - int(width)
    if kind in ("timestamp", "date"):
        from datetime import timedelta

        return value - timedelta(days=width)
    if kind.startswith("decimal") or kind == "float":
        from decimal import Decimal

        return value - Decimal(str(width))
    raise ConfigurationError(
        f"A look-back window needs a numeric, date or timestamp watermark; {column.name!r} is {kind}. "
        "Set CALLCAST_EXPORT__LOOKBACK for this table to 0."
    )


@dataclass
class _Bounds:
    low: Any
    high: Any
    lookback_low: Any


def _recorded_bounds(manifest: dict[str, Any], column: sa.Column) -> _Bounds:
    mark = manifest.get("watermark") or {}
    low = _parse_watermark(mark.get("low"), column)
    high = _parse_watermark(mark.get("high"), column)
    lookback_low = _parse_watermark(mark.get("lookback_low"), column) if "lookback_low" in mark else low
    return _Bounds(low, high, lookback_low)


def _overlaps(bounds: _Bounds, low: Any, high: Any) -> bool:
    """Whether a partition's rows (lookback_low, high] can meet the range (low, high]."""
    if bounds.high is None or high is None:
        return False
    if low is not None and bounds.high <= low:
        return False
    return bounds.lookback_low is None or bounds.lookback_low < high


def _held_pairs(
    lake: Lake,
    prefix: str,
    day: date,
    table: sa.Table,
    key: tuple[str, ...],
    column: str,
    manifest: dict,
    low: Any,
    high: Any,
) -> set[tuple[tuple[Any, ...], Any]]:
    """(key, watermark) of the rows a committed partition holds with ``low < watermark <= high``."""
    import csv
    import gzip

    kinds = {c["name"]: c["type"] for c in manifest.get("columns") or []}
    wm_kind = kinds.get(column, "string")
    found: set[tuple[tuple[Any, ...], Any]] = set()
    with lake.scratch_dir() as scratch:
        path = lake.fetch(prefix, day, catalog.raw_file_name(manifest.get("table") or table.name), scratch)
        with open(path, "rb") as probe:
            packed = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if packed else open
        with opener(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                return found
            key_at = [header.index(k) for k in key]
            key_kinds = [kinds.get(k, "string") for k in key]
            wm_at = header.index(column)
            for row in reader:
                mark = _canonical(row[wm_at], wm_kind)
                if (
                    mark is None
                    or mark == ""
                    or (low is not None and mark <= low)
                    or (high is not None and mark > high)
                ):
                    continue
                found.add(
                    (tuple(_canonical(row[i], k) for i, k in zip(key_at, key_kinds, strict=True)), mark)
                )
    return found


def plan_slice(
    conn: Connection,
    lake: Lake,
    table: sa.Table,
    partition_date: date,
    watermark_column: str | None,
    *,
    lookback: float = 0,
    late_rows: str = "include",
    today: date | None = None,
    prefix: str | None = None,
) -> ExportSlice:
    """Snapshot, or the incremental slice of ``partition_date`` under the contract of :class:`ExportSlice`."""
    if watermark_column is None:
        return ExportSlice("snapshot")
    if watermark_column not in table.c:
        raise ConfigurationError(
            f"Watermark column {watermark_column!r} is not a column of {table.name!r} "
            f"(columns: {', '.join(table.c.keys())}). Fix CALLCAST_EXPORT__INCREMENTAL."
        )
    column = table.c[watermark_column]
    kind = normalize_type(column.type)
    prefix = prefix or catalog.raw(table.name)
    key = tuple(c.name for c in table.primary_key.columns) or tuple(table.c.keys())

    nulls = conn.execute(sa.select(sa.func.count()).select_from(table).where(column.is_(None))).scalar_one()
    if nulls:
        raise SourceDatabaseError(
            f"{nulls} row(s) of {table.name!r} have NULL in the watermark column {watermark_column!r}; they "
            "cannot be placed in any incremental slice, so nothing was exported. Fill the column in the source "
            f"or export {table.name!r} as a snapshot (remove it from CALLCAST_EXPORT__INCREMENTAL)."
        )
    dates = lake.partitions(prefix)
    if today is not None and [d for d in dates if d > today]:
        future = [d.isoformat() for d in dates if d > today]
        raise FuturePartitionError(
            f"{lake.describe(prefix)} has partition(s) dated after today ({', '.join(future)}); they would cap "
            "every later slice. Delete those partition folders (written before future dates were refused), "
            "then rerun."
        )
    manifests = {d: lake.read_manifest(prefix, d) for d in dates}
    bounds = {d: _recorded_bounds(m, column) for d, m in manifests.items()}
    before = [d for d in dates if d < partition_date]
    after = [d for d in dates if d > partition_date]

    if partition_date in bounds:  # a rerun: exactly the recorded bounds
        own = bounds[partition_date]
        low, high, lookback_low = own.low, own.high, own.lookback_low
    else:
        low = bounds[before[-1]].high if before else None
        if low is None and before:  # the previous slices were empty: nothing exported yet
            low = None
        if after:  # a backfill: only the gap up to the next partition's lower bound
            high = bounds[after[0]].low
            if high is None or (low is not None and high < low):
                high = low
        else:
            high = conn.execute(sa.select(sa.func.max(column))).scalar()
            high = _parse_watermark(high, column)
            if high is not None and low is not None and high < low:
                high = low
        lookback_low = low
        if lookback and low is not None:
            lookback_low = _shift(low, column, lookback)
    if low is None and high is None:
        lookback_low = None

    # Rows of the range (lookback_low, high] that another partition already holds.
    scan_low = lookback_low if lookback_low is not None else low
    held: set[tuple[tuple[Any, ...], Any]] = set()
    for d in dates:
        if d != partition_date and _overlaps(bounds[d], scan_low, high):
            held |= _held_pairs(lake, prefix, d, table, key, watermark_column, manifests[d], scan_low, high)

    key_columns = [table.c[k] for k in key]
    key_kinds = [normalize_type(c.type) for c in key_columns]

    def canonical_pair(row) -> tuple[tuple[Any, ...], Any]:
        return tuple(_canonical(v, k) for v, k in zip(row[:-1], key_kinds, strict=True)), _canonical(
            row[-1], kind
        )

    late: list[tuple[tuple[Any, ...], Any]] = []
    if low is not None and lookback_low is not None and lookback_low != low:
        window = sa.select(*key_columns, column).where(column > lookback_low, column <= low)
        late = [pair for pair in map(canonical_pair, conn.execute(window)) if pair not in held]
    held_keys: list[tuple[Any, ...]] = []
    if high is not None and held:
        in_range = [k for k, w in held if w is not None and w <= high and (low is None or w > low)]
        if in_range:
            probe = ExportSlice("incremental", watermark_column, key=key)._key_in(table, in_range)
            current = sa.select(*key_columns, column).where(probe)
            held_keys = [k for k, w in map(canonical_pair, conn.execute(current)) if (k, w) in held]
    late_oldest = min((w for _, w in late), default=None)
    if late and late_rows == "fail":
        raise LateRowsError(
            f"{len(late)} late row(s) of {table.name!r} (watermark {watermark_column} at or below the last "
            f"exported {_jsonable(low)}, oldest {_jsonable(late_oldest)}) are in no partition; nothing was "
            "exported. Set CALLCAST_EXPORT__LATE_ROWS=include to pick them up in this slice."
        )

    # Rows later than the window (watermark at or below the window's floor, in no partition) fail the export.
    through_low = None
    if low is not None and not after and partition_date not in bounds:
        if watermark_column in key:  # an immutable watermark (it is the key): counting is exact and cheap
            through_low = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(column <= low)
            ).scalar_one()
            exported = sum(int(manifests[d].get("rows") or 0) for d in before)
            missing, oldest = through_low - exported - len(late), None
        else:  # a watermark that moves on update (updated_at): compare (key, watermark) pairs exactly
            floor = lookback_low if lookback_low is not None else low
            in_lake: set[tuple[tuple[Any, ...], Any]] = set()
            for d in before:
                in_lake |= _held_pairs(
                    lake, prefix, d, table, key, watermark_column, manifests[d], None, floor
                )
            current = sa.select(*key_columns, column).where(column <= floor)
            absent = [w for k, w in map(canonical_pair, conn.execute(current)) if (k, w) not in in_lake]
            through_low, missing, oldest = None, len(absent), min(absent, default=None)
        if missing > 0:
            raise LateRowsError(
                f"{missing} row(s) of {table.name!r} have a watermark ({watermark_column}) at or below "
                f"{_jsonable(lookback_low)}"
                + (f" (oldest {_jsonable(oldest)})" if oldest is not None else "")
                + ", older than the look-back window, and are in no partition; nothing was exported. Widen "
                "CALLCAST_EXPORT__LOOKBACK for this table (or re-export it as a snapshot), then rerun."
            )
    return ExportSlice(
        "incremental",
        watermark_column,
        low,
        high,
        lookback_low,
        key=key,
        late_keys=tuple(k for k, _ in late),
        held_keys=tuple(held_keys),
        late_oldest=late_oldest,
        source_rows_through_low=through_low,
    )


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
    compiled = _postgres_copy_select(conn, table, where).compile(
        dialect=conn.dialect,
        compile_kwargs={"render_postcompile": True},  # IN lists (late/held keys) expanded
    )
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


_PASSWORD_KEYS = ("password", "sslpassword")


def _conninfo(url: sa.URL) -> str:
    """A libpq connection string without any password (passwords travel in a 0600 passfile, never argv)."""

    def quote(value: object) -> str:
        return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"

    parts = {"host": url.host, "port": url.port, "user": url.username, "dbname": url.database}
    parts.update(
        {k: v for k, v in url.query.items() if isinstance(v, str) and k.lower() not in _PASSWORD_KEYS}
    )
    return " ".join(f"{key}={quote(value)}" for key, value in parts.items() if value is not None)


def _url_password(url: sa.URL) -> str | None:
    if url.password:
        return str(url.password)
    value = url.query.get("password")
    return value if isinstance(value, str) else None


@contextlib.contextmanager
def _psql_environment(url: sa.URL):
    """psql's environment: the password in a temporary 0600 passfile (removed on every exit path)."""
    import tempfile

    env = {k: v for k, v in os.environ.items() if k not in ("PGPASSWORD", "PSQLRC")}
    password = _url_password(url)
    if not password:
        yield env
        return

    def field(value: object) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    fd, path = tempfile.mkstemp(prefix="callcast-pgpass-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"*:*:*:*:{field(password)}\n")
        env["PGPASSFILE"] = path
        yield env
    finally:
        Path(path).unlink(missing_ok=True)


def _one_line(select_sql: str, table: sa.Table) -> str | None:
    """The compiled SELECT on one line for ``\copy`` (newlines only become spaces: quoted identifiers keep
    their exact spacing); None when an identifier itself holds a line break (the driver path is used)."""
    if any("\n" in name or "\r" in name for name in [table.name, *table.c.keys()]):
        return None
    return select_sql.replace("\r\n", " ").replace("\n", " ")


def _copy_postgres_psql(
    conn: Connection, table: sa.Table, where, writer: GzipHashWriter, progress, psql: str
) -> tuple[int, int] | None:
    """COPY through ``psql`` in the same snapshot as our transaction (``SET TRANSACTION SNAPSHOT``).

    psql moves rows in C, like the baseline tools; the data arrives on a pipe in large blocks, pumped by a
    thread while our own connection counts the slice in the same snapshot. Returns (rows copied, rows
    counted), or None when the query cannot travel on one psql line (the caller uses the driver).
    """
    query = _postgres_copy_select(conn, table, where)
    select = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
    with_params = str(query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True}))
    if str(select).count("\n") + str(select).count("\r") != with_params.count("\n") + with_params.count("\r"):
        return None  # a value in the query (e.g. a late row's text key) holds a line break
    one_line = _one_line(str(select), table)
    if one_line is None:
        return None
    snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
    read_fd, write_fd = os.pipe()
    script = (
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
        f"SET TRANSACTION SNAPSHOT '{snapshot}';\n"
        f"\\copy ({one_line}) TO '/dev/fd/{write_fd}' WITH (FORMAT csv, HEADER true)\n"
        "COMMIT;\n"
    )
    url = conn.engine.url
    with _psql_environment(url) as env:
        process = subprocess.Popen(
            [psql, "-X", "-w", "-v", "ON_ERROR_STOP=1", "-d", _conninfo(url), "-f", "-"],
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
        code = process.wait()
    if code != 0:
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
    encoder = RowEncoder(
        [normalize_type(c.type) for c in table.c], dynamic_typing=conn.dialect.name == "sqlite"
    )
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
            try:
                text = encoder.encode(batch)
            except NulCharacterError as exc:
                column = table.c.keys()[exc.column_index]
                row = batch[exc.row_index]
                keys = [c.name for c in table.primary_key.columns]
                where_key = ", ".join(f"{k}={row[table.c.keys().index(k)]!r}" for k in keys)
                raise SourceDatabaseError(
                    f"{table.name}.{column}: row {rows + exc.row_index + 1} of the export"
                    f"{f' ({where_key})' if where_key else ''} contains a NUL character (\\x00), which a CSV "
                    "export cannot carry; nothing was published. Remove it in the source (e.g. "
                    f"REPLACE({column}, CHAR(0), '')) and rerun."
                ) from exc
            writer.write(text.encode("utf-8"))
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
    lookback: float = 0,
    late_rows: str = "include",
    today: date | None = None,
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
            export_slice = plan_slice(
                conn, lake, table, partition_date, watermark_column,
                lookback=lookback, late_rows=late_rows, today=today, prefix=catalog.raw(table_name),
            )  # fmt: skip
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
            copied = _copy_postgres_psql(conn, table, where, writer, progress, psql) if psql else None
            if psql and copied is None:
                get_logger().warning(
                    "%s: an identifier or key value holds a line break, which psql's \\copy cannot carry; "
                    "using the driver.",
                    table_name,
                )
            if copied is not None:
                rows, expected = copied
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
    except OSError as exc:
        if is_permanent_oserror(exc):
            raise explain_oserror(exc, exc.filename or out_path) from exc
        raise
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
    lookback: float = 0,
    late_rows: str = "include",
    today: date | None = None,
) -> dict[str, Any]:
    """Export ``table_name`` to ``raw/<table>/dt=<date>/`` (data file + ``_manifest.json``); returns the manifest.

    One writer at a time: an incremental table is leased as a whole (its slices depend on each other), a
    snapshot per partition. ``today`` (the company's date) refuses future partition dates.
    """
    logger = get_logger()
    if today is not None:
        refuse_future_date(partition_date, today)
    prefix = catalog.raw(table_name)
    file_name = catalog.raw_file_name(table_name)

    def report(rows: int, seconds: float) -> None:
        logger.info(
            "%s: %s rows so far (%s rows/s)", table_name, f"{rows:,}", f"{rows / max(seconds, 1e-9):,.0f}"
        )

    scope = None if watermark_column else partition_date
    with lake.lease(prefix, scope, owner=f"export {table_name}") as lease, lake.scratch_dir() as scratch:
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
            lookback=lookback,
            late_rows=late_rows,
            today=today,
        )
        fault_point("export.file_written")
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
        try:
            committed = lake.commit_partition(
                prefix,
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
                lease=lease,
            )
        except OSError as exc:
            if is_permanent_oserror(exc):
                raise explain_oserror(exc, exc.filename or lake.describe(prefix)) from exc
            raise
    mark = committed.get("watermark") or {}
    if mark.get("late_rows"):
        logger.warning(
            "%s: %d late row(s) (watermark at or below the last exported one, oldest %s) picked up by the "
            "look-back window.",
            table_name,
            mark["late_rows"],
            mark.get("late_oldest"),
        )
    logger.info(
        "%s: exported %s rows (%s) to %s in %.1fs",
        table_name,
        f"{committed['rows']:,}",
        committed["mode"],
        lake.describe(catalog.partition(prefix, partition_date)),
        described["seconds"],
    )
    committed["seconds"] = described["seconds"]
    return committed


def _retry_transient(task, task_run, state) -> bool:
    """Retry only failures that can go away by themselves (network, locks, throttling), never a full disk."""
    try:
        state.result()
    except TransientError:
        return True
    except CallcastError:
        return False
    except OSError as exc:
        return not is_permanent_oserror(exc)
    except ConnectionError:
        return True
    except Exception:
        return False
    return False


def settings_export_options(settings: Any, table_name: str) -> dict[str, Any]:
    """The export options of one table from the settings (one place, for the task and the CLI)."""
    export = settings.export
    return {
        "watermark_column": export.incremental.get(table_name),
        "gzip_level": export.gzip_level,
        "fetch_rows": export.fetch_rows,
        "postgres_client": export.postgres_client,
        "lookback": export.lookback.get(table_name, 0),
        "late_rows": export.late_rows,
    }


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
    from callcast.database import source_engine
    from callcast.lake import open_lake
    from callcast.runtime import company_today
    from callcast.settings import get_settings

    settings = get_settings(**({"lake_url": lake_url} if lake_url else {}))
    refuse_future_date(partition_date, company_today(settings))
    engine = source_engine(settings.resolved_database_url())
    try:
        return export_table(
            engine,
            open_lake(settings),
            table_name,
            partition_date,
            today=company_today(settings),
            **settings_export_options(settings, table_name),
        )
    finally:
        engine.dispose()


# -- the flow's first and last steps ----------------------------------------------------------------------


def check_lake_writable(lake_url: str | None) -> str:
    """Write and remove a probe object, so an unwritable lake fails before any export starts."""
    lake = open_lake(get_settings(lake_url=lake_url))
    probe = catalog.probe(f"{os.getpid()}-{datetime.now(UTC).timestamp()}")
    lake.storage.put_bytes(probe, b"ok")
    lake.storage.delete(probe)
    return lake.describe()


@task(name="preflight", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=2))
def preflight(tables: list[str] | None, lake_url: str | None) -> list[str]:
    """Check the database and the lake answer, and resolve the table list from the catalog."""
    settings = get_settings()
    engine = source_engine(settings.resolved_database_url())  # a missing SQLite file is refused, not created
    try:
        connect_check(engine)
        resolved = resolve_tables(engine, tables or settings.export.tables, exclude=settings.export.exclude)
        source = masked_url(engine.url)
    finally:
        engine.dispose()
    where = check_lake_writable(lake_url)
    get_logger().info("Exporting %d table(s) from %s to %s", len(resolved), source, where)
    return resolved


def announce(manifest: dict[str, Any]) -> None:
    """Emit ``callcast.export.completed`` for one table with the manifest's summary."""
    emit_event(
        event="callcast.export.completed",
        resource={
            "prefect.resource.id": f"callcast.table.{manifest['table']}",
            "prefect.resource.name": manifest["table"],
        },
        payload={
            key: manifest.get(key)
            for key in (
                "table",
                "partition_date",
                "rows",
                "bytes",
                "sha256",
                "mode",
                "watermark",
                "code_version",
            )
        },
    )
