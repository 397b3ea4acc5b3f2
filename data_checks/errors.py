"""Errors downstream flows raise when a partition must not be used."""

from __future__ import annotations

from datetime import date

from callcast.errors import CallcastError


class PartitionRefusedError(CallcastError):
    """A raw partition may not feed training, scoring or forecasting."""

    def __init__(self, message: str, table: str, partition_date: date) -> None:
        super().__init__(message)
        self.table = table
        self.partition_date = partition_date


class QuarantinedPartitionError(PartitionRefusedError):
    """The partition failed a critical check (its result.json says ``failed``)."""

    def __init__(self, table: str, partition_date: date, failed: list[str], hint: str = "") -> None:
        reasons = "; ".join(failed) or "see its check result"
        message = f"{table} partition {partition_date.isoformat()} is quarantined: failed {reasons}. " + (
            hint or "Fix the source data, re-export that date, then rerun the validate flow."
        )
        super().__init__(message, table, partition_date)
        self.failed = failed


class PartitionNotValidatedError(PartitionRefusedError):
    """The partition has no check result yet."""

    def __init__(self, table: str, partition_date: date) -> None:
        super().__init__(
            f"{table} partition {partition_date.isoformat()} is not validated yet: run the validate flow "
            f"(callcast validate --date {partition_date.isoformat()}).",
            table,
            partition_date,
        )
