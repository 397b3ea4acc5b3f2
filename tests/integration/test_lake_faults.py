"""The lake under real operations: processes killed with SIGKILL mid-commit, two writers on one partition,
hostile names, bad input and secrets — on real SQLite, PostgreSQL, MariaDB and Azurite.

``crash_trial`` and ``race`` are also driven by ``benchmarks/fault_injection.py``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from callcast.csvio import parse_exact
from callcast.database import make_engine
from callcast.errors import ConfigurationError, SourceDatabaseError, StorageError
from callcast.lake import Lake
from callcast.settings import PROJECT_ROOT
from callcast.storage import LocalStorage
from tasks import export as export_module
from tasks.export import export_table

pytestmark = pytest.mark.integration
DAY = date(2026, 11, 24)

CRASH_POINTS = (
    "export.file_written",  # data written locally, nothing uploaded
    "lake.lease_acquired",  # lease held, nothing uploaded
    "lake.data_uploaded",  # new data file stored, manifest not yet replaced
    "lake.before_manifest",  # every file stored, about to commit
    "storage.before_replace:_manifest.json",  # new manifest written to a temporary file, not renamed
    "lake.after_manifest",  # committed, old files not yet removed
    "lake.cleanup",  # committed, old files partly removed
)

_EXPORT_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import date
    from callcast.database import make_engine
    from callcast.lake import Lake
    from callcast.storage import LocalStorage
    from tasks.export import export_table
    engine = make_engine(sys.argv[1])
    export_table(engine, Lake(LocalStorage(sys.argv[2])), "t", date.fromisoformat(sys.argv[3]),
                 watermark_column=sys.argv[4] or None)
    """
)


def _seed_source(db: Path, rows: int, start: int = 1) -> str:
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql(
            f"WITH RECURSIVE s(i) AS (SELECT {start} UNION ALL SELECT i+1 FROM s WHERE i < {start + rows - 1}) "
            "INSERT INTO t SELECT i, 'row ' || i FROM s"
        )
    engine.dispose()
    return url


