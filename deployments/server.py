"""The one local Prefect server of an installation: start, reuse, deploy, run a worker, stop.

``callcast serve`` (``make serve``) starts ``prefect server start`` in the background with its home under
``<CALLCAST_HOME>/prefect`` (SQLite there, or PostgreSQL when ``PREFECT_API_DATABASE_CONNECTION_URL`` is set),
waits until it answers, creates the work pool, registers every deployment of ``prefect.yaml``, creates the
alerting automations and starts a process worker. Each process it starts is recorded in a PID file under
``<CALLCAST_HOME>/run/``; ``callcast stop`` stops exactly those processes (and their children), nothing else.

Every other ``callcast`` command calls :func:`ensure_local_server` first: it reuses the running server, or
starts it, so every run lands in the same database the UI shows and no command pays a temporary server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callcast.errors import CallcastError
from callcast.settings import PROJECT_ROOT, Settings, get_settings

PREFECT = Path(sys.executable).with_name("prefect")
Echo = Callable[[str], None]
_HELD_CONTEXTS: list[Any] = []  # Prefect settings contexts entered for the rest of the process


class ServerError(CallcastError):
    """The local Prefect server, the deployment or the worker could not be brought up."""


@dataclass(frozen=True)
class Local:
    """Where the local server keeps its state and how to reach it."""

    prefect_home: Path
    run_dir: Path
    log_dir: Path
    api_url: str
    ui_url: str

    @property
    def server_pid(self) -> Path:
        return self.run_dir / "prefect-server.pid"

    @property
    def worker_pid(self) -> Path:
        return self.run_dir / "prefect-worker.pid"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "prefect-server.log"

    @property
    def worker_log(self) -> Path:
        return self.log_dir / "prefect-worker.log"


def local(settings: Settings) -> Local:
    host = settings.server.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{settings.server.port}"
    return Local(
        prefect_home=settings.home / "prefect",
        run_dir=settings.home / "run",
        log_dir=settings.home / "logs",
        api_url=f"{base}/api",
        ui_url=base,
    )


def prefect_environment(settings: Settings) -> dict[str, str]:
    """The variables every process that talks to the local server needs (this one, the worker, its runs)."""
    where = local(settings)
    return {
        "PREFECT_HOME": str(where.prefect_home),
        "PREFECT_API_URL": where.api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "CALLCAST_HOME": str(settings.home),
        "CALLCAST_PROJECT_DIR": str(PROJECT_ROOT),
    }


# -- processes ------------------------------------------------------------------------------------------


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when a Prefect API answers ``/health`` at ``api_url``."""
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(record: dict[str, Any] | None) -> bool:
    """The recorded process still runs and is still the program we started (PIDs get reused)."""
    if not record:
        return False
    pid = int(record["pid"])
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if _exited(pid):
        return False
    cmdline = _cmdline(pid)
    return not cmdline or record.get("match", "prefect") in cmdline  # no /proc: trust the signal probe


def _exited(pid: int) -> bool:
    """A process that has exited but was not reaped yet (a zombie still answers the signal probe)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our own child: reap it if it is done
        if reaped == pid:
            return True
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X")


def read_pid(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _spawn(
    argv: list[str], env: dict[str, str], log: Path, pid_file: Path, match: str, cwd: Path
) -> dict[str, Any]:
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `stop` ends it and its children, nothing else
        )
    record = {
        "pid": process.pid,
        "match": match,
        "argv": argv,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "log": str(log),
    }
    pid_file.write_text(json.dumps(record))
    return record


@contextlib.contextmanager
def _lock(run_dir: Path) -> Iterator[None]:
    """One process at a time decides whether to start the server (two commands at once start one server)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "prefect-server.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def start_server(settings: Settings, echo: Echo = print) -> str:
    """Start the local server unless one answers already; returns ``started``, ``running`` or ``external``."""
    where = local(settings)
    with _lock(where.run_dir):
        record = read_pid(where.server_pid)
        if healthy(where.api_url):
            return "running" if alive(record) else "external"
        if alive(record):
            echo(f"Prefect server (pid {record['pid']}) is starting; waiting for {where.api_url} ...")
        else:
            where.server_pid.unlink(missing_ok=True)
            where.prefect_home.mkdir(parents=True, exist_ok=True)
            database = os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL")
            store = "PostgreSQL (PREFECT_API_DATABASE_CONNECTION_URL)" if database else "SQLite"
            echo(f"Starting the Prefect server on {where.ui_url} ({store}, home {where.prefect_home}) ...")
            env = {**os.environ, **prefect_environment(settings)}
            record = _spawn(
                [
                    str(PREFECT),
                    "server",
                    "start",
                    "--host",
                    settings.server.host,
                    "--port",
                    str(settings.server.port),
                ],
                env,
                where.server_log,
                where.server_pid,
                match="server start",
                cwd=where.prefect_home,
            )
        deadline = time.monotonic() + settings.server.start_timeout_seconds
        while not healthy(where.api_url):
            if not alive(record):
                where.server_pid.unlink(missing_ok=True)
                raise ServerError(
                    f"The Prefect server stopped while starting ({_tail(where.server_log) or 'no output'}). "
                    f"Is port {settings.server.port} free? (CALLCAST_SERVER__PORT changes it.) Log: {where.server_log}"
                )
            if time.monotonic() > deadline:
                raise ServerError(
                    f"The Prefect server did not answer at {where.api_url} within "
                    f"{settings.server.start_timeout_seconds:.0f} s (CALLCAST_SERVER__START_TIMEOUT_SECONDS). "
                    f"Log: {where.server_log}"
                )
            time.sleep(0.5)
        return "started"


