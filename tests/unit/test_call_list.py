"""Call-list rules on tiny frames and on real bank rows: eligibility as of the call date, refusals, ranking,
capacity, deciles and bands, reasons a caller can use, the CSV contract and the people's workbook."""

from __future__ import annotations

import csv
import io
from datetime import date

import numpy as np
import pandas as pd
import pytest

from models import call_list as rules
from models.propensity.config import PropensityConfig


class RuleModel:
    """A transparent scorer: 0.1, +0.5 if the previous campaign succeeded, +0.2 without a housing loan."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        p = (
            0.1
            + 0.5 * (frame["poutcome"].astype(str) == "success").to_numpy()
            + 0.2 * (frame["housing"].astype(str) == "no").to_numpy()
        )
        return np.column_stack([1 - p, p])


def _customers(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1),
            "name": [f"Person {i}" for i in range(1, n + 1)],
            "phone": [f"+351 900 000 00{i}" for i in range(1, n + 1)],
            "age": [30 + i for i in range(n)],
            "job": ["management"] * n,
            "marital": ["married"] * n,
            "education": ["tertiary"] * n,
            "default": ["no"] * n,
            "balance": [100 * i for i in range(n)],
            "housing": ["yes", "no"] * (n // 2),
            "loan": ["no"] * n,
            "opted_out": [False] * n,
        }
    )


def _contact(
    cid: int, customer: int, day: str, y: str | None, updated: str, poutcome: str = "failure", known: str = ""
) -> dict:
    return {
        "contact_id": cid, "customer_id": customer, "contact_date": day, "contact": "cellular",
        "campaign": 2, "previous": 1, "poutcome": poutcome, "y": y,
        "outcome_known_on": (known or day) if y is not None else None, "updated_at": updated,
    }  # fmt: skip


CONTEXT = {"call_date": "2024-06-01", "day": 1, "month": "jun", "ctx_volume_7d": 0.0, "ctx_rate_90d": 0.1}


def test_eligibility_as_of_the_call_date_excludes_opted_out_buyers_and_cooloff_at_the_boundary():
    customers = _customers()
    customers.loc[customers["customer_id"] == 1, "opted_out"] = True
    contacts = pd.DataFrame(
        [
            _contact(10, 2, "2024-01-05", None, "2024-01-05 10:00"),
            _contact(10, 2, "2024-01-05", "yes", "2024-01-20 10:00"),  # later version: bought
            _contact(11, 3, "2024-05-02", "no", "2024-05-03 10:00"),  # 30 days before the call: cool-off
            _contact(12, 4, "2024-05-01", "no", "2024-05-02 10:00"),  # 31 days before: callable
            _contact(13, 5, "2024-01-01", "no", "2024-01-02 10:00"),
            _contact(14, 6, "2024-05-20", "yes", "2024-06-05 10:00", known="2024-06-05"),  # sale known later
            _contact(15, 4, "2024-06-03", "no", "2024-06-04 10:00"),  # after the call date: not yet happened
        ]
    )
    history = rules.contacts_as_of(contacts, date(2024, 6, 1))
    assert 15 not in set(history["contact_id"]) and history.loc[history["contact_id"] == 14, "y"].isna().all()
    summary = rules.contact_summary(history)
    assert bool(summary.loc[2, "bought"]) and not bool(summary.loc[6, "bought"])
    mask, counts = rules.eligibility(customers, summary, date(2024, 6, 1), cooloff_days=30)
    assert set(customers.loc[mask, "customer_id"]) == {4, 5}  # 6: contacted 12 days before, sale unknown yet
    assert counts == {"customers": 6, "opted_out": 1, "already_bought": 1, "in_cooloff": 2, "eligible": 2}
    mask, _ = rules.eligibility(customers, summary, date(2024, 6, 1), cooloff_days=0)
    assert set(customers.loc[mask, "customer_id"]) == {3, 4, 5, 6}
    # a week later the sale of customer 6 is known: a buyer is never called again
    later = rules.contact_summary(rules.contacts_as_of(contacts, date(2024, 7, 10)))
    mask, counts = rules.eligibility(customers, later, date(2024, 7, 10), cooloff_days=30)
    assert 6 not in set(customers.loc[mask, "customer_id"]) and counts["already_bought"] == 2


def test_call_dates_outside_the_data_and_capacities_below_one_are_refused_in_one_line():
    contacts = pd.DataFrame([_contact(1, 1, "2024-01-05", "no", "2024-01-06", known="2024-01-09")])
    span = rules.data_span(contacts, date(2024, 1, 10))
    assert rules.default_call_date(span) == date(2024, 1, 10)  # the day after the latest event
    for bad in (date(1900, 1, 1), date(2024, 1, 5), date(2024, 1, 12), date(2099, 1, 1)):
        with pytest.raises(rules.CallListRefused, match="outside the data") as caught:
            rules.check_call_date(bad, span)
        assert "\n" not in str(caught.value) and "between 2024-01-06 and 2024-01-11" in str(caught.value)
    for good in (date(2024, 1, 6), date(2024, 1, 11)):
        rules.check_call_date(good, span)
    for bad in (0, -5, True, 2.5):
        with pytest.raises(rules.CallListRefused, match="at least 1"):
            rules.check_capacity(bad)
    rules.check_capacity(None)
    rules.check_capacity(1)
    with pytest.raises(rules.CallListRefused, match="Nobody to call on 2024-01-10: 0 eligible of 3"):
        rules.refuse_empty(pd.DataFrame(), {"customers": 3, "opted_out": 3, "eligible": 0}, date(2024, 1, 10))


def test_scoring_context_follows_the_propensity_settings():
    contacts = pd.DataFrame(
        [_contact(i, i, "2024-05-20", "yes" if i % 2 else "no", "2024-05-21") for i in range(1, 9)]
    )
    history = rules.contacts_as_of(contacts, date(2024, 6, 1))
    default = rules.scoring_context(history, date(2024, 6, 1), PropensityConfig())
    strong = rules.scoring_context(
        history, date(2024, 6, 1), PropensityConfig(context_rate_prior=0.9, context_rate_prior_weight=1000)
    )
    assert default["ctx_rate_90d"] == pytest.approx((4 + 0.1 * 20) / (8 + 20))
    assert strong["ctx_rate_90d"] == pytest.approx((4 + 0.9 * 1000) / (8 + 1000))
    assert (default["month"], default["day"], default["ctx_volume_7d"]) == ("jun", 1, 0.0)


def test_call_list_is_ranked_cut_to_capacity_with_population_deciles_and_truthful_reasons():
    rows = rules.scoring_rows(_customers(), CONTEXT)
    rows["poutcome"] = ["success", "success", "failure", "failure", "failure", "failure"]
    for column in rules.CONTACT_DETAILS:
        rows[column] = _customers()[column]
    model = RuleModel()
    rows["probability"] = rules.predict(model, rows)  # 0.6, 0.8, 0.1, 0.3, 0.1, 0.3
    cuts = rules.decile_cuts(rows["probability"].to_numpy())
    reference = {"poutcome": "failure", "housing": "yes"}  # the average eligible customer
    frame = rules.finish_call_list(model, rows, cuts, 4, "v0042", reference)
    assert frame["customer_id"].tolist() == [2, 1, 4, 6]  # probability desc, ties by customer id
    assert frame["rank"].tolist() == [1, 2, 3, 4]
    assert frame["decile"].tolist() == [1, 2, 4, 4] and frame["decile"].is_monotonic_increasing
    assert frame.loc[0, "reasons"] == "previous campaign succeeded; no housing loan"
    assert frame.loc[1, "reasons"] == "previous campaign succeeded"  # has a housing loan: not claimed
    assert frame.loc[2, "reasons"] == "no housing loan"
    assert (frame["model_version"] == "v0042").all()
    sales = rules.expected_sales(frame["probability"].to_numpy(), rows["probability"].to_numpy())
    assert sales["expected_sales"] == pytest.approx(0.8 + 0.6 + 0.3 + 0.3)
    assert sales["random_expected"] == pytest.approx(4 * np.mean([0.6, 0.8, 0.1, 0.3, 0.1, 0.3]))
    assert sales["lift"] > 1


def test_a_reason_every_listed_customer_shares_is_dropped_for_the_next_strongest():
    rows = rules.scoring_rows(_customers(4), CONTEXT)
    rows["housing"] = "no"  # all four: no housing loan
    rows["poutcome"] = ["success", "success", "failure", "failure"]
    from models.propensity.reasons import explain

    text = explain(RuleModel(), rows, {"poutcome": "failure", "housing": "yes"})
    assert text == ["previous campaign succeeded", "previous campaign succeeded", "", ""]
    assert all(
        "no housing loan" not in t for t in text
    )  # true of everyone on the list: tells nobody anything


def test_deciles_split_the_population_into_tenths_and_one_customer_gets_the_same_decile():
    p = np.linspace(0, 1, 1000, endpoint=False)
    cuts = rules.decile_cuts(p)
    deciles = rules.assign_deciles(p, cuts)
    assert np.bincount(deciles)[1:].tolist() == [100] * 10
    assert deciles[np.argmax(p)] == 1 and deciles[np.argmin(p)] == 10
    assert [rules.decile_of(float(x), cuts) for x in p[::37]] == deciles[::37].tolist()
    assert rules.decile_of(0.5, []) is None


def test_score_bands_read_as_top_percentages_of_the_eligible_population():
    bands = rules.score_bands(np.arange(1, 1001), 1000)
    assert bands[0] == bands[9] == "top 1%" and bands[10] == "top 2%" and bands[20] == "top 5%"
    assert bands[50] == "top 10%" and bands[100] == "top 20%" and bands[-1] == "top 100%"
    assert rules.score_bands([1, 500], 500) == ["top 1%", "top 100%"]


def test_csv_has_exactly_the_contract_columns_no_bom_and_no_other_personal_data():
    rows = rules.scoring_rows(_customers(2), CONTEXT)
    rows["name"], rows["phone"] = ['Ana "Zé" Silva, Jr', "Rui O'Neill"], ["+351 911", "+351 922"]
    rows["probability"] = [0.25, 0.5]
    frame = rules.finish_call_list(RuleModel(), rows, [0.4], None, "v0001")
    data = rules.call_list_csv(frame)
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert ",".join(records[0]) == "rank,customer_id,name,phone,probability,decile,reasons,model_version"
    assert records[1][:5] == ["1", "2", "Rui O'Neill", "+351 922", "0.500000"]
    assert records[2][2] == 'Ana "Zé" Silva, Jr'  # quoting round-trips
    body = data.decode()
    for private in ("tertiary", "married", "management", "balance", "opted_out"):
        assert private not in body


def test_workbook_has_the_csv_rows_typed_with_names_intact_and_a_summary(tmp_path):
    from openpyxl import load_workbook

    rows = rules.scoring_rows(_customers(4), CONTEXT)
    rows["name"] = ["Gonçalo Conceição", 'Ana "Zé" Brandão, Jr', "Vítor Simões", "Zoë Ðurić-Øster"]
    rows["phone"] = ["+351 911 000 001", "00351 922", "+351 933", "0044"]
    rows["probability"] = [0.5, 0.25, 0.125, 0.0625]
    frame = rules.finish_call_list(RuleModel(), rows, [0.4, 0.2], None, "v0007")
    facts = {
        "rows": 4, "eligible": 300, "call_date": "2024-06-01", "partition_date": "2024-05-31", "capacity": 3,
        "model_version": "v0007", "expected_sales": 0.875, "random_expected": 0.3, "lift": 2.9166,
        "eligibility": {"opted_out": 4, "already_bought": 5, "in_cooloff": 6}, "generated_at": "2024-05-31T05:00Z",
    }  # fmt: skip
    path = tmp_path / "call_list.xlsx"
    rules.build_workbook(frame, rules.score_bands([1, 2, 3, 4], 300), facts).save(path)
    book = load_workbook(path)
    assert book.sheetnames == ["calls", "summary"]
    calls = book["calls"]
    table = [list(r) for r in calls.iter_rows(values_only=True)]
    assert table[0] == [*rules.CALL_LIST_HEADER, "band"]
    csv_rows = list(csv.reader(io.StringIO(rules.call_list_csv(frame).decode(), newline="")))
    assert len(table) == len(csv_rows)
    for cells, text in zip(table[1:], csv_rows[1:], strict=True):
        assert [str(c) for c in cells[:4]] == text[:4] and f"{cells[4]:.6f}" == text[4]
        assert [("" if c is None else str(c)) for c in cells[5:8]] == text[5:8]  # no reasons: empty cell
        assert cells[2].encode("utf-8") == text[2].encode("utf-8")  # names byte-identical
    assert [type(c) for c in table[1][:6]] == [int, int, str, str, float, int]
    assert [r[8] for r in table[1:]] == ["top 1%", "top 1%", "top 1%", "top 2%"]
    assert calls.freeze_panes == "A2" and calls.column_dimensions["C"].width >= 20
    assert calls["D2"].number_format == "@"  # phone numbers stay text
    summary = {r[0]: r[1] for r in book["summary"].iter_rows(values_only=True)}
    assert summary["Expected buyers from this list"] == 0.9
    assert summary["Expected buyers calling at random"] == 0.3
    assert summary["Model version"] == "v0007" and summary["Capacity (calls the team can make)"] == 3
    assert str(summary["Data date (export)"])[:10] == "2024-05-31"
    assert "expect 0.9 buyers vs 0.3 calling at random" in summary["Headline"]


# -- real rows -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bank():
    """A tenth of the bank-full customers, a model fitted on their training rows, and the eligible rows."""
    from demo_company.bank import bank_tables, load_bank_full
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table, latest_contacts

    customers, contacts = bank_tables(seed=3, bank=load_bank_full().iloc[::10].reset_index(drop=True))
    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == "logreg/base")
    table = build_training_table(customers, contacts)
    model = build_pipeline(candidate, config).fit(table, table["y"].to_numpy())
    span = rules.data_span(contacts, date(2010, 11, 30))
    call_date = rules.default_call_date(span)
    history = rules.contacts_as_of(contacts, call_date)
    mask, _ = rules.eligibility(customers, rules.contact_summary(history), call_date, 30)
    rows = rules.scoring_rows_as_of(customers.loc[mask], latest_contacts(contacts), call_date, config)
    rows["probability"] = rules.predict(model, rows)
    return {"customers": customers, "contacts": contacts, "model": model, "rows": rows, "config": config}


def test_top_k_merge_of_chunks_equals_one_chunk_on_real_rows(bank):
    rows = bank["rows"].copy()
    rows.loc[rows.index[::7], "probability"] = 0.5  # many exact ties across chunk borders
    for keep in (1, 50, 333, None):
        whole = rules.top_rows(rows, keep)
        for size in (97, 1000, len(rows)):
            chunks = [rows.iloc[i : i + size] for i in range(0, len(rows), size)]
            merged = rules.merge_top([rules.top_rows(c, keep) for c in chunks], keep)
            pd.testing.assert_frame_equal(merged.reset_index(drop=True), whole.reset_index(drop=True))


def test_reasons_on_real_rows_are_varied_truthful_and_never_the_channel(bank):
    from models.propensity.reasons import PopulationProfile

    rows = bank["rows"]
    reference = (
        PopulationProfile().add(rows.iloc[: len(rows) // 2]).add(rows.iloc[len(rows) // 2 :]).reference()
    )
    assert reference == PopulationProfile().add(rows).reference()  # chunk by chunk = all at once
    listed = rules.top_rows(rows, 300)
    frame = rules.finish_call_list(
        bank["model"], listed, rules.decile_cuts(rows["probability"]), 300, "v1", reference
    )
    reasons = frame["reasons"]
    assert reasons.str.len().gt(0).mean() > 0.9
    assert reasons.nunique() > 30 and reasons.value_counts().iloc[0] < 0.25 * len(frame)
    phrases = [set(r.split("; ")) for r in reasons if r]
    assert not set.intersection(*phrases)  # no reason shared by every listed customer
    shares = pd.Series([p for row in phrases for p in row]).value_counts() / len(frame)
    assert shares.max() <= 0.8  # nor by nearly every one
    assert not reasons.str.contains("cellular|telephone").any()
    for text, row in zip(reasons, listed.itertuples(), strict=True):
        if "previous campaign succeeded" in text:
            assert row.poutcome == "success"
        if "no housing loan" in text:
            assert row.housing == "no"
        if "retired" in text:
            assert row.job == "retired"


def test_deciles_are_not_constant_when_the_list_spans_more_than_a_tenth(bank):
    rows = bank["rows"]
    cuts = rules.decile_cuts(rows["probability"].to_numpy())
    frame = rules.finish_call_list(bank["model"], rows, cuts, len(rows) // 4, "v1")
    assert frame["decile"].tolist()[:10] == [1] * 10 and set(frame["decile"]) >= {1, 2, 3}
    assert frame["decile"].is_monotonic_increasing


def test_scoring_row_as_of_a_historical_call_date_is_that_contacts_training_row(bank):
    """Train/serve skew (issue 12): rebuild contacts' rows through the scoring path, compare with training."""
    from models.propensity.features import build_training_table, latest_contacts

    customers, contacts, config = bank["customers"], bank["contacts"], bank["config"]
    config = config.model_copy(update={"context_rate_prior": 0.3, "context_rate_prior_weight": 7.0})
    table = build_training_table(
        customers,
        contacts,
        rate_prior=config.context_rate_prior,
        rate_prior_weight=config.context_rate_prior_weight,
    )
    history = latest_contacts(contacts)
    sample = table.iloc[np.linspace(0, len(table) - 1, 40).astype(int)]
    checked = 0
    for day, group in sample.groupby("contact_date"):
        # customers with one contact that day (the training row describes that contact)
        one = history[pd.to_datetime(history["contact_date"]) == day]["customer_id"].value_counts()
        group = group[group["customer_id"].map(one).eq(1)]
        if group.empty:
            continue
        chosen = customers.set_index("customer_id").loc[group["customer_id"]].reset_index()
        rows = rules.scoring_rows_as_of(chosen, history, pd.Timestamp(day).date(), config)
        expected = group.drop(columns=["contact_id", "y"]).reset_index(drop=True)
        got = rows[expected.columns].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
        ctx = rules.scoring_context(
            rules.contacts_as_of(contacts, pd.Timestamp(day).date()), day.date(), config
        )
        assert ctx["ctx_rate_90d"] == pytest.approx(expected["ctx_rate_90d"].iloc[0])
        assert ctx["ctx_volume_7d"] == pytest.approx(expected["ctx_volume_7d"].iloc[0])
        checked += len(group)
    assert checked >= 30


