"""Shared test fixtures: quiet, isolated environment and one Prefect test harness per session."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# Telemetry off and an isolated Prefect home before anything imports Prefect or GX: tests never touch the
# Prefect database of `make demo` / `make server`.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="callcast-tests-prefect-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# A CLI command in a test never starts the long-lived local server (tests that want one start it themselves).
os.environ["CALLCAST_SERVER__AUTOSTART"] = "false"


def _unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ... nor talks to a developer's running server on the default port (4200): tests use their own servers.
os.environ["CALLCAST_SERVER__PORT"] = str(_unused_port())

BANK_FULL = Path(__file__).resolve().parents[1] / "demo_company" / "data" / "bank-full.csv.gz"


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One Prefect test server for the whole session (it takes ~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def callcast_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CALLCAST_HOME (embedded database and lake) for one test."""
    home = tmp_path / "callcast-home"
    home.mkdir()
    monkeypatch.setenv("CALLCAST_HOME", str(home))
    for name in list(os.environ):
        if name.startswith("CALLCAST_") and name not in (
            "CALLCAST_HOME",
            "CALLCAST_SERVER__AUTOSTART",
            "CALLCAST_SERVER__PORT",
        ):
            monkeypatch.delenv(name, raising=False)
    return home


# -- real services ----------------------------------------------------------------------------------
PG_ADMIN_URL = os.environ.get("CALLCAST_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MARIADB_ADMIN_URL = os.environ.get("CALLCAST_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _fresh_database(admin_url: str, kind: str) -> Iterator[str]:
    import uuid

    import sqlalchemy as sa

    name = f"callcast_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    quote = '"' if kind == "postgresql" else "`"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}")
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        sa.create_engine(url).dispose()
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            else:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the local server (dropped afterwards)."""
    yield from _fresh_database(PG_ADMIN_URL, "postgresql")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """A fresh, empty MariaDB database on the local server (dropped afterwards)."""
    yield from _fresh_database(MARIADB_ADMIN_URL, "mysql")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def free_port():
    """A function returning a free TCP port on 127.0.0.1."""
    return _free_port


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An Azurite blob endpoint on 127.0.0.1 (in memory); yields its connection string."""
    import shutil
    import socket
    import subprocess
    import time

    binary = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not binary.exists():
        if shutil.which("npm") is None:
            pytest.fail("Azurite is missing and npm is not installed: run `npm ci` in the project root.")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PROJECT_ROOT, check=True)
    port = _free_port()
    workdir = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--silent",
        ],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail("Azurite did not start on 127.0.0.1")
            time.sleep(0.2)
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    try:
        yield connection_string
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def azure_container(azurite: str) -> str:
    """A new, empty container in Azurite; returns its name."""
    import uuid

    from azure.storage.blob import BlobServiceClient

    name = f"lake-{uuid.uuid4().hex[:12]}"
    with BlobServiceClient.from_connection_string(azurite) as client:
        client.create_container(name)
    return name


def _commit_validated_partition(lake, table: str, frame, day, status: str = "passed") -> dict:
    """Commit ``frame`` as ``raw/<table>/dt=<day>/`` in the export's exact CSV dialect, marked as checked."""
    import gzip

    import pandas as pd

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
        path = scratch / f"{table}.csv.gz"
        path.write_bytes(gzip.compress(text.encode("utf-8"), 1))
        manifest = lake.commit_partition(
            catalog.raw(table),
            day,
            {path.name: path},
            {
                "table": table,
                "rows": len(frame),
                "columns": [{"name": c.name, "type": t} for c, t in zip(columns, types, strict=True)],
                "mode": "snapshot" if table in ("customers", "stores", "products") else "incremental",
                "source": "test",
            },
            file_meta={path.name: {"rows": len(frame)}},
        )
    lake.write_json(
        result_key(table, day),
        {
            "table": table,
            "partition_date": day.isoformat(),
            "status": status,
            "failed_expectations": [],
            "rows_checked": len(frame),
        },
    )
    return manifest


@pytest.fixture(scope="session")
def commit_validated_partition():
    """A function committing a frame as a validated raw partition: ``(lake, table, frame, day)``."""
    return _commit_validated_partition
