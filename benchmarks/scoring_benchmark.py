"""Batch scoring throughput and peak memory at 1M and 10M customers (resampled from the UCI data).

Times the chunk-scoring stage of the scoring flow (``tasks.scoring.score_chunk_file``: read a parquet chunk,
``predict_proba``, keep the best rows) single-process and on a 2-worker local Dask cluster, and prints a
profile of where ``predict_proba`` spends its time. The model is the lake's champion if there is one,
else a logistic regression on the "context" features fitted here (the quick profile's usual winner).

    .venv/bin/python benchmarks/scoring_benchmark.py [--sizes 1000000 10000000] [--chunk-rows 200000]
"""

from __future__ import annotations

import argparse
import logging
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _model_path(workdir: Path) -> tuple[Path, str]:
    from tasks.scoring import load_champion

    try:
        from callcast.lake import open_lake

        model, info = load_champion(open_lake())
        label = f"lake champion {info['version']} ({info.get('candidate')})"
    except Exception:  # noqa: BLE001 - no lake/champion here: fit a stand-in
        from demo_company.bank import bank_tables
        from models.propensity.config import PropensityConfig
        from models.propensity.estimators import build_pipeline
        from models.propensity.features import build_training_table

        config = PropensityConfig()
        candidate = next(c for c in config.candidates if c.name == "logreg/context")
        customers, contacts = bank_tables(seed=3)
        table = build_training_table(customers, contacts)
        model = build_pipeline(candidate, config).fit(table, table["y"].to_numpy())
        label = "logreg/context fitted on bank-full (no champion in the lake)"
    path = workdir / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    return path, label


def _base_rows() -> pd.DataFrame:
    """Every bank customer's scoring row for the day after the data, built as the scoring flow builds it."""
    from datetime import date

    from demo_company.bank import bank_tables
    from models import call_list as rules
    from models.propensity.config import PropensityConfig
    from models.propensity.features import latest_contacts

    customers, contacts = bank_tables(seed=3)
    call_date = rules.default_call_date(rules.data_span(contacts, date(2010, 11, 30)))
    return rules.scoring_rows_as_of(customers, latest_contacts(contacts), call_date, PropensityConfig())


def make_chunks(n: int, chunk_rows: int, workdir: Path) -> list[str]:
    """``n`` customers resampled (with replacement, seeded) from the bank rows, as parquet chunks."""
    base = _base_rows()
    rng = np.random.default_rng(7)
    paths = []
    for i, start in enumerate(range(0, n, chunk_rows)):
        size = min(chunk_rows, n - start)
        chunk = base.iloc[rng.integers(0, len(base), size)].reset_index(drop=True)
        chunk["customer_id"] = np.arange(start + 1, start + size + 1)
        path = workdir / f"chunk-{i:05d}.parquet"
        chunk.to_parquet(path, index=False)
        paths.append(str(path))
    return paths


def peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM; not inherited from a parent like ru_maxrss can be)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _score_with(model_path: str, chunk: str, keep: int) -> int:
    from tasks.scoring import score_chunk_file

    global _MODEL
    if "_MODEL" not in globals():
        _MODEL = pickle.loads(Path(model_path).read_bytes())
    return score_chunk_file(_MODEL, chunk, keep)["rows"]


def run_single(model_path: str, chunks: list[str], keep: int) -> None:
    """Child process: score every chunk in turn; prints rows, seconds, peak RSS (MiB).

    Imports and the model load happen before the clock starts, as the Dask path warms its workers up.
    """
    global _MODEL
    import tasks.scoring  # noqa: F401

    _MODEL = pickle.loads(Path(model_path).read_bytes())
    t0 = time.perf_counter()
    rows = sum(_score_with(model_path, c, keep) for c in chunks)
    seconds = time.perf_counter() - t0
    print(rows, seconds, peak_rss_mib())


def run_dask(model_path: str, chunks: list[str], keep: int, workers: int) -> tuple[int, float, float]:
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as cluster:
        with Client(cluster) as client:
            client.run(lambda: None)
            client.gather(
                client.map(
                    _score_with, [model_path] * workers, chunks[:workers], [keep] * workers, pure=False
                )
            )  # fmt: skip  (warm-up: model loaded in each worker)
            t0 = time.perf_counter()
            rows = sum(client.gather(client.map(_score_with, [model_path] * len(chunks), chunks,
                                                [keep] * len(chunks), pure=False)))  # fmt: skip
            seconds = time.perf_counter() - t0
            peaks = client.run(peak_rss_mib)
    return rows, seconds, max(peaks.values())


def profile_predict(model_path: str, chunk: str) -> None:
    """Where predict_proba spends its time on one chunk (cumulative seconds of the pipeline steps)."""
    model = pickle.loads(Path(model_path).read_bytes())
    X = pd.read_parquet(chunk)
    steps = model.steps
    t0 = time.perf_counter()
    Xt = X
    for name, step in steps[:-1]:
        s = time.perf_counter()
        Xt = step.transform(Xt)
        print(f"    {name:<10} {time.perf_counter() - s:6.2f}s")
    s = time.perf_counter()
    steps[-1][1].predict_proba(Xt)
    print(f"    {steps[-1][0]:<10} {time.perf_counter() - s:6.2f}s  (estimator)")
    total = time.perf_counter() - t0
    print(f"    total      {total:6.2f}s for {len(X):,} rows = {len(X) / total:,.0f} rows/s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    p.add_argument("--chunk-rows", type=int, default=200_000)
    p.add_argument("--keep", type=int, default=500, help="capacity: best rows kept per chunk")
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="callcast-scorebench-") as tmp:
        workdir = Path(tmp)
        model_path, label = _model_path(workdir)
        print(f"model: {label}; chunk {a.chunk_rows:,} rows; keep {a.keep} per chunk")
        print(f"{'customers':>12} {'mode':<16} {'rows/s':>12} {'rows/s/core':>12} {'peak RSS MiB':>13}")
        first_chunk = None
        for n in a.sizes:
            chunk_dir = workdir / f"n{n}"
            chunk_dir.mkdir()
            chunks = make_chunks(n, a.chunk_rows, chunk_dir)
            first_chunk = first_chunk or chunks[0]
            out = subprocess.run(
                [sys.executable, __file__, "--_single", str(model_path), str(a.keep), *chunks],
                capture_output=True, text=True, check=True,
            ).stdout.split()  # fmt: skip
            rows, seconds, rss = int(out[0]), float(out[1]), float(out[2])
            print(
                f"{n:>12,} {'single process':<16} {rows / seconds:>12,.0f} {rows / seconds:>12,.0f} {rss:>13,.0f}"
            )
            rows, seconds, rss = run_dask(str(model_path), chunks, a.keep, a.workers)
            label = f"dask {a.workers} workers"
            print(
                f"{n:>12,} {label:<16} {rows / seconds:>12,.0f} {rows / seconds / a.workers:>12,.0f} {rss:>13,.0f}"
            )
            for path in chunks:
                for suffix in ("", ".probs.npy", ".top.parquet"):
                    Path(path).with_suffix(suffix or ".parquet").unlink(missing_ok=True)
        print("predict_proba profile on one chunk (goal: 200,000 rows/s per core):")
        base = make_chunks(a.chunk_rows, a.chunk_rows, workdir)[0]
        profile_predict(str(model_path), base)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_single":
        run_single(sys.argv[2], sys.argv[4:], int(sys.argv[3]))
    else:
        main()
