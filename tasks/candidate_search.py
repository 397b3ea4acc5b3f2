"""Prefect tasks of the propensity candidate search: one task per trial, mapped on the flow's task runner.

A trial is one candidate (estimator on a feature set) with one parameter setting of its seeded search, scored by
the within-date AUC on the selection windows of the training part. Trials read the training table from a file
(path in, small dict out): on a Dask cluster that file must sit where every worker can read it (local cluster:
the same disk; a real cluster: a shared volume). The outcome equals the serial search's for the same seed.
"""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from callcast.runtime import get_logger
from models.propensity.config import Profile, PropensityConfig
from models.propensity.training import (
    SearchOutcome,
    Trial,
    best_setting,
    score_setting,
    search_plan,
    train_propensity_model,
    training_part,
)


def search_runner(settings: Any, profile: Profile, use_dask: bool | None = None) -> tuple[Any, str]:
    """The task runner of the search's trials and its description.

    Dask when ``use_dask`` says so; by default when ``CALLCAST_DASK_ADDRESS`` names a cluster, or for the
    ``large`` profile (a local cluster of ``CALLCAST_DASK_WORKERS`` processes). Otherwise in-process, one trial
    at a time (a cluster costs more than it saves on the quick and full searches of one machine).
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    from callcast.runtime import dask_task_runner

    if use_dask is None:
        use_dask = bool(settings.dask_address) or profile == "large"
    if not use_dask:
        return ThreadPoolTaskRunner(max_workers=1), "in-process"
    where = settings.dask_address or f"local cluster, {settings.dask_workers} workers"
    return dask_task_runner(settings.dask_address, settings.dask_workers), f"dask {where}"


@task(name="read-propensity-config", cache_policy=NO_CACHE)
def read_config_task() -> PropensityConfig:
    """The propensity settings of this run, read once in the flow's process and passed to every trial.

    (A worker of an external Dask cluster has its own environment: it must not read CALLCAST_ variables.)
    """
    from tasks.training import _config

    return _config()


@task(name="plan-candidate-search", cache_policy=NO_CACHE)
def plan_search_task(config: PropensityConfig, profile: Profile) -> list[Trial]:
    """Every (candidate, parameter setting) of the profile, in the serial search's order."""
    plan = search_plan(config, profile)
    get_logger().info(
        "Candidate search, profile %s: %d candidates, %d trials",
        profile,
        len({t.candidate for t in plan}),
        len(plan),
    )
    return plan


def run_trial(table_path: str, trial: Trial, config: PropensityConfig) -> dict[str, Any]:
    """Score one trial on the selection windows: the plain function behind :func:`search_trial_task`."""
    started, t0 = time.time(), time.perf_counter()
    X, y, dates = training_part(pd.read_pickle(table_path), config)
    with threadpool_limits(limits=config.threads):  # the serial search's thread count: same numbers
        windows = score_setting(config.candidate(trial.candidate), trial.params, X, y, dates, config)
    return {
        "candidate": trial.candidate,
        "index": trial.index,
        "params": trial.params,
        "windows": windows,
        "seconds": time.perf_counter() - t0,
        "started": started,
        "finished": time.time(),
        "pid": os.getpid(),
    }


@task(
    name="search-trial",
    task_run_name="trial-{trial.candidate}-{trial.index}",
    retries=1,
    cache_policy=NO_CACHE,
)
def search_trial_task(table_path: str, trial: Trial, config: PropensityConfig) -> dict[str, Any]:
    """Within-date AUC of one candidate setting on each selection window (runs on a Dask worker if mapped there)."""
    out = run_trial(table_path, trial, config)
    get_logger().info(
        "%s #%d %s: mean within-date AUC %.4f over %d windows, %.1f s (pid %d)",
        trial.candidate, trial.index, trial.params, float(np.nanmean(out["windows"])),
        len(out["windows"]), out["seconds"], out["pid"],
    )  # fmt: skip
    return out


def outcomes_of(trials: list[dict[str, Any]]) -> dict[str, SearchOutcome]:
    """Each candidate's best setting from its trials, chosen exactly as the serial search chooses."""
    by_candidate: dict[str, list[dict[str, Any]]] = {}
    for t in trials:
        by_candidate.setdefault(t["candidate"], []).append(t)
    out = {}
    for name, rows in by_candidate.items():
        rows = sorted(rows, key=lambda r: r["index"])
        if [r["index"] for r in rows] != list(range(len(rows))):
            raise ValueError(f"{name}: trials {[r['index'] for r in rows]} are not the whole search")
        params, score, windows = best_setting([r["params"] for r in rows], [r["windows"] for r in rows])
        out[name] = SearchOutcome(params, score, windows, len(rows), sum(r["seconds"] for r in rows))
    return out