def _run_export(url: str, lake_dir: Path, day: date, watermark: str = "", fault: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("CALLCAST_FAULT_POINT", None)
    if fault:
        env["CALLCAST_FAULT_POINT"] = fault
    return subprocess.run(
        [sys.executable, "-c", _EXPORT_CHILD, url, str(lake_dir), day.isoformat(), watermark],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _visible_state(lake: Lake) -> dict:
    """Every visible partition of raw/t: its manifest hash and whether it verifies."""
    state = {}
    for day in lake.partitions("raw/t"):
        manifest = lake.read_manifest("raw/t", day)
        state[day] = {"sha256": manifest["sha256"], "problems": lake.verify_partition("raw/t", day)}
    return state


def crash_trial(point: str, workdir: Path, watermark: str = "") -> dict:
    """Commit v1, change the source, kill a rerun at ``point`` with SIGKILL, check, rerun, check again."""
    workdir.mkdir(parents=True, exist_ok=True)
    url = _seed_source(workdir / "src.db", 500)
    lake_dir = workdir / "lake"
    lake = Lake(LocalStorage(lake_dir))
    first = _run_export(url, lake_dir, DAY, watermark)
    assert first.returncode == 0, first.stderr
    old = lake.read_manifest("raw/t", DAY)["sha256"]
    _seed_source(workdir / "src.db", 50, start=10_001)  # the rerun publishes a different version
    killed = _run_export(url, lake_dir, DAY, watermark, fault=point)
    after_crash = _visible_state(lake)
    repaired = _run_export(url, lake_dir, DAY, watermark)
    after_rerun = _visible_state(lake)
    leftovers = sorted(k for k in lake.storage.list("raw/t/") if "/_leases/" not in k)
    return {
        "point": point,
        "killed": killed.returncode == -signal.SIGKILL,
        "visible_after_crash": DAY in after_crash,
        "consistent_after_crash": all(not s["problems"] for s in after_crash.values())
        and DAY in after_crash
        and after_crash[DAY]["sha256"] in {old, *(s["sha256"] for s in after_rerun.values())},
        "version_after_crash": "old" if after_crash.get(DAY, {}).get("sha256") == old else "new",
        "repaired": repaired.returncode == 0 and all(not s["problems"] for s in after_rerun.values()),
        "rerun_error": repaired.stderr[-500:] if repaired.returncode else "",
        "leftover_files": len(leftovers) - 2 * len(after_rerun),
        "lease_released": not [k for k in lake.storage.list("raw/t/_leases/") if k.endswith(".lease")],
    }


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_sigkill_at_every_commit_step_leaves_a_complete_partition_and_a_rerun_repairs(point, tmp_path):
    outcome = crash_trial(point, tmp_path)
    assert outcome["killed"], "the fault hook did not fire"
    assert outcome["consistent_after_crash"], outcome  # old or new version, complete, verified
    assert outcome["version_after_crash"] == (
        "new" if point.startswith("lake.after") or point == "lake.cleanup" else "old"
    )
    assert outcome["repaired"], outcome
    assert outcome["leftover_files"] == 0 and outcome["lease_released"], outcome


def test_sigkill_on_an_incremental_table_then_rerun_keeps_every_row_once(tmp_path):
    outcome = crash_trial("lake.before_manifest", tmp_path, watermark="id")
    assert outcome["consistent_after_crash"] and outcome["repaired"], outcome
    lake = Lake(LocalStorage(tmp_path / "lake"))
    text = gzip.decompress(lake.read_bytes("raw/t", DAY, "t.csv.gz")).decode()
    ids = [row[0] for row in parse_exact(text)[1:]]
    assert len(ids) == len(set(ids)) == 500  # the rerun re-read exactly the recorded bounds


# -- two writers on one partition ------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys, time
    from datetime import date
    from pathlib import Path
    from callcast.lake import Lake
    from callcast.storage import LocalStorage, open_storage
    lake_url, name, commits, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    if lake_url.startswith("az://"):
        from callcast.settings import get_settings
        lake = Lake(open_storage(get_settings(lake_url=lake_url)), lock_wait_seconds=120)
    else:
        lake = Lake(LocalStorage(lake_url), lock_wait_seconds=120)
    scratch = Path(sys.argv[5])
    scratch.mkdir(parents=True, exist_ok=True)
    while time.time() < start_at:
        time.sleep(0.001)
    for i in range(commits):
        path = scratch / f"{name}-{i}.csv"
        path.write_text(f"writer,i\\n{name},{i}\\n" * (50 + i))
        lake.commit_partition("raw/race", date(2026, 11, 24), {"race.csv": path}, {"table": "race", "writer": name})
    print("DONE", commits)
    """
)

_READER = textwrap.dedent(
    """
    import sys, time, json
    from datetime import date
    from callcast.errors import StorageError, PartitionNotFoundError
    from callcast.lake import Lake
    from callcast.storage import LocalStorage, open_storage
    lake_url, until = sys.argv[1], float(sys.argv[2])
    if lake_url.startswith("az://"):
        from callcast.settings import get_settings
        lake = Lake(open_storage(get_settings(lake_url=lake_url)))
    else:
        lake = Lake(LocalStorage(lake_url))
    reads = bad = missing = 0
    while time.time() < until:
        try:
            manifest = lake.read_manifest("raw/race", date(2026, 11, 24))
            data = lake.read_bytes("raw/race", date(2026, 11, 24), "race.csv").decode()
            if data.splitlines()[1].split(",")[0] not in ("A", "B"):
                bad += 1
            reads += 1
        except PartitionNotFoundError:
            missing += 1
        except StorageError as exc:
            bad += 1
            print("BAD", exc, file=sys.stderr)
    print(json.dumps({"reads": reads, "bad": bad, "missing": missing}))
    """
)


def race(lake_url: str, workdir: Path, commits: int, *, reader: bool = True) -> dict:
    """Two writer processes commit ``commits`` versions each to one partition at once (+ a reader)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("CALLCAST_FAULT_POINT", None)
    start_at = time.time() + 3.0  # both writers start together after their imports
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, lake_url, name, str(commits), str(start_at), str(workdir / name)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    ]
    reading = None
    if reader:
        reading = subprocess.Popen(
            [sys.executable, "-c", _READER, lake_url, str(start_at + 600)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    results = [w.communicate(timeout=900) for w in writers]
    reads = {"reads": 0, "bad": 0, "missing": 0}
    if reading is not None:
        reading.send_signal(signal.SIGTERM)
        out, err = reading.communicate(timeout=60)
        if out.strip():
            reads = json.loads(out.strip().splitlines()[-1])
    failed = [err[-400:] for w, (_, err) in zip(writers, results, strict=True) if w.returncode != 0]
    return {"writer_failures": failed, **reads}


def _final_state(lake: Lake) -> tuple[list[str], list[str]]:
    problems = lake.verify_partition("raw/race", DAY)
    files = [k for k in lake.storage.list("raw/race/dt=2026-11-24/")]
    return problems, files


def test_two_processes_committing_one_partition_never_leave_it_inconsistent(tmp_path):
    outcome = race(str(tmp_path / "lake"), tmp_path, commits=60, reader=False)
    assert outcome["writer_failures"] == []
    lake = Lake(LocalStorage(tmp_path / "lake"))
    problems, files = _final_state(lake)
    assert problems == [] and len(files) == 2  # the manifest and the one file it names
    manifest = lake.read_manifest("raw/race", DAY)
    assert manifest["writer"] in ("A", "B")


def test_readers_never_see_a_mix_while_two_writers_race(tmp_path):
    # the reader runs until SIGTERM; give it a fixed window instead
    lake_dir = tmp_path / "lake"
    Lake(LocalStorage(lake_dir)).commit_partition(
        "raw/race", DAY, {"race.csv": _write(tmp_path / "seed.csv", "writer,i\nA,0\n")}, {"table": "race"}
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    start_at = time.time() + 3.0
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(lake_dir), str(start_at + 12)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(lake_dir), name, "40", str(start_at), str(tmp_path / name)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    ]
    for writer in writers:
        writer.communicate(timeout=600)
        assert writer.returncode == 0
    out, _ = reader.communicate(timeout=600)
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["reads"] > 0 and seen["bad"] == 0 and seen["missing"] == 0, seen


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_two_writers_on_azure_blob_serialise_through_blob_leases(
    azurite, azure_container, tmp_path, monkeypatch
):
    monkeypatch.setenv("CALLCAST_AZURE_CONNECTION_STRING", azurite)
    url = f"az://{azure_container}/lake"
    outcome = race(url, tmp_path, commits=6, reader=False)
    assert outcome["writer_failures"] == []
    from callcast.settings import get_settings
    from callcast.storage import LeaseBusyError, open_storage

    lake = Lake(open_storage(get_settings(lake_url=url)), lock_wait_seconds=0.5)
    problems, files = _final_state(lake)
    assert problems == [] and len(files) == 2
    with lake.lease("raw/race", DAY, owner="holder"):  # a held blob lease makes a second writer give up
        with pytest.raises(LeaseBusyError, match="leased by holder"):
            lake.commit_partition(
                "raw/race", DAY, {"race.csv": _write(tmp_path / "x.csv", "writer,i\nA,1\n")}, {}
            )
    assert lake.verify_partition("raw/race", DAY) == []


# -- incremental contract on PostgreSQL ----------------------------------------------------------------


def test_incremental_property_on_postgresql(postgres_url, tmp_path):
    from tests.unit.test_incremental_property import run_sequence

    engine = make_engine(postgres_url)
    try:
        for seed in range(3):
            outcome = run_sequence(engine, tmp_path / f"lake-{seed}", seed, steps=30)
            assert outcome.ok, (seed, outcome)
        outcome = run_sequence(engine, tmp_path / "lake-upd", 77, steps=30, updates=True)
        assert outcome.ok, outcome
        included = 0
        for seed in (5, 6, 7):  # COPY through the driver (IN lists of late keys bound as parameters)
            outcome = run_sequence(
                engine, tmp_path / f"lake-drv-{seed}", seed, steps=30, postgres_client="driver"
            )
            assert outcome.ok, (seed, outcome)
            included += outcome.late_included
        assert included > 0  # late rows really went through the driver path
    finally:
        engine.dispose()


# -- bad input ----------------------------------------------------------------------------------------------


def test_future_partition_dates_are_refused(tmp_path, monkeypatch):
    from callcast.runtime import company_today
    from callcast.settings import get_settings
    from tasks.export import FuturePartitionError

    url = _seed_source(tmp_path / "src.db", 10)
    monkeypatch.setenv("CALLCAST_DATABASE_URL", url)
    today = company_today(get_settings())
    with pytest.raises(FuturePartitionError, match="2099-01-01: it is after today"):
        export_module.export_table_task.fn("t", date(2099, 1, 1), lake_url=str(tmp_path / "lake"))
    assert not (tmp_path / "lake").exists() or Lake(LocalStorage(tmp_path / "lake")).partitions("raw/t") == []
    manifest = export_module.export_table_task.fn("t", today, lake_url=str(tmp_path / "lake"))
    assert manifest["rows"] == 10


def test_a_future_partition_left_by_an_old_version_is_reported_not_obeyed(tmp_path):
    url = _seed_source(tmp_path / "src.db", 10)
    engine = make_engine(url)
    lake = Lake(LocalStorage(tmp_path / "lake"))
    export_table(engine, lake, "t", date(2099, 1, 1), watermark_column="id")  # as before the refusal existed
    from tasks.export import FuturePartitionError

    with pytest.raises(FuturePartitionError, match="2099-01-01.*cap every later slice"):
        export_table(engine, lake, "t", DAY, watermark_column="id", today=DAY)


def test_full_disk_is_not_retried_and_names_the_path(tmp_path, monkeypatch):
    url = _seed_source(tmp_path / "src.db", 10)
    engine = make_engine(url)
    lake = Lake(LocalStorage(tmp_path / "lake"))
    calls = []

    def full(self, data):
        calls.append(1)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module.GzipHashWriter, "write", full)
    with pytest.raises(StorageError, match=r"Cannot write .*t\.csv\.gz: No space left on device") as caught:
        export_table(engine, lake, "t", DAY)
    assert export_module._retry_transient(None, None, _Failed(caught.value)) is False
    assert export_module._retry_transient(None, None, _Failed(OSError(28, "full"))) is False
    assert export_module._retry_transient(None, None, _Failed(ConnectionResetError())) is True
    assert lake.partitions("raw/t") == [] and not list(Path(lake.describe()).rglob("*.csv.gz"))


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self):
        raise self.exc


def test_unsupported_database_and_nul_characters_get_specific_messages(tmp_path):
    with pytest.raises(ConfigurationError, match=r"Unsupported database 'oracle' in oracle://scott:\*\*\*@"):
        make_engine("oracle://scott:tiger@db.example/orcl")
    engine = make_engine(f"sqlite:///{tmp_path / 'nul.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE n (id INTEGER PRIMARY KEY, note TEXT)")
        conn.exec_driver_sql("INSERT INTO n VALUES (1, 'fine'), (7, 'bad' || char(0) || 'value')")
    with pytest.raises(SourceDatabaseError, match=r"n\.note: row 2 of the export \(id=7\) contains a NUL"):
        export_table(engine, Lake(LocalStorage(tmp_path / "lake")), "n", DAY)
    assert Lake(LocalStorage(tmp_path / "lake")).partitions("raw/n") == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "postgresql-driver", "mariadb"])
