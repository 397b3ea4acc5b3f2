"""The propensity candidate search on Dask gives the serial search's model: same winner, same figures.

The training flow runs twice on the same validated partitions (two lakes): once with every trial in-process, once
with the trials mapped on a local Dask cluster of two worker processes. Registered model, selection and holdout
figures of every candidate, and the served probabilities must agree to 1e-12; the trials must have run on the
workers, and every trial must be an MLflow run nested under the search's run.
"""

from __future__ import annotations

import os
from datetime import date

import numpy as np
import pytest

from callcast.lake import open_lake
from demo_company.bank import bank_tables, load_bank_full

pytestmark = pytest.mark.integration

TOL = 1e-12


def _lake_with(tmp_path, name, customers, contacts, commit_validated_partition):
    from callcast.settings import get_settings

    url = str(tmp_path / name)
    lake = open_lake(get_settings(lake_url=url))
    day = date(2010, 12, 31)
    commit_validated_partition(lake, "customers", customers, day)
    commit_validated_partition(lake, "campaign_contacts", contacts, day)
    return url, lake


def _close(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (np.isnan(a) and np.isnan(b)) or abs(a - b) <= TOL, f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def test_dask_candidate_search_trains_the_serial_model(
    prefect_harness, callcast_home, tmp_path, commit_validated_partition, monkeypatch
):
    from mlflow.tracking import MlflowClient

    from flows.train_propensity import train_propensity
    from models.propensity.config import PropensityConfig
    from models.propensity.features import build_training_table
    from models.propensity.training import search_plan
    from tasks import registry

    monkeypatch.setenv("CALLCAST_DASK_WORKERS", "2")
    bank = load_bank_full().iloc[::10].reset_index(drop=True)
    customers, contacts = bank_tables(seed=5, bank=bank)
    serial_url, serial_lake = _lake_with(tmp_path, "serial", customers, contacts, commit_validated_partition)
    dask_url, dask_lake = _lake_with(tmp_path, "dask", customers, contacts, commit_validated_partition)

    serial = train_propensity(profile="quick", lake_url=serial_url, use_dask=False, reason="manual")
    distributed = train_propensity(profile="quick", lake_url=dask_url, use_dask=True, reason="manual")

    a = registry.read_model_info(serial_lake, "propensity", serial["version"])
    b = registry.read_model_info(dask_lake, "propensity", distributed["version"])
    assert a["candidate"] == b["candidate"] and a["params"] == b["params"]
    for key in ("metrics", "candidates", "baseline", "rolling", "holdout_intervals", "decision"):
        _close(a[key], b[key], key)
    assert serial["promoted"] == distributed["promoted"]

    model_a, _ = registry.load_model(serial_lake, "propensity", serial["version"])
    model_b, _ = registry.load_model(dask_lake, "propensity", distributed["version"])
    rows = build_training_table(customers, contacts).tail(2000)
    pa, pb = model_a.predict_proba(rows)[:, 1], model_b.predict_proba(rows)[:, 1]
    assert np.max(np.abs(pa - pb)) <= TOL

    # every trial ran as its own task on a worker process, and is an MLflow run under the search's run
    client = MlflowClient(f"sqlite:///{callcast_home / 'mlflow.db'}")
    exp = client.get_experiment_by_name("callcast-propensity")
    parents = client.search_runs(
        [exp.experiment_id],
        "tags.`callcast.kind` = 'candidate-search'",
        order_by=["attributes.start_time ASC"],
    )
    assert len(parents) == 2
    serial_parent, dask_parent = parents
    assert serial_parent.data.params["runner"] == "in-process"
    assert dask_parent.data.params["runner"].startswith("dask local cluster, 2 workers")
    assert dask_parent.data.metrics["processes"] == 2, "the trials did not spread over both workers"
    n_trials = len(search_plan(PropensityConfig(), "quick"))
    for parent in parents:
        children = client.search_runs(
            [exp.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
        assert len(children) == n_trials == parent.data.metrics["trials"]
        best = [c for c in children if c.data.tags["best_of_candidate"] == "true"]
        assert {c.data.params["candidate"] for c in best} == {c["name"] for c in a["candidates"]}
    winner_runs = [
        c
        for c in client.search_runs(
            [exp.experiment_id], f"tags.mlflow.parentRunId = '{dask_parent.info.run_id}'"
        )
        if c.data.tags["best_of_candidate"] == "true" and c.data.params["candidate"] == b["candidate"]
    ]
    chosen = next(c for c in b["candidates"] if c["name"] == b["candidate"])
    assert abs(winner_runs[0].data.metrics["selection_auc"] - chosen["selection_auc"]) <= TOL


def test_search_on_the_cluster_named_by_callcast_dask_address_equals_the_serial_search(
    prefect_harness, callcast_home, tmp_path, free_port, monkeypatch
):
    """A separately started `dask scheduler` / `dask worker` (the big company's cluster) gives the same choice."""
    import pickle
    import subprocess
    import sys
    import time
    from pathlib import Path

    from callcast.runtime import prefect_worker_environment
    from callcast.settings import get_settings
    from flows.candidate_search import search_candidates
    from models.propensity.config import PropensityConfig
    from models.propensity.features import build_training_table
    from models.propensity.training import search_candidate, training_part
    from tasks.candidate_search import search_runner

    config = PropensityConfig()
    bank = load_bank_full().iloc[::15].reset_index(drop=True)
    table = build_training_table(*bank_tables(seed=9, bank=bank))
    path = tmp_path / "training_table.pkl"
    table.to_pickle(path)
    X, y, dates = training_part(table, config)
    serial = {
        c.name: search_candidate(c, X, y, dates, config, "quick") for c in config.candidates_for("quick")
    }

    dask = str(Path(sys.executable).with_name("dask"))
    port = free_port()
    env = {**os.environ, **prefect_worker_environment()}
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115 - closed after the processes
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    worker = None
    try:
        deadline = time.monotonic() + 60
        import socket

        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.3)
        worker = subprocess.Popen(
            [dask, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "2", "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        monkeypatch.setenv("CALLCAST_DASK_ADDRESS", f"tcp://127.0.0.1:{port}")
        runner, label = search_runner(get_settings(), "quick")  # the address alone puts the search on Dask
        assert label == f"dask tcp://127.0.0.1:{port}"
        summary = search_candidates.with_options(task_runner=runner)(
            str(path), str(tmp_path), "quick", config, None, label
        )
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        log.close()
    outcomes = pickle.loads(Path(summary["path"]).read_bytes())
    assert outcomes.keys() == serial.keys()
    for name, (params, score, windows, tried) in serial.items():
        o = outcomes[name]
        assert (o.params, o.n_tried) == (params, tried)
        assert abs(o.selection_auc - score) <= TOL
        _close(o.selection_windows, windows, name)
    assert summary["trials"] == sum(t for *_, t in serial.values())
    assert os.getpid() not in summary["pids"], "the trials ran in the flow's process, not on the cluster"
