"""Contracts between parts that are written apart: what the code emits vs what prefect.yaml reads, the gate's edge."""

from __future__ import annotations

import fnmatch
import importlib
import inspect
import re
from datetime import date
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = re.compile(r"\{\{\s*event\.(payload|resource)\.([A-Za-z0-9_.]+)\s*\}\}")


def _deployments() -> list[dict[str, Any]]:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


def _triggers_for(event_name: str) -> list[tuple[dict, dict]]:
    return [
        (deployment, trigger)
        for deployment in _deployments()
        for trigger in deployment.get("triggers") or []
        if event_name in (trigger.get("expect") or [])
    ]


def _emitted_export_event(monkeypatch) -> dict[str, Any]:
    """The event the export code really emits for one table's manifest (emit_event captured)."""
    module = next(
        m
        for m in (importlib.import_module("tasks.export"), importlib.import_module("flows.export"))
        if hasattr(m, "announce")
    )
    captured: dict[str, Any] = {}
    monkeypatch.setattr(module, "emit_event", lambda **kwargs: captured.update(kwargs))
    announce = module.announce
    announce = getattr(announce, "fn", announce)  # a task's plain function
    manifest = {
        "table": "campaign_contacts", "partition_date": "2026-11-24", "rows": 12, "bytes": 345,
        "sha256": "ab" * 32, "mode": "incremental", "watermark": {"high": 5}, "code_version": "0.1.0",
        "files": [{"name": "x", "rows": 12, "bytes": 345, "sha256": "ab" * 32}],
    }  # fmt: skip
    announce(manifest)
    assert captured["event"] == "callcast.export.completed"
    return captured


def _render(value: Any, event: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return jinja2.Template(value, undefined=jinja2.StrictUndefined).render(event=event)
    if isinstance(value, list):
        return [_render(v, event) for v in value]
    if isinstance(value, dict):
        return {k: _render(v, event) for k, v in value.items()}
    return value


def test_export_event_feeds_the_validation_trigger(monkeypatch):
    """The trigger matches the emitted resource and every template it reads exists in the event."""
    emitted = _emitted_export_event(monkeypatch)
    triggers = _triggers_for("callcast.export.completed")
    assert triggers, "no deployment reacts to callcast.export.completed"
    event = {"payload": emitted["payload"], "resource": emitted["resource"]}
    for deployment, trigger in triggers:
        for key, pattern in (trigger.get("match") or {}).items():
            assert fnmatch.fnmatch(emitted["resource"][key], pattern), (deployment["name"], key, pattern)
        params = trigger.get("parameters") or {}
        for text in re.findall(r"\{\{.*?\}\}", yaml.safe_dump(params)):
            kind, field = TEMPLATE.search(text).groups()
            assert field.split(".")[0] in event[kind], f"{deployment['name']} reads event.{kind}.{field}"
        rendered = _render(params, event)  # StrictUndefined: a missing key raises here
        module_path, _, flow_name = deployment["entrypoint"].partition(":")
        flow = getattr(importlib.import_module(module_path.removesuffix(".py").replace("/", ".")), flow_name)
        accepted = inspect.signature(flow.fn).parameters
        assert set(rendered) <= set(accepted), f"{deployment['name']} passes unknown parameters"
        if "partition_date" in rendered:
            assert date.fromisoformat(rendered["partition_date"]) == date(2026, 11, 24)
        if "tables" in rendered:
            assert rendered["tables"] == ["campaign_contacts"]


@pytest.mark.parametrize("new,old", [(0.57, 0.56), (0.69, 0.68), (0.82, 0.81), (0.94, 0.93)])
def test_gate_promotes_exactly_at_the_margin(new, old):
    """``new - old`` is 0.00999… in floating point for these pairs; the rule says "at least the margin"."""
    from models.propensity.gate import BehaviourResult, decide_promotion

    ok = [BehaviourResult("previous_success_not_lower", True, "")]
    at = decide_promotion({"m": new}, {"m": old}, ok, "m", 0.01)
    below = decide_promotion({"m": new - 0.0001}, {"m": old}, ok, "m", 0.01)
    assert at.promote, at.reasons
    assert not below.promote and "below the margin" in " ".join(below.reasons)