def test_hostile_table_and_column_names(backend, request, tmp_path):
    url = {
        "sqlite": lambda: f"sqlite:///{tmp_path / 'h.db'}",
        "postgresql": lambda: request.getfixturevalue("postgres_url"),
        "postgresql-driver": lambda: request.getfixturevalue("postgres_url"),
        "mariadb": lambda: request.getfixturevalue("mariadb_url"),
    }[backend]()
    engine = make_engine(url)
    names = ["a/b", "Two  Spaces", "../../../outside"]
    column = "odd`col" if backend == "mariadb" else 'odd"col  x'
    metadata = sa.MetaData()
    tables = [
        sa.Table(n, metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column(column, sa.String(20)))
        for n in names
    ]
    metadata.drop_all(engine)
    metadata.create_all(engine)
    with engine.begin() as conn:
        for t in tables:
            conn.execute(t.insert(), [{"id": 1, column: "x  y"}, {"id": 2, column: None}])
    work = tmp_path / "work"
    lake = Lake(LocalStorage(work / "lake"))
    client = "driver" if backend == "postgresql-driver" else "auto"
    try:
        for name in names:
            manifest = export_table(engine, lake, name, DAY, postgres_client=client)
            assert manifest["table"] == name and manifest["rows"] == 2
            from callcast import catalog

            text = gzip.decompress(
                lake.read_bytes(catalog.raw(name), DAY, catalog.raw_file_name(name))
            ).decode()
            assert parse_exact(text) == [["id", column], ["1", "x  y"], ["2", None]]
        written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".db"]
        assert all(work / "lake" in p.parents for p in written), written  # nothing outside the run's folders
        assert not (tmp_path.parent / "outside").exists() and not (work / "outside").exists()
    finally:
        metadata.drop_all(engine)
        engine.dispose()


