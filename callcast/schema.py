"""The operational database's tables: one SQLAlchemy definition shared by the generator, export and checks.

Column names of the bank data are kept exactly as in the UCI file (``default`` included, quoted by
SQLAlchemy), so the model code reads the same names as the published dataset.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
)

metadata = MetaData()

customers = Table(
    "customers",
    metadata,
    Column("customer_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(120), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("age", Integer, nullable=False),
    Column("job", String(32), nullable=False),
    Column("marital", String(16), nullable=False),
    Column("education", String(16), nullable=False),
    Column("default", String(8), nullable=False),
    Column("balance", Integer, nullable=False),
    Column("housing", String(8), nullable=False),
    Column("loan", String(8), nullable=False),
    Column("opted_out", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
)

campaign_contacts = Table(
    "campaign_contacts",
    metadata,
    Column("contact_id", Integer, primary_key=True, autoincrement=False),
    Column("customer_id", Integer, ForeignKey("customers.customer_id"), nullable=False, index=True),
    Column("contact_date", Date, nullable=False, index=True),
    Column("contact", String(16), nullable=False),
    Column("day", Integer, nullable=False),
    Column("month", String(3), nullable=False),
    Column("duration", Integer, nullable=True),  # seconds; known only after the call
    Column("campaign", Integer, nullable=False),
    Column("pdays", Integer, nullable=False),
    Column("previous", Integer, nullable=False),
    Column("poutcome", String(16), nullable=False),
    Column("y", String(3), nullable=True),  # NULL until the outcome is known
    Column("outcome_known_on", Date, nullable=True),
    Column("updated_at", DateTime, nullable=False, index=True),
)

stores = Table(
    "stores",
    metadata,
    Column("store_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(80), nullable=False),
    Column("region", String(40), nullable=False),
    Column("opened_on", Date, nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("product_id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(120), nullable=False),
    Column("category", String(40), nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
    Column("launched_on", Date, nullable=False),
    Column("discontinued_on", Date, nullable=True),
)

sales = Table(
    "sales",
    metadata,
    Column("sale_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False),
    Column("sale_date", Date, nullable=False, index=True),
    Column("store_id", Integer, ForeignKey("stores.store_id"), nullable=False),
    Column("product_id", Integer, ForeignKey("products.product_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", Numeric(10, 2), nullable=False),
    Column("revenue", Numeric(12, 2), nullable=False),
    Column("on_promotion", Boolean, nullable=False),
    Column("is_holiday", Boolean, nullable=False),
)

TABLE_NAMES: tuple[str, ...] = tuple(metadata.tables)

# Source columns known *before* a call is made. The propensity model accepts only these (and features derived
# from them by the named functions of ``models.propensity.features``); any other column -- ``duration``, or the
# same number under another name -- is refused at fit and at predict, with its name in the message.
PRE_CALL_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("age", "job", "marital", "education", "default", "balance", "housing", "loan"),
    # the call's date, channel and campaign counters as the system records them when the call is placed
    "campaign_contacts": ("contact_date", "day", "month", "contact", "campaign", "previous", "poutcome"),
}

# Categories of the UCI file (bank-names.txt), shared by the generator, the checks and the model.
BANK_CATEGORIES: dict[str, tuple[str, ...]] = {
    "job": (
        "admin.",
        "unknown",
        "unemployed",
        "management",
        "housemaid",
        "entrepreneur",
        "student",
        "blue-collar",
        "self-employed",
        "retired",
        "technician",
        "services",
    ),
    "marital": ("married", "divorced", "single"),
    "education": ("unknown", "secondary", "primary", "tertiary"),
    "default": ("yes", "no"),
    "housing": ("yes", "no"),
    "loan": ("yes", "no"),
    "contact": ("unknown", "telephone", "cellular"),
    "month": ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "poutcome": ("unknown", "other", "failure", "success"),
    "y": ("yes", "no"),
}


class SchemaColumn(BaseModel):
    """A customer attribute a company has beyond the UCI columns, known before any call."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    kind: Literal["categorical", "numeric"] = "numeric"
    nullable: bool = Field(default=False, description="Whether the column may be empty (NULL).")


class CustomerSchema(BaseModel):
    """The company's customer columns: the UCI ones, minus ``dropped_columns``, plus ``extra_columns``.

    Set through ``CALLCAST_CUSTOMERS__EXTRA_COLUMNS`` (JSON list of ``{name, kind, nullable}``) and
    ``CALLCAST_CUSTOMERS__DROPPED_COLUMNS`` (JSON list of names). Every extra column is declared known
    before a call; the data checks, the training table and the model's feature sets follow.
    """

    extra_columns: list[SchemaColumn] = Field(
        default_factory=list,
        description='Customer columns beyond the UCI ones, known before a call: JSON list of {"name", "kind": '
        '"categorical"|"numeric", "nullable"}; checks, training, scoring rows and the model follow.',
    )
    dropped_columns: list[str] = Field(
        default_factory=list,
        description='UCI customer attributes this company does not have (e.g. ["balance"]); features built '
        "from them leave the model.",
    )

    @field_validator("dropped_columns")
    @classmethod
    def _droppable(cls, value: list[str]) -> list[str]:
        allowed = set(PRE_CALL_COLUMNS["customers"])
        bad = [v for v in value if v not in allowed]
        if bad:
            raise ValueError(
                f"only customer attributes can be dropped ({', '.join(sorted(allowed))}); got {bad}"
            )
        return value

    @model_validator(mode="after")
    def _no_clash(self) -> CustomerSchema:
        taken = {c.name for t in (customers, campaign_contacts) for c in t.c} - set(self.dropped_columns)
        for column in self.extra_columns:
            if column.name in taken or column.name in ("duration", "pdays"):
                raise ValueError(f"extra column {column.name!r} clashes with an existing or forbidden column")
        return self

    def customer_columns(self) -> list[str]:
        """Pre-call customer attributes, in table order (``customer_id`` excluded)."""
        kept = [c for c in PRE_CALL_COLUMNS["customers"] if c not in self.dropped_columns]
        return kept + [c.name for c in self.extra_columns]

    def pre_call_columns(self) -> dict[str, tuple[str, ...]]:
        return {**PRE_CALL_COLUMNS, "customers": tuple(self.customer_columns())}

    def customers_table(self, into: MetaData | None = None) -> Table:
        """The ``customers`` table of this schema (a copy in ``into``; the default schema gives the same columns)."""
        into = into if into is not None else MetaData()
        columns = [c._copy() for c in customers.c if c.name not in self.dropped_columns]
        at = [c.name for c in columns].index("opted_out")
        extra = [
            Column(c.name, String(64) if c.kind == "categorical" else Float, nullable=c.nullable)
            for c in self.extra_columns
        ]
        return Table("customers", into, *columns[:at], *extra, *columns[at:])
