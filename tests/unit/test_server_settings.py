"""The server and alert settings change what `callcast serve` and every command do (no Prefect server needed).

A stand-in program replaces the ``prefect`` executable where a real server is not the point: these tests check
the waiting, the PID bookkeeping and the stopping, on a process that never answers or dies at once.
"""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from callcast.settings import get_settings
from deployments import automations, server


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CALLCAST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return tmp_path / "home"


def _stand_in(tmp_path: Path, body: str) -> Path:
    """An executable named like ``prefect`` that runs ``body`` (a shell script)."""
    path = tmp_path / "bin" / "prefect"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_port_and_host_set_the_addresses(home, monkeypatch):
    monkeypatch.setenv("CALLCAST_SERVER__PORT", "4310")
    where = server.local(get_settings())
    assert where.api_url == "http://127.0.0.1:4310/api" and where.ui_url == "http://127.0.0.1:4310"
    assert where.prefect_home == home / "prefect" and where.run_dir == home / "run"
    env = server.prefect_environment(get_settings())
    assert env["PREFECT_API_URL"] == where.api_url and env["PREFECT_HOME"] == str(home / "prefect")


def test_without_autostart_a_command_starts_nothing_and_says_so(home, monkeypatch, free_port):
    monkeypatch.setenv("CALLCAST_SERVER__PORT", str(free_port()))
    monkeypatch.setenv("CALLCAST_SERVER__AUTOSTART", "false")
    monkeypatch.setattr(server, "configured_api", lambda: None)
    said = []
    assert server.ensure_local_server(echo=said.append) is None
    assert (
        "CALLCAST_SERVER__AUTOSTART=false" in said[0] and not (home / "run" / "prefect-server.pid").exists()
    )


def test_an_explicit_api_url_wins_over_the_local_server(home, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", "http://prefect.example.com/api")
    assert server.ensure_local_server(echo=print) == "http://prefect.example.com/api"
    assert not (home / "run").exists()  # nothing started


def test_start_timeout_is_honoured_and_the_silent_server_is_stopped(home, tmp_path, monkeypatch, free_port):
    monkeypatch.setattr(server, "PREFECT", _stand_in(tmp_path, "sleep 60"))
    monkeypatch.setenv("CALLCAST_SERVER__PORT", str(free_port()))
    monkeypatch.setenv("CALLCAST_SERVER__START_TIMEOUT_SECONDS", "5")
    with pytest.raises(server.ServerError, match=r"did not answer .* within 5 s .*START_TIMEOUT_SECONDS"):
        server.start_server(get_settings(), echo=lambda line: None)
    record = json.loads((home / "run" / "prefect-server.pid").read_text())
    said = []
    assert server.stop(echo=said.append, timeout=10) == 1
    assert said == [f"Prefect server: stopped (pid {record['pid']})"]
    assert not server._group_alive(record["pid"])  # the stand-in and its child are gone


def test_a_server_that_dies_at_once_is_reported_with_its_log(home, tmp_path, monkeypatch, free_port):
    monkeypatch.setattr(server, "PREFECT", _stand_in(tmp_path, "echo 'address already in use'; exit 1"))
    monkeypatch.setenv("CALLCAST_SERVER__PORT", str(free_port()))
    with pytest.raises(server.ServerError, match="stopped while starting \\(address already in use\\)"):
        server.start_server(get_settings(), echo=lambda line: None)
    assert not (home / "run" / "prefect-server.pid").exists()


def test_the_worker_serves_the_configured_pool(home, tmp_path, monkeypatch):
    monkeypatch.setattr(server, "PREFECT", _stand_in(tmp_path, "sleep 60"))
    monkeypatch.setenv("CALLCAST_SERVER__WORK_POOL", "night-shift")
    assert server.start_worker(get_settings()) == "started"
    assert server.start_worker(get_settings()) == "running"  # never a second worker
    record = json.loads((home / "run" / "prefect-worker.pid").read_text())
    assert record["argv"][-4:] == ["--pool", "night-shift", "--type", "process"]
    assert server.stop(echo=lambda line: None, timeout=10) == 1


def test_export_deadline_sets_the_proactive_window(monkeypatch):
    monkeypatch.setenv("CALLCAST_ALERTS__EXPORT_DEADLINE_SECONDS", "7200")
    declared = {a.name: a for a in automations.declared(uuid4(), get_settings())}
    missing = declared["callcast: daily export missing"].trigger
    assert missing.within == timedelta(hours=2) and missing.posture == "Proactive"
    assert missing.after == missing.expect == {"callcast.export.completed"}
    assert missing.for_each == {"prefect.resource.id"}  # one alert per late table


TEAMS = (
    "https://prod-00.westeurope.logic.azure.com:443/workflows/0a1b/triggers/manual/paths/invoke"
    "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=abc"
)


@pytest.mark.parametrize(
    ("channel", "url", "kind"),
    [
        ("webhook", "https://hooks.example.com/T000/B000/XXX", "CustomWebhookNotificationBlock"),
        ("teams", TEAMS, "MicrosoftTeamsWebhook"),
        ("slack", "https://hooks.slack.com/services/T000/B000/XXX", "SlackWebhook"),
    ],
)
def test_the_channel_picks_the_notification_block(monkeypatch, channel, url, kind):
    monkeypatch.setenv("CALLCAST_ALERTS__WEBHOOK_URL", url)
    monkeypatch.setenv("CALLCAST_ALERTS__CHANNEL", channel)
    block = automations.notification_block(get_settings())
    assert type(block).__name__ == kind
    if channel == "webhook":
        assert block.url == "https://hooks.example.com/T000/B000/XXX" and block.allow_private_urls


def test_no_webhook_means_no_block(monkeypatch):
    monkeypatch.delenv("CALLCAST_ALERTS__WEBHOOK_URL", raising=False)
    assert automations.notification_block(get_settings()) is None


def test_a_server_this_installation_did_not_start_is_used_and_named(home, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200 if self.path == "/api/health" else 404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("CALLCAST_SERVER__PORT", str(other.server_address[1]))
        monkeypatch.setattr(server, "configured_api", lambda: None)
        monkeypatch.setattr(server, "use_api", lambda env: None)
        said = []
        url = server.ensure_local_server(echo=said.append)
        assert url == f"http://127.0.0.1:{other.server_address[1]}/api"
        assert "not started by this installation" in said[0]
        assert "Nothing to stop" in " ".join(_collect(server.stop))  # and stop leaves it alone
    finally:
        other.shutdown()


def _collect(action) -> list[str]:
    lines: list[str] = []
    action(echo=lines.append)
    return lines