# -- secrets -------------------------------------------------------------------------------------------------

SECRET = "Sup3r-S3cret-pw"


@pytest.fixture
def pg_with_password(postgres_url):
    """A PostgreSQL role that needs a password (the test server trusts local users, so the password is
    accepted either way — the point is where it travels)."""
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS secretive")
        conn.exec_driver_sql("CREATE TABLE secretive (id INTEGER PRIMARY KEY, v TEXT)")
        conn.exec_driver_sql("INSERT INTO secretive VALUES (1, 'a'), (2, 'b')")
    base = sa.make_url(postgres_url)
    yield base
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS secretive")
    engine.dispose()


def secret_url_forms(base: sa.URL, secret: str) -> dict[str, str]:
    plain = base.set(password=None).render_as_string(hide_password=False)
    return {
        "user:password@": base.set(password=secret).render_as_string(hide_password=False),
        "?password=": f"{plain}{'&' if '?' in plain else '?'}password={secret}",
    }


def find_secret(secret: str, roots: list[Path], texts: list[str]) -> int:
    """How many files under ``roots`` and texts contain ``secret`` (raw or gzip-compressed)."""
    found = sum(secret in text for text in texts)
    for root in roots:
        for path in [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]:
            data = path.read_bytes()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            found += secret.encode() in data
    return found


