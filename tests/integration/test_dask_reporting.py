"""Dask workers report their task runs to the same Prefect server as the flow (so the UI shows them).

One case with a separately started ``dask scheduler`` / ``dask worker`` on 127.0.0.1 (the big company's
cluster), one with the local cluster a flow starts by itself.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import pytest

pytestmark = pytest.mark.integration

DASK = str(Path(sys.executable).with_name("dask"))


def where_am_i(x: int) -> tuple[int, int]:
    """The worker process's pid, so the test can tell the task did not run in the test process."""
    return x, os.getpid()


cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _wait_for_port(port: int, deadline_s: float = 60) -> None:
    import socket

    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _run_flow(runner) -> tuple[str, list[tuple[int, int]]]:
    from prefect import flow, task

    mapped = task(where_am_i, name="where-am-i")

    @flow(name="dask-reporting-probe", task_runner=runner)
    def probe() -> tuple[str, list[tuple[int, int]]]:
        from prefect.runtime import flow_run

        return flow_run.id, [f.result() for f in mapped.map([1, 2, 3])]

    return probe()


def _task_runs_of(flow_run_id: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    async def read():
        async with get_client() as client:
            return await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    return asyncio.run(read())


def _assert_reported(flow_run_id: str, results: list[tuple[int, int]]) -> None:
    assert sorted(x for x, _ in results) == [1, 2, 3]
    assert all(pid != os.getpid() for _, pid in results), "tasks ran in the test process, not on Dask"
    runs = [r for r in _task_runs_of(flow_run_id) if r.name.startswith("where-am-i")]
    assert len(runs) == 3, f"the server knows {len(runs)} of the 3 task runs the workers executed"
    assert all(r.state is not None and r.state.is_completed() for r in runs)


def test_task_runs_from_an_external_dask_worker_reach_the_server(prefect_harness, free_port, tmp_path):
    from prefect.settings import get_current_settings
    from prefect_dask import DaskTaskRunner

    api_url = str(get_current_settings().api.url)
    port = free_port()
    env = {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_LOGGING_LEVEL": "WARNING"}
    log = open(tmp_path / "dask.log", "w")  # noqa: SIM115 - closed in finally, after the processes
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    worker = None
    try:
        _wait_for_port(port)
        worker = subprocess.Popen(
            [DASK, "worker", f"tcp://127.0.0.1:{port}", "--nworkers", "1", "--nthreads", "1",
             "--no-dashboard", "--host", "127.0.0.1"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        flow_run_id, results = _run_flow(DaskTaskRunner(address=f"tcp://127.0.0.1:{port}"))
        _assert_reported(str(flow_run_id), results)
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        log.close()


def test_task_runs_from_the_flows_own_local_cluster_reach_the_server(prefect_harness):
    from callcast.runtime import dask_task_runner

    flow_run_id, results = _run_flow(dask_task_runner(None, 1))
    _assert_reported(str(flow_run_id), results)
