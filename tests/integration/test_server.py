"""The one local Prefect server: commands start it once and reuse it, `serve` registers everything, `stop` ends it.

The served installation (``callcast serve`` in a fresh CALLCAST_HOME, shared with the other integration tests)
is checked for deployments, schedules, pool limit and UI; a second, bare installation shows that two commands
at once start one server, that later commands reuse it, that its database can be PostgreSQL, and that
``callcast stop`` leaves no process behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from local_prefect import CALLCAST, ROOT, install_database, served

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    return served(request, tmp_path_factory)


def _bare_env(home: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLCAST_", "PREFECT_API_URL"))}
    env.update(
        CALLCAST_HOME=str(home),
        CALLCAST_SERVER__PORT=str(port),
        CALLCAST_SERVER__AUTOSTART="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        **extra,
    )
    return env


def _callcast(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CALLCAST), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def test_serve_registers_every_deployment_with_its_schedule(server):
    assert "Prefect UI: " + server.ui_url in server.serve_output
    deployments = {d["name"]: d for d in server.api("POST", "/deployments/filter", {})}
    assert {
        "daily-export",
        "validate-exports",
        "score-call-list",
        "daily-pipeline",
        "publish-state",
        "train-propensity-weekly",
        "train-propensity-on-drift",
        "forecast-sales-monthly",
    } <= set(deployments)
    crons = {
        name: [(s["schedule"]["cron"], s["schedule"]["timezone"], s["active"]) for s in d["schedules"]]
        for name, d in deployments.items()
    }
    assert crons["daily-export"] == [("0 5 * * *", "Europe/Lisbon", True)]
    assert crons["train-propensity-weekly"] == [("0 7 * * 1", "Europe/Lisbon", True)]
    assert crons["forecast-sales-monthly"] == [("0 8 1 * *", "Europe/Lisbon", True)]
    assert crons["validate-exports"] == [] and crons["score-call-list"] == []  # the chain runs them
    assert (
        deployments["train-propensity-on-drift"]["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    )
    assert deployments["validate-exports"]["global_concurrency_limit"]["limit"] == 1
    pool = server.api("GET", "/work_pools/callcast-local")
    assert pool["type"] == "process" and pool["concurrency_limit"] == 2
    assert "<html" in httpx.get(server.ui_url, timeout=30).text.lower()  # the UI itself is served


def test_status_names_the_running_server_and_worker(server):
    done = server.cli("status")
    assert "running" in done.stdout.splitlines()[0] and server.ui_url in done.stdout
    assert done.stdout.splitlines()[1].split() == ["worker", "running"]
    for name in ("prefect-server.pid", "prefect-worker.pid"):
        record = json.loads((server.home / "run" / name).read_text())
        os.kill(record["pid"], 0)  # alive


def test_a_cli_command_runs_in_the_served_server_without_starting_another(server):
    before = json.loads((server.home / "run" / "prefect-server.pid").read_text())
    runs_before = {r["id"] for r in server.runs()}
    started = time.monotonic()
    install_database(server.notes["tmp_path_factory"], server.home)
    done = server.cli("export", "--tables", "stores", "--date", "2026-01-02")
    assert done.stdout.startswith("stores")
    assert "Starting the Prefect server" not in done.stderr
    # the CLI's own run (no deployment); the export's event may already have started validation runs too
    new = [r for r in server.runs() if r["id"] not in runs_before and r["deployment_id"] is None]
    assert len(new) == 1 and new[0]["state_type"] == "COMPLETED", new
    assert new[0]["parameters"]["tables"] == ["stores"]
    assert json.loads((server.home / "run" / "prefect-server.pid").read_text()) == before
    assert time.monotonic() - started < 120


def test_commands_start_one_server_reuse_it_and_stop_leaves_nothing(tmp_path, tmp_path_factory, free_port):
    home, port = tmp_path / "home", free_port()
    install_database(tmp_path_factory, home)
    env = _bare_env(home, port)
    try:
        _start_reuse_and_stop(home, port, env)
    finally:
        _callcast(env, "stop")


def _start_reuse_and_stop(home: Path, port: int, env: dict[str, str]) -> None:
    assert _callcast(env, "status").returncode == 1  # nothing runs yet
    both = [
        subprocess.Popen(
            [str(CALLCAST), "export", "--tables", table, "--date", "2026-01-02"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for table in ("stores", "products")
    ]
    outputs = [p.communicate(timeout=600) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs
    assert sum("Starting the Prefect server" in err for _, err in outputs) == 1  # one server for both
    record = json.loads((home / "run" / "prefect-server.pid").read_text())
    assert (home / "prefect" / "prefect.db").exists()  # SQLite under <home>/prefect
    again = _callcast(env, "export", "--tables", "stores", "--date", "2026-01-03")
    assert again.returncode == 0 and "Starting the Prefect server" not in again.stderr
    assert json.loads((home / "run" / "prefect-server.pid").read_text())["pid"] == record["pid"]

    stopped = _callcast(env, "stop")
    assert f"Prefect server: stopped (pid {record['pid']})" in stopped.stdout
    assert _group_members(record["pid"]) == []  # the server and its children are gone
    assert not (home / "run" / "prefect-server.pid").exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=3)
    assert "Nothing to stop" in _callcast(env, "stop").stdout


def test_stop_never_touches_a_process_it_did_not_start(tmp_path, free_port):
    """A stale PID file whose number now belongs to another program: stop leaves that program alone."""
    home = tmp_path / "home"
    (home / "run").mkdir(parents=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (home / "run" / "prefect-server.pid").write_text(
            json.dumps({"pid": bystander.pid, "match": "server start"})
        )
        done = _callcast(_bare_env(home, free_port()), "stop")
        assert "stale PID file removed" in done.stdout
        assert bystander.poll() is None  # still running
    finally:
        bystander.send_signal(signal.SIGTERM)
        bystander.wait(timeout=10)


def test_the_server_database_can_be_postgresql(tmp_path, tmp_path_factory, free_port, postgres_url):
    import sqlalchemy as sa

    url = sa.make_url(postgres_url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    home, port = tmp_path / "home", free_port()
    install_database(tmp_path_factory, home)
    env = _bare_env(home, port, PREFECT_API_DATABASE_CONNECTION_URL=url)
    try:
        done = _callcast(env, "export", "--tables", "stores", "--date", "2026-01-02")
        assert done.returncode == 0, done.stderr[-2000:]
        assert "PostgreSQL" in done.stderr
        assert "PostgreSQL" in _callcast(env, "status").stdout
        engine = sa.create_engine(postgres_url)
        with engine.connect() as conn:
            runs = conn.exec_driver_sql("SELECT count(*) FROM flow_run").scalar()
        engine.dispose()
        assert runs >= 1 and not (home / "prefect" / "prefect.db").exists()
    finally:
        _callcast(env, "stop")


def test_serve_again_removes_a_schedule_prefect_yaml_no_longer_declares(server):
    """`prefect deploy` keeps a schedule the file dropped (e.g. the old 05:45 checks); `serve` removes it."""
    deployment = server.deployment("validate-exports")
    server.api(
        "POST",
        f"/deployments/{deployment['id']}/schedules",
        [{"schedule": {"cron": "45 5 * * *", "timezone": "Europe/Lisbon"}, "active": True}],
    )
    assert len(server.deployment("validate-exports")["schedules"]) == 1
    server.cli("serve", timeout=600)
    assert server.deployment("validate-exports")["schedules"] == []
    assert [s["schedule"]["cron"] for s in server.deployment("daily-export")["schedules"]] == ["0 5 * * *"]
