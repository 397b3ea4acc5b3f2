"""Build the demo company's operational database (SQLite, PostgreSQL or MariaDB) and advance it by a day.

``build_demo_database`` recreates every table from the UCI bank file and the sales simulator;
``advance_one_day`` appends one day: that day's sales, new customers, new contacts (their outcome unknown yet)
and the outcomes of earlier contacts that became known. Everything is seeded: the same seed gives the same rows.

**The closed loop.** Given the latest call list (``called_customer_ids``, best first), the phone team works
through it on business days (no calls on weekends or holidays): up to ``capacity`` calls, of which a
``control_share`` go to customers drawn at random among the callable ones who are *not* on the list (the
random-calling baseline that measures whether the list works). Customers who opted out, already bought or
still wait for the outcome of an earlier call are skipped (and counted). Outcomes are drawn from a hidden
ground-truth model of the simulator (:func:`truth_probabilities`, a logistic model fitted once on the UCI
file — never callcast's model) and become known 3-10
days after the call. Without a list the team calls random customers, as before the loop existed.

**Shifts.** A :class:`DemoShift` changes the world from its ``start`` day: demand, promotions, new customers'
profile, the profile of a share of *existing* customers (applied once, on the first shifted day), the contact
channel, and the ground truth itself (``truth_change``: the hidden effects of housing, loans and age reverse,
a previous success matters less), so a model trained before the shift ranks worse after it.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy.engine import Connection, Engine

from callcast.csvio import RowEncoder, normalize_type
from callcast.schema import BANK_CATEGORIES, campaign_contacts, customers, metadata, products, sales, stores
from demo_company.bank import SEEDED_UNTIL, bank_tables, load_bank_full, synthetic_names, synthetic_phones
from demo_company.sales import (
    SalesShift,
    SalesSimConfig,
    is_holiday,
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
    existing_share: float = Field(
        0.0,
        ge=0,
        le=1,
        description="share of existing customers whose age/balance shift too (once, at start)",
    )
    truth_change: float = Field(
        0.0,
        ge=0,
        le=1,
        description="how far the hidden ground truth moves (1 = housing/loan/age effects reverse)",
    )

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
CONTROL_SHARE = 0.1
"""Default share of the day's calls made to random callable customers off the list (the control group)."""


TRUTH_CATEGORICAL = ("job", "marital", "education", "default", "housing", "loan", "contact", "poutcome")
TRUTH_COLUMNS = (*TRUTH_CATEGORICAL, "age", "balance", "campaign", "previous")


@functools.cache
def _truth_coefficients() -> tuple[dict[str, dict[str, float]], dict[str, float], float]:
    """The hidden truth: a logistic model fitted once on the UCI bank file (the world the history comes from).

    Customer attributes and the contact's own channel, campaign count, previous count and previous outcome; no
    call duration, no calendar. Returns per-category weights, numeric weights and the intercept.
    """
    from sklearn.linear_model import LogisticRegression

    bank = load_bank_full()
    X = _truth_design(bank)
    model = LogisticRegression(C=1.0, max_iter=2000).fit(X.to_numpy(), (bank["y"] == "yes").to_numpy())
    weights = dict(zip(X.columns, model.coef_[0], strict=True))
    categorical = {
        c: {k.split("=", 1)[1]: float(w) for k, w in weights.items() if k.startswith(c + "=")}
        for c in TRUTH_CATEGORICAL
    }
    numeric = {k: float(w) for k, w in weights.items() if "=" not in k}
    return categorical, numeric, float(model.intercept_[0])


def _truth_design(frame: pd.DataFrame) -> pd.DataFrame:
    cols = {}
    for c in TRUTH_CATEGORICAL:
        for level in BANK_CATEGORIES[c]:
            cols[f"{c}={level}"] = (frame[c].astype(str) == level).astype(float)
    age = frame["age"].astype(float)
    cols["age_young"] = (age < 25).astype(float)
    cols["age_senior"] = (age >= 60).astype(float)
    cols["age_scaled"] = (age - 40.0) / 10.0
    balance = frame["balance"].astype(float)
    cols["balance_slog"] = np.sign(balance) * np.log1p(np.abs(balance)) / 5.0
    cols["campaign_log"] = np.log1p(frame["campaign"].astype(float).clip(lower=0))
    cols["previous_log"] = np.log1p(frame["previous"].astype(float).clip(lower=0))
    return pd.DataFrame(cols, index=frame.index)


