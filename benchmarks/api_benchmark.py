"""Scoring endpoint under load on loopback: p50/p99 latency and errors for single-customer requests.

Starts ``python -m callcast.api`` (uvicorn) in a subprocess on 127.0.0.1 over a temporary lake holding a
logistic-regression champion fitted on bank-full, then sends ``--requests`` POST /score requests from
``--clients`` concurrent asyncio/httpx clients (one customer each, resampled from the UCI rows).

    .venv/bin/python benchmarks/api_benchmark.py [--requests 10000] [--clients 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _lake_with_champion(root: Path) -> None:
    from callcast.demo.bank import bank_tables
    from callcast.lake import Lake
    from callcast.storage import LocalStorage
    from models.propensity.config import PropensityConfig
    from models.propensity.estimators import build_pipeline
    from models.propensity.features import build_training_table
    from tasks import registry

    config = PropensityConfig()
    candidate = next(c for c in config.candidates if c.name == "logreg/context")
    customers, contacts = bank_tables(seed=3)
    table = build_training_table(customers, contacts)
    model = build_pipeline(candidate, config).fit(table, table["y"].to_numpy())
    lake = Lake(LocalStorage(root))
    registry.register_model(lake, "propensity", model, {"candidate": candidate.name})
    registry.set_alias(lake, "propensity", "champion", "v0001")


def _payloads(n: int) -> list[dict]:
    from callcast.demo.bank import load_bank_full

    bank = load_bank_full()
    rng = np.random.default_rng(11)
    cols = ["age", "job", "marital", "education", "default", "balance", "housing", "loan", "contact",
            "campaign", "previous", "poutcome"]  # fmt: skip
    rows = bank.iloc[rng.integers(0, len(bank), n)][cols].to_dict("records")
    return [{k: (int(v) if isinstance(v, np.integer) else v) for k, v in r.items()} for r in rows]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _load(url: str, payloads: list[dict], clients: int) -> tuple[list[float], int]:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal errors
        while not queue.empty():
            payload = queue.get_nowait()
            t0 = time.perf_counter()
            try:
                r = await client.post(f"{url}/score", json=payload)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))
    return latencies, errors


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=20)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="callcast-apibench-") as tmp:
        lake = Path(tmp) / "lake"
        _lake_with_champion(lake)
        port = _free_port()
        env = {**os.environ, "CALLCAST_LAKE_URL": str(lake), "CALLCAST_HOME": tmp}
        server = subprocess.Popen(
            [sys.executable, "-m", "callcast.api", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            import httpx

            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/health", timeout=2).json().get("model_version"):
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the API did not start")
                time.sleep(0.3)
            payloads = _payloads(a.requests)
            asyncio.run(_load(url, payloads[: min(200, len(payloads))], a.clients))  # warm-up
            t0 = time.perf_counter()
            latencies, errors = asyncio.run(_load(url, payloads, a.clients))
            seconds = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait(timeout=10)
    ms = np.asarray(latencies) * 1000
    print(
        f"{a.requests:,} single-customer requests, {a.clients} concurrent clients, loopback, uvicorn 1 process"
    )
    print(f"throughput {a.requests / seconds:,.0f} req/s; latency p50 {np.percentile(ms, 50):.1f} ms, "
          f"p90 {np.percentile(ms, 90):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms; "
          f"errors {errors}  (goal: p99 < 50 ms, zero errors)")  # fmt: skip


if __name__ == "__main__":
    main()
