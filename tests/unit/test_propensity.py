"""Propensity model: point-in-time rows, pre-call allowlist, decision metrics, split, determinism, behaviour, gate."""

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
    customer_features_as_of,
    scoring_rows_as_of,
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
                name="logreg/raw", estimator="logreg", feature_set="raw", grid={"model__C": [0.1, 1.0]}
            ),
            Candidate(
                name="hist_gb/monotone",
                estimator="hist_gb",
                feature_set="monotone",
                grid={"model__max_iter": [30], "model__max_leaf_nodes": [7, 15]},
                monotonic={"prev_success": 1},
            ),
            Candidate(name="logreg/base", estimator="logreg", feature_set="base", grid={}, profiles=[]),
        ],
        selection_origins=[0.6, 0.8],
        selection_horizon=0.2,
        rolling_origins=[0.5, 0.6, 0.7, 0.8, 0.9],
        rolling_horizon=0.1,
        bootstrap_samples=200,
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
    assert 0.5 < first.chosen.holdout["within_date_auc"] <= 1
    assert len(first.rolling) == 5  # at least five rolling origins, each with the baseline beside it
    assert all("baseline" in r and "intervals" in r for r in first.rolling)
    assert first.baseline.name == "logreg/raw"


def test_selection_uses_the_within_date_headline_and_never_the_holdout(table):
    from models.propensity.training import windows_won

    result = train_propensity_model(table, small_config(), "quick")
    base = result.baseline
    n = len(base.selection_windows)
    kept = [
        c for c in result.candidates if c.behaviour_passed and (c is base or 2 * windows_won(c, base) > n)
    ]
    assert result.chosen.name == max(kept, key=lambda c: c.selection_auc).name
    # the holdout is scored by the selection fit; the served model is a refit on every row
    assert result.fit_window == (
        str(table["contact_date"].min().date()),
        str(table["contact_date"].max().date()),
    )
    assert result.train_window[1] < result.holdout_window[0]
    p_final = result.final_pipeline.predict_proba(table.tail(len(result.holdout_y)))[:, 1]
    assert not np.allclose(p_final, result.chosen.holdout_p)  # it has seen the holdout


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
    assert PropensityConfig().promotion_metric == "within_date_auc"  # the gate uses the headline
    headline = decide_promotion(
        {"within_date_auc": 0.62}, {"within_date_auc": 0.60}, ok, "within_date_auc", 0.005
    )
    assert headline.promote
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
    assert {c.estimator for c in config.candidates_for("quick")} == {"logreg", "hist_gb"}
    assert "logreg/raw" in {c.name for c in config.candidates_for("quick")}  # the baseline is always run


def test_default_grids_cap_boosting_at_100_trees_for_scoring_speed():
    for candidate in PropensityConfig().candidates:
        if candidate.estimator == "hist_gb":
            assert max(candidate.grid["model__max_iter"]) <= 100, candidate.name


# -- point-in-time rows ----------------------------------------------------------------------------------


