"""Real-format raw partitions with injected defects: each is caught with a message a person understands."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import raw_factory as rf  # noqa: E402

from data_checks.config import ChecksConfig  # noqa: E402
from data_checks.validate import validate_partition  # noqa: E402

TABLES = ["customers", "campaign_contacts", "stores", "products", "sales"]


def _check(path, table, manifest=None, previous_rows=None, config=None):
    return validate_partition(
        path, table, rf.PARTITION, manifest, previous_rows, config or ChecksConfig(chunk_rows=1000)
    )


def _only(result, expectation):
    found = [f for f in result.failed_expectations if f.expectation == expectation]
    assert found, result.summary()
    return found[0]


def _customers(tmp_path, mutate, n=120, keep_manifest_columns=True):
    columns, rows = rf.clean_rows("customers", n)
    columns, rows = mutate(list(columns), [list(r) for r in rows])
    text = rf.encode(columns, rows)
    return rf.write_partition(tmp_path, "customers", text, columns, len(rows))


@pytest.mark.parametrize("table", TABLES)
def test_clean_partition_of_every_table_passes(tmp_path, table):
    path, manifest = rf.clean_partition(tmp_path, table, n=8 if table in ("stores", "products") else 150)
    result = _check(path, table, manifest)
    assert result.status == "passed", result.summary()
    assert result.rows_checked == manifest["rows"]
    assert result.failed_expectations == []


def test_chunks_do_not_change_the_outcome(tmp_path):
    """Duplicates split across chunks are still found (uniqueness is tracked across chunks)."""

    def dup(columns, rows):
        rows[-1][0] = rows[0][0]  # last row repeats the first id: different chunks with 1,000-row chunks
        return columns, rows

    path, manifest = _customers(tmp_path, dup, n=2500)
    failure = _only(_check(path, "customers", manifest), "expect_column_values_to_be_unique")
    assert failure.column == "customer_id" and failure.severity == "critical"
    assert "1 ids appear more than once (2 rows)" in failure.details
    assert "rows 1, 2500" in failure.details


def test_missing_column(tmp_path):
    def drop(columns, rows):
        i = columns.index("balance")
        return columns[:i] + columns[i + 1 :], [r[:i] + r[i + 1 :] for r in rows]

    path, manifest = _customers(tmp_path, drop)
    result = _check(path, "customers", manifest)
    assert result.status == "failed"
    assert "missing column(s): balance" in _only(result, "expect_table_columns_to_match_ordered_list").details


def test_extra_column(tmp_path):
    path, manifest = _customers(tmp_path, lambda c, r: (c + ["favourite_colour"], [x + ["blue"] for x in r]))
    result = _check(path, "customers", manifest)
    assert result.status == "failed"
    assert (
        "unexpected column(s): favourite_colour"
        in _only(result, "expect_table_columns_to_match_ordered_list").details
    )


def test_nulls_in_keys(tmp_path):
    def null_ids(columns, rows):
        for r in rows[10:13]:
            r[0] = None
        return columns, rows

    path, manifest = _customers(tmp_path, null_ids)
    result = _check(path, "customers", manifest)
    failure = next(
        f for f in result.failed_expectations if f.expectation == "expect_column_values_to_not_be_null"
    )
    assert result.status == "failed"
    assert failure.column == "customer_id"
    assert failure.details.startswith("customer_id: 3 of 120 rows")
    assert {row["_row"] for row in result.sample_rows} >= {11, 12, 13}


def test_unknown_category(tmp_path):
    def astronaut(columns, rows):
        rows[5][columns.index("job")] = "astronaut"
        return columns, rows

    path, manifest = _customers(tmp_path, astronaut)
    result = _check(path, "customers", manifest)
    failure = _only(result, "expect_column_values_to_be_in_set")
    assert result.status == "failed"
    assert failure.column == "job" and "'astronaut'" in failure.details and "1 values" in failure.details


def test_out_of_range_values_and_masked_samples(tmp_path):
    def ages(columns, rows):
        rows[0][columns.index("age")] = 150
        rows[1][columns.index("age")] = -4
        return columns, rows

    path, manifest = _customers(tmp_path, ages)
    result = _check(path, "customers", manifest)
    failure = _only(result, "expect_column_values_to_be_between")
    assert result.status == "failed"
    assert failure.column == "age" and "2 values" in failure.details and "[18, 100]" in failure.details
    sample = [row for row in result.sample_rows if row["_row"] in (1, 2)]
    assert sample and all(row["name"] == "***" and row["phone"] == "***" for row in sample)
    assert {row["age"] for row in sample} == {150, -4}


def test_warning_range_does_not_quarantine(tmp_path):
    def rich(columns, rows):
        rows[3][columns.index("balance")] = 400_000  # implausible but possible: a warning
        return columns, rows

    path, manifest = _customers(tmp_path, rich)
    result = _check(path, "customers", manifest)
    assert result.status == "warning"
    assert _only(result, "expect_column_values_to_be_between").severity == "warning"


def test_duplicated_ids(tmp_path):
    path, manifest = _customers(tmp_path, lambda c, r: (c, r + [list(r[7]), list(r[8])]))
    failure = _only(_check(path, "customers", manifest), "expect_column_values_to_be_unique")
    assert "2 ids appear more than once (4 rows), e.g. 8, 9" in failure.details


def test_wrong_type(tmp_path):
    def text_balance(columns, rows):
        rows[2][columns.index("balance")] = "12k"
        return columns, rows

    path, manifest = _customers(tmp_path, text_balance)
    result = _check(path, "customers", manifest)
    failure = _only(result, "expect_column_values_to_match_declared_type")
    assert failure.column == "balance" and "not an integer" in failure.details and "'12k'" in failure.details
    assert not any(f.expectation == "expect_column_values_to_not_be_null" for f in result.failed_expectations)


def test_empty_file(tmp_path):
    path = tmp_path / "customers.csv.gz"
    path.write_bytes(b"")
    result = _check(path, "customers")
    assert result.status == "failed"
    assert "is empty (0 bytes)" in _only(result, "expect_file_to_be_readable_gzip_csv").details


def test_header_only_snapshot_fails_but_incremental_warns(tmp_path):
    columns, _ = rf.clean_rows("customers", 1)
    path, manifest = rf.write_partition(tmp_path / "c", "customers", rf.encode(columns, []), columns, 0)
    assert (
        "no rows"
        in _only(_check(path, "customers", manifest), "expect_table_row_count_to_be_between").details
    )
    columns, _ = rf.clean_rows("sales", 1)
    path, manifest = rf.write_partition(tmp_path / "s", "sales", rf.encode(columns, []), columns, 0)
    assert _check(path, "sales", manifest).status == "warning"


def test_truncated_gzip(tmp_path):
    path, manifest = rf.clean_partition(tmp_path, "customers", n=3000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    result = _check(path, "customers", manifest)
    assert result.status == "failed"
    assert "truncated file" in _only(result, "expect_file_to_be_readable_gzip_csv").details


def test_wrong_delimiter(tmp_path):
    columns, rows = rf.clean_rows("customers", 20)
    text = rf.encode(columns, rows).replace(",", ";")
    path, manifest = rf.write_partition(tmp_path, "customers", text, columns, 20)
    details = _only(_check(path, "customers", manifest), "expect_file_to_be_readable_gzip_csv").details
    assert "semicolon (';') as delimiter" in details


def test_wrong_encoding(tmp_path):
    columns, rows = rf.clean_rows("customers", 20)
    rows[4][1] = "José Conceição"
    path, manifest = rf.write_partition(
        tmp_path, "customers", rf.encode(columns, rows), columns, 20, encoding="latin-1"
    )
    details = _only(_check(path, "customers", manifest), "expect_file_to_be_readable_gzip_csv").details
    assert "not UTF-8" in details and "0xe9" in details


def test_not_gzip(tmp_path):
    path = tmp_path / "customers.csv.gz"
    path.write_text("customer_id,name\n1,a\n")
    assert (
        "not gzip-compressed"
        in _only(_check(path, "customers"), "expect_file_to_be_readable_gzip_csv").details
    )


def test_row_count_differs_from_manifest(tmp_path):
    path, manifest = rf.clean_partition(tmp_path, "customers", n=50)
    manifest["rows"] = 60
    details = _only(_check(path, "customers", manifest), "expect_table_row_count_to_equal_manifest").details
    assert "50 data rows but its manifest says 60" in details


def test_snapshot_row_count_vs_previous(tmp_path):
    path, manifest = rf.clean_partition(tmp_path, "customers", n=50)
    result = _check(path, "customers", manifest, previous_rows=100)
    assert result.status == "failed"
    assert (
        "from 100 to 50 (-50%)"
        in _only(result, "expect_table_row_count_to_be_within_tolerance_of_previous").details
    )
    assert _check(path, "customers", manifest, previous_rows=45).status == "passed"


def test_incremental_row_count_vs_previous_is_a_warning(tmp_path):
    path, manifest = rf.clean_partition(tmp_path, "sales", n=50)
    result = _check(path, "sales", manifest, previous_rows=5000)
    assert result.status == "warning"


def test_dates_outside_the_partition_window(tmp_path):
    columns, rows = rf.clean_rows("sales", 40)
    rows[3][1] = "2024-04-02"  # after the partition day
    rows[4][1] = "1970-01-01"  # absurdly old
    path, manifest = rf.write_partition(tmp_path, "sales", rf.encode(columns, rows), columns, 40)
    result = _check(path, "sales", manifest)
    after = _only(result, "expect_column_max_to_be_between")
    before = _only(result, "expect_column_min_to_be_between")
    assert "1 values are after the partition day 2024-03-31 (latest 2024-04-02)" in after.details
    assert "before 1990-01-01" in before.details and result.status == "failed"


def test_contacts_pending_outcome_nulls_are_legitimate_but_updated_at_in_future_is_not(tmp_path):
    columns, rows = rf.clean_rows("campaign_contacts", 60)
    rows[1][columns.index("updated_at")] = "2024-04-01 00:00:01"
    path, manifest = rf.write_partition(tmp_path, "campaign_contacts", rf.encode(columns, rows), columns, 60)
    result = _check(path, "campaign_contacts", manifest)
    assert [f.column for f in result.failed_expectations] == ["updated_at"]


def test_gzip_helper_roundtrip(tmp_path):
    """The factory writes the lake dialect: NULL is an empty field, booleans are true/false."""
    path, _ = rf.clean_partition(tmp_path, "campaign_contacts", n=3)
    first = gzip.decompress(path.read_bytes()).decode().splitlines()[1]
    assert first.startswith("1,1,2024-03-31,") and ",,," in first
