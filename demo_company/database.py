"""Build the demo company's operational database (SQLite, PostgreSQL or MariaDB) and advance it by a day.

``build_demo_database`` recreates every table from the UCI bank file and the sales simulator;
``advance_one_day`` appends one business day: that day's sales, new customers, new contacts (their outcome
unknown yet) and the outcomes of earlier contacts that became known. A :class:`DemoShift` changes the
distributions from a chosen day, for drift tests. Everything is seeded: the same seed gives the same rows.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from callcast.csvio import RowEncoder, normalize_type
from callcast.schema import BANK_CATEGORIES, campaign_contacts, customers, metadata, products, sales, stores
from demo_company.bank import SEEDED_UNTIL, bank_tables, synthetic_names, synthetic_phones
from demo_company.sales import (
    SalesShift,
    SalesSimConfig,
    iter_sales,
    make_products,
    make_stores,
    sales_for_day,
)

STATE_TABLE = "demo_state"
demo_state = sa.Table(
    STATE_TABLE,
    sa.MetaData(),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# Sizes of the sales history: stores × products × days (zero-sale days are omitted, so rows are fewer).
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"n_stores": 2, "n_products": 4, "n_days": 120},
    "small": {"n_stores": 4, "n_products": 10, "n_days": 400},
    "demo": {"n_stores": 8, "n_products": 20, "n_days": 760},
    "large": {"n_stores": 40, "n_products": 160, "n_days": 1000},  # ~5 M rows
    "xlarge": {"n_stores": 60, "n_products": 250, "n_days": 1000},  # ~12 M rows
}


class DemoShift(BaseModel):
    """A distribution shift from ``start`` on: demand, promotions, and the new customers' profile."""

    start: date
    demand_factor: float = Field(1.0, gt=0)
    promo_rate_factor: float = Field(1.0, ge=0)
    age_offset: int = Field(0, description="added to new customers' age")
    balance_factor: float = Field(1.0, gt=0, description="multiplies new customers' balance")
    telephone_share: float | None = Field(None, ge=0, le=1, description="share of new contacts by telephone")

    def sales_shift(self) -> SalesShift:
        return SalesShift(
            start=self.start, demand_factor=self.demand_factor, promo_rate_factor=self.promo_rate_factor
        )


def sales_config(size: str | dict[str, int], seed: int) -> SalesSimConfig:
    """The simulator's settings; the sales history ends on the seeded database's last day, like the contacts."""
    if isinstance(size, str) and size not in SIZES:
        raise ValueError(f"unknown demo size {size!r}; choose one of {', '.join(SIZES)}")
    spec = dict(SIZES[size] if isinstance(size, str) else size)
    start = SEEDED_UNTIL - timedelta(days=spec["n_days"] - 1)
    return SalesSimConfig(start=start, seed=seed, **spec)


# -- writing frames ----------------------------------------------------------------------------------


def _python_columns(frame: pd.DataFrame, names: Iterable[str]) -> list[list[Any]]:
    columns = []
    for name in names:
        values = frame[name]
        if values.dtype.kind == "f":
            columns.append([None if math.isnan(v) else v for v in values.tolist()])
        elif values.dtype.kind == "M":
            columns.append([None if pd.isna(v) else v.to_pydatetime() for v in values])
        else:
            columns.append(
                [
                    None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v
                    for v in values.tolist()
                ]
            )
    return columns