def test_scoring_rows_rebuilt_as_of_each_contact_date_equal_the_training_rows(tables, table):
    customers, contacts = tables
    rebuilt = customer_features_as_of(
        contacts,
        customers,
        pd.DataFrame({"customer_id": table["customer_id"], "as_of": table["contact_date"]}),
    )
    expected = table.drop(columns=["contact_id", "y"])
    pd.testing.assert_frame_equal(rebuilt[expected.columns], expected, check_dtype=False)
    # the same, one call date at a time, through the scoring entry point
    day = table["contact_date"].iloc[len(table) // 2]
    on_day = table[table["contact_date"] == day]
    rows = scoring_rows_as_of(contacts, customers, day, on_day["customer_id"])
    pd.testing.assert_frame_equal(
        rows[expected.columns].reset_index(drop=True),
        on_day.drop(columns=["contact_id", "y"]).reset_index(drop=True),
        check_dtype=False,
    )


def _history(*contacts: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    base = {"contact": "cellular", "campaign": 1, "previous": 0, "poutcome": "unknown", "y": None}
    frame = pd.DataFrame([{**base, **c} for c in contacts])
    frame["customer_id"] = frame.get("customer_id", 1)
    customers = pd.DataFrame(
        {
            "customer_id": sorted(frame["customer_id"].unique()),
            "age": 40,
            "job": "admin.",
            "marital": "single",
            "education": "tertiary",
            "default": "no",
            "balance": 100,
            "housing": "no",
            "loan": "no",
        }
    )
    return frame, customers


def test_history_rolls_forward_the_way_the_bank_records_the_next_contact():
    # a failed campaign (2 calls, outcome known on 03-10), then the bank's record of the next call
    contacts, customers = _history(
        {"contact_id": 1, "contact_date": "2009-03-01", "campaign": 2, "previous": 1, "poutcome": "failure",
         "y": "no", "outcome_known_on": "2009-03-10"},
        {"contact_id": 2, "contact_date": "2009-05-04", "campaign": 1, "previous": 3, "poutcome": "failure",
         "y": "yes", "outcome_known_on": "2009-05-09"},
    )  # fmt: skip
    recorded = build_training_table(customers, contacts)
    hidden = contacts[contacts["contact_id"] == 1]  # before the second call the bank knew only the first
    rebuilt = scoring_rows_as_of(hidden, customers, "2009-05-04")
    cols = ["contact", "campaign", "previous", "poutcome"]
    assert rebuilt[cols].iloc[0].tolist() == recorded[cols].iloc[1].tolist() == ["cellular", 1, 3, "failure"]
    # after the sale the next call starts from "previous campaign succeeded" (not the stale row's "failure")
    after = scoring_rows_as_of(contacts, customers, "2009-06-01")
    assert after[cols].iloc[0].tolist() == ["cellular", 1, 4, "success"]
    # outcome not known yet: the same campaign goes on
    pending = scoring_rows_as_of(contacts, customers, "2009-05-06")
    assert pending[cols].iloc[0].tolist() == ["cellular", 2, 3, "failure"]
    never = scoring_rows_as_of(contacts.iloc[:0], customers, "2009-05-06")
    assert never[cols].iloc[0].tolist() == ["unknown", 1, 0, "unknown"]
    assert not {"pdays", "days_since"} & set(after.columns)  # no recency under another name


# -- the pre-call allowlist ----------------------------------------------------------------------------


def test_a_renamed_duration_is_refused_because_it_is_not_declared_pre_call(table, tables):
    contacts = tables[1]
    seconds = contacts.set_index("contact_id").loc[table["contact_id"], "duration"].to_numpy()
    frame = table.assign(call_seconds=seconds)
    config = PropensityConfig()
    config.feature_sets["sneaky"] = FeatureSet(categorical=["job"], numeric=["age", "call_seconds"])
    candidate = Candidate(name="sneaky", estimator="logreg", feature_set="sneaky", grid={})
    with pytest.raises(LeakageError, match="call_seconds"):
        build_pipeline(candidate, config).fit(frame, frame["y"])
    # declared pre-call by configuration, the same column would pass: the schema is the allowlist
    from callcast.schema import CustomerSchema

    declared = config.for_schema(CustomerSchema(extra_columns=[{"name": "call_seconds", "kind": "numeric"}]))
    build_pipeline(candidate, declared).fit(frame.head(500), frame["y"].head(500))
    # undeclared source columns never reach the training table at all
    leaky_contacts = contacts.assign(call_seconds=contacts["duration"])
    assert "call_seconds" not in build_training_table(tables[0], leaky_contacts).columns


def test_declared_derived_features_pass_and_undeclared_sources_are_named():
    from models.propensity.features import assert_pre_call

    assert_pre_call(["age", "balance_slog", "poutcome_x_contact", "ctx_rate_90d_logit"])
    with pytest.raises(LeakageError, match="balance_slog \\(from balance\\)"):
        assert_pre_call(["age", "balance_slog"], allowed=["age"])
    with pytest.raises(LeakageError, match="pdays"):
        assert_pre_call(["pdays"], allowed=["pdays"])  # forbidden whatever is declared


# -- decision metrics -----------------------------------------------------------------------------------


def test_within_date_auc_ignores_what_only_separates_dates():
    from models.propensity.evaluation import date_stats, decision_metrics, within_date_auc

    rng = np.random.default_rng(1)
    dates = np.repeat(pd.date_range("2010-01-01", periods=40).to_numpy(), 50)
    rate = np.repeat(rng.uniform(0.05, 0.6, 40), 50)
    y = (rng.random(len(dates)) < rate).astype(int)
    assert within_date_auc(y, rate, dates) == pytest.approx(0.5)  # knows only each date's rate
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, rate) > 0.65  # ... which the pooled AUC rewards
    m = decision_metrics(date_stats(y, y + 0.0, dates, capacity_share=1.0))
    assert m["within_date_auc"] == 1.0 and m["capture_at_capacity"] == pytest.approx(1.0)
    m = decision_metrics(date_stats(y, rate, dates, capacity_share=0.2))
    assert m["capture_at_capacity"] == pytest.approx(m["capture_random"])  # ties shared: random calling


def test_bootstrap_intervals_resample_days_and_pair_the_models():
    from models.propensity.evaluation import bootstrap_intervals, date_stats

    rng = np.random.default_rng(2)
    dates = np.repeat(pd.date_range("2010-01-01", periods=60).to_numpy(), 40)
    y = (rng.random(len(dates)) < 0.3).astype(int)
    good = y + rng.normal(0, 0.8, len(y))
    noise = rng.random(len(y))
    ci = bootstrap_intervals(
        {"good": date_stats(y, good, dates), "noise": date_stats(y, noise, dates)}, "noise", 300, 0.9, 0
    )
    lo, hi = ci["good"]["within_date_auc"]
    assert 0.6 < lo < hi < 0.9
    assert ci["good"]["within_date_auc_diff"][0] > 0  # clearly better than noise, paired by day
    assert ci["noise"]["within_date_auc"][0] < 0.5 < ci["noise"]["within_date_auc"][1]


# -- recalibration and monotonicity ---------------------------------------------------------------------------


def test_recalibration_never_inverts_the_ranking():
    from sklearn.linear_model import LogisticRegression

    from models.propensity.estimators import RecalibratedClassifier

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 1))
    y = (rng.random(2000) < 1 / (1 + np.exp(-2 * x[:, 0]))).astype(int)
    y[-300:] = (rng.random(300) < 1 / (1 + np.exp(2 * x[-300:, 0]))).astype(int)  # latest window: inverted
    with pytest.warns(RuntimeWarning, match="refused"):
        model = RecalibratedClassifier(LogisticRegression(), "sigmoid", window_fraction=0.15).fit(x, y)
    assert model.slope_ == 1.0 and "refused" in model.calibration_note_
    base = model.estimator_.predict_proba(x)[:, 1]
    calibrated = model.predict_proba(x)[:, 1]
    assert (np.argsort(base, kind="stable") == np.argsort(calibrated, kind="stable")).all()
    assert abs(calibrated[-300:].mean() - y[-300:].mean()) < 0.05  # the level still moves


