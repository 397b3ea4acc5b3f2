"""`callcast serve` on a PostgreSQL-backed Prefect: deployment runs complete, several at once, never "locked".

The big company's Prefect keeps its state in PostgreSQL (``PREFECT_API_DATABASE_CONNECTION_URL=
postgresql+asyncpg://...``) instead of the SQLite file that serialises every writer. Here a fresh installation is
served against a fresh database on the local PostgreSQL, a second worker joins the work pool, and the daily export
deployment runs for two dates at once; each export's events start the validation deployment for its tables (the
event chain), so exports, validations, events and automations write to the server concurrently.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from local_prefect import CALLCAST, ROOT, Served, Webhook, install_database

pytestmark = pytest.mark.integration

PREFECT = Path(CALLCAST).with_name("prefect")
TABLES = ["stores", "products"]
DATES = ["2026-01-02", "2026-01-03"]


def _env(home: Path, port: int, database_url: str, webhook: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLCAST_", "PREFECT_"))}
    env.update(
        CALLCAST_HOME=str(home),
        CALLCAST_SERVER__PORT=str(port),
        CALLCAST_SERVER__AUTOSTART="true",
        CALLCAST_SERVER__POOL_CONCURRENCY="4",
        CALLCAST_ALERTS__WEBHOOK_URL=webhook,
        PREFECT_HOME=str(home / "prefect"),
        PREFECT_API_DATABASE_CONNECTION_URL=database_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        GX_ANALYTICS_ENABLED="false",
        MPLBACKEND="Agg",
    )
    return env


def test_served_prefect_on_postgresql_completes_concurrent_deployment_runs(
    tmp_path, tmp_path_factory, free_port, postgres_url
):
    import sqlalchemy as sa

    url = sa.make_url(postgres_url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    home, port = tmp_path / "home", free_port()
    install_database(tmp_path_factory, home)
    webhook = Webhook()
    env = _env(home, port, url, webhook.url)
    server = Served(
        home=home,
        env=env,
        api_url=f"http://127.0.0.1:{port}/api",
        ui_url=f"http://127.0.0.1:{port}",
        webhook=webhook,
        serve_output="",
    )
    second_worker = None
    worker_log = tmp_path / "second-worker.log"
    try:
        done = server.cli("serve", timeout=900)
        assert "PostgreSQL" in done.stdout + done.stderr
        # a second worker on the same pool (the big company runs several), with the local server's environment
        worker_env = {**env, "PREFECT_API_URL": server.api_url, "CALLCAST_PROJECT_DIR": str(ROOT)}
        with open(worker_log, "wb") as log:
            second_worker = subprocess.Popen(
                [str(PREFECT), "worker", "start", "--pool", "callcast-local", "--type", "process"],
                env=worker_env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = time.monotonic()
        exports = [
            server.run_deployment("daily-export", {"partition_date": day, "tables": TABLES}) for day in DATES
        ]
        finished = [server.wait_run(run_id, timeout=900) for run_id in exports]
        assert [r["state_type"] for r in finished] == ["COMPLETED"] * len(DATES), finished
        validations = server.wait_runs(
            "validate-exports", lambda r: True, count=len(DATES) * len(TABLES), timeout=900
        )
        seconds = time.monotonic() - started
        assert sorted(
            (r["parameters"]["partition_date"], r["parameters"]["tables"][0]) for r in validations
        ) == sorted((day, table) for day in DATES for table in TABLES)
        assert {r["state_type"] for r in validations} == {"COMPLETED"}, validations

        # the runs live in PostgreSQL, not in a SQLite file; both workers took runs
        engine = sa.create_engine(postgres_url)
        with engine.connect() as conn:
            runs = conn.exec_driver_sql(
                "SELECT count(*) FROM flow_run WHERE state_type = 'COMPLETED'"
            ).scalar()
            workers = conn.exec_driver_sql("SELECT count(*) FROM worker").scalar()
        engine.dispose()
        assert runs >= len(DATES) * (1 + len(TABLES))
        assert workers >= 2
        assert not (home / "prefect" / "prefect.db").exists()
        logs = [home / "logs" / "prefect-server.log", home / "logs" / "prefect-worker.log", worker_log]
        for path in logs:
            text = path.read_text(errors="replace") if path.exists() else ""
            assert "database is locked" not in text, path
        print(f"{len(exports)} exports + {len(validations)} validations on PostgreSQL in {seconds:.0f} s")
    finally:
        if second_worker is not None:
            second_worker.terminate()
            try:
                second_worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                second_worker.kill()
        server.cli("stop", timeout=120, check=False)
        webhook.stop()
