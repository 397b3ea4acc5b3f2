"""The compiled serving scorer: same probabilities as the pipeline, same rows as batch, refusals with reasons."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.call_list import NEVER_CONTACTED, predict, scoring_context, scoring_rows
from models.propensity import features, serving

CONTEXT = {
    "call_date": "2026-03-17",
    "day": 17,
    "month": "mar",
    "ctx_volume_7d": 412.0,
    "ctx_rate_90d": 0.137,
}


@pytest.fixture(scope="module")
def bank():
    from demo_company.bank import bank_tables, load_bank_full

    customers, contacts = bank_tables(seed=3, bank=load_bank_full().iloc[::15].reset_index(drop=True))
    return customers, contacts, features.build_training_table(customers, contacts)


def _fit(table: pd.DataFrame, name: str, calibrated: bool = True, **params):
    from models.propensity.config import PropensityConfig
    from models.propensity.estimators import build_pipeline

    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == name)
    model = build_pipeline(candidate, config, calibrated=calibrated)
    if params:
        model.set_params(**{f"model__estimator__{k}": v for k, v in params.items()})
    return model.fit(table, table["y"].to_numpy())


def _records(customers: pd.DataFrame, contacts: pd.DataFrame, n: int = 400) -> pd.DataFrame:
    """Customers with their latest history; every third one never contacted (history missing)."""
    last = contacts.sort_values(["customer_id", "contact_date"]).drop_duplicates("customer_id", keep="last")
    cols = ["customer_id", "contact", "campaign", "previous", "poutcome"]
    records = customers.head(n).merge(last[cols], on="customer_id", how="left")
    records.loc[records.index % 3 == 0, ["contact", "campaign", "previous", "poutcome"]] = np.nan
    return records


@pytest.mark.parametrize(
    ("name", "calibrated"),
    [
        ("logreg/context", True),  # RecalibratedClassifier(method="none")
        ("logreg/engineered", True),  # sigmoid recalibration, age bands, month seasonality
        ("logreg/context_engineered", False),  # a plain LogisticRegression at the end
        ("logreg/customer", True),  # the current recipes: age bands, signed-log balance, log counts
        ("logreg/interactions", True),  # categorical crosses (previous outcome x channel, ...)
    ],
)
def test_compiled_scorer_gives_the_batch_probabilities(bank, name, calibrated):
    customers, contacts, table = bank
    model = _fit(table, name, calibrated)
    scorer, why = serving.serving_scorer(model, NEVER_CONTACTED)
    assert scorer is not None and why.startswith("compiled"), why

    records = _records(customers, contacts)
    rows = scoring_rows(records, CONTEXT)
    batch = predict(model, rows)
    compiled = scorer.predict(
        [serving.scoring_row(r, CONTEXT, NEVER_CONTACTED) for r in records.to_dict("records")]
    )
    np.testing.assert_allclose(compiled, batch, rtol=0, atol=1e-12)
    assert batch.std() > 0.01  # the customers really differ

    # Unseen categories and an unseen month are ignored by the one-hot encoder, in both paths.
    odd = rows.head(20).copy()
    odd["job"] = "astronaut"
    odd["month"] = "smarch"
    odd["poutcome"] = "SUCCESS"  # case matters for the raw column, not for prev_success
    np.testing.assert_allclose(
        scorer.predict(odd.to_dict("records")), predict(model, odd), rtol=0, atol=1e-12
    )


def test_scoring_row_is_the_batch_row(bank):
    customers, contacts, _ = bank
    records = _records(customers, contacts, n=60)
    batch = scoring_rows(records, CONTEXT).to_dict("records")
    for record, expected in zip(records.to_dict("records"), batch, strict=True):
        row = serving.scoring_row(record, CONTEXT, NEVER_CONTACTED)
        assert list(row) == list(expected)
        for key, value in expected.items():
            assert row[key] == value, key
            assert type(row[key]) is not float or isinstance(value, float), key
    never = serving.scoring_row(records.iloc[0].to_dict(), CONTEXT, NEVER_CONTACTED)
    assert {k: never[k] for k in NEVER_CONTACTED} == NEVER_CONTACTED


def test_context_from_scoring_context_compiles_the_same(bank):
    customers, contacts, table = bank
    model = _fit(table, "logreg/context")
    scorer, _ = serving.serving_scorer(model, NEVER_CONTACTED)
    from datetime import date

    from models.propensity.config import PropensityConfig

    context = scoring_context(contacts, date(2010, 6, 1), PropensityConfig())
    records = _records(customers, contacts, n=50)
    expected = predict(model, scoring_rows(records, context))
    got = [
        scorer.probability(serving.scoring_row(r, context, NEVER_CONTACTED))
        for r in records.to_dict("records")
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_non_linear_models_fall_back_to_the_pipeline(bank):
    _, _, table = bank
    model = _fit(table, "random_forest/context", n_estimators=5)
    scorer, why = serving.serving_scorer(model, NEVER_CONTACTED)
    assert scorer is None
    assert why.startswith("pipeline") and "RandomForestClassifier" in why
    with pytest.raises(serving.NotCompilable, match="not a sklearn Pipeline"):
        serving.compile_linear(model.named_steps["model"])


def test_unknown_encoder_settings_are_refused(bank):
    _, _, table = bank
    model = _fit(table, "logreg/base")
    model.named_steps["encode"].named_transformers_["cat"].handle_unknown = "error"
    scorer, why = serving.serving_scorer(model, NEVER_CONTACTED)
    assert scorer is None and "unknowns" in why


def test_a_scorer_that_disagrees_with_the_pipeline_is_refused(bank, monkeypatch):
    """If a feature's definition changes in the pipeline and not here, verification catches it."""
    _, _, table = bank
    model = _fit(table, "logreg/engineered")
    assert serving.serving_scorer(model, NEVER_CONTACTED)[0] is not None
    monkeypatch.setitem(
        features.DERIVED_FEATURES,
        "campaign_log",
        features.DerivedFeature(
            lambda f: np.log(np.clip(features._num(f, "campaign"), 1, None)), ("campaign",)
        ),
    )
    scorer, why = serving.serving_scorer(model, NEVER_CONTACTED)
    assert scorer is None and "differs by" in why


def test_verification_rows_cover_defaults_unseen_and_missing():
    rows = serving.verification_rows(700, seed=1, never_contacted=NEVER_CONTACTED)
    assert len(rows) == 700
    assert sum(all(r[k] == v for k, v in NEVER_CONTACTED.items()) for r in rows) >= 100
    assert any(r["job"] == "never-seen" for r in rows) and any(r["job"] is None for r in rows)
    assert any(r["age"] is None for r in rows) and any(r["ctx_rate_90d"] in (0.0, 1.0) for r in rows)