def insert_frame(conn: Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append a frame's rows (columns named as the table's): COPY on PostgreSQL, executemany elsewhere."""
    if frame.empty:
        return 0
    names = [c.name for c in table.c]
    columns = _python_columns(frame, names)
    if conn.dialect.name == "postgresql":
        encoder = RowEncoder([normalize_type(c.type) for c in table.c])
        text = encoder.encode(list(zip(*columns, strict=True)))
        column_list = ", ".join(conn.dialect.identifier_preparer.quote(n) for n in names)
        target = conn.dialect.identifier_preparer.format_table(table)
        with conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {target} ({column_list}) FROM STDIN WITH (FORMAT csv)") as copy:
                copy.write(text)
    else:
        conn.execute(
            table.insert(), [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        )
    return len(frame)


def _set_state(conn: Connection, **values: Any) -> None:
    for key, value in values.items():
        conn.execute(demo_state.delete().where(demo_state.c.key == key))
        conn.execute(demo_state.insert().values(key=key, value=json.dumps(value, default=str)))


def _get_state(conn: Connection) -> dict[str, Any]:
    try:
        rows = conn.execute(sa.select(demo_state.c.key, demo_state.c.value)).all()
    except sa.exc.DBAPIError as exc:
        raise RuntimeError("This database was not built by `callcast seed`: no demo_state table.") from exc
    return {key: json.loads(value) for key, value in rows}


def build_demo_database(
    engine: Engine,
    size: str | dict[str, int] = "demo",
    seed: int = 20260101,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """(Re)create every demo table and fill it; returns row counts per table."""
    say = on_progress or (lambda message: None)
    cfg = sales_config(size, seed)
    metadata.drop_all(engine)
    demo_state.drop(engine, checkfirst=True)
    metadata.create_all(engine)
    demo_state.create(engine)
    counts: dict[str, int] = {}
    customer_frame, contact_frame = bank_tables(seed)
    with engine.begin() as conn:
        counts["customers"] = insert_frame(conn, customers, customer_frame)
        counts["campaign_contacts"] = insert_frame(conn, campaign_contacts, contact_frame)
        counts["stores"] = insert_frame(conn, stores, make_stores(cfg))
        counts["products"] = insert_frame(conn, products, make_products(cfg))
        _set_state(conn, seed=seed, sales_config=cfg.model_dump(mode="json"), shift=None)
    say(f"customers: {counts['customers']:,}  campaign_contacts: {counts['campaign_contacts']:,}")
    started, written = time.monotonic(), 0
    for chunk in iter_sales(cfg, chunk_days=30):
        with engine.begin() as conn:
            written += insert_frame(conn, sales, chunk)
        rate = written / max(time.monotonic() - started, 1e-9)
        say(f"sales: {written:,} rows ({rate:,.0f} rows/s), up to {chunk['sale_date'].iloc[-1]}")
    counts["sales"] = written
    return counts


# -- one more business day ---------------------------------------------------------------------------

_OUTCOME_LAG_DAYS = (3, 10)
_NEW_CUSTOMERS_PER_DAY = 25
_CONTACTS_PER_DAY = 60


def _contact_outcome_probability(contact: dict[str, Any], customer: dict[str, Any]) -> float:
    """A plausible conversion probability, so that models trained on the history keep making sense."""
    logit = -2.3
    logit += {"success": 2.2, "failure": -0.2, "other": 0.3}.get(contact["poutcome"], 0.0)
    logit += 0.35 if contact["contact"] == "cellular" else (-0.9 if contact["contact"] == "unknown" else 0.0)
    logit -= 0.8 if customer["housing"] == "yes" else 0.0
    logit -= 0.4 if customer["loan"] == "yes" else 0.0
    logit += 0.6 if customer["age"] >= 60 or customer["age"] < 25 else 0.0
    logit -= 0.08 * max(contact["campaign"] - 1, 0)
    return 1.0 / (1.0 + math.exp(-logit))


def advance_one_day(engine: Engine, shift: DemoShift | None = None) -> dict[str, Any]:
    """Append the next business day; returns what was added. A shift, once given, stays recorded."""
    with engine.begin() as conn:
        state = _get_state(conn)
        if shift is not None:
            _set_state(conn, shift=shift.model_dump(mode="json"))
        elif state.get("shift"):
            shift = DemoShift(**state["shift"])
        cfg = SalesSimConfig(**state["sales_config"])
        seed = int(state["seed"])
        last_days = [
            d if isinstance(d, date) else date.fromisoformat(str(d)[:10])
            for d in (
                conn.execute(sa.select(sa.func.max(sales.c.sale_date))).scalar(),
                conn.execute(sa.select(sa.func.max(campaign_contacts.c.contact_date))).scalar(),
                conn.execute(sa.select(sa.func.max(campaign_contacts.c.outcome_known_on))).scalar(),
            )
            if d is not None
        ]
        day = max(last_days) + timedelta(days=1)
        active_shift = shift if shift is not None and day >= shift.start else None
        next_sale_id = (conn.execute(sa.select(sa.func.max(sales.c.sale_id))).scalar() or 0) + 1
        day_sales = sales_for_day(
            cfg, day, next_sale_id, active_shift.sales_shift() if active_shift else None
        )
        insert_frame(conn, sales, day_sales)
        rng = np.random.default_rng([seed, day.toordinal()])
        new_customers = _new_customers(conn, rng, day, seed, active_shift)
        insert_frame(conn, customers, new_customers)
        new_contacts = _new_contacts(conn, rng, day, active_shift)
        insert_frame(conn, campaign_contacts, new_contacts)
        resolved = _resolve_outcomes(conn, day, seed)
    return {
        "day": day,
        "sales": len(day_sales),
        "customers": len(new_customers),
        "contacts": len(new_contacts),
        "outcomes": resolved,
    }


def _new_customers(
    conn: Connection, rng: np.random.Generator, day: date, seed: int, shift: DemoShift | None
) -> pd.DataFrame:
    n = _NEW_CUSTOMERS_PER_DAY
    first_id = (conn.execute(sa.select(sa.func.max(customers.c.customer_id))).scalar() or 0) + 1
    # New customers resemble a random sample of existing ones, attribute by attribute.
    sample = pd.DataFrame(
        conn.execute(
            sa.select(
                customers.c.age,
                customers.c.job,
                customers.c.marital,
                customers.c.education,
                customers.c["default"],
                customers.c.balance,
                customers.c.housing,
                customers.c.loan,
            ).where(customers.c.customer_id.in_([int(x) for x in rng.integers(1, first_id, n * 4)]))
        )
        .mappings()
        .all()
    )
    picks = {col: sample[col].to_numpy()[rng.integers(0, len(sample), n)] for col in sample.columns}
    age = picks["age"].astype(int) + (shift.age_offset if shift else 0)
    balance = np.round(picks["balance"].astype(float) * (shift.balance_factor if shift else 1.0)).astype(int)
    ids = np.arange(first_id, first_id + n)
    day_seed = seed + day.toordinal()
    return pd.DataFrame(
        {
            "customer_id": ids,
            "name": synthetic_names(n, day_seed),
            "phone": synthetic_phones(n, day_seed),
            "age": np.clip(age, 18, 95),
            "job": picks["job"],
            "marital": picks["marital"],
            "education": picks["education"],
            "default": picks["default"],
            "balance": balance,
            "housing": picks["housing"],
            "loan": picks["loan"],
            "opted_out": rng.random(n) < 0.03,
            "created_at": [
                datetime.combine(day, datetime.min.time()) + timedelta(hours=9, minutes=int(m))
                for m in rng.integers(0, 600, n)
            ],
        }
    )


def _new_contacts(
    conn: Connection, rng: np.random.Generator, day: date, shift: DemoShift | None
) -> pd.DataFrame:
    n = _CONTACTS_PER_DAY
    max_customer = conn.execute(sa.select(sa.func.max(customers.c.customer_id))).scalar()
    first_id = (conn.execute(sa.select(sa.func.max(campaign_contacts.c.contact_id))).scalar() or 0) + 1
    chosen = sorted({int(x) for x in rng.integers(1, max_customer + 1, n)})
    last = {
        row.customer_id: row
        for row in conn.execute(
            sa.select(
                campaign_contacts.c.customer_id,
                campaign_contacts.c.contact_date,
                campaign_contacts.c.y,
                campaign_contacts.c.previous,
            )
            .where(campaign_contacts.c.customer_id.in_(chosen))
            .order_by(campaign_contacts.c.contact_date)
        )
    }
    telephone = shift.telephone_share if shift and shift.telephone_share is not None else 0.07
    channels = rng.choice(
        ["cellular", "telephone", "unknown"],
        size=len(chosen),
        p=[0.93 - telephone, telephone, 0.07] if telephone <= 0.86 else [0.0, telephone, 1 - telephone],
    )
    rows = []
    for index, (customer_id, channel) in enumerate(zip(chosen, channels, strict=True)):
        previous = last.get(customer_id)
        if previous is None:
            pdays, prev_count, poutcome = -1, 0, "unknown"
        else:
            prev_date = (
                previous.contact_date
                if isinstance(previous.contact_date, date)
                else date.fromisoformat(str(previous.contact_date)[:10])
            )
            pdays = (day - prev_date).days
            prev_count = int(previous.previous) + 1
            poutcome = {"yes": "success", "no": "failure"}.get(previous.y, "other")
        rows.append(
            {
                "contact_id": first_id + index,
                "customer_id": customer_id,
                "contact_date": day,
                "contact": str(channel),
                "day": day.day,
                "month": BANK_CATEGORIES["month"][day.month - 1],
                "duration": int(rng.gamma(2.0, 130.0)),
                "campaign": int(1 + rng.poisson(1.2)),
                "pdays": pdays,
                "previous": prev_count,
                "poutcome": poutcome,
                "y": None,
                "outcome_known_on": None,
                "updated_at": datetime.combine(day, datetime.min.time()) + timedelta(hours=18),
            }
        )
    return pd.DataFrame(rows, columns=[c.name for c in campaign_contacts.c])


def _resolve_outcomes(conn: Connection, day: date, seed: int) -> int:
    """Outcomes become known 3-10 days after the call (seeded per contact)."""
    pending = (
        conn.execute(
            sa.select(campaign_contacts, customers.c.age, customers.c.housing, customers.c.loan)
            .join(customers, customers.c.customer_id == campaign_contacts.c.customer_id)
            .where(campaign_contacts.c.y.is_(None))
        )
        .mappings()
        .all()
    )
    resolved = 0
    for row in pending:
        contact_day = (
            row["contact_date"]
            if isinstance(row["contact_date"], date)
            else date.fromisoformat(str(row["contact_date"])[:10])
        )
        lag = _OUTCOME_LAG_DAYS[0] + row["contact_id"] % (_OUTCOME_LAG_DAYS[1] - _OUTCOME_LAG_DAYS[0] + 1)
        if (day - contact_day).days < lag:
            continue
        rng = np.random.default_rng([seed, row["contact_id"]])
        outcome = "yes" if rng.random() < _contact_outcome_probability(row, row) else "no"
        conn.execute(
            campaign_contacts.update()
            .where(campaign_contacts.c.contact_id == row["contact_id"])
            .values(
                y=outcome,
                outcome_known_on=day,
                updated_at=datetime.combine(day, datetime.min.time()) + timedelta(hours=17),
            )
        )
        resolved += 1
    return resolved