def use_api(env: dict[str, str]) -> None:
    """Point this process (and every process it starts) at the API in ``env``, even if Prefect is imported."""
    os.environ.update(env)
    if "prefect.context" in sys.modules:
        from prefect.settings import PREFECT_API_URL, temporary_settings

        context = temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]})
        context.__enter__()
        _HELD_CONTEXTS.append(context)


def configured_api() -> str | None:
    """An API chosen explicitly: ``PREFECT_API_URL`` in the environment, or an active Prefect settings context."""
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    if "prefect.context" in sys.modules:  # e.g. a test harness; never import Prefect just to ask
        from prefect.settings import get_current_settings

        url = get_current_settings().api.url
        return str(url) if url else None
    return None


def ensure_local_server(settings: Settings | None = None, echo: Echo = print) -> str | None:
    """Make this process use the local server: an explicit API wins, else reuse the running server or start it.

    Returns the API URL, or None when ``CALLCAST_SERVER__AUTOSTART=false`` and no server runs (then Prefect
    falls back to its temporary in-process server, and says so).
    """
    explicit = configured_api()
    if explicit:
        return explicit
    settings = settings or get_settings()
    where = local(settings)
    if healthy(where.api_url):
        if not alive(read_pid(where.server_pid)):
            echo(
                f"Using the Prefect server already answering at {where.ui_url} (not started by this installation: "
                "`callcast stop` leaves it running; CALLCAST_SERVER__PORT picks another port)."
            )
    else:
        if not settings.server.autostart:
            echo(
                f"No Prefect server at {where.api_url} and CALLCAST_SERVER__AUTOSTART=false: this run uses a "
                "temporary server and will not appear in the UI."
            )
            return None
        start_server(settings, echo)
    use_api(prefect_environment(settings))
    return where.api_url


# -- serve / stop / status ------------------------------------------------------------------------------


