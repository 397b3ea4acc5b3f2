"""The check result document (``checks/<table>/dt=.../result.json``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from callcast.catalog import partition_label
from data_checks.config import Severity

Status = Literal["passed", "warning", "failed"]


class FailedExpectation(BaseModel):
    """One expectation that did not hold, in words a person can act on."""

    expectation: str
    column: str | None = None
    severity: Severity
    details: str
    unexpected_count: int | None = None


class CheckResult(BaseModel):
    """Outcome of validating one partition of one table (contract keys first)."""

    table: str
    partition_date: str
    status: Status
    failed_expectations: list[FailedExpectation] = Field(default_factory=list)
    rows_checked: int = 0
    expectations_evaluated: int = 0
    sample_rows: list[dict[str, Any]] = Field(default_factory=list)
    checked_at: str | None = None
    seconds: float | None = None
    manifest_sha256: str | None = None
    data_docs: str | None = None

    @property
    def critical_failures(self) -> list[FailedExpectation]:
        return [f for f in self.failed_expectations if f.severity == "critical"]

    def summary(self) -> str:
        """One line per failed expectation, critical first."""
        head = f"{partition_label(self.table, self.partition_date)}: {self.status} ({self.rows_checked:,} rows checked)"
        ordered = sorted(self.failed_expectations, key=lambda f: f.severity != "critical")
        return "\n".join([head] + [f"  [{f.severity}] {f.details}" for f in ordered])

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def overall_status(failures: list[FailedExpectation]) -> Status:
    if any(f.severity == "critical" for f in failures):
        return "failed"
    return "warning" if failures else "passed"
