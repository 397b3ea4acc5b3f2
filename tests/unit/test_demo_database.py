"""The demo company database: faithful to the UCI file, deterministic, and advancing by one business day."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa

from callcast.database import make_engine
from demo_company.bank import SEEDED_UNTIL, bank_tables, load_bank_full, reconstruct_contact_dates
from demo_company.database import DemoShift, advance_one_day, build_demo_database


def test_contact_dates_roll_the_year_when_the_month_goes_back():
    months = pd.Series(["may", "may", "dec", "jan", "mar", "feb"])
    days = pd.Series([5, 31, 30, 2, 1, 3])
    assert reconstruct_contact_dates(months, days).tolist() == [
        date(2008, 5, 5),
        date(2008, 5, 31),
        date(2008, 12, 30),
        date(2009, 1, 2),
        date(2009, 3, 1),
        date(2010, 2, 3),
    ]


def test_bank_tables_keep_every_original_column_and_row():
    bank = load_bank_full()
    customers, contacts = bank_tables(seed=1, bank=bank)
    assert len(bank) == len(customers) == len(contacts) == 45211
    assert bank["contact_date"].iloc[0] == date(2008, 5, 5) and bank["contact_date"].iloc[-1] == date(
        2010, 11, 17
    )
    for column in ("age", "job", "marital", "education", "default", "balance", "housing", "loan"):
        assert customers[column].tolist() == bank[column].tolist(), column
    for column in ("contact", "day", "month", "duration", "campaign", "pdays", "previous", "poutcome", "y"):
        assert contacts[column].tolist() == bank[column].tolist(), column
    assert customers["customer_id"].is_unique and customers["phone"].is_unique
    assert (contacts["outcome_known_on"] > contacts["contact_date"]).all()
    assert max(contacts["outcome_known_on"]) <= SEEDED_UNTIL


def test_same_seed_same_people_other_seed_other_people():
    a, _ = bank_tables(seed=3)
    b, _ = bank_tables(seed=3)
    c, _ = bank_tables(seed=4)
    assert a.equals(b)
    assert (a["name"] != c["name"]).mean() > 0.5


@pytest.fixture
def tiny_db(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    counts = build_demo_database(engine, size="tiny", seed=9)
    yield engine, counts
    engine.dispose()


@pytest.mark.slow  # builds a 45k-customer database (no service: not integration)
def test_next_day_appends_one_business_day_and_resolves_outcomes(tiny_db):
    engine, counts = tiny_db
    first = advance_one_day(engine)
    assert first["day"] == date(2010, 12, 1)
    assert first["sales"] > 0 and first["contacts"] > 0 and first["customers"] == 25
    days = [advance_one_day(engine) for _ in range(10)]
    assert [d["day"] for d in days] == [date(2010, 12, 2 + i) for i in range(10)]
    assert sum(d["outcomes"] for d in days) > 0  # outcomes arrive 3-10 days after the call
    with engine.connect() as conn:
        pending = conn.execute(sa.text("SELECT count(*) FROM campaign_contacts WHERE y IS NULL")).scalar()
        sales_days = conn.execute(sa.text("SELECT count(DISTINCT sale_date) FROM sales")).scalar()
    assert pending > 0
    assert sales_days == 120 + 11


@pytest.mark.slow  # builds a 45k-customer database (no service: not integration)
def test_next_day_is_deterministic(tmp_path):
    results = []
    for name in ("a", "b"):
        engine = make_engine(f"sqlite:///{tmp_path / name}.db")
        build_demo_database(engine, size="tiny", seed=9)
        advance_one_day(engine)
        with engine.connect() as conn:
            results.append(
                pd.read_sql("SELECT * FROM campaign_contacts ORDER BY contact_id DESC LIMIT 80", conn)
            )
        engine.dispose()
    pd.testing.assert_frame_equal(results[0], results[1])


@pytest.mark.slow  # builds a 45k-customer database (no service: not integration)
def test_shift_changes_new_customers_from_its_start(tiny_db):
    engine, _ = tiny_db
    advance_one_day(engine, DemoShift(start=date(2010, 12, 3), age_offset=30, balance_factor=5))
    for _ in range(3):
        advance_one_day(engine)
    with engine.connect() as conn:
        new = pd.read_sql("SELECT age, created_at FROM customers WHERE customer_id > 45211", conn)
    new["day"] = pd.to_datetime(new["created_at"]).dt.date
    before = new[new["day"] < date(2010, 12, 3)]["age"].mean()
    after = new[new["day"] >= date(2010, 12, 3)]["age"].mean()
    assert after > before + 15
