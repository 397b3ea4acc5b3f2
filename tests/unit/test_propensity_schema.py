"""A company's own customer schema (one UCI column dropped, two added): settings -> checks -> training -> scoring rows."""

from __future__ import annotations

import gzip
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from callcast.schema import CustomerSchema
from demo_company.bank import bank_tables, load_bank_full
from models.propensity.config import Candidate, PropensityConfig
from models.propensity.features import build_training_table, scoring_rows_as_of
from models.propensity.training import train_propensity_model

EXTRA = [{"name": "income_band", "kind": "categorical"}, {"name": "tenure_years", "kind": "numeric"}]


@pytest.fixture
def variant_env(monkeypatch: pytest.MonkeyPatch) -> CustomerSchema:
    monkeypatch.setenv("CALLCAST_CUSTOMERS__DROPPED_COLUMNS", '["balance"]')
    monkeypatch.setenv("CALLCAST_CUSTOMERS__EXTRA_COLUMNS", json.dumps(EXTRA))
    return CustomerSchema(extra_columns=EXTRA, dropped_columns=["balance"])


@pytest.fixture(scope="module")
def variant_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    bank = load_bank_full().iloc[::6].reset_index(drop=True)
    customers, contacts = bank_tables(seed=5, bank=bank)
    rng = np.random.default_rng(0)
    # the extra columns carry signal, so a model that uses them ranks better than one that does not
    bought = contacts.set_index("customer_id").loc[customers["customer_id"], "y"].eq("yes").to_numpy()
    income = np.where(rng.random(len(customers)) < 0.35 + 0.3 * bought, "high", "low")
    customers = customers.drop(columns=["balance"]).assign(
        income_band=income, tenure_years=rng.integers(0, 30, len(customers)).astype(float)
    )
    order = [c for c in customers.columns if c not in ("opted_out", "created_at")] + [
        "opted_out",
        "created_at",
    ]
    return customers[order], contacts


def test_the_settings_carry_one_customer_schema_to_checks_and_model(variant_env):
    from callcast.settings import get_settings
    from data_checks.specs import plan_suite, table_spec

    settings = get_settings()
    assert settings.customers == variant_env
    spec = table_spec("customers", schema=settings.checks.customer_schema)
    assert "balance" not in spec.column_names and {"income_band", "tenure_years"} <= set(spec.column_names)
    plans = plan_suite(spec, date(2010, 11, 30), settings.checks)
    assert not [p for p in plans if p.column == "balance"]
    config = settings.propensity
    assert config.customer_columns()[-2:] == ["income_band", "tenure_years"]
    for name, fs in config.feature_sets.items():
        assert not {"balance", "balance_slog"} & set(fs.categorical + fs.numeric), name
        assert "income_band" in fs.categorical and "tenure_years" in fs.numeric, name
    assert "balance" not in config.allowed_columns() and "income_band" in config.allowed_columns()
    default = PropensityConfig()
    assert "balance" in default.feature_sets["raw"].numeric  # without the variables nothing changes


def test_checks_accept_the_variant_file_and_refuse_it_under_the_default_schema(
    variant_tables, tmp_path, variant_env
):
    from data_checks.config import ChecksConfig
    from data_checks.validate import validate_partition

    customers, _ = variant_tables
    path = tmp_path / "customers.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        customers.to_csv(handle, index=False)
    day = date(2010, 11, 30)
    ok = validate_partition(path, "customers", day, config=ChecksConfig(customer_schema=variant_env))
    assert ok.status != "failed", ok.failed_expectations
    refused = validate_partition(path, "customers", day, config=ChecksConfig())
    assert refused.status == "failed"
    assert any("balance" in json.dumps(f.__dict__ if hasattr(f, "__dict__") else f, default=str)
               for f in refused.failed_expectations)  # fmt: skip


def test_training_and_scoring_rows_follow_the_variant_schema(variant_tables, variant_env):
    customers, contacts = variant_tables
    config = PropensityConfig(
        candidates=[
            Candidate(name="logreg/raw", estimator="logreg", feature_set="raw", grid={"model__C": [0.3]}),
            Candidate(
                name="hist_gb/monotone",
                estimator="hist_gb",
                feature_set="monotone",
                grid={"model__max_iter": [30]},
                monotonic={"prev_success": 1},
            ),
        ],
        selection_origins=[0.6, 0.8],
        selection_horizon=0.2,
        bootstrap_samples=100,
    ).for_schema(variant_env)
    with pytest.raises(KeyError, match="balance"):
        build_training_table(customers, contacts)  # the UCI columns: this company has no balance
    table = build_training_table(customers, contacts, customer_columns=config.customer_columns())
    assert "balance" not in table.columns and {"income_band", "tenure_years"} <= set(table.columns)
    result = train_propensity_model(table, config, "quick")
    features = result.final_pipeline.named_steps["features"]
    assert "income_band" in features.categorical and "balance" not in features.numeric
    rows = scoring_rows_as_of(contacts, customers, "2010-12-01", customer_columns=config.customer_columns())
    p = result.final_pipeline.predict_proba(rows)[:, 1]
    assert np.isfinite(p).all() and len(p) == len(customers)
    high = rows["income_band"].eq("high").to_numpy()
    assert p[high].mean() > p[~high].mean()  # the added column is used, in the right direction