def truth_probabilities(frame: pd.DataFrame, truth_change: np.ndarray | float = 0.0) -> np.ndarray:
    """The simulator's hidden ground truth: probability that each call (row of :data:`TRUTH_COLUMNS`) converts.

    ``truth_change`` (0..1, per row or one value) moves the world: the housing and loan effects reverse, young
    and senior customers stop being the better prospects, a previous success counts for less, and a higher
    balance now lowers the chance.
    """
    categorical, numeric, intercept = _truth_coefficients()
    X = _truth_design(frame)
    logit = np.full(len(frame), intercept)
    for name, column in X.items():
        c, _, level = name.partition("=")
        weight = categorical[c].get(level, 0.0) if level else numeric.get(name, 0.0)
        logit += weight * column.to_numpy()
    change = np.broadcast_to(np.asarray(truth_change, dtype=float), (len(frame),))
    reversal = (
        2.0 * (X["housing=yes"] - 0.5) * 1.2
        + 1.0 * X["loan=yes"]
        - 1.2 * (X["age_young"] + X["age_senior"])
        - 1.5 * X["poutcome=success"]
        - 1.0 * X["balance_slog"]
    ).to_numpy()
    return 1.0 / (1.0 + np.exp(-(logit + change * reversal)))


def is_business_day(day: date) -> bool:
    """Whether the phone team works on ``day`` (Monday to Friday, not a demo holiday)."""
    return day.weekday() < 5 and not is_holiday(day)


def advance_one_day(
    engine: Engine,
    shift: DemoShift | None = None,
    called_customer_ids: Sequence[int] | None = None,
    capacity: int | None = None,
    control_share: float = CONTROL_SHARE,
) -> dict[str, Any]:
    """Append the next day; returns what was added. A shift, once given, stays recorded.

    ``called_customer_ids`` is the latest call list, best first (``None``: no list yet, the team calls
    random customers). ``capacity`` is the number of calls the team makes per business day (default: the
    list's length); ``control_share`` of them go to random callable customers off the list.
    """
    if not 0 <= control_share < 1:
        raise ValueError(f"control_share must be in [0, 1), got {control_share}")
    with engine.begin() as conn:
        state = _get_state(conn)
        if shift is not None:
            _set_state(conn, shift=shift.model_dump(mode="json"), shift_applied=False)
            state["shift_applied"] = False
        elif state.get("shift"):
            shift = DemoShift(**state["shift"])
        cfg = SalesSimConfig(**state["sales_config"])
        seed = int(state["seed"])
        last_days = [
            _as_date(d)
            for d in (
                conn.execute(sa.select(sa.func.max(sales.c.sale_date))).scalar(),
                conn.execute(sa.select(sa.func.max(campaign_contacts.c.contact_date))).scalar(),
                conn.execute(sa.select(sa.func.max(campaign_contacts.c.outcome_known_on))).scalar(),
            )
            if d is not None
        ]
        day = max(last_days) + timedelta(days=1)
        active_shift = shift if shift is not None and day >= shift.start else None
        shifted_existing = 0
        if active_shift is not None and not state.get("shift_applied") and active_shift.existing_share > 0:
            shifted_existing = _shift_existing_customers(conn, active_shift, seed)
        if active_shift is not None and not state.get("shift_applied"):
            _set_state(conn, shift_applied=True)
        next_sale_id = (conn.execute(sa.select(sa.func.max(sales.c.sale_id))).scalar() or 0) + 1
        day_sales = sales_for_day(
            cfg, day, next_sale_id, active_shift.sales_shift() if active_shift else None
        )
        insert_frame(conn, sales, day_sales)
        rng = np.random.default_rng([seed, day.toordinal()])
        new_customers = _new_customers(conn, rng, day, seed, active_shift)
        insert_frame(conn, customers, new_customers)
        calls: dict[str, Any] = {
            "listed": 0,
            "control": 0,
            "skipped": 0,
            "business_day": is_business_day(day),
        }
        if called_customer_ids is None:
            chosen = _random_customers(conn, rng)
        elif calls["business_day"]:
            chosen, calls = _work_through_list(
                conn, rng, day, list(called_customer_ids), capacity, control_share, calls
            )
        else:
            chosen = []
        new_contacts = _new_contacts(conn, rng, day, active_shift, chosen)
        insert_frame(conn, campaign_contacts, new_contacts)
        resolved = _resolve_outcomes(conn, day, seed, shift)
    return {
        "day": day,
        "sales": len(day_sales),
        "customers": len(new_customers),
        "contacts": len(new_contacts),
        "outcomes": resolved,
        "calls": calls,
        "shifted_existing_customers": shifted_existing,
    }


def _as_date(value: Any) -> date:
    return (
        value
        if isinstance(value, date) and not isinstance(value, datetime)
        else date.fromisoformat(str(value)[:10])
    )


def _random_customers(conn: Connection, rng: np.random.Generator) -> list[int]:
    max_customer = conn.execute(sa.select(sa.func.max(customers.c.customer_id))).scalar()
    return sorted({int(x) for x in rng.integers(1, max_customer + 1, _CONTACTS_PER_DAY)})


def _not_callable(conn: Connection) -> set[int]:
    """Customers the team never calls: opted out, already bought, or still waiting for an outcome."""
    opted = conn.execute(sa.select(customers.c.customer_id).where(customers.c.opted_out.is_(True)))
    busy = conn.execute(
        sa.select(campaign_contacts.c.customer_id)
        .where(sa.or_(campaign_contacts.c.y.is_(None), campaign_contacts.c.y == "yes"))
        .distinct()
    )
    return {int(r[0]) for r in opted} | {int(r[0]) for r in busy}