@pytest.mark.parametrize("form", ["user:password@", "?password="])
def test_passwords_never_reach_the_lake_logs_or_psql_argv(
    form, pg_with_password, tmp_path, monkeypatch, caplog
):
    url = secret_url_forms(pg_with_password, SECRET)[form]
    launched: list[tuple[list[str], dict]] = []
    real_popen = subprocess.Popen

    class Spy(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args, *rest, **kwargs):
            env = kwargs.get("env") or {}
            passfile = env.get("PGPASSFILE")
            mode = oct(os.stat(passfile).st_mode & 0o777) if passfile and os.path.exists(passfile) else None
            launched.append((list(args), {"pgpassword": "PGPASSWORD" in env, "passfile_mode": mode}))
            super().__init__(args, *rest, **kwargs)

    monkeypatch.setattr(export_module.subprocess, "Popen", Spy)
    monkeypatch.setenv("CALLCAST_DATABASE_URL", url)
    caplog.set_level(logging.DEBUG)
    manifest = export_module.export_table_task.fn("secretive", DAY, lake_url=str(tmp_path / "lake"))
    assert manifest["rows"] == 2 and "***" in manifest["source"]
    assert launched, "the psql path was not used"
    argv = " ".join(launched[0][0])
    assert SECRET not in argv and launched[0][1] == {"pgpassword": False, "passfile_mode": "0o600"}
    leftovers = [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("callcast-pgpass-*")]
    assert not leftovers  # the passfile is removed
    assert find_secret(SECRET, [tmp_path / "lake"], [caplog.text, json.dumps(manifest)]) == 0
    # A failing connection echoes no secret either.
    bad = url.replace("127.0.0.1", "127.0.0.1").replace(":5432/", ":1/")
    from callcast.database import connect_check

    with pytest.raises(SourceDatabaseError) as caught:
        connect_check(make_engine(bad, connect_args={"connect_timeout": 2}))
    assert SECRET not in str(caught.value)


