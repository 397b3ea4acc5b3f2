"""The daily export against real databases (PostgreSQL, MariaDB, SQLite) and real storage (disk, Azurite)."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from callcast.csvio import parse_exact
from callcast.database import make_engine
from callcast.errors import ReconciliationError, SourceDatabaseError, StorageError
from callcast.lake import MANIFEST_NAME, Lake
from callcast.settings import get_settings
from callcast.storage import LocalStorage, open_storage
from demo_company.database import advance_one_day, build_demo_database
from tasks import export as export_module
from tasks.export import export_table

pytestmark = pytest.mark.integration
DAY1, DAY2 = date(2026, 11, 24), date(2026, 11, 25)

TRICKY_ROWS = [
    # id, text, note (nullable), amount (exact decimal), flag, day, moment
    (
        1,
        "",
        None,
        Decimal("12345678901234.567890"),
        True,
        date(2024, 2, 29),
        datetime(2024, 2, 29, 23, 59, 59, 123456),
    ),
    (
        2,
        'He said "hi", then left',
        "",
        Decimal("-0.000001"),
        False,
        date(1999, 12, 31),
        datetime(2000, 1, 1, 0, 0),
    ),
    (3, "line one\nline two\r\nline three", "NULL", Decimal("0"), None, None, None),
    (
        4,
        "Ünïcødé — São João, 東京, emoji 📞",
        "NA",
        None,
        True,
        date(2030, 1, 1),
        datetime(2030, 1, 1, 12, 0, 0),
    ),
    (
        5,
        " leading and trailing ",
        ",",
        Decimal("1.5"),
        False,
        date(2024, 1, 1),
        datetime(2024, 1, 1, 1, 2, 3),
    ),
]


def _tricky_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "tricky",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("text", sa.String(200), nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("amount", sa.Numeric(20, 6), nullable=True),
        sa.Column("flag", sa.Boolean, nullable=True),
        sa.Column("day", sa.Date, nullable=True),
        sa.Column("moment", sa.DateTime, nullable=True),
    )


def _expected_text(row: tuple) -> list[str | None]:
    identifier, text, note, amount, flag, day, moment = row
    return [
        str(identifier),
        text,
        note,
        None if amount is None else str(amount),
        None if flag is None else ("true" if flag else "false"),
        None if day is None else day.isoformat(),
        None if moment is None else moment,
    ]


def _read_partition(lake: Lake, table: str, day: date) -> tuple[dict, list[list[str | None]]]:
    manifest = lake.read_manifest(f"raw/{table}", day)
    data = lake.read_bytes(f"raw/{table}", day, f"{table}.csv.gz")  # resolved and verified via the manifest
    rows = parse_exact(gzip.decompress(data).decode("utf-8"))
    return manifest, rows


@pytest.mark.parametrize("backend", ["postgresql", "postgresql-driver", "mariadb", "sqlite"])
def test_tricky_values_round_trip_exactly(backend, request, tmp_path, monkeypatch):
    """COPY through psql, COPY through psycopg and the generic path all write the database's exact values."""
    url = {
        "postgresql": lambda: request.getfixturevalue("postgres_url"),
        "postgresql-driver": lambda: request.getfixturevalue("postgres_url"),
        "mariadb": lambda: request.getfixturevalue("mariadb_url"),
        "sqlite": lambda: f"sqlite:///{tmp_path / 'src.db'}",
    }[backend]()
    engine = make_engine(url)
    metadata = sa.MetaData()
    table = _tricky_table(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [dict(zip(table.c.keys(), row, strict=True)) for row in TRICKY_ROWS])
    lake = Lake(LocalStorage(tmp_path / "lake"))

    client = "driver" if backend == "postgresql-driver" else "auto"
    if client == "driver":  # the driver variant must not go through psql

        def no_psql(*args, **kwargs):
            raise AssertionError("psql path used although postgres_client='driver'")

        monkeypatch.setattr(export_module, "_copy_postgres_psql", no_psql)
    manifest = export_table(engine, lake, "tricky", DAY1, postgres_client=client)
    _, rows = _read_partition(lake, "tricky", DAY1)

    assert rows[0] == ["id", "text", "note", "amount", "flag", "day", "moment"]
    body = sorted(rows[1:], key=lambda r: int(r[0]))
    assert len(body) == len(TRICKY_ROWS) == manifest["rows"]
    # Compare with what the database holds, as its driver returns it: SQLite keeps NUMERIC as a double,
    # MariaDB's DATETIME drops microseconds.
    with engine.connect() as conn:
        held = conn.exec_driver_sql("SELECT amount, moment FROM tricky ORDER BY id").all()
    for got, row, (amount, moment) in zip(body, TRICKY_ROWS, held, strict=True):
        want = _expected_text(row)
        assert got[:3] + got[4:6] == want[:3] + want[4:6], f"row {row[0]} differs"
        assert (got[3] is None and amount is None) or Decimal(got[3]) == Decimal(str(amount))
        if backend != "sqlite":  # SQLite keeps NUMERIC as a double
            assert (got[3] is None and row[3] is None) or Decimal(got[3]) == row[3]
        assert (got[6] is None and moment is None) or datetime.fromisoformat(
            got[6]
        ) == datetime.fromisoformat(str(moment))
    assert [c["name"] for c in manifest["columns"]] == [
        "id",
        "text",
        "note",
        "amount",
        "flag",
        "day",
        "moment",
    ]
    assert {c["name"]: c["type"] for c in manifest["columns"]}["amount"] == "decimal(20,6)"
    assert manifest["source"].split("://")[0] in url
    engine.dispose()


