"""Drift closes the loop on a real local Prefect server: monitoring → event → trigger → retraining → gate.

Starts `prefect server start` (own PREFECT_HOME), deploys prefect.yaml, starts a process worker on the project's
pool, prepares a lake with a champion and a shifted export, then:

1. runs the ``monitor-propensity`` deployment on the shifted day: the run emits ``callcast.drift.detected``;
2. the deployment trigger creates a ``train-propensity-on-drift`` run with ``reason=drift``; the test moves its
   start from "in 10 minutes" (the trigger's ``schedule_after``) to now, the worker runs it, it completes and
   the promotion gate records its decision in the registry;
3. a second drift event inside the cool-down creates no second retraining run;
4. the deployment's stored concurrency options say ``CANCEL_NEW``.

The retraining deployment's profile is switched to ``quick`` through the API to keep the test short (the
mechanism under test does not depend on the search profile).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PREFECT = Path(sys.executable).with_name("prefect")
DAY = date(2010, 11, 30)
SHIFTED = DAY + timedelta(days=1)
RETRAIN = "train-propensity-on-drift"

CLIENT = r"""
import asyncio, json, sys, time
from datetime import datetime, timezone
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterId
from prefect.events import emit_event
from prefect.states import Scheduled

command, args = sys.argv[1], json.loads(sys.argv[2])

async def runs(client, deployment):
    found = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])))
    return [r for r in found if not r.auto_scheduled]

def describe(r):
    return {"id": str(r.id), "state": r.state_type.value, "parameters": r.parameters, "name": r.state_name}

async def main():
    async with get_client() as client:
        if command == "run":
            deployment = await client.read_deployment_by_name(args["deployment"])
            run = await client.create_flow_run_from_deployment(deployment.id, parameters=args.get("parameters", {}))
            print(json.dumps({"id": str(run.id)}))
        elif command == "wait":  # until the run is final
            deadline = time.monotonic() + args["limit"]
            while True:
                run = await client.read_flow_run(args["id"])
                if run.state.is_final() or time.monotonic() > deadline:
                    print(json.dumps(describe(run)))
                    return
                await asyncio.sleep(2)
        elif command == "runs":  # runs of a deployment, waiting up to `wait` s for at least `at_least`
            deadline = time.monotonic() + args.get("wait", 0)
            while True:
                found = await runs(client, args["deployment"])
                if len(found) >= args.get("at_least", 0) or time.monotonic() > deadline:
                    print(json.dumps([describe(r) for r in found]))
                    return
                await asyncio.sleep(1)
        elif command == "start_now":
            await client.set_flow_run_state(args["id"], Scheduled(scheduled_time=datetime.now(timezone.utc)), force=True)
            print("{}")
        elif command == "quick":
            deployment = await client.read_deployment_by_name(args["deployment"])
            from prefect.client.schemas.actions import DeploymentUpdate
            params = {**deployment.parameters, "profile": "quick"}
            await client.update_deployment(deployment.id, DeploymentUpdate(parameters=params))
            print("{}")
        elif command == "deployment":
            d = await client.read_deployment_by_name(args["deployment"])
            print(json.dumps({"parameters": d.parameters, "concurrency_limit": d.global_concurrency_limit.limit
                              if d.global_concurrency_limit else None,
                              "collision_strategy": d.concurrency_options.collision_strategy.value
                              if d.concurrency_options else None}))
        elif command == "emit":
            emit_event(**args["event"])
            print("{}")

asyncio.run(main())
"""


def _client(env: dict[str, str], command: str, **args) -> object:
    timeout = float(args.get("limit", args.get("wait", 0))) + 180
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, command, json.dumps(args, default=str)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _prepare_lake(home: Path) -> None:
    """A champion trained on 1 in 4 UCI customers, and a shifted customers export the day after."""
    code = f"""
import numpy as np
from datetime import date
from callcast.lake import open_lake
from demo_company.bank import bank_tables, load_bank_full
from models.propensity.config import PropensityConfig
from models.propensity.estimators import build_pipeline
from models.propensity.features import build_training_table
from tasks import registry
import importlib.util
spec = importlib.util.spec_from_file_location("callcast_test_conftest", "tests/conftest.py")
conftest = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conftest)
commit = conftest._commit_validated_partition

