"""The validate flow on a local lake: result.json, Data Docs, quarantine, and the downstream guard."""

from __future__ import annotations

import importlib.util
from datetime import date, timedelta
from pathlib import Path

import pytest

from data_checks.errors import PartitionNotValidatedError, QuarantinedPartitionError

_spec = importlib.util.spec_from_file_location(
    "raw_factory", Path(__file__).parents[1] / "data" / "raw_factory.py"
)
rf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rf)

DAY = rf.PARTITION


def _commit(lake, tmp_path: Path, table: str, day: date, mutate=None) -> None:
    columns, rows = rf.clean_rows(table, 60, day)
    if mutate:
        mutate(columns, rows)
    path, manifest = rf.write_partition(
        tmp_path / f"{table}-{day}", table, rf.encode(columns, rows), columns, len(rows), day
    )
    manifest.pop("files")
    lake.commit_partition(f"raw/{table}", day, {path.name: path}, manifest)


@pytest.mark.integration
def test_validate_flow_quarantines_and_guard_refuses(prefect_harness, callcast_home, tmp_path, caplog):
    from callcast.lake import open_lake
    from flows.validate import validate_exports
    from tasks.checks import read_check_result, require_validated

    lake = open_lake()
    previous = DAY - timedelta(days=1)
    _commit(lake, tmp_path, "customers", previous)

    def bad_age(columns, rows):
        rows[0][columns.index("age")] = 7

    _commit(lake, tmp_path, "customers", DAY, bad_age)
    _commit(lake, tmp_path, "sales", DAY)

    assert validate_exports(partition_date=previous, tables=["customers"]) == {"customers": "passed"}
    statuses = validate_exports(partition_date=DAY, tables=["customers", "sales", "stores"])
    assert statuses == {"customers": "failed", "sales": "passed", "stores": "missing"}

    result = read_check_result(lake, "customers", DAY)
    assert set(result) >= {"table", "partition_date", "status", "failed_expectations", "rows_checked"}
    assert result["failed_expectations"][0]["column"] == "age"
    docs = Path(callcast_home) / "lake" / "checks" / "customers" / f"dt={DAY}" / "data_docs"
    assert "failed" in (docs / "index.html").read_text()
    assert (docs / "gx" / "index.html").exists()

    with pytest.raises(QuarantinedPartitionError) as refused:
        require_validated(lake, "customers", DAY)
    message = str(refused.value)
    assert "customers" in message and DAY.isoformat() in message and "age" in message
    assert require_validated(lake, "customers", DAY, fallback_to_last_good=True) == previous
    assert require_validated(lake, "sales") == DAY

    _commit(lake, tmp_path, "stores", DAY)
    with pytest.raises(PartitionNotValidatedError, match="not validated yet: run the validate flow"):
        require_validated(lake, "stores", DAY)
