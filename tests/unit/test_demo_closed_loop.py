"""The demo company's closed loop: the phone team calls the call list, outcomes come from a hidden truth."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import roc_auc_score

from callcast.database import make_engine
from demo_company.database import (
    DemoShift,
    advance_one_day,
    build_demo_database,
    is_business_day,
    truth_probabilities,
)


@pytest.fixture
def db(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    build_demo_database(engine, size="tiny", seed=9)
    yield engine
    engine.dispose()


def _contacts_on(engine, day: date) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(
            sa.text("SELECT customer_id FROM campaign_contacts WHERE contact_date = :d"),
            conn,
            params={"d": day},
        )


def test_team_calls_the_list_from_the_top_plus_a_random_control_group(db):
    with db.connect() as conn:
        blocked = {
            int(r[0])
            for r in conn.execute(sa.text("SELECT customer_id FROM customers WHERE opted_out")).all()
        } | {
            int(r[0])
            for r in conn.execute(sa.text("SELECT customer_id FROM campaign_contacts WHERE y = 'yes'"))
        }
    listed = [c for c in range(1000, 3000)]
    callable_in_order = [c for c in listed if c not in blocked]
    added = advance_one_day(db, called_customer_ids=listed, capacity=100, control_share=0.1)
    assert added["day"] == date(2010, 12, 1) and added["calls"]["business_day"]
    assert added["calls"]["listed"] == 90 and added["calls"]["control"] == 10 and added["contacts"] == 100
    called = set(_contacts_on(db, added["day"])["customer_id"])
    assert set(callable_in_order[:90]) <= called  # the top of the list, skipping the uncallable
    control = called - set(listed)
    assert len(control) == 10 and not control & blocked
    assert added["calls"]["skipped"] == len(
        [c for c in listed[: listed.index(callable_in_order[89]) + 1] if c in blocked]
    )
    # next day: the 90 called wait for their outcome, so the team moves further down the list
    second = advance_one_day(db, called_customer_ids=listed, capacity=100, control_share=0.1)
    again = set(_contacts_on(db, second["day"])["customer_id"])
    assert set(callable_in_order[90:180]) <= again and not again & set(callable_in_order[:90])


def test_no_calls_on_weekends_and_holidays(db):
    days = [advance_one_day(db, called_customer_ids=list(range(1, 500)), capacity=50) for _ in range(5)]
    by_day = {d["day"]: d["contacts"] for d in days}
    assert by_day[date(2010, 12, 4)] == 0 and by_day[date(2010, 12, 5)] == 0  # Saturday, Sunday
    assert by_day[date(2010, 12, 3)] == 50
    assert not is_business_day(date(2010, 12, 25)) and is_business_day(date(2010, 12, 27))


def test_without_a_list_the_team_calls_at_random_as_before(db):
    added = advance_one_day(db)
    assert 0 < added["contacts"] <= 60 and added["calls"]["listed"] == 0


def test_hidden_truth_follows_the_bank_history_and_moves_with_the_shift():
    from demo_company.bank import load_bank_full

    bank = load_bank_full()
    p = truth_probabilities(bank)
    assert abs(p.mean() - (bank["y"] == "yes").mean()) < 0.01  # fitted on the history it continues
    assert roc_auc_score(bank["y"] == "yes", p) > 0.7
    row = bank.iloc[[0]].assign(poutcome="unknown", contact="cellular", loan="no", age=40, campaign=1)
    yes, no = row.assign(housing="yes"), row.assign(housing="no")
    assert truth_probabilities(yes)[0] < truth_probabilities(no)[0]
    assert truth_probabilities(yes, 1.0)[0] > truth_probabilities(no, 1.0)[0]
    moved = truth_probabilities(bank, 1.0)
    assert roc_auc_score(bank["y"] == "yes", moved) < 0.6  # the old world's ranking no longer holds


def test_shift_moves_existing_customers_once_from_its_first_day(db):
    with db.connect() as conn:
        before = pd.read_sql("SELECT customer_id, balance FROM customers ORDER BY customer_id", conn)
    shift = DemoShift(start=date(2010, 12, 2), existing_share=0.5, balance_factor=0.2)
    first = advance_one_day(db, shift, called_customer_ids=[1, 2, 3], capacity=3)
    assert first["shifted_existing_customers"] == 0  # before the shift's start
    second = advance_one_day(db, called_customer_ids=[1, 2, 3], capacity=3)
    assert 0.45 < second["shifted_existing_customers"] / len(before) < 0.55
    third = advance_one_day(db, called_customer_ids=[1, 2, 3], capacity=3)
    assert third["shifted_existing_customers"] == 0  # applied once
    with db.connect() as conn:
        after = pd.read_sql(
            f"SELECT customer_id, balance FROM customers WHERE customer_id <= {len(before)}", conn
        )
    changed = (after["balance"].to_numpy() != before["balance"].to_numpy()).mean()
    assert 0.4 < changed < 0.55  # zero balances stay zero