@pytest.fixture
def demo_pg(postgres_url):
    engine = make_engine(postgres_url)
    build_demo_database(engine, size="tiny", seed=11)
    yield engine
    engine.dispose()


def test_export_manifest_contract_and_reconciliation(demo_pg, tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    manifest = export_table(demo_pg, lake, "customers", DAY1)
    stored = json.loads((tmp_path / "lake" / "raw/customers/dt=2026-11-24" / MANIFEST_NAME).read_text())
    for key in (
        "table",
        "partition_date",
        "rows",
        "bytes",
        "sha256",
        "files",
        "columns",
        "source",
        "mode",
        "started_at",
        "finished_at",
        "code_version",
    ):
        assert key in stored, key
    assert stored == {k: v for k, v in manifest.items() if k != "seconds"}
    with demo_pg.connect() as conn:
        assert stored["rows"] == conn.exec_driver_sql("SELECT count(*) FROM customers").scalar_one() == 45211
    data = lake.read_bytes("raw/customers", DAY1, "customers.csv.gz")
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    assert stored["files"] == [
        {
            "name": f"customers.{digest[:16]}.csv.gz",
            "logical_name": "customers.csv.gz",
            "rows": 45211,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    ]
    assert stored["partition_date"] == "2026-11-24" and stored["mode"] == "snapshot"
    assert "postgres" in stored["source"]


def test_rerun_replaces_partition_without_duplicates(demo_pg, tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    first = export_table(demo_pg, lake, "sales", DAY1, watermark_column="sale_id")
    second = export_table(demo_pg, lake, "sales", DAY1, watermark_column="sale_id")
    assert second["rows"] == first["rows"] > 0
    assert lake.partitions("raw/sales") == [DAY1]
    files = sorted(
        p.relative_to(tmp_path / "lake").as_posix() for p in (tmp_path / "lake").rglob("*") if p.is_file()
    )
    assert files == ["raw/sales/dt=2026-11-24/_manifest.json", lake.data_file("raw/sales", DAY1)]
    _, rows = _read_partition(lake, "sales", DAY1)
    ids = [int(r[0]) for r in rows[1:]]
    assert len(ids) == len(set(ids)) == first["rows"]


def test_incremental_export_picks_up_only_new_rows(demo_pg, tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    day1 = export_table(demo_pg, lake, "sales", DAY1, watermark_column="sale_id")
    contacts1 = export_table(demo_pg, lake, "campaign_contacts", DAY1, watermark_column="updated_at")
    added = advance_one_day(demo_pg)
    day2 = export_table(demo_pg, lake, "sales", DAY2, watermark_column="sale_id")
    contacts2 = export_table(demo_pg, lake, "campaign_contacts", DAY2, watermark_column="updated_at")

    assert day2["rows"] == added["sales"] > 0
    assert day2["watermark"]["low"] == day1["watermark"]["high"]
    _, rows1 = _read_partition(lake, "sales", DAY1)
    _, rows2 = _read_partition(lake, "sales", DAY2)
    assert not {r[0] for r in rows1[1:]} & {r[0] for r in rows2[1:]}
    assert {r[1] for r in rows2[1:]} == {added["day"].isoformat()}
    assert contacts2["rows"] == added["contacts"] + added["outcomes"]
    assert contacts1["rows"] == 45211
    # A rerun of the first day, after the second exists, still holds exactly the first slice.
    rerun = export_table(demo_pg, lake, "sales", DAY1, watermark_column="sale_id")
    assert rerun["rows"] == day1["rows"] and rerun["watermark"] == day1["watermark"]


def test_crash_midway_leaves_previous_partition_and_rerun_repairs(demo_pg, tmp_path, monkeypatch):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    good = export_table(demo_pg, lake, "customers", DAY1)

    original = export_module.GzipHashWriter.write
    calls = {"n": 0, "armed": True}

    def failing_write(self, data):
        calls["n"] += 1
        if calls["armed"] and calls["n"] % 3 == 0:  # some blocks written, then the connection drops
            raise ConnectionResetError("simulated network failure mid-stream")
        return original(self, data)

    monkeypatch.setattr(export_module.GzipHashWriter, "write", failing_write)
    with pytest.raises(ConnectionResetError):
        export_table(demo_pg, lake, "customers", DAY1)
    with pytest.raises(ConnectionResetError):
        export_table(demo_pg, lake, "customers", DAY2)
    calls["armed"] = False

    # The old partition is intact, the crashed new date is invisible, no staged file is left behind.
    assert lake.partitions("raw/customers") == [DAY1]
    assert lake.read_manifest("raw/customers", DAY1)["sha256"] == good["sha256"]
    assert [k for k in lake.storage.list("raw/") if "_staging" in k] == []
    repaired = export_table(demo_pg, lake, "customers", DAY2)
    assert repaired["rows"] == good["rows"] and lake.partitions("raw/customers") == [DAY1, DAY2]


def test_failed_commit_keeps_the_previous_version_published(demo_pg, tmp_path, monkeypatch):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    good = export_table(demo_pg, lake, "stores", DAY1)
    with demo_pg.begin() as conn:
        conn.exec_driver_sql("UPDATE stores SET name = name || ' (renamed)'")
    real_put = lake.storage.put_bytes

    def broken_put(key, data):
        if key.endswith(MANIFEST_NAME):
            raise OSError(28, "No space left on device")
        return real_put(key, data)

    monkeypatch.setattr(lake.storage, "put_bytes", broken_put)
    with pytest.raises(StorageError, match=r"Cannot write .*raw/stores: No space left on device"):
        export_table(demo_pg, lake, "stores", DAY1)
    # The old version is still the published one, complete and verified (never hidden, never mixed).
    assert lake.partitions("raw/stores") == [DAY1]
    assert lake.read_manifest("raw/stores", DAY1)["sha256"] == good["sha256"]
    assert lake.verify_partition("raw/stores", DAY1) == []
    monkeypatch.undo()
    export_table(demo_pg, lake, "stores", DAY1)
    assert lake.read_manifest("raw/stores", DAY1)["sha256"] != good["sha256"]
    assert len(lake.storage.list("raw/stores/dt=2026-11-24/")) == 2  # the orphan of the failed run is gone


def test_reconciliation_mismatch_fails_and_publishes_nothing(demo_pg, tmp_path, monkeypatch):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    real_psql, real_driver = export_module._copy_postgres_psql, export_module._copy_postgres

    def one_row_too_many_psql(*args, **kwargs):  # as if a row appeared that the count did not see
        rows, counted = real_psql(*args, **kwargs)
        return rows + 1, counted

    monkeypatch.setattr(export_module, "_copy_postgres_psql", one_row_too_many_psql)
    monkeypatch.setattr(export_module, "_copy_postgres", lambda *a, **k: real_driver(*a, **k) + 1)
    for client in ("auto", "driver"):
        with pytest.raises(ReconciliationError, match="wrote 3 rows but the source holds 2"):
            export_table(demo_pg, lake, "stores", DAY1, postgres_client=client)
    assert lake.partitions("raw/stores") == []


def test_azure_backend_through_azurite(azurite, azure_container, demo_pg, tmp_path, monkeypatch):
    monkeypatch.setenv("CALLCAST_AZURE_CONNECTION_STRING", azurite)
    settings = get_settings(lake_url=f"az://{azure_container}/lake", home=tmp_path)
    lake = Lake(open_storage(settings))
    assert lake.describe().startswith(f"az://{azure_container}/lake")

    first = export_table(demo_pg, lake, "sales", DAY1, watermark_column="sale_id")
    again = export_table(demo_pg, lake, "sales", DAY1, watermark_column="sale_id")  # overwrite must work
    assert lake.partitions("raw/sales") == [DAY1]
    assert again["sha256"] == first["sha256"]
    manifest, rows = _read_partition(lake, "sales", DAY1)
    assert manifest["rows"] == len(rows) - 1 == first["rows"]
    assert sorted(k for k in lake.storage.list("raw/sales/") if "/_leases/" not in k) == [
        "raw/sales/dt=2026-11-24/_manifest.json",
        lake.data_file("raw/sales", DAY1),
    ]
    frame = lake.read_csv("raw/sales", DAY1, "sales.csv.gz")
    assert len(frame) == first["rows"] and frame["sale_id"].is_unique


def test_azure_without_credentials_says_what_to_set(tmp_path):
    settings = get_settings(lake_url="az://container/prefix", home=tmp_path)
    from callcast.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="CALLCAST_AZURE_CONNECTION_STRING"):
        open_storage(settings)


# -- bad input ----------------------------------------------------------------------------------------


def test_missing_table_lists_available_ones(demo_pg):
    from callcast.database import resolve_tables

    with pytest.raises(
        SourceDatabaseError, match=r"Table\(s\) 'salez' not found.*Available: campaign_contacts"
    ):
        resolve_tables(demo_pg, ["salez"])


def test_bad_credentials_are_explained_and_the_password_masked(mariadb_url):
    from callcast.database import connect_check

    wrong = sa.make_url(mariadb_url).set(password="s3cret-Pa55").render_as_string(hide_password=False)
    with pytest.raises(SourceDatabaseError) as caught:
        connect_check(make_engine(wrong))
    message = str(caught.value)
    assert "Bad credentials" in message and "s3cret-Pa55" not in message and "***" in message


def test_unreachable_server_is_a_retryable_error_with_a_hint():
    from callcast.database import TransientSourceError, connect_check

    with pytest.raises(TransientSourceError, match="Is the server running"):
        connect_check(
            make_engine("postgresql://user:hunter2@127.0.0.1:1/db", connect_args={"connect_timeout": 2})
        )


def test_unparseable_and_unsupported_urls():
    from callcast.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="Cannot parse the database URL"):
        make_engine("not a url")
    with pytest.raises(ConfigurationError, match="Unsupported database 'oracle'"):
        make_engine("oracle+nothere://u:p@h/db")
    with pytest.raises(ConfigurationError, match="Unsupported database URL scheme 'postgresql\\+nothere'"):
        make_engine("postgresql+nothere://u:p@h/db")


def test_unwritable_lake_fails_clearly(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    storage = LocalStorage(blocker / "lake")
    with pytest.raises(StorageError, match="Check CALLCAST_LAKE_URL"):
        storage.put_bytes("probe", b"x")


# -- the flow -----------------------------------------------------------------------------------------


def test_export_flow_end_to_end_with_events_and_artifact(prefect_harness, callcast_home, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.export import daily_export

    db = callcast_home / "callcast.db"
    engine = make_engine(f"sqlite:///{db}")
    build_demo_database(engine, size="tiny", seed=5)
    engine.dispose()
    emitted = []
    import tasks.export as task_module

    monkeypatch.setattr(task_module, "emit_event", lambda **kwargs: emitted.append(kwargs))

    manifests = daily_export(partition_date=DAY1)

    assert sorted(m["table"] for m in manifests) == [
        "campaign_contacts",
        "customers",
        "products",
        "sales",
        "stores",
    ]
    lake = Lake(LocalStorage(callcast_home / "lake"))
    for m in manifests:
        assert lake.verify_partition(f"raw/{m['table']}", DAY1) == []
    assert sorted(e["resource"]["prefect.resource.id"] for e in emitted) == [
        "callcast.table.campaign_contacts",
        "callcast.table.customers",
        "callcast.table.products",
        "callcast.table.sales",
        "callcast.table.stores",
    ]
    assert all(e["event"] == "callcast.export.completed" and e["payload"]["rows"] >= 0 for e in emitted)

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["daily-export"]))
            )

    import asyncio

    found = asyncio.run(artifacts())
    assert found and "customers" in json.dumps(found[-1].data)


def test_cli_reports_a_missing_table_in_one_line(prefect_harness, callcast_home, capsys):
    from app.cli import main

    engine = make_engine(f"sqlite:///{callcast_home / 'callcast.db'}")
    build_demo_database(engine, size="tiny", seed=5)
    engine.dispose()
    code = main(["export", "--tables", "nope", "--date", "2026-11-24"])
    err = capsys.readouterr().err
    assert code == 2
    assert "Table(s) 'nope' not found" in err and "Traceback" not in err
    assert not (callcast_home / "lake" / "raw").exists()


def test_missing_sqlite_file_points_to_seed(tmp_path):
    from callcast.database import connect_check, source_engine

    with pytest.raises(SourceDatabaseError, match="make seed"):
        connect_check(make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    with pytest.raises(SourceDatabaseError, match=r"does not exist \(nothing was created\).*callcast seed"):
        source_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert not (tmp_path / "x.db").exists()


def test_generic_path_streams_in_batches(tmp_path):
    """The SQLite path encodes in batches of ``fetch_rows`` (bounded memory), not all rows at once."""
    engine = make_engine(f"sqlite:///{tmp_path / 'b.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 25000) "
            "INSERT INTO t SELECT i, 'v' || i FROM s"
        )
    sizes = []
    original = export_module.RowEncoder.encode

    def spy(self, rows):
        sizes.append(len(rows))
        return original(self, rows)

    import unittest.mock

    with unittest.mock.patch.object(export_module.RowEncoder, "encode", spy):
        manifest = export_table(engine, Lake(LocalStorage(tmp_path / "lake")), "t", DAY1, fetch_rows=1000)
    assert manifest["rows"] == 25000 and max(sizes) == 1000 and len(sizes) == 25
    engine.dispose()


def test_cli_export_to_unwritable_lake(prefect_harness, callcast_home, capsys, tmp_path):
    from app.cli import main

    engine = make_engine(f"sqlite:///{callcast_home / 'callcast.db'}")
    build_demo_database(engine, size="tiny", seed=5)
    engine.dispose()
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["export", "--lake", str(blocker / "lake"), "--date", "2026-11-24"])
    assert code == 2 and "Check CALLCAST_LAKE_URL" in capsys.readouterr().err


def test_written_file_is_valid_gzip_csv(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE c (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO c VALUES (1, 'a'), (2, NULL), (3, '')")
    lake = Lake(LocalStorage(tmp_path / "lake"))
    export_table(engine, lake, "c", DAY1)
    with gzip.open(lake.storage.local_path(lake.data_file("raw/c", DAY1, "c.csv.gz")), "rt") as handle:
        text = handle.read()
    assert text == 'id,v\n1,a\n2,\n3,""\n'
    engine.dispose()


def test_export_task_honours_the_postgres_client_setting(demo_pg, tmp_path, monkeypatch):
    def no_psql(*args, **kwargs):
        raise AssertionError("psql path used although CALLCAST_EXPORT__POSTGRES_CLIENT=driver")

    monkeypatch.setenv("CALLCAST_DATABASE_URL", demo_pg.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CALLCAST_EXPORT__POSTGRES_CLIENT", "driver")
    monkeypatch.setattr(export_module, "_copy_postgres_psql", no_psql)
    manifest = export_module.export_table_task.fn("stores", DAY1, lake_url=str(tmp_path / "lake"))
    assert manifest["rows"] == 2 and (tmp_path / "lake/raw/stores/dt=2026-11-24/_manifest.json").exists()
