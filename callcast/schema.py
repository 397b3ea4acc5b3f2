"""The operational database's tables: one SQLAlchemy definition shared by the generator, export and checks.

Column names of the bank data are kept exactly as in the UCI file (``default`` included, quoted by
SQLAlchemy), so the model code reads the same names as the published dataset.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
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