def test_masked_url_hides_every_form():
    from callcast.database import mask_secrets, masked_url

    for url in (
        f"postgresql://u:{SECRET}@h/db",
        f"postgresql://u@h/db?password={SECRET}",
        f"postgresql://u@h/db?sslmode=require&password={SECRET}&x=1",
        f"mysql://u:{SECRET}@h:3306/db",
    ):
        assert SECRET not in masked_url(url)
        assert SECRET not in mask_secrets(f"failed: {url} ({SECRET})", url)


def test_type_fidelity_mariadb(mariadb_url, tmp_path):
    engine = make_engine(mariadb_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS fidelity")
        conn.exec_driver_sql(
            "CREATE TABLE fidelity (id INT PRIMARY KEY, span TIME, bits BIT(8), flag BOOLEAN, neg TIME(6))"
        )
        conn.exec_driver_sql(
            "INSERT INTO fidelity VALUES (1, '838:59:59', b'10101010', 2, '-00:00:01.500000'), "
            "(2, '-838:59:59', b'00000001', 1, '00:00:00'), (3, NULL, NULL, NULL, NULL), (4, '01:02:03', 0, 0, NULL)"
        )
    try:
        lake = Lake(LocalStorage(tmp_path / "lake"))
        manifest = export_table(engine, lake, "fidelity", DAY)
        rows = parse_exact(gzip.decompress(lake.read_bytes("raw/fidelity", DAY, "fidelity.csv.gz")).decode())
        assert rows[1:] == [
            ["1", "838:59:59", "10101010", "2", "-00:00:01.500000"],
            ["2", "-838:59:59", "00000001", "true", "00:00:00"],
            ["3", None, None, None, None],
            ["4", "01:02:03", "00000000", "false", None],
        ]
        types = {c["name"]: c["type"] for c in manifest["columns"]}
        assert types["bits"] == "bit(8)" and types["span"] == "time"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS fidelity")
        engine.dispose()


def test_type_fidelity_sqlite_dynamic_values(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'f.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE f (id INTEGER PRIMARY KEY, at TIMESTAMP, note TEXT, n INTEGER)")
        conn.execute(
            sa.text(
                "INSERT INTO f VALUES (1, '', :blob, ''), (2, NULL, NULL, NULL), (3, '2024-01-01 10:00:00', '', 5)"
            ),
            {"blob": b"\x00\xffA"},
        )
    lake = Lake(LocalStorage(tmp_path / "lake"))
    export_table(engine, lake, "f", DAY)
    rows = parse_exact(gzip.decompress(lake.read_bytes("raw/f", DAY, "f.csv.gz")).decode())
    assert rows[1:] == [
        ["1", "", "\\x00ff41", ""],  # '' stays '' (not NULL); bytes as PostgreSQL writes bytea
        ["2", None, None, None],
        ["3", "2024-01-01 10:00:00", "", "5"],
    ]


def test_validation_of_nothing_fails_and_future_dates_are_refused(prefect_harness, callcast_home):
    from flows.validate import validate_exports
    from tasks.export import FuturePartitionError

    with pytest.raises(FuturePartitionError, match="Refusing to validate partition date 2099-01-01"):
        validate_exports(partition_date=date(2099, 1, 1))
    from callcast.errors import PartitionNotFoundError

    with pytest.raises(PartitionNotFoundError, match="Nothing was validated"):
        validate_exports(partition_date=DAY - timedelta(days=400))


def test_a_flow_run_keeps_the_password_out_of_prefects_database(
    prefect_harness, callcast_home, pg_with_password, monkeypatch
):
    from prefect.settings import get_current_settings

    from callcast.runtime import company_today
    from flows.export import daily_export

    monkeypatch.setenv("CALLCAST_DATABASE_URL", secret_url_forms(pg_with_password, SECRET)["?password="])
    manifests = daily_export(partition_date=company_today(), tables=["secretive"])
    assert manifests[0]["rows"] == 2 and SECRET not in json.dumps(manifests)
    database = str(get_current_settings().server.database.connection_url.get_secret_value())
    path = Path(database.split("///", 1)[-1])
    assert path.exists(), database
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.name)]  # the db and its -wal/-shm
    assert find_secret(SECRET, files, []) == 0
    assert find_secret(SECRET, [callcast_home], []) == 0  # lake and logs under CALLCAST_HOME


