"""The lake's CSV dialect and commit protocol, on tiny inputs (no services)."""

from __future__ import annotations

import json
import random
from datetime import date, datetime
from decimal import Decimal

import pytest

from callcast.csvio import RowEncoder, pandas_read_options, parse_exact
from callcast.errors import PartitionNotFoundError, StorageError
from callcast.lake import MANIFEST_NAME, Lake
from callcast.storage import LocalStorage

ALPHABET = ["a", "Z", " ", ",", '"', "\n", "\r\n", "'", "é", "東", "📞", "\\", ";", "\t"]


def _random_text(rng: random.Random) -> str | None:
    roll = rng.random()
    if roll < 0.15:
        return None
    if roll < 0.3:
        return ""
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 12)))


def test_random_text_round_trips_with_null_apart_from_empty():
    rng = random.Random(7)
    rows = [(i, _random_text(rng), _random_text(rng)) for i in range(2000)]
    encoder = RowEncoder(["integer", "string", "string"])
    text = encoder.header(["id", "a", "b"]) + encoder.encode(rows)
    parsed = parse_exact(text)
    assert parsed[0] == ["id", "a", "b"]
    assert [(int(r[0]), r[1], r[2]) for r in parsed[1:]] == rows


def test_types_are_written_in_the_lake_dialect():
    encoder = RowEncoder(["boolean", "timestamp", "date", "decimal(10,2)", "float", "binary"])
    text = encoder.encode(
        [
            (
                True,
                datetime(2024, 2, 29, 1, 2, 3, 450000),
                date(2024, 2, 29),
                Decimal("10.50"),
                0.1,
                b"\x00\xff",
            ),
            (False, "2024-01-01 00:00:00", "2024-01-01", Decimal("-1"), 1e-7, None),
            (None, None, None, None, None, None),
        ]
    )
    assert text.splitlines() == [
        "true,2024-02-29 01:02:03.450000,2024-02-29,10.50,0.1,\\x00ff",
        "false,2024-01-01 00:00:00,2024-01-01,-1,1e-07,",
        ",,,,,",
    ]


def test_nul_in_text_is_refused_rather_than_corrupted():
    with pytest.raises(ValueError, match=r"NUL character.*row 2 of the batch, column 2"):
        RowEncoder(["string", "string"]).encode([("a", "b"), ("c", "a\x00b")])


def test_database_specific_values_are_written_as_the_database_would():
    from datetime import timedelta

    mariadb = RowEncoder(["time", "bit(8)", "boolean", "boolean"])
    assert mariadb.encode([(timedelta(days=34, hours=22, minutes=59, seconds=59), b"\xaa", 2, 1)]) == (
        "838:59:59,10101010,2,true\n"
    )
    assert mariadb.encode([(timedelta(seconds=-1, microseconds=5), b"\x01", 0, None)]) == (
        "-00:00:00.999995,00000001,false,\n"
    )
    sqlite = RowEncoder(["timestamp", "string", "integer"], dynamic_typing=True)
    assert sqlite.encode([("", b"\x00\xff", ""), (None, "", 3)]) == '"",\\x00ff,""\n,"",3\n'
    assert parse_exact('"",\\x00ff,""\n')[0] == ["", "\\x00ff", ""]  # '' stays apart from NULL


def test_truncated_quoted_field_is_reported():
    with pytest.raises(ValueError, match="truncated"):
        parse_exact('1,"never closed\n')


