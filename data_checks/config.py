"""Thresholds and tolerances of the data checks (wired into the settings as a nested field)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from callcast.schema import CustomerSchema

Severity = Literal["critical", "warning"]


class ValueRange(BaseModel):
    """Inclusive bounds for a numeric column; ``None`` leaves a side open."""

    min: float | None = None
    max: float | None = None
    severity: Severity = "critical"


def _default_ranges() -> dict[str, dict[str, list[ValueRange]]]:
    r = ValueRange
    return {
        "customers": {
            "customer_id": [r(min=1)],
            "age": [r(min=18, max=100)],
            # Impossible balances are critical; ones far outside the UCI data (-8,019..102,127) a warning.
            "balance": [r(min=-1_000_000, max=100_000_000), r(min=-20_000, max=250_000, severity="warning")],
        },
        "campaign_contacts": {
            "contact_id": [r(min=1)],
            "customer_id": [r(min=1)],
            "day": [r(min=1, max=31)],
            "duration": [r(min=0, max=10_000)],
            "campaign": [r(min=1, max=100)],
            "pdays": [r(min=-1, max=1_000)],
            "previous": [r(min=0, max=1_000)],
        },
        "stores": {"store_id": [r(min=1)]},
        "products": {"product_id": [r(min=1)], "unit_price": [r(min=0.01, max=20_000)]},
        "sales": {
            "sale_id": [r(min=1)],
            "store_id": [r(min=1)],
            "product_id": [r(min=1)],
            "quantity": [r(min=1, max=1_000)],
            "unit_price": [r(min=0.01, max=20_000)],
            "revenue": [r(min=0.01, max=20_000_000)],
        },
    }


class ChecksConfig(BaseModel):
    """How the raw partitions are validated."""

    chunk_rows: int = Field(500_000, ge=1_000, description="Rows per validated chunk (bounds memory).")
    sample_rows: int = Field(5, ge=0, le=100, description="Offending rows kept per failed expectation.")
    earliest_date: date = Field(date(1990, 1, 1), description="Dates before this are absurd (critical).")
    snapshot_row_tolerance: float = Field(
        0.25, ge=0, description="Snapshot tables: allowed relative change of rows vs the previous partition."
    )
    incremental_row_factor: float = Field(
        10.0,
        ge=1,
        description="Incremental tables: warn when rows differ from the previous slice by this factor.",
    )
    ranges: dict[str, dict[str, list[ValueRange]]] = Field(
        default_factory=_default_ranges,
        description="Allowed value ranges per table and column, each critical or warning.",
    )
    customer_schema: CustomerSchema = Field(
        default_factory=CustomerSchema,
        description="Derived from CALLCAST_CUSTOMERS__* (set there; setting it here is refused).",
    )
    sensitive_columns: list[str] = Field(default=["name", "phone"], description="Masked in sample rows.")
    fallback_to_last_good: bool = Field(
        False,
        description="A quarantined or unvalidated partition blocks training, forecasting, monitoring and "
        "analytics; true lets them read the last good partition instead (with a warning naming the bad one). "
        "The call list has its own rule (CALLCAST_SCORING__FALLBACK_TO_LAST_GOOD).",
    )
