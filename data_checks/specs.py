"""One expectation suite per table, as code: derived from ``callcast.schema`` and :class:`ChecksConfig`.

The plans here are plain data; :mod:`data_checks.gx_suite` turns them into Great Expectations objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import types as sqltypes

from callcast.csvio import normalize_type
from callcast.schema import BANK_CATEGORIES, CustomerSchema, metadata
from data_checks.config import ChecksConfig, Severity

Kind = Literal["integer", "decimal", "boolean", "date", "timestamp", "string"]
Mode = Literal["snapshot", "incremental"]

ID_COLUMNS = {
    "customers": "customer_id",
    "campaign_contacts": "contact_id",
    "stores": "store_id",
    "products": "product_id",
    "sales": "sale_id",
}
DEFAULT_MODES: dict[str, Mode] = {"sales": "incremental", "campaign_contacts": "incremental"}
# Dates allowed after the partition day (planned openings, launches, discontinuations): a warning only.
_FUTURE_DATE_WARNING = {("stores", "opened_on"), ("products", "launched_on")}
_FUTURE_DATE_ALLOWED = {("products", "discontinued_on")}
# (later column, earlier column): later >= earlier where both are known.
_ORDERED_PAIRS = {
    "campaign_contacts": [("outcome_known_on", "contact_date")],
    "products": [("discontinued_on", "launched_on")],
}


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    kind: Kind
    nullable: bool


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[ColumnSpec, ...]
    id_column: str
    mode: Mode

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


@dataclass
class ExpectationPlan:
    """One expectation: its GX type and arguments, severity, and what it means in words."""

    type: str
    kwargs: dict[str, Any]
    severity: Severity
    description: str
    column: str | None = field(default=None)

    @property
    def key(self) -> str:
        extra = "" if self.type != "expect_column_values_to_be_between" else f":{self.kwargs}"
        return f"{self.type}:{self.column}{extra}"


def _kind(sql_type: sqltypes.TypeEngine) -> Kind:
    """The check's coarse kind of a column, from the lake's portable type name."""
    name = normalize_type(sql_type)
    if name in ("integer", "bigint"):
        return "integer"
    if name == "float" or name.startswith("decimal"):
        return "decimal"
    if name in ("boolean", "timestamp", "date"):
        return name
    return "string"


def table_spec(table: str, mode: str | None = None, schema: CustomerSchema | None = None) -> TableSpec:
    """The column types and keys of ``table`` from the operational schema (``customers`` per ``schema``)."""
    if table not in metadata.tables:
        raise KeyError(f"unknown table {table!r}; known: {', '.join(metadata.tables)}")
    definition = metadata.tables[table]
    if table == "customers" and schema is not None:
        definition = schema.customers_table()
    columns = tuple(
        ColumnSpec(c.name, _kind(c.type), bool(c.nullable) and not c.primary_key) for c in definition.c
    )
    chosen: Mode = mode if mode in ("snapshot", "incremental") else DEFAULT_MODES.get(table, "snapshot")  # type: ignore[assignment]
    return TableSpec(table, columns, ID_COLUMNS[table], chosen)


def partition_end(partition_date: date) -> datetime:
    """The last instant of the partition's day."""
    return datetime.combine(partition_date + timedelta(days=1), time()) - timedelta(microseconds=1)


def plan_suite(
    spec: TableSpec, partition_date: date, config: ChecksConfig, present: list[str] | None = None
) -> list[ExpectationPlan]:
    """The suite of ``spec`` for one partition; column expectations only for ``present`` columns."""
    have = set(spec.column_names if present is None else present)
    plans = [
        ExpectationPlan(
            "expect_table_columns_to_match_ordered_list",
            {"column_list": spec.column_names},
            "critical",
            f"columns are exactly {', '.join(spec.column_names)}",
        )
    ]
    for col in spec.columns:
        if col.name in have and not col.nullable:
            plans.append(
                ExpectationPlan(
                    "expect_column_values_to_not_be_null", {"column": col.name}, "critical",
                    f"{col.name} is never empty", col.name,
                )
            )  # fmt: skip
    if spec.id_column in have:
        plans.append(
            ExpectationPlan(
                "expect_column_values_to_be_unique", {"column": spec.id_column}, "critical",
                f"{spec.id_column} is unique", spec.id_column,
            )
        )  # fmt: skip
    for name, ranges in config.ranges.get(spec.name, {}).items():
        if name not in have:
            continue
        for rng in ranges:
            plans.append(
                ExpectationPlan(
                    "expect_column_values_to_be_between",
                    {"column": name, "min_value": rng.min, "max_value": rng.max},
                    rng.severity,
                    f"{name} is within [{_fmt(rng.min)}, {_fmt(rng.max)}]",
                    name,
                )
            )
    for col in spec.columns:
        if col.name in have and col.name in BANK_CATEGORIES:
            allowed = list(BANK_CATEGORIES[col.name])
            plans.append(
                ExpectationPlan(
                    "expect_column_values_to_be_in_set", {"column": col.name, "value_set": allowed}, "critical",
                    f"{col.name} is one of {', '.join(allowed)}", col.name,
                )
            )  # fmt: skip
    earliest = datetime.combine(config.earliest_date, time())
    for col in spec.columns:
        if col.name not in have or col.kind not in ("date", "timestamp"):
            continue
        plans.append(
            ExpectationPlan(
                "expect_column_min_to_be_between", {"column": col.name, "min_value": earliest}, "critical",
                f"{col.name} is not before {config.earliest_date.isoformat()}", col.name,
            )
        )  # fmt: skip
        if (spec.name, col.name) in _FUTURE_DATE_ALLOWED:
            continue
        severity: Severity = "warning" if (spec.name, col.name) in _FUTURE_DATE_WARNING else "critical"
        plans.append(
            ExpectationPlan(
                "expect_column_max_to_be_between", {"column": col.name, "max_value": partition_end(partition_date)},
                severity, f"{col.name} is not after the partition day {partition_date.isoformat()}", col.name,
            )
        )  # fmt: skip
    for later, earlier in _ORDERED_PAIRS.get(spec.name, []):
        if later in have and earlier in have:
            plans.append(
                ExpectationPlan(
                    "expect_column_pair_values_a_to_be_greater_than_b",
                    {"column_A": later, "column_B": earlier, "or_equal": True,
                     "ignore_row_if": "either_value_is_missing"},
                    "warning", f"{later} is on or after {earlier}", later,
                )
            )  # fmt: skip
    return plans


def _fmt(value: float | None) -> str:
    if value is None:
        return "…"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"
