"""The state of the company in one Prefect artifact (key ``callcast-state``), refreshed by every daily run.

Which model version serves and how good it is, the last call list, the day's check verdicts and the last
monitoring verdict — what a person opening the UI wants to know first. Images are embedded as data URIs
(Prefect's markdown artifacts cannot show a path in the lake).
"""

from __future__ import annotations

import base64
import json
from datetime import date
from typing import Any

from prefect import task

from callcast import catalog
from callcast.errors import CallcastError
from callcast.lake import Lake

STATE_KEY = "callcast-state"
MODEL = "propensity"
CHART = "per_date_capture.png"  # the champion's decision chart: share of buyers reached vs random calling
CALL_LIST_CSV = "call_list.csv"
DRIFT_JSON = "drift.json"

_LABELS = {
    "within_date_auc": "within-date AUC",
    "capture_at_capacity": "buyers reached at capacity",
    "capture_random": "random calling reaches",
    "capture_lift": "lift over random",
}


def _pct(value: Any) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) else "n/a"


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"


def champion_state(lake: Lake) -> dict[str, Any] | None:
    """The serving champion: version, recipe, headline figures, its decision chart (PNG bytes) if stored."""
    from tasks import registry

    aliases = registry.read_aliases(lake, MODEL)
    version = aliases.get("champion")
    if not version:
        return None
    info = lake.read_json(f"{catalog.registry_version(MODEL, version)}/model.json")
    chart_key = f"{catalog.registry_version(MODEL, version)}/{CHART}"
    chart = lake.storage.get_bytes(chart_key) if lake.storage.exists(chart_key) else None
    return {
        "version": version,
        "candidate": info.get("candidate"),
        "metrics": info.get("metrics") or {},
        "trained_at": info.get("trained_at") or info.get("created_at"),
        "challenger": aliases.get("challenger"),
        "chart": chart,
        "registry": lake.describe(catalog.registry_version(MODEL, version)),
    }


def last_call_list(lake: Lake, until: date | None) -> dict[str, Any] | None:
    """The newest call list partition on or before ``until``: its date, rows and where it is."""
    days = [d for d in lake.partitions(catalog.call_lists()) if until is None or d <= until]
    if not days:
        return None
    manifest = lake.read_manifest(catalog.call_lists(), days[-1])
    return {
        "partition_date": days[-1].isoformat(),
        "rows": manifest.get("rows"),
        "path": lake.describe(catalog.partition(catalog.call_lists(), days[-1])),
    }


def check_verdicts(lake: Lake, day: date, tables: list[str]) -> dict[str, str]:
    from tasks.checks import day_verdicts

    return day_verdicts(lake, day, tables)


def latest_checked_day(lake: Lake, tables: list[str], today: date) -> date:
    """The newest export day (on or before today) of any required table: the day the state speaks about."""
    days = [lake.latest_partition(catalog.raw(t), today) for t in tables]
    return max((d for d in days if d is not None), default=today)


def last_monitoring(lake: Lake, until: date | None) -> dict[str, Any] | None:
    prefix = catalog.monitoring(MODEL)
    days = [d for d in lake.partitions(prefix) if until is None or d <= until]
    for day in reversed(days):
        try:
            document = json.loads(lake.read_bytes(prefix, day, DRIFT_JSON))
        except (KeyError, ValueError, CallcastError):
            continue  # a monitoring partition without a drift document: look further back
        else:
            return {
                "partition_date": day.isoformat(),
                "drift_detected": bool(document.get("drift_detected")),
                "status": document.get("status") or ("drift" if document.get("drift_detected") else "ok"),
                "reasons": document.get("reasons") or [],
            }
    return None


def state_markdown(
    day: date,
    champion: dict[str, Any] | None,
    call_list: dict[str, Any] | None,
    verdicts: dict[str, str],
    monitoring: dict[str, Any] | None,
) -> str:
    """The artifact's text (pure: tested on plain dicts)."""
    lines = [f"# callcast — state on {day.isoformat()}", ""]
    if champion:
        m = champion["metrics"]
        lines += [
            f"## Serving model: propensity **{champion['version']}** ({champion.get('candidate') or 'recipe n/a'})",
            "",
            "| figure | value |",
            "|---|---|",
            f"| {_LABELS['within_date_auc']} | {_num(m.get('within_date_auc'))} |",
            f"| {_LABELS['capture_at_capacity']} | {_pct(m.get('capture_at_capacity'))} |",
            f"| {_LABELS['capture_random']} | {_pct(m.get('capture_random'))} |",
            f"| {_LABELS['capture_lift']} | {_num(m.get('capture_lift'))} |",
            "",
            f"Registry: `{champion['registry']}`"
            + (f"; challenger {champion['challenger']}" if champion.get("challenger") else ""),
        ]
        if champion.get("chart"):
            uri = "data:image/png;base64," + base64.b64encode(champion["chart"]).decode()
            lines += ["", f"![Buyers reached per call date, against random calling]({uri})"]
    else:
        lines += ["## Serving model: **none** — no champion yet (run `callcast train`)."]
    lines += ["", "## Last call list"]
    if call_list:
        lines.append(
            f"{call_list['partition_date']}: {call_list.get('rows') or 'n/a'} customers — `{call_list['path']}`"
        )
        if call_list.get("expected_sales") is not None:
            lines.append(
                f"Expected buyers {call_list['expected_sales']:.1f} vs {call_list.get('random_expected', 0):.1f} "
                "calling the same number at random."
            )
    else:
        lines.append("none yet.")
    lines += ["", f"## Data checks {day.isoformat()}", "", "| table | verdict |", "|---|---|"]
    lines += [f"| {table} | **{status}** |" for table, status in verdicts.items()]
    bad = [t for t, s in verdicts.items() if s not in ("passed", "warning")]
    lines += ["", f"Not usable today: {', '.join(bad)}." if bad else "Every table is usable today."]
    lines += ["", "## Monitoring"]
    if monitoring:
        head = "DRIFT DETECTED" if monitoring["drift_detected"] else str(monitoring["status"]).upper()
        why = "; ".join(monitoring["reasons"][:3])
        lines.append(f"{monitoring['partition_date']}: **{head}**" + (f" — {why}" if why else ""))
    else:
        lines.append("no monitoring report yet.")
    return "\n".join(lines) + "\n"


@task(name="publish-state", task_run_name="publish-state-{partition_date}")
def publish_state_task(
    partition_date: date | None = None,
    call_list: dict[str, Any] | None = None,
    lake_url: str | None = None,
) -> str:
    """Refresh the ``callcast-state`` markdown artifact; returns its text."""
    from prefect.artifacts import create_markdown_artifact

    from callcast.lake import open_lake
    from callcast.runtime import company_today
    from callcast.schema import TABLE_NAMES
    from callcast.settings import get_settings

    settings = get_settings(**({"lake_url": lake_url} if lake_url else {}))
    lake = open_lake(settings)
    tables = settings.export.tables or [t for t in TABLE_NAMES if t not in settings.export.exclude]
    day = partition_date or latest_checked_day(lake, tables, company_today(settings))
    listed = last_call_list(lake, day)
    if (
        listed
        and call_list
        and call_list.get("partition_date", listed["partition_date"]) == listed["partition_date"]
    ):
        listed = {
            **listed,
            **{k: call_list[k] for k in ("expected_sales", "random_expected") if k in call_list},
        }
    text = state_markdown(
        day, champion_state(lake), listed, check_verdicts(lake, day, tables), last_monitoring(lake, day)
    )
    create_markdown_artifact(key=STATE_KEY, markdown=text, description=f"callcast state on {day.isoformat()}")
    return text