def test_previous_success_never_lowers_the_monotone_boosting_score(table):
    config = small_config()
    pipe = build_pipeline(config.candidate("hist_gb/monotone"), config).fit(table, table["y"])
    rows = table.sample(500, random_state=0).reset_index(drop=True)
    success = pipe.predict_proba(rows.assign(poutcome="success"))[:, 1]
    for other in ("failure", "other", "unknown"):
        assert (success >= pipe.predict_proba(rows.assign(poutcome=other))[:, 1] - 1e-12).all(), other
    assert pipe.named_steps["model"].estimator_.monotonic_cst[-1] == 1


def test_the_card_embeds_its_plots_so_they_render_without_the_lake(tmp_path):
    import base64
    import re

    import markdown

    from models.propensity.card import data_uri, render_card
    from models.propensity.evaluation import plot_per_date_capture, plot_roc

    rng = np.random.default_rng(4)
    y = (rng.random(400) < 0.3).astype(int)
    p = np.clip(y * 0.2 + rng.random(400) * 0.8, 0, 1)
    dates = np.repeat(pd.date_range("2010-01-01", periods=20).to_numpy(), 20)
    plots = {
        "per-date capture": plot_per_date_capture({"m": (y, p)}, dates, tmp_path / "a.png"),
        "roc": plot_roc({"m": (y, p)}, tmp_path / "b.png"),
    }
    info = {
        "version": "v0003",
        "candidate": "logreg/raw",
        "metrics": {"within_date_auc": 0.61, "calls": 100.0, "buyers_reached": 40.0, "buyers_reached_random": 30.0},
        "rows": 400,
        "features": {"categorical": ["job"], "numeric": ["age"]},
        "data_window": {"train": ["2010-01-01", "2010-01-15"], "holdout": ["2010-01-16", "2010-01-20"],
                        "fit": ["2010-01-01", "2010-01-20"]},
    }  # fmt: skip
    card = render_card(info, PropensityConfig(), None, {t: data_uri(f) for t, f in plots.items()})
    assert "of 100 calls, expect 40 buyers, against 30 at random" in card
    html = markdown.markdown(card, extensions=["tables"])
    sources = re.findall(r'<img alt="[^"]*" src="([^"]+)"', html)
    assert len(sources) == 2 and all(s.startswith("data:image/png;base64,") for s in sources)
    for src in sources:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_capacity_share_setting_changes_the_measured_capture(monkeypatch):
    from models.propensity.evaluation import evaluate
    from tasks.training import _config

    rng = np.random.default_rng(5)
    y = (rng.random(600) < 0.3).astype(int)
    p = (y * 0.3 + rng.random(600)) / 1.3
    dates = np.repeat(pd.date_range("2010-01-01", periods=10).to_numpy(), 60)
    monkeypatch.setenv("CALLCAST_PROPENSITY__CAPACITY_SHARE", "0.5")
    half = _config().capacity_share
    assert half == 0.5
    wide = evaluate(y, p, dates, half)
    narrow = evaluate(y, p, dates, PropensityConfig().capacity_share)
    assert wide["calls"] == 300 and narrow["calls"] == 120
    assert wide["capture_at_capacity"] > narrow["capture_at_capacity"]