def test_downstream_readers_refuse_a_raw_file_that_does_not_match_its_manifest(tmp_path):
    """Checks and forecasting (like training and scoring) read through the lake: a tampered export is refused."""
    from callcast.catalog import check_result
    from tasks.checks import validate_raw_partition
    from tasks.forecasting import load_demo_history

    lake = Lake(LocalStorage(tmp_path / "lake"))
    for table, header, row in (
        ("sales", "sale_id,sale_date", "1,2026-11-24"),
        ("products", "product_id,name", "1,a"),
        ("customers", "customer_id,name", "1,a"),
    ):
        path = tmp_path / f"{table}.csv.gz"
        path.write_bytes(gzip.compress(f"{header}\n{row}\n".encode()))
        lake.commit_partition(f"raw/{table}", DAY, {path.name: path}, {"table": table, "rows": 1})
        lake.write_json(  # validated when it was exported ...
            check_result(table, DAY),
            {
                "table": table,
                "partition_date": DAY.isoformat(),
                "status": "passed",
                "failed_expectations": [],
            },
        )
        stored = lake.storage.local_path(lake.data_file(f"raw/{table}", DAY, path.name))
        stored.write_bytes(
            gzip.compress(f"{header}\n{row.replace('1', '2', 1)}\n".encode())
        )  # ... then tampered
    with pytest.raises(StorageError, match="manifest records"):
        validate_raw_partition(lake, "sales", DAY)
    with pytest.raises(StorageError, match="manifest records"):
        load_demo_history(str(tmp_path / "lake"), DAY)
    with pytest.raises(StorageError, match="manifest records"):
        lake.read_csv("raw/customers", DAY, "customers.csv.gz")  # what training and scoring call


def test_a_late_row_whose_text_key_holds_a_line_break_is_exported_exactly_on_postgresql(
    postgres_url, tmp_path
):
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS keyed")
        conn.exec_driver_sql("CREATE TABLE keyed (code TEXT PRIMARY KEY, wm INTEGER NOT NULL)")
        conn.exec_driver_sql("INSERT INTO keyed VALUES ('a', 1), ('b', 10)")
    try:
        lake = Lake(LocalStorage(tmp_path / "lake"))
        export_table(engine, lake, "keyed", DAY, watermark_column="wm", lookback=5)
        with engine.begin() as conn:  # late, and its key spans two lines
            conn.exec_driver_sql("INSERT INTO keyed VALUES (E'late\\nkey', 8), ('c', 11)")
        manifest = export_table(
            engine, lake, "keyed", DAY + timedelta(days=1), watermark_column="wm", lookback=5
        )
        assert manifest["rows"] == 2 and manifest["watermark"]["late_rows"] == 1
        text = gzip.decompress(lake.read_bytes("raw/keyed", DAY + timedelta(days=1), "keyed.csv.gz")).decode()
        assert sorted(parse_exact(text)[1:]) == [["c", "11"], ["late\nkey", "8"]]
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS keyed")
        engine.dispose()


def test_incremental_property_on_mariadb(mariadb_url, tmp_path):
    from tests.unit.test_incremental_property import run_sequence

    engine = make_engine(mariadb_url)
    try:
        for seed in range(2):
            outcome = run_sequence(engine, tmp_path / f"lake-{seed}", seed, steps=25, updates=seed == 1)
            assert outcome.ok, (seed, outcome)
    finally:
        engine.dispose()
