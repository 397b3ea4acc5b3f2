"""Clean raw export partitions in the lake's exact CSV dialect (built from UCI rows), and defect injectors."""

from __future__ import annotations

import gzip
import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from callcast.csvio import RowEncoder, normalize_type
from callcast.schema import metadata
from demo_company.bank import BANK_FULL_PATH as BANK_FULL

PARTITION = date(2024, 3, 31)
MODES = {"sales": "incremental", "campaign_contacts": "incremental"}


def _bank(n: int) -> pd.DataFrame:
    return pd.read_csv(BANK_FULL, sep=";", nrows=n)


def clean_rows(
    table: str, n: int = 120, partition_date: date = PARTITION
) -> tuple[list[str], list[list[Any]]]:
    """Column names and rows of a plausible, defect-free partition."""
    day = datetime.combine(partition_date, datetime.min.time())
    if table == "customers":
        b = _bank(n)
        rows = [
            [i + 1, f"Customer {i + 1}", f"+351 912 {i:06d}", int(r.age), r.job, r.marital, r.education, r.default,
             int(r.balance), r.housing, r.loan, i % 17 == 0, day - timedelta(days=400 + i, hours=3)]
            for i, r in enumerate(b.itertuples())
        ]  # fmt: skip
    elif table == "campaign_contacts":
        b = _bank(n)
        rows = []
        for i, r in enumerate(b.itertuples()):
            contact = partition_date - timedelta(days=i % 20)
            pending = i % 10 == 0  # outcome not known yet: NULLs are legitimate here
            rows.append(
                [i + 1, i + 1, contact, r.contact, contact.day, contact.strftime("%b").lower(),
                 None if pending else int(r.duration), int(r.campaign), int(r.pdays), int(r.previous), r.poutcome,
                 None if pending else r.y, None if pending else min(contact + timedelta(days=3), partition_date),
                 day + timedelta(hours=9, minutes=i % 60)]
            )  # fmt: skip
    elif table == "stores":
        rows = [
            [
                i,
                f"Store {i:03d}",
                ["North", "South", "Centre"][i % 3],
                date(2019, 1, 1) + timedelta(days=30 * i),
            ]
            for i in range(1, n + 1)
        ]
    elif table == "products":
        rows = [
            [i, f"Phone {i}", "smartphone", f"{199 + i}.99", date(2022, 1, 1) + timedelta(days=i),
             date(2023, 6, 1) if i % 5 == 0 else None]
            for i in range(1, n + 1)
        ]  # fmt: skip
    elif table == "sales":
        rows = [
            [1000 + i, partition_date - timedelta(days=i % 3), 1 + i % 7, 1 + i % 11, 1 + i % 4, f"{19 + i % 50}.90",
             f"{(19 + i % 50 + 0.9) * (1 + i % 4):.2f}", i % 5 == 0, False]
            for i in range(n)
        ]  # fmt: skip
    else:
        raise KeyError(table)
    return [c.name for c in metadata.tables[table].c], rows


def column_types(table: str) -> list[str]:
    return [normalize_type(c.type) for c in metadata.tables[table].c]


def encode(columns: list[str], rows: list[list[Any]], types: list[str] | None = None) -> str:
    """CSV text in the lake dialect (NULL = empty field, '' = quoted empty)."""
    encoder = RowEncoder(types or ["string"] * len(columns))
    return encoder.header(columns) + encoder.encode([tuple(r) for r in rows])


def write_partition(
    dest: Path,
    table: str,
    text: str | bytes,
    columns: list[str] | None = None,
    rows: int | None = None,
    partition_date: date = PARTITION,
    encoding: str = "utf-8",
) -> tuple[Path, dict[str, Any]]:
    """Gzip ``text`` into ``dest/<table>.csv.gz`` and return it with a manifest like the exporter's."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{table}.csv.gz"
    data = text if isinstance(text, bytes) else gzip.compress(text.encode(encoding))
    path.write_bytes(data)
    types = dict(zip([c.name for c in metadata.tables[table].c], column_types(table), strict=True))
    manifest = {
        "table": table,
        "partition_date": partition_date.isoformat(),
        "rows": rows,
        "columns": [{"name": c, "type": types.get(c, "string")} for c in (columns or [])],
        "mode": MODES.get(table, "snapshot"),
        "files": [
            {"name": path.name, "rows": rows, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        ],
    }
    return path, manifest


def clean_partition(dest: Path, table: str, n: int = 120, partition_date: date = PARTITION):
    columns, rows = clean_rows(table, n, partition_date)
    text = encode(columns, rows, column_types(table))
    return write_partition(dest, table, text, columns, len(rows), partition_date)
