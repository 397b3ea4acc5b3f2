"""Suites as code, type parsing and the downstream guard, without GX or Prefect."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from callcast.lake import Lake
from callcast.storage import LocalStorage
from data_checks.config import ChecksConfig
from data_checks.errors import PartitionNotValidatedError, QuarantinedPartitionError
from data_checks.reader import parse_chunk
from data_checks.specs import plan_suite, table_spec


def test_every_expectation_is_critical_or_warning_and_covers_the_spec():
    plans = plan_suite(table_spec("campaign_contacts"), date(2024, 3, 31), ChecksConfig())
    assert {p.severity for p in plans} <= {"critical", "warning"}
    by_type = {}
    for p in plans:
        by_type.setdefault(p.type, set()).add(p.column)
    assert {"y", "duration", "outcome_known_on"}.isdisjoint(by_type["expect_column_values_to_not_be_null"])
    assert {"contact", "month", "poutcome", "y"} <= by_type["expect_column_values_to_be_in_set"]
    assert by_type["expect_column_values_to_be_unique"] == {"contact_id"}
    assert "updated_at" in by_type["expect_column_max_to_be_between"]
    assert table_spec("sales").mode == "incremental" and table_spec("customers").mode == "snapshot"


def test_parse_chunk_reports_values_of_the_wrong_type():
    raw = pd.DataFrame(
        {"sale_id": ["1", "x2"], "sale_date": ["2024-01-01", "01/02/2024"], "on_promotion": [True, "yes"]}
    )
    spec = table_spec("sales")
    typed, issues = parse_chunk(raw, [spec.column(c) for c in raw.columns], 5)
    assert issues["sale_id"].examples == ["x2"] and issues["sale_date"].examples == ["01/02/2024"]
    assert issues["on_promotion"].count == 1
    assert typed["sale_date"].iloc[0] == pd.Timestamp("2024-01-01")


def _lake_with(tmp_path, statuses: dict[date, str | None]) -> Lake:
    lake = Lake(LocalStorage(tmp_path))
    for day, status in statuses.items():
        source = tmp_path / "src.csv.gz"
        source.write_bytes(b"x")
        lake.commit_partition("raw/sales", day, {"sales.csv.gz": source}, {"table": "sales", "rows": 1})
        if status:
            failed = [{"expectation": "expect_column_values_to_be_between", "column": "quantity",
                       "severity": "critical", "details": "quantity: 3 values outside [1, 1000]"}]  # fmt: skip
            lake.write_json(
                f"checks/sales/dt={day}/result.json",
                {"table": "sales", "partition_date": day.isoformat(), "status": status, "rows_checked": 1,
                 "failed_expectations": failed if status == "failed" else []},
            )  # fmt: skip
    return lake


def test_guard_refuses_quarantined_and_unvalidated_history(tmp_path, monkeypatch):
    from tasks.checks import require_validated, require_validated_history

    d1, d2, d3 = date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3)
    lake = _lake_with(tmp_path, {d1: "passed", d2: "failed", d3: None})
    # CALLCAST_CHECKS__FALLBACK_TO_LAST_GOOD=true lets every reader fall back (loudly) ...
    monkeypatch.setenv("CALLCAST_CHECKS__FALLBACK_TO_LAST_GOOD", "true")
    assert require_validated(lake, "sales", d2) == d1
    assert require_validated_history(lake, "sales") == [d1]
    # ... and by default a bad partition blocks what reads it
    monkeypatch.delenv("CALLCAST_CHECKS__FALLBACK_TO_LAST_GOOD")
    with pytest.raises(
        QuarantinedPartitionError, match=r"sales partition 2024-01-02 is quarantined.*quantity"
    ):
        require_validated(lake, "sales", d2)
    with pytest.raises(PartitionNotValidatedError):
        require_validated(lake, "sales")  # latest = d3, never validated
    assert require_validated(lake, "sales", d3, fallback_to_last_good=True) == d1
    with pytest.raises(QuarantinedPartitionError):
        require_validated_history(lake, "sales")
    assert require_validated_history(lake, "sales", fallback_to_last_good=True) == [d1]