@task(name="collect-candidate-search", cache_policy=NO_CACHE)
def collect_search_task(
    workdir: str, trials: list[dict[str, Any]], runner: str, wall_seconds: float
) -> dict[str, Any]:
    """Best setting per candidate (pickled in ``workdir``) and a summary: trials, processes, seconds."""
    outcomes = outcomes_of(trials)
    path = Path(workdir) / "search.pkl"
    path.write_bytes(pickle.dumps(outcomes))
    busy = sum(t["seconds"] for t in trials)
    summary = {
        "path": str(path),
        "runner": runner,
        "trials": len(trials),
        "candidates": len(outcomes),
        "processes": len({t["pid"] for t in trials}),
        "pids": sorted({t["pid"] for t in trials}),
        "wall_seconds": wall_seconds,
        "trial_seconds": busy,
        # first trial start to last trial end: the wall time minus this is start-up (cluster, imports) and hand-over
        "trials_span_seconds": max(t["finished"] for t in trials) - min(t["started"] for t in trials),
        "best": {n: {"selection_auc": o.selection_auc, "params": o.params} for n, o in outcomes.items()},
    }
    get_logger().info(
        "Candidate search on %s: %d trials of %d candidates in %d process(es), %.1f s wall, %.1f s of trials",
        runner,
        len(trials),
        len(outcomes),
        summary["processes"],
        wall_seconds,
        busy,
    )
    return summary


@task(name="log-candidate-search", cache_policy=NO_CACHE)
def log_search_task(
    tracking_uri: str | None,
    trials: list[dict[str, Any]],
    summary: dict[str, Any],
    profile: Profile,
    config: PropensityConfig,
    experiment: str = "callcast-propensity",
) -> str | None:
    """One MLflow parent run for the search, one nested run per trial (params, window AUCs, mean, seconds)."""
    if not tracking_uri:
        return None
    return log_search(tracking_uri, experiment, trials, summary, profile, config)


def log_search(
    tracking_uri: str,
    experiment: str,
    trials: list[dict[str, Any]],
    summary: dict[str, Any],
    profile: str,
    config: PropensityConfig,
) -> str:
    """Log the search as a parent run with a nested run per trial; returns the parent run id.

    Logged from the flow's process after the trials ran, so many workers never write the tracking store at once
    (the default store is SQLite); the figures are the trials' own.
    """
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else client.create_experiment(experiment)
    now = int(time.time() * 1000)
    parent = client.create_run(
        exp_id,
        run_name=f"candidate-search-{profile}",
        tags={"callcast.kind": "candidate-search", "profile": profile},
    )
    pid = parent.info.run_id
    client.log_batch(
        pid,
        metrics=[
            Metric("wall_seconds", summary["wall_seconds"], now, 0),
            Metric("trial_seconds", summary["trial_seconds"], now, 0),
            Metric("trials", summary["trials"], now, 0),
            Metric("processes", summary["processes"], now, 0),
        ],
        params=[
            Param("profile", profile),
            Param("runner", summary["runner"][:250]),
            Param("seed", str(config.seed)),
            Param("candidates", str(summary["candidates"])),
        ],
    )
    best = summary["best"]
    for t in trials:
        spec = config.candidate(t["candidate"])
        is_best = best[t["candidate"]]["params"] == t["params"]
        child = client.create_run(
            exp_id,
            run_name=f"{t['candidate']}#{t['index']}",
            tags={
                "mlflow.parentRunId": pid,
                "callcast.kind": "search-trial",
                "candidate": t["candidate"],
                "best_of_candidate": str(is_best).lower(),
            },
        )
        metrics = [Metric("selection_auc", float(np.nanmean(t["windows"])), now, 0)]
        metrics += [Metric(f"window_{i}_auc", float(w), now, 0) for i, w in enumerate(t["windows"])]
        metrics.append(Metric("seconds", t["seconds"], now, 0))
        params = [
            Param("candidate", t["candidate"]),
            Param("estimator", spec.estimator),
            Param("feature_set", spec.feature_set),
            Param("trial", str(t["index"])),
            *(Param(k, str(v)[:250]) for k, v in sorted(t["params"].items())),
        ]
        client.log_batch(child.info.run_id, metrics=metrics, params=params)
        client.set_terminated(child.info.run_id)
    client.set_terminated(pid)
    return pid


@task(name="train-from-search", cache_policy=NO_CACHE)
def train_from_search_task(
    table_path: str, search_path: str, profile: Profile, config: PropensityConfig
) -> str:
    """Selection fits, holdout, rolling origins and the fresh refit from the searched settings (pickled)."""
    outcomes: dict[str, SearchOutcome] = pickle.loads(Path(search_path).read_bytes())  # noqa: S301 - this run's
    log = get_logger()
    result = train_propensity_model(
        pd.read_pickle(table_path), config, profile, log=log.info, searched=outcomes
    )
    path = Path(table_path).with_name("training_result.pkl")
    path.write_bytes(pickle.dumps(result))
    return str(path)
