"""The daily chain on a real local server, driven by events: export → checks → scoring, and what a bad day does.

Runs through ``callcast serve``'s worker exactly as production does: the daily-export deployment announces each
table, validate-exports checks them one at a time, the day's last passing table emits
``callcast.checks.day_passed`` and score-call-list builds that day's list. A failing export is announced at the
webhook, and scoring then refuses the day instead of quietly building on an older export.
"""

from __future__ import annotations

import time
from datetime import date, datetime

import pytest
from local_prefect import DAY0, served, trained

pytestmark = pytest.mark.integration

DAY1 = date(2026, 11, 24)
DAY2 = date(2026, 11, 25)
TABLES = ("customers", "campaign_contacts", "stores", "products", "sales")


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    instance = served(request, tmp_path_factory)
    trained(instance)
    return instance


def _manifest(server, dataset: str, day: date):
    return server.home / "lake" / dataset / f"dt={day.isoformat()}" / "_manifest.json"


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_pipeline_from_the_cli_runs_in_the_served_server_and_starts_no_second_chain(server):
    notes = trained(server)
    assert "Call list" in notes["pipeline_output"], notes["pipeline_output"][-3000:]
    pipeline = [r for r in server.runs() if r["deployment_id"] is None and "forecast" in r["parameters"]]
    assert pipeline and pipeline[0]["state_type"] == "COMPLETED"
    assert _manifest(server, "call_lists", DAY0).exists()
    time.sleep(5)  # the events of the pipeline's export had time to trigger anything they would trigger
    assert server.runs("validate-exports") == []  # the pipeline checks its own export (no duplicate run)


def test_export_then_checks_then_scoring_follow_by_events(server):
    server.cli("next-day")  # the demo company lives one more day
    export_id = server.run_deployment("daily-export", {"partition_date": DAY1.isoformat()})
    export = server.wait_run(export_id, timeout=600)
    assert export["state_type"] == "COMPLETED", export["state"]

    checks = server.wait_runs(
        "validate-exports",
        lambda r: r["parameters"].get("partition_date") == DAY1.isoformat(),
        5,
        timeout=900,
    )
    assert sorted(r["parameters"]["tables"][0] for r in checks) == sorted(TABLES)
    assert all(r["state_type"] == "COMPLETED" for r in checks), [(r["name"], r["state"]) for r in checks]
    spans = sorted((_stamp(r["start_time"]), _stamp(r["end_time"])) for r in checks)
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)), (
        "checks ran at once"
    )

    scoring = server.wait_runs(
        "score-call-list", lambda r: r["parameters"].get("partition_date") == DAY1.isoformat(), 1, timeout=600
    )
    assert len(scoring) == 1 and scoring[0]["state_type"] == "COMPLETED", scoring[0]["state"]
    assert _manifest(server, "call_lists", DAY1).exists()
    assert _stamp(scoring[0]["start_time"]) >= max(end for _, end in spans)  # only after every table passed
    published = server.webhook.wait_for(
        lambda m: m.get("subject") == f"callcast: call list {DAY1.isoformat()}", timeout=120
    )
    assert published is not None, server.webhook.messages  # the phone team hears where the new list is
    assert "call_list" in published["body"] and "customers, model v" in published["body"]


def test_a_failed_export_is_announced_and_scoring_refuses_the_stale_day(server):
    export_id = server.run_deployment(
        "daily-export", {"partition_date": DAY2.isoformat(), "tables": ["no_such_table"]}
    )
    assert server.wait_run(export_id, timeout=600)["state_type"] == "FAILED"
    alert = server.webhook.wait_for(
        lambda m: m.get("subject") == "callcast: daily-export Failed" and "no_such_table" in m["body"],
        timeout=120,
    )
    assert alert is not None, server.webhook.messages
    assert f"{server.ui_url}/runs/flow-run/{export_id}" in alert["body"]

    score_id = server.run_deployment("score-call-list", {"partition_date": DAY2.isoformat()})
    scoring = server.wait_run(score_id, timeout=600)
    assert scoring["state_type"] == "FAILED"
    assert DAY2.isoformat() in scoring["state"]["message"], scoring["state"]["message"]
    assert not _manifest(server, "call_lists", DAY2).exists()  # no list built from the older export
    refusal = server.webhook.wait_for(
        lambda m: m.get("subject") == "callcast: score-call-list Failed" and DAY2.isoformat() in m["body"],
        timeout=120,
    )
    assert refusal is not None, server.webhook.messages


def test_the_state_artifact_names_the_serving_champion(server):
    found = server.api("POST", "/artifacts/filter", {"artifacts": {"key": {"any_": ["callcast-state"]}}})
    assert found, "no callcast-state artifact"
    latest = max(found, key=lambda a: a["created"])
    champion = (server.home / "lake" / "registry" / "propensity" / "aliases.json").read_text()
    import json

    version = json.loads(champion)["champion"]
    assert f"propensity **{version}**" in latest["data"]
    assert "data:image/png;base64," in latest["data"]