def _work_through_list(
    conn: Connection,
    rng: np.random.Generator,
    day: date,
    listed: list[int],
    capacity: int | None,
    control_share: float,
    calls: dict[str, Any],
) -> tuple[list[int], dict[str, Any]]:
    """The day's calls: the list from the top (skipping the uncallable) plus a random control group."""
    capacity = len(listed) if capacity is None else int(capacity)
    n_control = int(round(capacity * control_share))
    n_listed = capacity - n_control
    blocked = _not_callable(conn)
    on_list = set(listed)
    picked: list[int] = []
    skipped = 0
    for customer_id in listed:
        if len(picked) >= n_listed:
            break
        if int(customer_id) in blocked:
            skipped += 1
            continue
        picked.append(int(customer_id))
    max_customer = conn.execute(sa.select(sa.func.max(customers.c.customer_id))).scalar() or 0
    pool = np.setdiff1d(np.arange(1, max_customer + 1), np.fromiter(blocked | on_list, dtype=np.int64))
    control = rng.choice(pool, size=min(n_control, pool.size), replace=False).tolist() if n_control else []
    calls.update(listed=len(picked), control=len(control), skipped=skipped)
    return picked + [int(c) for c in control], calls


def _shift_existing_customers(conn: Connection, shift: DemoShift, seed: int) -> int:
    """Move a share of existing customers' age and balance (the shift reaches the whole base, not only newcomers)."""
    rows = conn.execute(sa.select(customers.c.customer_id, customers.c.age, customers.c.balance)).all()
    rng = np.random.default_rng([seed, shift.start.toordinal(), 7])
    chosen = [r for r, pick in zip(rows, rng.random(len(rows)) < shift.existing_share, strict=True) if pick]
    if not chosen:
        return 0
    conn.execute(
        customers.update()
        .where(customers.c.customer_id == sa.bindparam("cid"))
        .values(age=sa.bindparam("new_age"), balance=sa.bindparam("new_balance")),
        [
            {
                "cid": int(r.customer_id),
                "new_age": int(min(max(int(r.age) + shift.age_offset, 18), 95)),
                "new_balance": int(round(int(r.balance) * shift.balance_factor)),
            }
            for r in chosen
        ],
    )
    return len(chosen)


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
    conn: Connection, rng: np.random.Generator, day: date, shift: DemoShift | None, chosen: list[int]
) -> pd.DataFrame:
    first_id = (conn.execute(sa.select(sa.func.max(campaign_contacts.c.contact_id))).scalar() or 0) + 1
    if not chosen:
        return pd.DataFrame(columns=[c.name for c in campaign_contacts.c])
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


def _resolve_outcomes(conn: Connection, day: date, seed: int, shift: DemoShift | None) -> int:
    """Outcomes become known 3-10 days after the call (seeded per contact), drawn from the hidden truth
    in force on the call date."""
    pending = pd.DataFrame(
        conn.execute(
            sa.select(
                campaign_contacts.c.contact_id,
                campaign_contacts.c.contact_date,
                campaign_contacts.c.contact,
                campaign_contacts.c.campaign,
                campaign_contacts.c.previous,
                campaign_contacts.c.poutcome,
                *[
                    customers.c[c]
                    for c in ("age", "job", "marital", "education", "default", "balance", "housing", "loan")
                ],
            )
            .join(customers, customers.c.customer_id == campaign_contacts.c.customer_id)
            .where(campaign_contacts.c.y.is_(None))
        )
        .mappings()
        .all()
    )
    if pending.empty:
        return 0
    contact_days = pending["contact_date"].map(_as_date)
    lag = _OUTCOME_LAG_DAYS[0] + pending["contact_id"] % (_OUTCOME_LAG_DAYS[1] - _OUTCOME_LAG_DAYS[0] + 1)
    due = pending[((day - contact_days).map(lambda d: d.days) >= lag).to_numpy()].reset_index(drop=True)
    if due.empty:
        return 0
    due_days = due["contact_date"].map(_as_date)
    change = np.where(
        [shift is not None and d >= shift.start for d in due_days], shift.truth_change if shift else 0.0, 0.0
    )
    p = truth_probabilities(due, change)
    draws = np.array([np.random.default_rng([seed, int(cid)]).random() for cid in due["contact_id"]])
    updated_at = datetime.combine(day, datetime.min.time()) + timedelta(hours=17)
    conn.execute(
        campaign_contacts.update()
        .where(campaign_contacts.c.contact_id == sa.bindparam("cid"))
        .values(y=sa.bindparam("outcome"), outcome_known_on=day, updated_at=updated_at),
        [
            {"cid": int(cid), "outcome": "yes" if u < q else "no"}
            for cid, u, q in zip(due["contact_id"], draws, p, strict=True)
        ],
    )
    return len(due)
