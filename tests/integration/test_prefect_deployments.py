"""prefect.yaml on a real local Prefect server: deployments register, and events start the right runs.

Starts `prefect server start` on 127.0.0.1 (its own PREFECT_HOME), runs `prefect deploy --all`, emits the
project's events and watches the flow runs the automations create.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PREFECT = Path(sys.executable).with_name("prefect")

EMIT_AND_COUNT = """
import asyncio, json, sys, time
from prefect.events import emit_event
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

events = json.loads(sys.argv[1]); deployment = sys.argv[2]; wait = float(sys.argv[3])
for event in events:
    emit_event(**event)

async def runs():
    async with get_client() as client:
        found = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])))
        # runs the cron schedules pre-create are not what the events started
        return [{"parameters": r.parameters, "state": r.state_type.value} for r in found if not r.auto_scheduled]

deadline = time.monotonic() + wait
seen = []
while time.monotonic() < deadline:
    seen = asyncio.run(runs())
    if seen and len(events) == 1:
        break
    time.sleep(1)
print(json.dumps(seen, default=str))
"""


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory, free_port) -> Iterator[dict[str, str]]:
    port = free_port()
    home = tmp_path_factory.mktemp("prefect-home")
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "CALLCAST_PROJECT_DIR": str(ROOT),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        import httpx

        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Prefect server did not start on 127.0.0.1")
            time.sleep(0.5)
        subprocess.run(
            [str(PREFECT), "work-pool", "create", "callcast-local", "--type", "process", "--overwrite"],
            env=env,
            check=True,
            capture_output=True,
        )
        deployed = subprocess.run(
            [str(PREFECT), "--no-prompt", "deploy", "--all"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
        yield env
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _emit_and_watch(env: dict[str, str], events: list[dict], deployment: str, wait: float) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-c", EMIT_AND_COUNT, json.dumps(events), deployment, str(wait)],
        env=env,
        capture_output=True,
        text=True,
        timeout=wait + 60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_deployment_and_schedule_is_registered(prefect_server):
    listed = subprocess.run(
        [str(PREFECT), "deployment", "ls"], env=prefect_server, capture_output=True, text=True, check=True
    ).stdout
    for name in ("daily-export", "validate-exports", "train-propensity", "score-call-list", "forecast-sales"):
        assert name in listed


def test_export_completed_event_starts_validation_for_that_table_and_date(prefect_server):
    event = {
        "event": "callcast.export.completed",
        "resource": {"prefect.resource.id": "callcast.table.sales"},
        "payload": {"table": "sales", "partition_date": "2026-11-24", "rows": 10},
        # as emitted from a run of the daily-export deployment (the chain ignores CLI and pipeline exports)
        "related": [
            {
                "prefect.resource.id": "prefect.deployment.00000000-0000-0000-0000-000000000001",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": "daily-export",
            }
        ],
    }
    runs = _emit_and_watch(prefect_server, [event], "validate-exports", wait=60)
    assert len(runs) == 1, runs
    assert runs[0]["parameters"] == {"partition_date": "2026-11-24", "tables": ["sales"]}


def test_a_burst_of_drift_events_starts_one_retraining(prefect_server):
    event = {
        "event": "callcast.drift.detected",
        "resource": {"prefect.resource.id": "callcast.model.propensity"},
        "payload": {"psi": 0.4},
    }
    runs = _emit_and_watch(prefect_server, [event] * 4, "train-propensity-on-drift", wait=25)
    assert len(runs) == 1, runs
    assert runs[0]["state"] == "SCHEDULED"  # starts after the 10-minute delay, once the burst is over
