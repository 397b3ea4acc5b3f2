"""The candidate search split into trials (what a Dask cluster runs) chooses what the serial search chooses."""

from __future__ import annotations

import pickle

import pytest

from demo_company.bank import bank_tables, load_bank_full
from models.propensity.config import PropensityConfig
from models.propensity.features import build_training_table
from models.propensity.training import (
    Trial,
    best_setting,
    search_candidate,
    search_plan,
    train_propensity_model,
    training_part,
)
from tasks.candidate_search import outcomes_of, run_trial, search_runner


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    bank = load_bank_full().iloc[::20].reset_index(drop=True)
    customers, contacts = bank_tables(seed=11, bank=bank)
    path = tmp_path_factory.mktemp("search") / "training_table.pkl"
    build_training_table(customers, contacts).to_pickle(path)
    return str(path)


def _small() -> PropensityConfig:
    config = PropensityConfig(bootstrap_samples=50)
    keep = {"logreg/raw", "hist_gb/monotone"}
    return config.model_copy(
        update={"candidates": [c for c in config.candidates if c.name in keep or not c.profiles]}
    )


@pytest.mark.slow
def test_trials_run_one_by_one_choose_the_serial_searchs_settings(table_path):
    import pandas as pd

    config = _small()
    table = pd.read_pickle(table_path)
    X, y, dates = training_part(table, config)
    plan = search_plan(config, "quick")
    # trials arrive in any order from a cluster (and through a pickle): the choice must not depend on it
    trials = [pickle.loads(pickle.dumps(run_trial(table_path, t, config))) for t in reversed(plan)]
    outcomes = outcomes_of(trials)
    assert set(outcomes) == {"logreg/raw", "hist_gb/monotone"}
    for name, outcome in outcomes.items():
        params, score, windows, tried = search_candidate(config.candidate(name), X, y, dates, config, "quick")
        assert (outcome.params, outcome.n_tried) == (params, tried)
        assert outcome.selection_auc == score and outcome.selection_windows == windows

    serial = train_propensity_model(table, config, "quick")
    split = train_propensity_model(table, config, "quick", searched=outcomes)
    assert split.chosen.name == serial.chosen.name and split.chosen.params == serial.chosen.params
    for a, b in zip(serial.candidates, split.candidates, strict=True):
        assert a.holdout == b.holdout and a.selection_windows == b.selection_windows
    assert (
        split.final_pipeline.predict_proba(table)[:, 1] == serial.final_pipeline.predict_proba(table)[:, 1]
    ).all()


def test_an_incomplete_search_is_refused_not_chosen_from():
    trials = [
        {"candidate": "logreg/raw", "index": 0, "params": {"C": 1}, "windows": [0.6, 0.7], "seconds": 1},
        {"candidate": "logreg/raw", "index": 2, "params": {"C": 3}, "windows": [0.9, 0.9], "seconds": 1},
    ]
    with pytest.raises(ValueError, match="not the whole search"):
        outcomes_of(trials)


def test_ties_go_to_the_earlier_setting_and_nan_windows_are_skipped():
    params, score, windows = best_setting(
        [{"C": 0.1}, {"C": 1.0}, {"C": 3.0}], [[0.6, 0.7], [0.65, 0.65], [float("nan"), 0.64]]
    )
    assert params == {"C": 0.1} and score == pytest.approx(0.65)
    params, score, _ = best_setting([{"C": 0.1}, {"C": 1.0}], [[0.6, 0.6], [float("nan"), 0.61]])
    assert params == {"C": 1.0} and score == pytest.approx(0.61)


def test_the_large_profile_searches_more_candidates_and_trials_than_full():
    config = PropensityConfig()
    full, large = search_plan(config, "full"), search_plan(config, "large")
    assert {t.candidate for t in full} < {t.candidate for t in large}
    assert len(large) >= 2 * len(full)
    assert all(isinstance(t, Trial) for t in large)
    assert len({(t.candidate, t.index) for t in large}) == len(large)


def test_the_search_runs_on_dask_when_a_cluster_is_named_or_the_profile_is_large(monkeypatch, callcast_home):
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from callcast.settings import get_settings

    settings = get_settings()
    runner, label = search_runner(settings, "quick")
    assert isinstance(runner, ThreadPoolTaskRunner) and label == "in-process"
    runner, label = search_runner(settings, "large")
    assert isinstance(runner, DaskTaskRunner) and label.startswith("dask local cluster")
    runner, label = search_runner(settings, "large", use_dask=False)
    assert isinstance(runner, ThreadPoolTaskRunner)

    monkeypatch.setenv("CALLCAST_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    runner, label = search_runner(get_settings(), "quick")
    assert isinstance(runner, DaskTaskRunner) and label == "dask tcp://10.0.0.5:8786"
    assert runner.address == "tcp://10.0.0.5:8786"


def test_target_encoded_candidate_is_reproducible_for_the_seed(table_path):
    """Same seed, same rows: the same probabilities (the serial and the Dask search rely on it)."""
    import pandas as pd

    from models.propensity.estimators import build_pipeline

    config = PropensityConfig()
    table = pd.read_pickle(table_path)
    spec = config.candidate("logreg/interactions_te")
    assert spec.target_encode  # the candidate cross-fits a target encoding
    y = table["y"].to_numpy()
    first = build_pipeline(spec, config, calibrated=False).fit(table, y).predict_proba(table)[:, 1]
    second = build_pipeline(spec, config, calibrated=False).fit(table, y).predict_proba(table)[:, 1]
    assert (first == second).all()
    other = config.model_copy(update={"seed": config.seed + 1})
    third = build_pipeline(spec, other, calibrated=False).fit(table, y).predict_proba(table)[:, 1]
    assert not (first == third).all()  # the seed reaches the encoder's folds