customers, contacts = bank_tables(seed=3, bank=load_bank_full().iloc[::4].reset_index(drop=True))
lake = open_lake()
day, shifted = date.fromisoformat("{DAY}"), date.fromisoformat("{SHIFTED}")
commit(lake, "customers", customers, day)
commit(lake, "campaign_contacts", contacts, day)
config = PropensityConfig()
candidate = next(c for c in config.candidates if c.name == "logreg/context_engineered")
table = build_training_table(customers, contacts)
model = build_pipeline(candidate, config).fit(table, table["y"].to_numpy())
fs = config.feature_sets[candidate.feature_set]
registry.register_model(lake, "propensity", model, {{
    "candidate": candidate.name, "features": {{"categorical": fs.categorical, "numeric": fs.numeric}},
    "metrics": {{"within_date_auc": 0.7}}, "inputs": [{{"table": "customers", "partition_date": str(day)}}]}})
registry.set_alias(lake, "propensity", "champion", "v0001")
moved = customers.copy()
pick = np.random.default_rng(1).random(len(moved)) < 0.6
moved.loc[pick, "age"] = (moved.loc[pick, "age"] + 12).clip(upper=95)
moved.loc[pick, "balance"] = (moved.loc[pick, "balance"] * 0.2).round().astype(int)
commit(lake, "customers", moved, shifted)
commit(lake, "campaign_contacts", contacts.head(0), shifted)
"""
    env = {**os.environ, "CALLCAST_HOME": str(home), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def loop_server(tmp_path_factory: pytest.TempPathFactory, free_port) -> Iterator[dict[str, str]]:
    port = free_port()
    home = tmp_path_factory.mktemp("callcast-home")
    _prepare_lake(home)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLCAST_")},
        "CALLCAST_HOME": str(home),
        "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "CALLCAST_PROJECT_DIR": str(ROOT),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "GX_ANALYTICS_ENABLED": "false",
        "MPLBACKEND": "Agg",
    }
    logs = home / "logs"
    logs.mkdir(exist_ok=True)
    server = subprocess.Popen(
        [str(PREFECT), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = None
    try:
        import httpx

        deadline = time.monotonic() + 420  # a loaded 2-core machine
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
        with open(logs / "worker.log", "w") as worker_log:
            worker = subprocess.Popen(
                [str(PREFECT), "worker", "start", "--pool", "callcast-local", "--type", "process"],
                env=env,
                cwd=ROOT,
                stdout=worker_log,
                stderr=subprocess.STDOUT,
            )
        yield env
    finally:
        for process in (worker, server):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.timeout(2400)  # a server, a deployment run and a retraining on a shared 2-core machine
def test_drift_event_starts_one_gated_retraining_and_the_cooldown_holds(loop_server):
    env = loop_server
    stored = _client(env, "deployment", deployment=f"train-propensity/{RETRAIN}")
    assert stored["collision_strategy"] == "CANCEL_NEW" and stored["concurrency_limit"] == 1
    assert stored["parameters"]["reason"] == "drift"
    _client(env, "quick", deployment=f"train-propensity/{RETRAIN}")

    # 1. monitoring, run by the worker from its deployment, on the shifted export
    run = _client(env, "run", deployment="monitor-propensity/monitor-propensity",
                  parameters={"partition_date": SHIFTED.isoformat()})  # fmt: skip
    monitored = _client(env, "wait", limit=600, id=run["id"])
    assert monitored["state"] == "COMPLETED", monitored
    lake_root = Path(env["CALLCAST_HOME"]) / "lake" / "monitoring" / "propensity" / f"dt={SHIFTED}"
    manifest = json.loads((lake_root / "_manifest.json").read_text())
    assert manifest["drift_detected"] is True

    # 2. the trigger created one retraining run with reason=drift; start it now and let the worker run it
    runs = _client(env, "runs", wait=90, deployment=RETRAIN, at_least=1)
    assert len(runs) == 1, runs
    assert runs[0]["parameters"]["reason"] == "drift" and runs[0]["state"] == "SCHEDULED"
    _client(env, "start_now", id=runs[0]["id"])
    trained = _client(env, "wait", limit=1500, id=runs[0]["id"])
    assert trained["state"] == "COMPLETED", trained
    registry = Path(env["CALLCAST_HOME"]) / "lake" / "registry" / "propensity"
    new = json.loads((registry / "v0002" / "model.json").read_text())
    aliases = json.loads((registry / "aliases.json").read_text())
    assert new["decision"]["reasons"]  # the gate decided, and said why
    assert (aliases["champion"] == "v0002") is bool(new["promoted"])

    # 3. another drift event inside the cool-down starts nothing new
    _client(env, "emit", event={
        "event": "callcast.drift.detected",
        "resource": {"prefect.resource.id": "callcast.model.propensity"},
        "payload": {"reasons": ["second alarm"]},
    })  # fmt: skip
    later = _client(env, "runs", wait=30, deployment=RETRAIN, at_least=2)
    assert len(later) == 1, later