def test_scoring_rows_follow_the_company_customer_schema_like_training(bank):
    """A company without ``balance`` and with an extra pre-call column: scoring rows carry exactly the
    training rows' columns, and the reasons never mention the dropped column."""
    from callcast.schema import CustomerSchema
    from models.propensity.features import build_training_table, latest_contacts

    schema = CustomerSchema(
        dropped_columns=["balance"], extra_columns=[{"name": "income_band", "kind": "categorical"}]
    )
    config = PropensityConfig().model_copy(update={"customer_schema": schema})
    customers = (
        bank["customers"]
        .drop(columns=["balance"])
        .assign(income_band=lambda f: np.where(f["customer_id"] % 3 == 0, "high", "mid"))
    )
    contacts = bank["contacts"]
    table = build_training_table(customers, contacts, customer_columns=config.customer_columns())
    call_date = rules.default_call_date(rules.data_span(contacts, date(2010, 11, 30)))
    rows = rules.scoring_rows_as_of(customers.head(50), latest_contacts(contacts), call_date, config)
    assert (
        "balance" not in rows and (rows["income_band"] == customers.head(50)["income_band"].to_numpy()).all()
    )
    assert [c for c in table.columns if c not in ("contact_id", "y")] == [
        c for c in rows.columns if c not in rules.CONTACT_DETAILS
    ]
    rows["probability"] = np.linspace(0.9, 0.1, len(rows))
    frame = rules.finish_call_list(RuleModel(), rows, [0.5], None, "v1")
    assert not frame["reasons"].str.contains("balance").any()


def test_chunk_rows_from_the_chunks_own_history_and_the_shared_context_equal_the_full_build(bank):
    """Scoring passes each chunk only its customers' contacts plus the call date's context computed once."""
    from models.propensity.features import latest_contacts

    customers, contacts = bank["customers"], latest_contacts(bank["contacts"])
    config = PropensityConfig().model_copy(
        update={"context_rate_prior": 0.2, "context_rate_prior_weight": 9.0}
    )
    for call_date in (
        date(2009, 6, 15),
        rules.default_call_date(rules.data_span(contacts, date(2010, 11, 30))),
    ):
        chunk = customers.iloc[1000:1700]
        full = rules.scoring_rows_as_of(chunk, contacts, call_date, config)
        context = rules.scoring_context(rules.contacts_as_of(contacts, call_date), call_date, config)
        own = contacts[contacts["customer_id"].isin(chunk["customer_id"])]
        fast = rules.scoring_rows_as_of(chunk, own, call_date, config, context)
        pd.testing.assert_frame_equal(fast, full)
