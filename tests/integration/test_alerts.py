"""Alerts reach people: automations created by `callcast serve` post to a real webhook receiver on 127.0.0.1.

Prefect's webhook blocks can refuse private and loopback addresses (``allow_private_urls``); callcast's block
allows them on purpose (the receiver is configured by the operator), and this test proves a loopback
receiver really gets the message from the server's automation service.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from local_prefect import EXPORT_DEADLINE_SECONDS, ROOT, served

pytestmark = pytest.mark.integration

EMIT = """
import json, sys
from prefect.events import emit_event
for event in json.loads(sys.argv[1]):
    emit_event(**event)
"""

DOOMED = """
from prefect import flow

@flow(name="doomed-for-the-alert-test")
def doomed():
    raise ValueError("the source database refused the connection")

try:
    doomed()
except ValueError:
    pass
"""


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    return served(request, tmp_path_factory)


def _python(server, code: str, *args: str) -> None:
    env = {**server.env, "PREFECT_API_URL": server.api_url}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _emit(server, *events: dict) -> None:
    _python(server, EMIT, json.dumps(list(events)))


def test_serve_creates_each_alert_once_even_when_run_again(server):
    automations = server.api("POST", "/automations/filter", {})
    names = sorted(a["name"] for a in automations if a["name"].startswith("callcast: "))
    assert names == [
        "callcast: daily export missing",
        "callcast: data checks failed",
        "callcast: drift detected",
        "callcast: flow run failed or crashed",
        "callcast: new call list",
    ]
    again = server.cli("serve", timeout=600)
    assert "Automations: flow run failed or crashed" in again.stdout
    automations = server.api("POST", "/automations/filter", {})
    assert len([a for a in automations if a["name"].startswith("callcast: ")]) == 5  # replaced, not doubled


def test_failed_checks_reach_the_webhook_with_table_date_and_expectations(server):
    _emit(
        server,
        {
            "event": "callcast.checks.failed",
            "resource": {"prefect.resource.id": "callcast.table.alerts_probe"},
            "payload": {
                "table": "alerts_probe",
                "partition_date": "2026-11-20",
                "status": "failed",
                "failed_expectations": ["expect_column_values_to_not_be_null"],
                "result": "checks/alerts_probe/dt=2026-11-20/result.json",
            },
        },
    )
    message = server.webhook.wait_for(lambda m: "alerts_probe" in m.get("subject", ""), timeout=90)
    assert message is not None, server.webhook.messages
    assert message["subject"] == "callcast: checks failed for alerts_probe"
    assert "2026-11-20" in message["body"] and "expect_column_values_to_not_be_null" in message["body"]


def test_drift_reaches_the_webhook(server):
    _emit(
        server,
        {
            "event": "callcast.drift.detected",
            "resource": {"prefect.resource.id": "callcast.model.alerts_probe"},
            "payload": {"partition_date": "2026-11-21", "psi": 0.4},
        },
    )
    message = server.webhook.wait_for(
        lambda m: (
            m.get("subject") == "callcast: drift detected" and "callcast.model.alerts_probe" in m["body"]
        ),
        timeout=90,
    )
    assert message is not None, server.webhook.messages
    assert "2026-11-21" in message["body"]


def test_a_failed_flow_run_reaches_the_webhook_with_its_reason(server):
    _python(server, DOOMED)
    message = server.webhook.wait_for(
        lambda m: "doomed-for-the-alert-test" in m.get("subject", ""), timeout=120
    )
    assert message is not None, server.webhook.messages
    assert message["subject"] == "callcast: doomed-for-the-alert-test Failed"
    assert "the source database refused the connection" in message["body"]
    assert f"{server.ui_url}/runs/flow-run/" in message["body"]  # a link people can click


def test_an_overdue_export_is_announced_before_anyone_notices(server):
    """Proactive: a table exported once and then not again within the deadline raises an alert by itself."""
    _emit(
        server,
        {
            "event": "callcast.export.completed",
            "resource": {"prefect.resource.id": "callcast.table.overdue_probe"},
            "payload": {"table": "overdue_probe", "partition_date": "2026-11-22", "rows": 3},
        },
    )
    message = server.webhook.wait_for(
        lambda m: m.get("subject") == "callcast: export of overdue_probe is overdue",
        timeout=EXPORT_DEADLINE_SECONDS + 120,
    )
    assert message is not None, server.webhook.messages
    assert "2026-11-22" in message["body"]


def test_a_table_exported_on_time_raises_no_overdue_alert(server):
    """The same trigger stays quiet while exports keep coming within the deadline."""
    import time

    event = {
        "event": "callcast.export.completed",
        "resource": {"prefect.resource.id": "callcast.table.punctual_probe"},
        "payload": {"table": "punctual_probe", "partition_date": "2026-11-22", "rows": 3},
    }
    started = time.monotonic()
    while time.monotonic() - started < EXPORT_DEADLINE_SECONDS * 1.5:
        _emit(server, event)
        time.sleep(EXPORT_DEADLINE_SECONDS / 3)
    assert not [m for m in server.webhook.messages if "punctual_probe" in m.get("subject", "")]
