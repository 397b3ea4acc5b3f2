"""Small runtime helpers: the code version stamped into outputs, and a logger that follows Prefect runs."""

from __future__ import annotations

import functools
import logging
import subprocess
from datetime import date, datetime
from importlib import metadata

from callcast.settings import PROJECT_ROOT, Settings


@functools.cache
def code_version() -> str:
    """``<package version>+g<commit>[.dirty]`` when run from a git checkout, else the package version."""
    try:
        version = metadata.version("callcast")
    except metadata.PackageNotFoundError:
        version = "0+unknown"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}{'.dirty' if dirty else ''}" if commit else version


def company_today(settings: Settings | None = None) -> date:
    """Today's date in the company's time zone (``CALLCAST_TIMEZONE``): the one definition of "today"."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from callcast.errors import ConfigurationError
    from callcast.settings import get_settings

    name = (settings or get_settings()).timezone
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"CALLCAST_TIMEZONE={name!r} is not a time zone; use an IANA name such as Europe/Lisbon."
        ) from exc
    return datetime.now(zone).date()


def get_logger(name: str = "callcast") -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run (so lines reach the UI), else a standard logger."""
    try:
        from prefect.exceptions import MissingContextError
        from prefect.logging import get_run_logger

        try:
            return get_run_logger()
        except MissingContextError:
            pass
    except ImportError:  # pragma: no cover - prefect is a dependency
        pass
    return logging.getLogger(name)


def ensure_prefect_api() -> None:
    """Without a configured Prefect API, start one local server (SQLite under PREFECT_HOME) for this process.

    Dask worker processes inherit ``PREFECT_API_URL`` and report to the same server instead of each starting
    an ephemeral one; runs stay in the database that `make server` shows.
    """
    import os

    from prefect.settings import get_current_settings

    if get_current_settings().api.url or os.environ.get("PREFECT_API_URL"):
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=120)
    os.environ["PREFECT_API_URL"] = server.api_url


def dask_task_runner(address: str | None, workers: int):
    """prefect-dask's ``DaskTaskRunner`` on ``address``, or on a local cluster of ``workers`` processes.

    ``workers <= 0`` without an address runs the tasks in-process, one at a time (no cluster).
    """
    if workers <= 0 and not address:
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if address:  # an external cluster: its workers must have been started with PREFECT_API_URL set
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            "silence_logs": logging.ERROR,
            "env": prefect_worker_environment(),
        },
    )


def prefect_worker_environment() -> dict[str, str]:
    """What a Dask worker process needs to report its task runs to this process's Prefect API.

    Without it a spawned worker starts a temporary Prefect server of its own and its task runs never reach
    the UI (the API URL may live in a settings context rather than in ``os.environ``).
    """
    import os

    from prefect.settings import get_current_settings

    env = {}
    url = get_current_settings().api.url or os.environ.get("PREFECT_API_URL")
    if url:
        env["PREFECT_API_URL"] = str(url)
    for name in ("PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "DO_NOT_TRACK"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env