def test_register_and_gate_signs_the_fresh_refit_and_skips_an_unverifiable_champion(
    table, tmp_path, monkeypatch
):
    from callcast.lake import Lake
    from callcast.storage import LocalStorage
    from tasks import registry
    from tasks.training import register_and_gate

    monkeypatch.setenv("CALLCAST_HOME", str(tmp_path / "home"))
    lake = Lake(LocalStorage(tmp_path / "lake"))
    config = small_config()
    result = train_propensity_model(table, config, "quick")
    # an old champion registered before signing (no signature) and of an unknown recipe
    registry.register_model(lake, "propensity", result.final_pipeline, {"candidate": "gone/recipe"})
    info = lake.read_json("registry/propensity/v0001/model.json")
    info.pop("pickle_hmac_sha256")
    lake.write_json("registry/propensity/v0001/model.json", info)
    registry.set_alias(lake, "propensity", "champion", "v0001")
    summary = register_and_gate(lake, result, table, [], config, None, fingerprint="f" * 64)
    assert summary["promoted"] and any("failed verification" in r for r in summary["reasons"])
    model, stored = registry.load_model(lake, "propensity", "champion")  # signed: loads
    assert stored["version"] == "v0002" and stored["data_window"]["fit"] == list(result.fit_window)
    assert stored["metrics"] == result.chosen.holdout  # figures of the selection fit
    rows = table.tail(50)
    np.testing.assert_allclose(model.predict_proba(rows), result.final_pipeline.predict_proba(rows))
    assert "data:image/png;base64," in summary["card"]
    assert registry.find_by_fingerprint(lake, "propensity", "f" * 64)["version"] == "v0002"


def test_a_recipe_is_kept_only_if_it_matches_plain_lr_on_most_windows():
    from types import SimpleNamespace

    from models.propensity.training import beats_baseline

    base = SimpleNamespace(name="logreg/raw", selection_windows=[0.60, 0.60, 0.60, 0.60, 0.60])
    lucky = SimpleNamespace(name="spiky", selection_windows=[0.80, 0.59, 0.59, 0.59, 0.60])  # best mean, 2/5
    steady = SimpleNamespace(name="steady", selection_windows=[0.61, 0.61, 0.61, 0.59, 0.60])  # 4/5
    messages = []
    kept = beats_baseline([base, lucky, steady], [base, lucky, steady], messages.append)  # type: ignore[list-item]
    assert [r.name for r in kept] == ["logreg/raw", "steady"]
    assert "spiky (2/5)" in messages[0]
