"""Time and peak RSS to validate a 5-million-row sales partition, against a plain chunked pandas read.

Each measurement runs in a fresh child process (peak RSS = that process's ru_maxrss).
Run: ``.venv/bin/python benchmarks/checks_benchmark.py [--rows 5000000] [--keep FILE]``.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing as mp
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

PARTITION = date(2025, 12, 31)


def make_sales_file(path: Path, rows: int, seed: int = 7, chunk: int = 500_000) -> None:
    """Synthetic sales in the raw export dialect (gzip level 1, like the exporter's default)."""
    rng = np.random.default_rng(seed)
    with gzip.open(path, "wt", compresslevel=1, newline="") as out:
        out.write(
            "sale_id,sale_date,store_id,product_id,quantity,unit_price,revenue,on_promotion,is_holiday\n"
        )
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            qty = rng.integers(1, 4, n)
            cents = rng.integers(500, 120_000, n)
            frame = pd.DataFrame(
                {
                    "sale_id": np.arange(start + 1, start + n + 1),
                    "sale_date": (np.datetime64("2024-01-01") + rng.integers(0, 730, n)).astype(str),
                    "store_id": rng.integers(1, 41, n),
                    "product_id": rng.integers(1, 121, n),
                    "quantity": qty,
                    "unit_price": cents / 100,
                    "revenue": cents * qty / 100,
                    "on_promotion": np.where(rng.random(n) < 0.2, "true", "false"),
                    "is_holiday": np.where(rng.random(n) < 0.03, "true", "false"),
                }
            )
            frame.to_csv(out, header=False, index=False, float_format="%.2f")


def _baseline(path: str, queue) -> None:
    started = time.perf_counter()
    rows = 0
    for chunk in pd.read_csv(path, chunksize=500_000, keep_default_na=False, na_values=[""]):
        rows += len(chunk)
    queue.put(("plain pandas chunked read", rows, time.perf_counter() - started, _peak_mb()))


def _validate(path: str, docs: bool, queue) -> None:
    started = time.perf_counter()
    from data_checks.validate import validate_partition

    with tempfile.TemporaryDirectory() as tmp:
        result = validate_partition(
            Path(path), "sales", PARTITION, {"rows": None, "mode": "incremental"},
            docs_dir=Path(tmp) / "docs" if docs else None,
        )  # fmt: skip
    label = (
        f"validate_partition ({'with' if docs else 'without'} Data Docs, incl. GX import) -> {result.status}"
    )
    queue.put((label, result.rows_checked, time.perf_counter() - started, _peak_mb()))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(target, *args) -> tuple:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--keep", type=Path, help="reuse/keep the generated file here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "sales.csv.gz"
        if not path.exists():
            t = time.perf_counter()
            make_sales_file(path, args.rows)
            print(
                f"generated {args.rows:,} rows, {path.stat().st_size / 1e6:.0f} MB gzip in {time.perf_counter() - t:.0f}s"
            )
        print(f"{'measurement':<72} {'rows':>10} {'seconds':>8} {'peak RSS MB':>12}")
        for target, extra in ((_baseline, ()), (_validate, (False,)), (_validate, (True,))):
            label, rows, seconds, peak = _measure(target, str(path), *extra)
            print(f"{label:<72} {rows:>10,} {seconds:>8.1f} {peak:>12.0f}")
        print("goal: < 60 s and < 1500 MB peak RSS for 5,000,000 rows (2 shared cores)")


if __name__ == "__main__":
    main()
