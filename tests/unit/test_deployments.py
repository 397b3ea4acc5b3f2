"""prefect.yaml: every deployment points at a real flow, with parameters, schedules and triggers Prefect accepts."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def _flow(entrypoint: str):
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def test_every_deployment_targets_a_flow_with_matching_parameters(project):
    from prefect import Flow

    names = [d["name"] for d in project["deployments"]]
    assert len(names) == len(set(names)), "deployment names must be unique"
    for deployment in project["deployments"]:
        flow = _flow(deployment["entrypoint"])
        assert isinstance(flow, Flow), deployment["entrypoint"]
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters") or {}) <= accepted, deployment["name"]
        for trigger in deployment.get("triggers") or []:
            assert set(trigger.get("parameters") or {}) <= accepted, deployment["name"]


def test_schedules_and_triggers_validate_with_prefect_schemas(project):
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

    for deployment in project["deployments"]:
        for schedule in deployment.get("schedules") or []:
            CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))
        for trigger in deployment.get("triggers") or []:
            spec = {k: v for k, v in trigger.items() if k != "type"}
            DeploymentEventTrigger(**spec)


def test_shared_work_pool_declared_once_and_used_everywhere(project):
    pool = project["definitions"]["work_pools"]["local"]
    assert all(d["work_pool"] == pool for d in project["deployments"])
    text = (ROOT / "prefect.yaml").read_text()
    assert text.count("name: callcast-local") == 1


def test_retraining_runs_weekly_and_on_drift_with_a_cool_down(project):
    by_name = {d["name"]: d for d in project["deployments"]}
    weekly = by_name["train-propensity-weekly"]
    assert weekly["schedules"][0]["cron"].split()[-1] == "1"  # Mondays
    drift = by_name["train-propensity-on-drift"]["triggers"][0]
    assert drift["expect"] == ["callcast.drift.detected"] and drift["within"] >= 3600
    # Prefect 3.9 reads the strategy inside concurrency_limit (a separate concurrency_options key is ignored)
    assert by_name["train-propensity-on-drift"]["concurrency_limit"] == {
        "limit": 1,
        "collision_strategy": "CANCEL_NEW",
    }
    assert by_name["forecast-sales-monthly"]["schedules"][0]["cron"].split()[2] == "1"  # first of the month


def test_validation_runs_when_an_export_completes(project):
    by_name = {d["name"]: d for d in project["deployments"]}
    trigger = by_name["validate-exports"]["triggers"][0]
    assert trigger["expect"] == ["callcast.export.completed"]
    assert trigger["parameters"]["partition_date"] == "{{ event.payload.partition_date }}"


def test_the_daily_chain_runs_by_events_one_run_at_a_time(project):
    by_name = {d["name"]: d for d in project["deployments"]}
    assert "schedules" not in by_name["validate-exports"]  # no clock time: it follows the export
    score = by_name["score-call-list"]
    assert "schedules" not in score
    trigger = score["triggers"][0]
    assert trigger["expect"] == ["callcast.checks.day_passed"] and trigger["for_each"] == [
        "prefect.resource.id"
    ]
    assert trigger["parameters"] == {"partition_date": "{{ event.payload.partition_date }}"}
    for name in ("daily-export", "validate-exports", "score-call-list", "daily-pipeline"):
        assert by_name[name]["concurrency_limit"]["limit"] == 1, name
    assert by_name["daily-export"]["schedules"][0]["cron"] == "0 5 * * *"
    assert "schedules" not in by_name["daily-pipeline"]  # a one-click rerun of a day, never on a clock
    # only the chain's own runs drive it: a CLI export or the pipeline (which checks and scores itself) do not
    validate = by_name["validate-exports"]["triggers"][0]
    assert validate["match_related"] == {
        "prefect.resource.role": "deployment",
        "prefect.resource.name": "daily-export",
    }
    assert trigger["match_related"]["prefect.resource.name"] == "validate-exports"