def ensure_work_pool(settings: Settings) -> str:
    """The process work pool, with its concurrency limit (created or updated)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectNotFound

    name, limit = settings.server.work_pool, settings.server.pool_concurrency
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process", concurrency_limit=limit))
            return "created"
        client.update_work_pool(name, WorkPoolUpdate(concurrency_limit=limit))
        return "updated"


def deploy_all(settings: Settings) -> list[str]:
    """``prefect deploy --all`` from the project root; returns the deployment names registered."""
    where = local(settings)
    env = {**os.environ, **prefect_environment(settings)}
    done = subprocess.run(
        [str(PREFECT), "--no-prompt", "deploy", "--all"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
    )
    where.log_dir.mkdir(parents=True, exist_ok=True)
    log = where.log_dir / "prefect-deploy.log"
    log.write_text(done.stdout + "\n" + done.stderr)
    if done.returncode != 0:
        raise ServerError(f"`prefect deploy --all` failed ({_tail(log, 2)}). Log: {log}")
    return sorted(prune_stale_schedules())


def prune_stale_schedules() -> list[str]:
    """Delete server schedules that ``prefect.yaml`` no longer declares; returns the deployment names.

    ``prefect deploy`` keeps a deployment's old schedules when the file drops them (e.g. the validation and
    scoring clock times that the event chain replaced), so a redeploy alone would leave them running.
    """
    import yaml
    from prefect.client.orchestration import get_client

    project = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text())
    declared = {
        d["name"]: {(s.get("cron"), s.get("timezone")) for s in d.get("schedules") or []}
        for d in project["deployments"]
    }
    with get_client(sync_client=True) as client:
        deployments = client.read_deployments()
        for deployment in deployments:
            if deployment.name not in declared:
                continue
            for schedule in deployment.schedules:
                key = (getattr(schedule.schedule, "cron", None), getattr(schedule.schedule, "timezone", None))
                if key not in declared[deployment.name]:
                    client.delete_deployment_schedule(deployment.id, schedule.id)
        return [d.name for d in deployments]


def start_worker(settings: Settings) -> str:
    """A process worker of the work pool, unless ours still runs; returns ``started`` or ``running``."""
    where = local(settings)
    if alive(read_pid(where.worker_pid)):
        return "running"
    env = {**os.environ, **prefect_environment(settings)}
    _spawn(
        [str(PREFECT), "worker", "start", "--pool", settings.server.work_pool, "--type", "process"],
        env,
        where.worker_log,
        where.worker_pid,
        match="worker start",
        cwd=PROJECT_ROOT,
    )
    return "started"


def serve(settings: Settings | None = None, echo: Echo = print) -> dict[str, Any]:
    """Bring everything up: server, work pool, deployments, automations, worker. Idempotent."""
    from deployments.automations import apply_automations

    settings = settings or get_settings()
    where = local(settings)
    if os.environ.get("PREFECT_API_URL") and os.environ["PREFECT_API_URL"].rstrip("/") != where.api_url:
        raise ServerError(
            f"PREFECT_API_URL is set to {os.environ['PREFECT_API_URL']}: `serve` manages the local server at "
            f"{where.api_url} only. Unset PREFECT_API_URL, or deploy to that API with `prefect deploy --all`."
        )
    echo(f"[1/5] Prefect server: {start_server(settings, echo)} at {where.ui_url}")
    use_api(prefect_environment(settings))
    echo(f"[2/5] Work pool {settings.server.work_pool}: {ensure_work_pool(settings)} "
         f"(at most {settings.server.pool_concurrency} flow runs at once)")  # fmt: skip
    echo("[3/5] Registering the deployments of prefect.yaml ...")
    deployments = deploy_all(settings)
    echo(f"      {len(deployments)} deployments: {', '.join(deployments)}")
    alerts = apply_automations(settings)
    echo(f"[4/5] Automations: {', '.join(alerts['created']) or 'none'}")
    if alerts.get("warning"):
        echo(f"      warning: {alerts['warning']}")
    echo(f"[5/5] Worker: {start_worker(settings)} (log {where.worker_log})")
    echo(f"Prefect UI: {where.ui_url}   (`callcast stop` or `make stop` stops it)")
    return {"ui_url": where.ui_url, "deployments": deployments, "automations": alerts["created"]}


def _stop_one(pid_file: Path, name: str, timeout: float, echo: Echo) -> bool:
    record = read_pid(pid_file)
    if record is None:
        return False
    if not alive(record):
        echo(f"{name}: not running (stale PID file removed)")
        pid_file.unlink(missing_ok=True)
        return False
    pid = int(record["pid"])
    try:
        os.killpg(pid, signal.SIGTERM)  # its process group: the server's or worker's children go too
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.2)
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        echo(f"{name}: pid {pid} did not stop within {timeout:.0f} s; killed")
    else:
        echo(f"{name}: stopped (pid {pid})")
    pid_file.unlink(missing_ok=True)
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies of our own children count as gone
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop(settings: Settings | None = None, echo: Echo = print, timeout: float = 30.0) -> int:
    """Stop the worker then the server that ``serve`` (or a command) started; returns how many were stopped."""
    where = local(settings or get_settings())
    stopped = _stop_one(where.worker_pid, "worker", timeout, echo)
    stopped += _stop_one(where.server_pid, "Prefect server", timeout, echo)
    if not stopped:
        echo("Nothing to stop: no server or worker started by callcast is running.")
    return int(stopped)


def status(settings: Settings | None = None) -> dict[str, Any]:
    """What runs: the server (ours, someone else's, or none), the worker, and where the UI is."""
    settings = settings or get_settings()
    where = local(settings)
    server, worker = read_pid(where.server_pid), read_pid(where.worker_pid)
    answering = healthy(where.api_url)
    return {
        "ui_url": where.ui_url,
        "api_url": where.api_url,
        "server": ("running" if alive(server) else "external") if answering else "stopped",
        "server_pid": server["pid"] if alive(server) else None,
        "worker": "running" if alive(worker) else "stopped",
        "worker_pid": worker["pid"] if alive(worker) else None,
        "database": "PostgreSQL" if os.environ.get("PREFECT_API_DATABASE_CONNECTION_URL") else "SQLite",
        "prefect_home": str(where.prefect_home),
    }