def test_pandas_options_keep_na_text_and_type_columns(tmp_path):
    import pandas as pd

    path = tmp_path / "t.csv"
    path.write_text('id,name,flag,day,amount\n1,NA,true,2024-01-01,1.50\n2,,false,,\n3,"",,2024-01-03,2\n')
    columns = [
        {"name": "id", "type": "integer"},
        {"name": "name", "type": "string"},
        {"name": "flag", "type": "boolean"},
        {"name": "day", "type": "date"},
        {"name": "amount", "type": "decimal(10,2)"},
    ]
    frame = pd.read_csv(path, **pandas_read_options(columns))
    assert frame["name"].iloc[0] == "NA"  # a customer called "NA" is not a missing value
    assert frame["flag"].tolist()[:2] == [True, False] and pd.isna(frame["flag"].iloc[2])
    assert str(frame["id"].dtype) == "Int64" and frame["amount"].iloc[0] == 1.5
    assert pd.api.types.is_datetime64_any_dtype(frame["day"])


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_commit_writes_manifest_last_with_file_hashes(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    data = _write(tmp_path, "t.csv", "a\n1\n")
    manifest = lake.commit_partition("raw/t", date(2026, 1, 2), {"t.csv": data}, {"table": "t", "rows": 1})
    stored = json.loads((tmp_path / "lake/raw/t/dt=2026-01-02" / MANIFEST_NAME).read_text())
    assert stored == manifest
    assert stored["files"][0]["bytes"] == 4 and len(stored["files"][0]["sha256"]) == 64
    assert stored["partition_date"] == "2026-01-02" and "finished_at" in stored
    assert lake.partitions("raw/t") == [date(2026, 1, 2)]
    assert not (tmp_path / "lake/raw/t/_staging").exists()


def test_partition_without_manifest_is_invisible(tmp_path):
    storage = LocalStorage(tmp_path / "lake")
    storage.put_bytes("raw/t/dt=2026-01-01/t.csv", b"a\n")  # a crashed writer's leftovers
    lake = Lake(storage)
    assert lake.partitions("raw/t") == [] and lake.latest_partition("raw/t") is None
    with pytest.raises(PartitionNotFoundError, match="Run the export"):
        lake.read_manifest("raw/t", date(2026, 1, 1))


def test_rerun_replaces_files_and_removes_stale_ones(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    day = date(2026, 1, 1)
    lake.commit_partition(
        "out", day, {"a.csv": _write(tmp_path, "a.csv", "old"), "b.csv": _write(tmp_path, "b.csv", "old")}, {}
    )
    lake.commit_partition("out", day, {"a.csv": _write(tmp_path, "a2.csv", "new")}, {})
    stored = sorted(p.name for p in (tmp_path / "lake/out/dt=2026-01-01").iterdir())
    assert stored == ["_manifest.json", lake.data_file("out", day, "a.csv").rsplit("/", 1)[-1]]
    assert lake.read_bytes("out", day, "a.csv") == b"new"
    with pytest.raises(StorageError, match="names no file 'b.csv'"):
        lake.read_bytes("out", day, "b.csv")


def test_data_files_get_new_content_addressed_names_and_the_manifest_resolves_them(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    day = date(2026, 1, 1)
    manifest = lake.commit_partition("raw/t", day, {"t.csv.gz": _write(tmp_path, "t", "one")}, {"table": "t"})
    entry = manifest["files"][0]
    assert entry["logical_name"] == "t.csv.gz" and entry["name"] == f"t.{entry['sha256'][:16]}.csv.gz"
    assert set(entry) >= {"name", "rows", "bytes", "sha256"}
    first_key = lake.data_file("raw/t", day, "t.csv.gz")
    lake.commit_partition("raw/t", day, {"t.csv.gz": _write(tmp_path, "t", "two")}, {"table": "t"})
    assert lake.data_file("raw/t", day, "t.csv.gz") != first_key  # never overwritten in place
    assert not lake.storage.exists(first_key)  # the old version is removed after the commit


def test_reader_refuses_a_file_that_does_not_match_its_manifest(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    day = date(2026, 1, 1)
    lake.commit_partition("raw/t", day, {"t.csv": _write(tmp_path, "t.csv", "a\n1\n")}, {"table": "t"})
    path = lake.storage.local_path(lake.data_file("raw/t", day, "t.csv"))
    path.write_text("a\n2\n")  # same size, other bytes
    with pytest.raises(StorageError, match="SHA-256 .* does not match|but its manifest records"):
        lake.read_csv("raw/t", day, "t.csv")
    path.write_text("a\n22\n")
    with pytest.raises(StorageError, match="bytes but its manifest records"):
        lake.fetch("raw/t", day, "t.csv", tmp_path / "scratch")
    assert lake.verify_partition("raw/t", day)


def test_lake_files_respect_the_umask(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        lake = Lake(LocalStorage(tmp_path / "lake"))
        lake.commit_partition("raw/t", date(2026, 1, 1), {"t.csv": _write(tmp_path, "t.csv", "x")}, {})
    finally:
        os.umask(old)
    for path in (tmp_path / "lake/raw/t/dt=2026-01-01").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_a_second_writer_waits_for_the_lease_then_fails_naming_the_holder(tmp_path):
    from callcast.storage import LeaseBusyError

    lake = Lake(LocalStorage(tmp_path / "lake"), lock_wait_seconds=0.3)
    day = date(2026, 1, 1)
    with lake.lease("raw/t", day, owner="first writer"):
        with pytest.raises(LeaseBusyError, match=r"held by first writer \(pid \d+"):
            lake.commit_partition("raw/t", day, {"t.csv": _write(tmp_path, "t.csv", "x")}, {})
    assert lake.partitions("raw/t") == []
    lake.commit_partition("raw/t", day, {"t.csv": _write(tmp_path, "t.csv", "x")}, {})  # released: free
    assert lake.partitions("raw/t") == [day]


def test_a_dead_writers_lease_is_taken_over(tmp_path):
    import subprocess
    import sys

    storage = LocalStorage(tmp_path / "lake")
    code = (
        "import os, signal, sys\n"
        "from callcast.storage import LocalStorage\n"
        f"lease = LocalStorage({str(tmp_path / 'lake')!r}).lease('raw/t/_leases/x.lease', 'doomed', 1, 60)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    assert storage.exists("raw/t/_leases/x.lease")  # the dead writer never released it
    lease = storage.lease("raw/t/_leases/x.lease", "next", 1, 60)
    assert lease.took_over and lease.took_over["owner"] == "doomed"
    lease.check()
    lease.release()


def test_lake_lock_wait_setting_reaches_the_lake(tmp_path, monkeypatch):
    from callcast.lake import open_lake
    from callcast.settings import get_settings

    monkeypatch.setenv("CALLCAST_LAKE_LOCK_WAIT_SECONDS", "0.25")
    assert open_lake(get_settings(lake_url=str(tmp_path / "lake"))).lock_wait_seconds == 0.25


def test_storage_refuses_keys_that_escape_the_lake(tmp_path):
    with pytest.raises(StorageError, match="'..' is not allowed"):
        LocalStorage(tmp_path).put_bytes("../outside", b"x")


def test_latest_partition_on_or_before(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    for day in (1, 5, 9):
        lake.commit_partition("p", date(2026, 1, day), {"x": _write(tmp_path, "x", str(day))}, {})
    assert lake.latest_partition("p") == date(2026, 1, 9)
    assert lake.latest_partition("p", on_or_before=date(2026, 1, 6)) == date(2026, 1, 5)
    assert lake.latest_partition("p", on_or_before=date(2025, 12, 31)) is None


def test_a_rerun_with_identical_output_repairs_a_damaged_file(tmp_path):
    lake = Lake(LocalStorage(tmp_path / "lake"))
    day = date(2026, 1, 1)
    lake.commit_partition("raw/t", day, {"t.csv": _write(tmp_path, "t.csv", "a\n1\n")}, {"table": "t"})
    path = lake.storage.local_path(lake.data_file("raw/t", day, "t.csv"))
    path.write_text("a\n2\n")  # bit rot: same size, same name
    assert lake.verify_partition("raw/t", day)
    lake.commit_partition("raw/t", day, {"t.csv": _write(tmp_path, "t.csv", "a\n1\n")}, {"table": "t"})
    assert lake.verify_partition("raw/t", day) == [] and lake.read_bytes("raw/t", day, "t.csv") == b"a\n1\n"


def test_read_csv_types_only_the_file_the_manifest_describes(tmp_path):
    """A second CSV of a partition (a report) is not forced into the data file's column types."""
    from callcast.lake import Lake
    from callcast.storage import LocalStorage

    data, report = tmp_path / "forecasts.csv", tmp_path / "report.csv"
    data.write_text("series_id,date,forecast\nA,2024-01-01,1.5\n")
    report.write_text("series_id,model,wmae\nA,ets,0.3\n")
    lake = Lake(LocalStorage(tmp_path / "lake"))
    columns = [{"name": "series_id", "type": "string"}, {"name": "date", "type": "date"},
               {"name": "forecast", "type": "float"}]  # fmt: skip
    lake.commit_partition("f", date(2024, 1, 2), {"forecasts.csv": data, "report.csv": report},
                          {"columns": columns})  # fmt: skip
    typed = lake.read_csv("f", date(2024, 1, 2), "forecasts.csv")
    assert str(typed["date"].dtype).startswith("datetime64")
    other = lake.read_csv("f", date(2024, 1, 2), "report.csv")
    assert list(other.columns) == ["series_id", "model", "wmae"] and other["wmae"].iloc[0] == 0.3
