"""Subflow: plan the propensity candidate search -> one trial per task (mapped) -> best per candidate -> MLflow.

The task runner is the caller's choice (``search_candidates.with_options(task_runner=...)``): in-process one
trial at a time, or prefect-dask's ``DaskTaskRunner`` (a local cluster, or ``CALLCAST_DASK_ADDRESS``). Either way
the best setting per candidate, and so the trained model, is the same for the same seed.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow, unmapped
from prefect.futures import as_completed

from models.propensity.config import Profile, PropensityConfig
from tasks.candidate_search import (
    collect_search_task,
    log_search_task,
    plan_search_task,
    search_trial_task,
)


@flow(name="propensity-candidate-search", log_prints=True)
def search_candidates(
    table_path: str,
    workdir: str,
    profile: Profile,
    config: PropensityConfig,
    tracking_uri: str | None = None,
    runner: str = "in-process",
) -> dict[str, Any]:
    """Score every (candidate, setting) trial of ``profile`` on the training part's selection windows.

    Returns the summary: where the best settings are pickled (``path``), trials, processes, seconds, the
    best setting per candidate and the MLflow parent run (one nested run per trial).
    """
    t0 = time.perf_counter()
    plan = plan_search_task(config, profile)
    futures = search_trial_task.map(unmapped(table_path), plan, unmapped(config))
    trials = []
    step = max(1, len(futures) // 10)
    for future in as_completed(futures):
        trials.append(future.result())
        done = len(trials)
        if done % step == 0 or done == len(futures):
            spent = time.perf_counter() - t0
            print(
                f"candidate search: {done}/{len(futures)} trials on {runner}, {spent:.0f} s, "
                f"ETA {spent / done * (len(futures) - done):.0f} s"
            )
    summary = collect_search_task(workdir, trials, runner, time.perf_counter() - t0)
    summary["mlflow_run_id"] = log_search_task(tracking_uri, trials, summary, profile, config)
    return summary
