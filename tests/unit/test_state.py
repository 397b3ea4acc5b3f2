"""The callcast-state artifact: what a person reads first in the UI, built from the lake's real files."""

from __future__ import annotations

import base64
import io
import json
from datetime import date

from callcast import catalog
from callcast.lake import Lake
from callcast.storage import LocalStorage
from tasks.checks import day_verdicts, result_key
from tasks.state import (
    champion_state,
    last_call_list,
    last_monitoring,
    latest_checked_day,
    state_markdown,
)

DAY = date(2026, 11, 24)
TABLES = ["customers", "campaign_contacts", "sales"]


def _png() -> bytes:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def _lake(tmp_path) -> Lake:
    lake = Lake(LocalStorage(tmp_path / "lake"))
    version = catalog.registry_version("propensity", "v0003")
    lake.write_json(f"{version}/model.json", {"version": "v0003", "candidate": "hgb",
                                              "metrics": {"within_date_auc": 0.71, "capture_at_capacity": 0.42,
                                                          "capture_random": 0.1, "capture_lift": 4.2}})  # fmt: skip
    lake.storage.put_bytes(f"{version}/per_date_capture.png", _png())
    lake.write_json(catalog.registry_aliases("propensity"), {"champion": "v0003", "challenger": "v0004"})
    for table, status in zip(TABLES, ["passed", "warning", "failed"], strict=True):
        lake.write_json(result_key(table, DAY), {"table": table, "status": status})
    drift = tmp_path / "drift.json"
    drift.write_text(json.dumps({"drift_detected": True, "status": "drift", "reasons": ["age PSI 0.31"]}))
    lake.commit_partition(catalog.monitoring("propensity"), DAY, {"drift.json": drift}, {"table": "drift"})
    return lake


def test_state_names_the_champion_its_figures_and_embeds_its_chart(tmp_path):
    lake = _lake(tmp_path)
    champion = champion_state(lake)
    assert champion["version"] == "v0003" and champion["challenger"] == "v0004"
    text = state_markdown(DAY, champion, None, day_verdicts(lake, DAY, TABLES), last_monitoring(lake, DAY))
    assert "propensity **v0003** (hgb)" in text and "| buyers reached at capacity | 42.0% |" in text
    uri = text.split("](data:image/png;base64,")[1].split(")")[0]
    assert base64.b64decode(uri)[:8] == b"\x89PNG\r\n\x1a\n"  # a real PNG the browser can draw


def test_state_lists_each_check_verdict_and_the_drift(tmp_path):
    lake = _lake(tmp_path)
    verdicts = day_verdicts(lake, DAY, [*TABLES, "stores"])
    assert verdicts == {
        "customers": "passed",
        "campaign_contacts": "warning",
        "sales": "failed",
        "stores": "missing",
    }
    text = state_markdown(DAY, None, None, verdicts, last_monitoring(lake, DAY))
    assert "| sales | **failed** |" in text and "Not usable today: sales, stores." in text
    assert "**DRIFT DETECTED** — age PSI 0.31" in text
    assert "no champion yet" in text and "none yet." in text


def test_state_day_is_the_newest_checked_day_not_a_future_one(tmp_path):
    lake = _lake(tmp_path)
    for day in (DAY, date(2026, 12, 30)):
        export = tmp_path / f"{day}.csv.gz"
        export.write_bytes(b"")
        lake.commit_partition(
            catalog.raw("customers"), day, {"customers.csv.gz": export}, {"table": "customers"}
        )
    assert latest_checked_day(lake, TABLES, date(2026, 12, 3)) == DAY
    assert last_call_list(lake, DAY) is None
    assert (
        json.loads((tmp_path / "lake" / catalog.registry_aliases("propensity")).read_text())["champion"]
        == "v0003"
    )


def test_the_day_is_announced_only_once_every_required_table_passed(tmp_path, monkeypatch):
    import prefect.events

    from callcast.schema import TABLE_NAMES
    from tasks.checks import announce_day_if_passed

    lake = Lake(LocalStorage(tmp_path / "lake"))
    monkeypatch.setenv("CALLCAST_LAKE_URL", str(tmp_path / "lake"))
    monkeypatch.delenv("CALLCAST_EXPORT__TABLES", raising=False)
    sent = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **event: sent.append(event))
    for table in TABLE_NAMES[:-1]:
        lake.write_json(result_key(table, DAY), {"table": table, "status": "passed"})
    waiting = announce_day_if_passed.fn(DAY)
    assert waiting[TABLE_NAMES[-1]] == "missing" and sent == []  # one table still to come: nothing starts
    lake.write_json(result_key(TABLE_NAMES[-1], DAY), {"table": TABLE_NAMES[-1], "status": "warning"})
    announce_day_if_passed.fn(DAY)
    assert [e["event"] for e in sent] == ["callcast.checks.day_passed"]
    assert sent[0]["resource"] == {"prefect.resource.id": f"callcast.day.{DAY.isoformat()}"}
    assert sent[0]["payload"]["partition_date"] == DAY.isoformat()
    lake.write_json(result_key(TABLE_NAMES[0], DAY), {"table": TABLE_NAMES[0], "status": "failed"})
    announce_day_if_passed.fn(DAY)
    assert len(sent) == 1  # a failed table stops the day
