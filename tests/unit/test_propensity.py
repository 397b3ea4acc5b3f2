"""Propensity model: leakage guard, chronological split, context features, determinism, behaviour, gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from demo_company.bank import bank_tables, load_bank_full
from models.propensity.config import Candidate, FeatureSet, PropensityConfig
from models.propensity.estimators import build_pipeline
from models.propensity.features import (
    LeakageError,
    add_context_features,
    assert_no_leakage,
    build_training_table,
)
from models.propensity.gate import behaviour_tests, decide_promotion
from models.propensity.reasons import explain
from models.propensity.split import chronological_holdout, rolling_origin
from models.propensity.training import train_propensity_model


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    bank = load_bank_full().iloc[::6].reset_index(drop=True)  # ~7.5k rows, still chronological
    return bank_tables(seed=7, bank=bank)


@pytest.fixture(scope="module")
def table(tables) -> pd.DataFrame:
    return build_training_table(*tables)


def small_config(**updates) -> PropensityConfig:
    config = PropensityConfig(
        candidates=[
            Candidate(
                name="logreg/base", estimator="logreg", feature_set="base", grid={"model__C": [0.1, 1.0]}
            ),
            Candidate(
                name="hist_gb/context",
                estimator="hist_gb",
                feature_set="context",
                grid={"model__max_iter": [30], "model__max_leaf_nodes": [7, 15]},
                calibration="none",
            ),
        ],
        rolling_origins=[0.7, 0.85],
        rolling_horizon=0.15,
        n_jobs=1,
    )
    return config.model_copy(update=updates)


@pytest.mark.parametrize("forbidden", ["duration", "pdays"])
def test_leakage_guard_refuses_forbidden_columns_whatever_the_config_says(table, tables, forbidden):
    contacts = tables[1]
    frame = table.assign(
        **{forbidden: contacts.set_index("contact_id").loc[table["contact_id"], forbidden].to_numpy()}
    )
    config = PropensityConfig()
    config.feature_sets["leaky"] = FeatureSet(categorical=["job"], numeric=["age", forbidden])
    candidate = Candidate(name="leaky", estimator="logreg", feature_set="leaky", grid={})
    with pytest.raises(LeakageError, match=forbidden):
        build_pipeline(candidate, config).fit(frame, frame["y"])
    with pytest.raises(LeakageError):
        assert_no_leakage(["age", f"{forbidden}_log"])
    assert_no_leakage(["age", "balance", "poutcome"])  # allowed columns pass


def test_the_default_feature_sets_never_carry_duration_or_pdays(table):
    config = PropensityConfig()
    for candidate in config.candidates_for("quick"):
        pipe = build_pipeline(candidate, config, calibrated=False)
        matrix = pipe[:2].fit_transform(table.head(200))
        assert not {"duration", "pdays"} & set(matrix.columns), candidate.name


def test_chronological_holdout_has_no_future_row_in_training(table):
    dates = table["contact_date"]
    split = chronological_holdout(dates, 0.2)
    assert dates.iloc[split.train].max() < dates.iloc[split.test].min()
    assert abs(len(split.test) / len(table) - 0.2) < 0.02
    assert split.test[-1] == len(table) - 1  # the most recent rows are the holdout
    for window in rolling_origin(dates, [0.5, 0.7, 0.9], 0.1):
        assert dates.iloc[window.train].max() < dates.iloc[window.test].min()
    with pytest.raises(ValueError, match="sorted"):
        chronological_holdout(dates.iloc[::-1], 0.2)


def test_training_table_keeps_latest_contact_version_and_respects_as_of(tables):
    customers, contacts = tables
    first = contacts.copy()
    first.loc[:, "y"] = None  # first export: outcomes unknown
    first["outcome_known_on"] = None
    first["updated_at"] = pd.to_datetime(first["contact_date"]) + pd.Timedelta(hours=20)
    history = pd.concat([first, contacts], ignore_index=True)
    table = build_training_table(customers, history)
    assert len(table) == len(contacts) and table["contact_id"].is_unique
    assert table["y"].mean() == pytest.approx((contacts["y"] == "yes").mean())
    cutoff = pd.Timestamp("2009-01-31")
    early = build_training_table(customers, history, as_of=cutoff)
    assert early["contact_date"].max() <= cutoff
    known = pd.to_datetime(contacts["outcome_known_on"]) <= cutoff
    assert len(early) == int(known.sum())
    assert early["contact_date"].is_monotonic_increasing


def test_context_features_only_look_at_the_past(tables):
    _, contacts = tables
    day = pd.Timestamp("2009-06-15")
    probe = pd.DataFrame({"contact_date": [day]})
    before = add_context_features(probe, contacts)
    future = contacts.copy()
    later = pd.to_datetime(future["contact_date"]) >= day
    future.loc[later, "y"] = "yes"  # rewriting the future must not move today's context
    assert add_context_features(probe, future).equals(before)
    past = contacts.copy()
    recent = (pd.to_datetime(past["contact_date"]) < day - pd.Timedelta(days=20)) & (
        pd.to_datetime(past["contact_date"]) >= day - pd.Timedelta(days=80)
    )
    past.loc[recent, "y"] = "yes"
    assert add_context_features(probe, past)["ctx_rate_90d"].iloc[0] > before["ctx_rate_90d"].iloc[0]


def test_same_data_and_seed_give_the_same_model_and_metrics(table):
    first = train_propensity_model(table, small_config(), "quick")
    second = train_propensity_model(table, small_config(), "quick")
    assert first.chosen.name == second.chosen.name
    assert first.chosen.holdout == second.chosen.holdout
    for a, b in zip(first.candidates, second.candidates, strict=True):
        np.testing.assert_array_equal(a.holdout_p, b.holdout_p)
    assert first.rolling == second.rolling
    assert 0.5 < first.chosen.holdout["roc_auc"] <= 1
    assert len(first.rolling) == 2


class _PunishesSuccess:
    """A broken model: previous-campaign success lowers the score."""

    def predict_proba(self, frame):
        p = np.where(frame["poutcome"].astype(str) == "success", 0.1, 0.4)
        return np.column_stack([1 - p, p])


def test_behaviour_tests_pass_a_sound_model_and_fail_a_broken_one(table):
    config = small_config()
    pipe = build_pipeline(config.candidates[0], config).fit(table, table["y"])
    sound = behaviour_tests(pipe, table.tail(300))
    assert all(b.passed for b in sound), sound
    broken = {b.name: b.passed for b in behaviour_tests(_PunishesSuccess(), table.tail(300))}
    assert broken["previous_success_not_lower"] is False
    unseen = table.tail(5).assign(job="astronaut", contact="carrier pigeon", month="smarch")
    p = pipe.predict_proba(unseen)[:, 1]
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()


def test_gate_promotes_only_a_better_model_with_passing_behaviour():
    from models.propensity.gate import BehaviourResult

    ok = [BehaviourResult("x", True, "")]
    bad = [BehaviourResult("previous_success_not_lower", False, "min delta -0.1")]
    better = decide_promotion({"roc_auc": 0.76}, {"roc_auc": 0.74}, ok, "roc_auc", 0.01)
    assert better.promote and "promoted" in better.reasons[0]
    marginal = decide_promotion({"roc_auc": 0.745}, {"roc_auc": 0.74}, ok, "roc_auc", 0.01)
    assert not marginal.promote and any("below the margin" in r for r in marginal.reasons)
    broken = decide_promotion({"roc_auc": 0.9}, {"roc_auc": 0.74}, bad, "roc_auc", 0.01)
    assert not broken.promote and any("previous_success_not_lower" in r for r in broken.reasons)
    brier = decide_promotion({"brier": 0.17}, {"brier": 0.19}, ok, "brier", 0.01)
    assert brier.promote  # lower Brier is better
    first = decide_promotion({"roc_auc": 0.6}, None, ok, "roc_auc", 0.01)
    assert first.promote


def test_reasons_describe_the_customer_truthfully(table):
    config = small_config()
    pipe = build_pipeline(config.candidates[0], config).fit(table, table["y"])
    rows = table.tail(400).reset_index(drop=True)
    reasons = explain(pipe, rows)
    assert len(reasons) == len(rows)
    for row, text in zip(rows.itertuples(), reasons, strict=True):
        if "previous campaign succeeded" in text:
            assert row.poutcome == "success"
        if "no housing loan" in text:
            assert row.housing == "no"
        if "contacted by cellular" in text:
            assert row.contact == "cellular"
    success = rows.index[rows["poutcome"] == "success"]
    assert len(success) and all("previous campaign succeeded" in reasons[i] for i in success)


def test_feature_matrix_fixes_categories_at_fit_and_ignores_input_dtypes(table):
    from models.propensity.features import BankFeatures

    fs = PropensityConfig().feature_sets["engineered"]
    step = BankFeatures(categorical=fs.categorical, numeric=fs.numeric).fit(table)
    assert list(step.categories_[fs.categorical.index("job")]) == sorted(table["job"].astype(str).unique())
    rows = table.tail(300).reset_index(drop=True)
    matrix = step.transform(rows)
    assert list(matrix.columns) == [*fs.categorical, *fs.numeric] and matrix.dtypes.eq(float).all()
    # the scorer builds object-dtype frames; the UCI reader gives pandas strings: same matrix either way
    as_object = rows.astype({c: object for c in fs.categorical if c in rows})
    pd.testing.assert_frame_equal(step.transform(as_object), matrix)
    odd = rows.head(3).assign(
        job=["astronaut", None, "student"], month=["smarch", "MAY", "may"], age=[17, 95, None]
    )
    coded = step.transform(odd)
    assert coded["job"].tolist()[:2] == [-1, -1]  # unseen and missing categories
    assert coded["job"].iloc[2] == list(step.categories_[0]).index("student")
    assert np.isnan(coded["month_sin"].iloc[0]) and coded["month_sin"].iloc[1] == coded["month_sin"].iloc[2]
    bands = list(step.categories_[fs.categorical.index("age_band")])
    assert coded["age_band"].tolist() == [bands.index("<25"), bands.index("60+"), -1]


def test_training_tasks_read_the_propensity_section_of_the_settings(monkeypatch):
    from tasks.training import _config

    monkeypatch.setenv("CALLCAST_PROPENSITY__SEED", "42")
    monkeypatch.setenv("CALLCAST_PROPENSITY__SEARCH_ITERATIONS", '{"quick": 1, "full": 3}')
    config = _config()
    assert config.seed == 42 and config.search_iterations == {"quick": 1, "full": 3}
    assert {c.estimator for c in config.candidates_for("quick")} == {"logreg", "random_forest", "hist_gb"}


def test_default_grids_cap_boosting_at_100_trees_for_scoring_speed():
    for candidate in PropensityConfig().candidates:
        if candidate.estimator == "hist_gb":
            assert max(candidate.grid["model__max_iter"]) <= 100, candidate.name
