"""One served installation shared by the integration tests that need the real thing (imported, not collected).

``served(request, tmp_path_factory)`` runs ``callcast serve`` once per test session in a throwaway
``CALLCAST_HOME`` on a free port — the real local server, work pool, deployments, automations and worker —
with the alerts pointed at a webhook receiver on 127.0.0.1 in this process. ``callcast stop`` runs at the end
of the session. ``trained(served)`` adds a tiny demo company and one daily pipeline run (a champion, a list).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
CALLCAST = Path(sys.executable).with_name("callcast")
EXPORT_DEADLINE_SECONDS = 45
DAY0 = date(2026, 11, 23)  # the day the shared installation's champion and first list are built from


class Webhook:
    """A real HTTP receiver on 127.0.0.1 that records every JSON notification posted to it."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    outer.messages.append(json.loads(body))
                except ValueError:
                    outer.messages.append({"raw": body.decode(errors="replace")})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callcast-alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in list(self.messages):
                if predicate(message):
                    return message
            time.sleep(0.5)
        return None

    def stop(self) -> None:
        self.server.shutdown()


@dataclass
class Served:
    home: Path
    env: dict[str, str]
    api_url: str
    ui_url: str
    webhook: Webhook
    serve_output: str
    notes: dict[str, Any] = field(default_factory=dict)

    def cli(self, *args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(CALLCAST), *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        if check:
            assert done.returncode == 0, (
                f"callcast {' '.join(args)}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def api(self, method: str, path: str, payload: Any = None) -> Any:
        response = httpx.request(method, f"{self.api_url}{path}", json=payload, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment(self, name: str) -> dict[str, Any]:
        found = self.api("POST", "/deployments/filter", {"deployments": {"name": {"any_": [name]}}})
        assert len(found) == 1, f"deployment {name}: {found}"
        return found[0]

    def runs(self, deployment: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"sort": "EXPECTED_START_TIME_ASC", "limit": 200}
        if deployment:
            body["deployments"] = {"id": {"any_": [self.deployment(deployment)["id"]]}}
        return self.api("POST", "/flow_runs/filter", body)

    def run_deployment(self, name: str, parameters: dict[str, Any] | None = None) -> str:
        deployment = self.deployment(name)
        run = self.api(
            "POST", f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters or {}}
        )
        return run["id"]

    def wait_run(self, run_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            run = self.api("GET", f"/flow_runs/{run_id}")
            if run["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return run
            assert time.monotonic() < deadline, f"flow run {run['name']} still {run['state_type']}"
            time.sleep(2)

    def wait_runs(
        self, deployment: str, predicate: Callable[[dict[str, Any]], bool], count: int, timeout: float
    ) -> list[dict[str, Any]]:
        """Runs of ``deployment`` matching ``predicate`` once ``count`` of them have finished."""
        deadline = time.monotonic() + timeout
        while True:
            runs = [r for r in self.runs(deployment) if predicate(r)]
            finished = [r for r in runs if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")]
            if len(finished) >= count:
                return finished
            assert time.monotonic() < deadline, (
                f"{deployment}: {len(finished)}/{count} finished runs after {timeout:.0f} s: "
                f"{[(r['name'], r['state_type'], r['parameters']) for r in runs]}"
            )
            time.sleep(3)


_SHARED: dict[str, Any] = {}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def served(request, tmp_path_factory) -> Served:
    """The session's served installation (started on first use, stopped when the session ends)."""
    if "served" in _SHARED:
        return _SHARED["served"]
    import tempfile

    webhook = Webhook()
    # Outside pytest's numbered basetemp: concurrent pytest sessions prune old basetemps, and a served
    # installation whose PID files vanished could not be stopped by `callcast stop`.
    home = Path(tempfile.mkdtemp(prefix="callcast-served-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLCAST_", "PREFECT_API_URL"))}
    env.update(
        {
            "CALLCAST_HOME": str(home),
            "CALLCAST_SERVER__PORT": str(port),
            "CALLCAST_SERVER__AUTOSTART": "true",
            "CALLCAST_ALERTS__WEBHOOK_URL": webhook.url,
            "CALLCAST_ALERTS__EXPORT_DEADLINE_SECONDS": str(EXPORT_DEADLINE_SECONDS),
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "GX_ANALYTICS_ENABLED": "false",
            "MPLBACKEND": "Agg",
        }
    )
    instance = Served(
        home=home,
        env=env,
        api_url=f"http://127.0.0.1:{port}/api",
        ui_url=f"http://127.0.0.1:{port}",
        webhook=webhook,
        serve_output="",
    )

    def shutdown() -> None:
        import shutil
        import signal

        instance.cli("stop", timeout=120, check=False)
        for pgid in instance.notes.get("process_groups", []):  # safety net: never leave a server behind
            try:
                still_ours = b"prefect" in Path(f"/proc/{pgid}/cmdline").read_bytes()
            except OSError:
                continue
            if still_ours:
                os.killpg(pgid, signal.SIGKILL)
        webhook.stop()
        shutil.rmtree(home, ignore_errors=True)

    instance.notes["tmp_path_factory"] = tmp_path_factory
    request.config.add_cleanup(shutdown)
    done = instance.cli("serve", timeout=900, check=False)
    instance.serve_output = done.stdout + done.stderr
    instance.notes["process_groups"] = [
        json.loads((home / "run" / name).read_text())["pid"]
        for name in ("prefect-server.pid", "prefect-worker.pid")
        if (home / "run" / name).exists()
    ]
    assert done.returncode == 0, instance.serve_output[-4000:]
    _SHARED["served"] = instance
    return instance


def seeded_database(tmp_path_factory) -> Path:
    """The tiny demo company's SQLite file, built once per session (copy it into a home before use)."""
    if "database" not in _SHARED:
        folder = tmp_path_factory.mktemp("seeded")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCAST_")}
        env["CALLCAST_HOME"] = str(folder)
        done = subprocess.run(
            [str(CALLCAST), "seed", "--size", "tiny"], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-2000:]
        _SHARED["database"] = folder / "callcast.db"
    return _SHARED["database"]


def install_database(tmp_path_factory, home: Path) -> None:
    import shutil

    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(seeded_database(tmp_path_factory), home / "callcast.db")


def trained(instance: Served) -> dict[str, Any]:
    """A tiny demo company and one `callcast pipeline` run through the served server (champion + list)."""
    if "trained" in instance.notes:
        return instance.notes["trained"]
    install_database(instance.notes["tmp_path_factory"], instance.home)
    started = time.monotonic()
    pipeline = instance.cli("pipeline", "--date", DAY0.isoformat(), "--no-forecast", timeout=1500)
    instance.notes["trained"] = {
        "pipeline_output": pipeline.stdout + pipeline.stderr,
        "pipeline_seconds": time.monotonic() - started,
    }
    return instance.notes["trained"]
